//! W3C Trace Context Level 2 (<https://www.w3.org/TR/trace-context-2/>), rule by rule: one row
//! per processing rule, written from the specification's text and quoting or naming the rule.
//!
//! A row gives the headers a participant receives and what it does (an outgoing call under its
//! server span, the same with its own `tracestate` entry, or a pass-through), and the exact
//! `traceparent` flags and `tracestate` it must send. Every outgoing `traceparent` is also
//! checked for its form (one version `00` header), its trace id (the received one, or a new one
//! that is neither the received one nor all zeroes) and its parent-id ("Update `parent-id`: The
//! value of property `parent-id` MUST be set to a value representing the ID of the current
//! operation", except for a pass-through, which changes nothing).

use http::{HeaderMap, HeaderName, HeaderValue};
use vantage_instrument::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// What the participant does with the request it received.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// An outgoing call from the server span: `continue_or_start`, `child`, `inject`.
    Call,
    /// The same call, with this service's own `tracestate` entry added first.
    CallWithEntry(&'static str, &'static str),
    /// A pass-through: the received context sent on unchanged (`from_headers`, `inject`).
    PassThrough,
}

/// Whose trace id the outgoing `traceparent` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trace {
    /// The received one: the trace is continued.
    Received,
    /// A new one: the trace is started or restarted.
    New,
}

struct Row {
    /// The rule, quoted or named from the specification.
    rule: &'static str,
    received: Vec<(&'static str, String)>,
    step: Step,
    trace: Trace,
    /// The `trace-flags` sent, as two hex digits.
    flags: &'static str,
    /// The `tracestate` sent; `None` for no header.
    tracestate: Option<String>,
}

fn row(
    rule: &'static str,
    received: &[(&'static str, &str)],
    step: Step,
    trace: Trace,
    flags: &'static str,
    tracestate: Option<&str>,
) -> Row {
    Row {
        rule,
        received: received
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect(),
        step,
        trace,
        flags,
        tracestate: tracestate.map(str::to_owned),
    }
}

/// A row for a `tracestate` rule: a sampled caller sends this one `tracestate` field beside a
/// valid `traceparent`, and the outgoing call sends `expected`.
fn state_row(rule: &'static str, tracestate: &str, expected: Option<&str>) -> Row {
    row(
        rule,
        &[("traceparent", &tp("01")), ("tracestate", tracestate)],
        Step::Call,
        Trace::Received,
        "01",
        expected,
    )
}

/// A version `00` `traceparent` of the received trace with these flags.
fn tp(flags: &str) -> String {
    format!("00-{TRACE}-{CALLER}-{flags}")
}

/// `count` members `barNN=NN`, from `bar01`.
fn members(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("bar{i:02}={i:02}")).collect()
}

/// A member of `len` characters with this key.
fn member(key: &str, len: usize) -> String {
    format!("{key}={}", "v".repeat(len - key.len() - 1))
}

#[rustfmt::skip] // One row per rule reads best with its arguments aligned.
fn rows() -> Vec<Row> {
    use Step::{Call, CallWithEntry, PassThrough};
    use Trace::{New, Received};
    let tp01 = tp("01");
    let z256 = "z".repeat(256);
    let z257 = "z".repeat(257);
    let tenant242 = format!("{}@v", "t".repeat(242));
    let system15 = format!("t@{}", "v".repeat(15));
    let value256 = "v".repeat(256);
    let value257 = "v".repeat(257);
    let all32 = members(32);
    let fields32 = [all32[..10].join(","), all32[10..20].join(","), all32[20..30].join(","), all32[30..].join(",")];
    let mut full_with_ours = vec!["vantage=1".to_owned()];
    full_with_ours.extend(members(31));
    // 3 members of 142 characters and 4 of 42: 600 characters with the commas.
    let (short, long) = (|k: &str| member(k, 42), |k: &str| member(k, 142));
    let mixed = [short("a"), long("l1"), short("b"), long("l2"), short("c"), long("l3"), short("d")].join(",");
    let mixed_sent = [short("a"), long("l1"), short("b"), long("l2"), short("c"), short("d")].join(",");
    // 15 members of 42 characters: 644 with the commas; the first 11 make 472.
    let shorts: Vec<String> = (0..15).map(|i| short(&format!("s{i:02}"))).collect();
    let exactly512 = [member("a", 255), member("b", 256)].join(",");

    vec![
        // --- traceparent: the random-trace-id flag and the other flags ---
        row("Random Trace ID Flag, continuing a trace: \"If the flag is set in the incoming traceparent header, it MUST also be set in all outgoing traceparent headers which use the same trace-id.\"",
            &[("traceparent", &tp("02"))], Call, Received, "02", None),
        row("the same rule, with the sampled flag beside it",
            &[("traceparent", &tp("03"))], Call, Received, "03", None),
        row("Random Trace ID Flag, continuing a trace: \"If the flag is unset in the incoming traceparent header, it MUST also be unset in any outgoing traceparent headers which use the same trace-id.\"",
            &[("traceparent", &tp("00"))], Call, Received, "00", None),
        row("the same rule, for a sampled Level 1 caller",
            &[("traceparent", &tp01)], Call, Received, "01", None),
        row("Other Flags: \"The behavior of other flags, such as (00000100) is not defined and is reserved for future use. Vendors MUST set those to zero.\"",
            &[("traceparent", &tp("ff"))], Call, Received, "03", None),
        row("the same rule, with neither known flag set",
            &[("traceparent", &tp("fc"))], Call, Received, "00", None),
        row("starting a trace: \"When at least the right-most 7 bytes of the trace-id are randomly (or pseudo-randomly) generated, the random-trace-id flag SHOULD be set to 1.\"; sampled \"should be set to 0 as the default option when the trace is initiated by this component\"",
            &[], Call, New, "02", None),
        row("No traceparent Received: \"If a tracestate header is received without an accompanying traceparent header, it is invalid and MUST be discarded.\"",
            &[("tracestate", "foo=1")], Call, New, "02", None),
        row("No traceparent Received: \"The vendor SHOULD create a new tracestate header and add a new key/value pair.\"",
            &[], CallWithEntry("vantage", "1"), New, "02", Some("vantage=1")),

        // --- traceparent: restarts ---
        row("Restart trace: \"All properties (trace-id, parent-id, trace-flags) are regenerated.\" \"Vendors SHOULD clean up tracestate collection on traceparent restart.\"",
            &[("traceparent", &format!("00-{}-{CALLER}-01", "0".repeat(32))), ("tracestate", "foo=1")], Call, New, "02", None),
        row("trace-id: \"If the trace-id value is invalid (for example if it contains non-allowed characters or all zeros), vendors MUST ignore the traceparent.\" (uppercase is not HEXDIGLC)",
            &[("traceparent", &format!("00-{}-{CALLER}-01", TRACE.to_uppercase()))], Call, New, "02", None),
        row("parent-id: \"Vendors MUST ignore the traceparent when the parent-id is invalid\" (all zeroes)",
            &[("traceparent", &format!("00-{TRACE}-{}-03", "0".repeat(16)))], Call, New, "02", None),
        row("\"If either trace-id, parent-id or trace-flags are invalid, the vendor creates a new traceparent header and deletes tracestate.\"; \"If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate.\"",
            &[("traceparent", &tp(".1")), ("tracestate", "foo=1")], Call, New, "02", None),
        row("version: \"Version ff is forbidden\"",
            &[("traceparent", &format!("ff-{TRACE}-{CALLER}-01"))], Call, New, "02", None),
        row("\"When the version prefix cannot be parsed (it's not 2 hex characters followed by a dash (-)), the implementation should restart the trace.\"",
            &[("traceparent", &format!("000-{TRACE}-{CALLER}-01"))], Call, New, "02", None),
        row("version-format of version 00 is exactly trace-id \"-\" parent-id \"-\" trace-flags: anything after it is invalid",
            &[("traceparent", &format!("{}-extra", tp("01")))], Call, New, "02", None),
        row("traceparent is one value, not a list: two fields cannot be combined (RFC 9110 section 5.3), so neither is continued",
            &[("traceparent", &tp01), ("traceparent", &tp01)], Call, New, "02", None),
        row("Header Name: \"The header name is a single word; it does not contain any delimiters such as a hyphen.\"",
            &[("trace-parent", &tp01)], Call, New, "02", None),

        // --- traceparent: later versions ---
        row("Versioning: \"Vendors MUST use these fields to construct the new traceparent field according to the highest version of the specification known to the implementation\"; \"Vendors will set all unparsed / unknown trace-flags to 0 on outgoing requests.\"",
            &[("traceparent", &format!("cc-{TRACE}-{CALLER}-07-what-the-future-will-be-like"))], Call, Received, "03", None),
        row("Versioning: \"If the size of the header is shorter than 55 characters, the vendor should not parse the header and should restart the trace.\"",
            &[("traceparent", &format!("cc-{TRACE}-{CALLER}-1"))], Call, New, "02", None),
        row("Versioning: \"Vendors MUST check that the 2 characters are either at the end of the string or followed by a dash.\"",
            &[("traceparent", &format!("cc-{TRACE}-{CALLER}-01.what-the-future-will-be-like"))], Call, New, "02", None),

        // --- both headers ---
        row("Header Name: \"The header name is ASCII case-insensitive.\"",
            &[("TRACEPARENT", &tp01), ("TraceState", "foo=1")], Call, Received, "01", Some("foo=1")),
        state_row("\"failure to parse tracestate MUST NOT affect the parsing of traceparent\"; \"If the tracestate header cannot be parsed the vendor MAY discard the entire header.\"",
            "foo=1,BAR=2", None),
        row("\"If the value of the traceparent field wasn't changed before propagation, tracestate MUST NOT be modified as well.\" (a pass-through keeps every flag bit too)",
            &[("traceparent", &tp("0f")), ("tracestate", "rojo=1,congo=2")], PassThrough, Received, "0f", Some("rojo=1,congo=2")),

        // --- tracestate: the list ---
        row("\"When receiving multiple tracestate header fields, they MUST be combined into a single header according to RFC9110\" (in field order)",
            &[("traceparent", &tp01), ("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2"), ("tracestate", "baz=3")],
            Call, Received, "01", Some("foo=1,bar=2,rojo=1,congo=2,baz=3")),
        state_row("\"Vendors MUST accept empty tracestate headers but SHOULD avoid sending them.\"",
            "", None),
        row("the same rule, an empty field beside a full one",
            &[("traceparent", &tp01), ("tracestate", ""), ("tracestate", "foo=1")], Call, Received, "01", Some("foo=1")),
        state_row("\"Spaces and horizontal tabs surrounding list-members are ignored.\" \"Empty and whitespace-only list members are allowed.\"",
            "foo=1 \t , \t ,bar=2,", Some("foo=1,bar=2")),
        row("\"There can be a maximum of 32 list-members in a list.\" (32, over four fields)",
            &[("traceparent", &tp01), ("tracestate", &fields32[0]), ("tracestate", &fields32[1]), ("tracestate", &fields32[2]), ("tracestate", &fields32[3])],
            Call, Received, "01", Some(&all32.join(","))),
        state_row("the same rule: 33 list-members are not a tracestate, which is discarded",
            &members(33).join(","), None),

        // --- tracestate: keys ---
        state_row("Key: \"A key MUST begin with a lowercase letter or a digit and contain up to 256 characters including lowercase letters (a-z), digits (0-9), underscores (_), dashes (-), asterisks (*), forward slashes (/), and at signs (@).\"",
            "1foo=1,foo@=2,foo@@bar=3,a@b@c=4,fw529a3039@dt=5,k_-*/=6", Some("1foo=1,foo@=2,foo@@bar=3,a@b@c=4,fw529a3039@dt=5,k_-*/=6")),
        state_row("the same rule: a key of 256 characters",
            &format!("{z256}=1"), Some(&format!("{z256}=1"))),
        state_row("the same rule: tenant@system keys past Level 1's limits of 241 and 14 characters",
            &format!("{tenant242}=2,{system15}=3"), Some(&format!("{tenant242}=2,{system15}=3"))),
        state_row("the same rule: a key of 257 characters breaks it, and the header is discarded",
            &format!("foo=1,{z257}=1"), None),
        state_row("the same rule: a key may not begin with an at sign",
            "@foo=1,bar=2", None),
        state_row("the same rule: no uppercase letters",
            "FOO=1", None),
        state_row("the same rule: no other characters (a dot, a space before '=')",
            "foo.bar=1,foo =2", None),

        // --- tracestate: values ---
        state_row("Value: \"up to 256 printable ASCII characters (i.e., the range 0x20 to 0x7E) except comma (,) and (=)\"",
            &format!("foo={value256}"), Some(&format!("foo={value256}"))),
        state_row("the same rule: 257 characters",
            &format!("foo={value257}"), None),
        state_row("the same rule: an '=' in a value",
            "foo=bar=baz", None),
        state_row("the same rule: value = 0*255(chr) nblk-chr, so an empty value is invalid",
            "foo=,bar=3", None),
        state_row("\"All leading spaces MUST be preserved as part of the value. All trailing spaces are considered to be optional whitespace characters not part of the value.\"",
            "foo=  1  ,bar=2", Some("foo=  1,bar=2")),

        // --- tracestate: duplicates, size, mutations ---
        row("Combined Header Value: \"Only one entry per key is allowed.\"; Delete: \"vendors MAY also discard duplicate keys that were not generated by them\" (the first, most recent, is kept)",
            &[("traceparent", &tp01), ("tracestate", "foo=1,bar=2,foo=3"), ("tracestate", "bar=4")], Call, Received, "01", Some("foo=1,bar=2")),
        state_row("tracestate Limits: \"Vendors SHOULD propagate at least 512 characters of a combined header.\"",
            &exactly512, Some(&exactly512)),
        state_row("tracestate Limits: \"the vendor MUST truncate whole entries. Entries larger than 128 characters long SHOULD be removed first.\"",
            &mixed, Some(&mixed_sent)),
        state_row("tracestate Limits: \"Then entries SHOULD be removed starting from the end of tracestate.\"",
            &shorts.join(","), Some(&shorts[..11].join(","))),
        row("Add a new key/value pair: \"The new key/value pair SHOULD be added to the beginning of the list.\"",
            &[("traceparent", &tp01), ("tracestate", "rojo=1,congo=2")], CallWithEntry("vantage", "1"), Received, "01", Some("vantage=1,rojo=1,congo=2")),
        row("Update an existing value: \"Modified keys SHOULD be moved to the beginning (left) of the list.\"; \"Adding a key/value pair MUST NOT result in the same key being present multiple times.\"",
            &[("traceparent", &tp01), ("tracestate", "rojo=1,congo=2")], CallWithEntry("congo", "3"), Received, "01", Some("congo=3,rojo=1")),
        row("\"If adding an entry would cause the tracestate list to contain more than 32 list-members the right-most list-member should be removed from the list.\"",
            &[("traceparent", &tp01), ("tracestate", &all32.join(","))], CallWithEntry("vantage", "1"), Received, "01", Some(&full_with_ours.join(","))),
    ]
}

fn headers(fields: &[(&str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    headers
}

/// The headers of the outgoing request after `step`.
fn outgoing(received: &HeaderMap, step: Step) -> HeaderMap {
    let mut outgoing = HeaderMap::new();
    match step {
        Step::PassThrough => {
            let caller = TraceContext::from_headers(received).expect("a valid traceparent");
            caller.inject(&mut outgoing);
        }
        Step::Call | Step::CallWithEntry(..) => {
            let server = TraceContext::continue_or_start(received);
            let mut call = server.child();
            if let Step::CallWithEntry(key, value) = step {
                call.trace_state_mut()
                    .insert(key, value)
                    .expect("a valid member");
            }
            call.inject(&mut outgoing);
        }
    }
    outgoing
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn outgoing_headers_follow_every_level_2_processing_rule() {
    for row in rows() {
        let rule = row.rule;
        let sent = outgoing(&headers(&row.received), row.step);
        let traceparents: Vec<&str> = sent
            .get_all(TRACEPARENT)
            .iter()
            .map(|value| value.to_str().expect("ASCII"))
            .collect();
        let [traceparent] = traceparents[..] else {
            panic!("{rule}: one traceparent expected, got {traceparents:?}");
        };
        let fields: Vec<&str> = traceparent.split('-').collect();
        let [version, trace, parent, flags] = fields[..] else {
            panic!("{rule}: not a version 00 traceparent: {traceparent}");
        };
        assert_eq!(version, "00", "{rule}");
        assert!(is_lower_hex(trace, 32), "{rule}: {traceparent}");
        assert!(is_lower_hex(parent, 16), "{rule}: {traceparent}");
        match row.trace {
            Trace::Received => assert_eq!(trace, TRACE, "{rule}"),
            Trace::New => {
                assert_ne!(trace, TRACE, "{rule}");
                assert_ne!(trace, "0".repeat(32), "{rule}");
            }
        }
        match row.step {
            Step::PassThrough => assert_eq!(parent, CALLER, "{rule}"),
            Step::Call | Step::CallWithEntry(..) => {
                assert_ne!(parent, CALLER, "{rule}");
                assert_ne!(parent, "0".repeat(16), "{rule}");
            }
        }
        assert_eq!(flags, row.flags, "{rule}");
        let states: Vec<&str> = sent
            .get_all(TRACESTATE)
            .iter()
            .map(|value| value.to_str().expect("ASCII"))
            .collect();
        let expected: Vec<&str> = row.tracestate.as_deref().into_iter().collect();
        assert_eq!(states, expected, "{rule}");
        assert_eq!(sent.len(), 1 + expected.len(), "{rule}");
    }
}

#[test]
fn every_new_trace_is_a_new_random_trace_id_with_the_random_flag() {
    // "If that flag is set, at least the right-most 7 bytes of the trace-id MUST be selected
    // randomly (or pseudo-randomly)": 1 000 new traces give 1 000 distinct right-most 7 bytes
    // (a collision among them has a chance of about 7e-12).
    let mut low_bytes = std::collections::HashSet::new();
    for _ in 0..1_000 {
        let root = TraceContext::continue_or_start(&HeaderMap::new());
        assert!(root.random_trace_id());
        assert!(!root.sampled());
        low_bytes.insert(root.trace_id().to_u128() & ((1 << 56) - 1));
    }
    assert_eq!(low_bytes.len(), 1_000);
}
