//! Reading and writing a [`TraceContext`] in `http` headers.

use http::{HeaderMap, HeaderName};

use super::context::TraceContext;
use super::traceparent::TraceParent;
use super::tracestate::{TraceState, trim_ows};

/// The `traceparent` header name (header names match whatever their case on the wire).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

impl TraceContext {
    /// The caller's context from request headers, or `None` when there is none to continue.
    ///
    /// `None` when `traceparent` is missing, repeated, or invalid: the caller should start a new
    /// trace, and a `tracestate` is then ignored too (the specification forbids reading it
    /// without a valid `traceparent`). Spaces and tabs around the value are allowed. An invalid
    /// `tracestate` (from all its header fields combined) is dropped: the context keeps the
    /// `traceparent` with an empty state; a repeated key keeps only its first member. The
    /// `traceparent` is parsed without allocating, and a `tracestate` already in canonical form
    /// is kept as a clone of the received value, not copied.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let found = if headers.len() <= SCAN_UP_TO {
            scan(headers)
        } else {
            look_up(headers)
        };
        let Carried {
            traceparent,
            repeated,
            state,
        } = found;
        if repeated {
            // Two `traceparent`s cannot be combined into one: neither can be trusted.
            return None;
        }
        let traceparent = TraceParent::from_bytes(trim_ows(traceparent?.as_bytes())).ok()?;
        let state = if state {
            TraceState::from_header_values(headers.get_all(TRACESTATE)).unwrap_or_default()
        } else {
            TraceState::default()
        };
        Some(Self::from_traceparent(traceparent, state))
    }

    /// The server side in one call: a [`child`](Self::child) of the caller's context when the
    /// headers carry a valid one (its `sampled` and `random-trace-id` flags as received), else a
    /// [`new_root`](Self::new_root) (the trace restarts: a new random trace id with the
    /// `random-trace-id` flag set, no `tracestate`).
    #[must_use]
    pub fn continue_or_start(headers: &HeaderMap) -> Self {
        Self::from_headers(headers).map_or_else(Self::new_root, Self::into_child)
    }

    /// Writes this context into outgoing headers: `traceparent` with this trace id, this span id
    /// as the parent-id and these flags, and the `tracestate` (at most
    /// [`TraceState::MAX_PROPAGATED_LEN`] bytes of it); replaces any earlier values of both, and
    /// removes `tracestate` when the state is empty.
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent().to_header_value());
        match self.trace_state().header_value() {
            Some(state) => headers.insert(TRACESTATE, state),
            None => headers.remove(TRACESTATE),
        };
    }
}

/// Up to this many header values, one pass over them finds both headers faster than two hash
/// lookups (a name compares in a few instructions; a custom name hashes in a hundred).
const SCAN_UP_TO: usize = 24;

/// What a request carries of the two headers.
struct Carried<'a> {
    traceparent: Option<&'a http::HeaderValue>,
    repeated: bool,
    state: bool,
}

fn scan(headers: &HeaderMap) -> Carried<'_> {
    let mut found = Carried {
        traceparent: None,
        repeated: false,
        state: false,
    };
    for (name, value) in headers {
        if *name == TRACEPARENT {
            found.repeated |= found.traceparent.replace(value).is_some();
        } else if *name == TRACESTATE {
            found.state = true;
        }
    }
    found
}

fn look_up(headers: &HeaderMap) -> Carried<'_> {
    let mut values = headers.get_all(TRACEPARENT).into_iter();
    let traceparent = values.next();
    Carried {
        traceparent,
        repeated: values.next().is_some(),
        state: headers.contains_key(TRACESTATE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_context::TraceFlags;
    use http::HeaderValue;

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";
    const TRACE: &str = "12345678901234567890123456789012";

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// `(trace id, parent span id, tracestate)` of what `from_headers` finds.
    type Found = Option<(String, String, String)>;

    fn extract(fields: &[(&str, &str)]) -> Found {
        TraceContext::from_headers(&headers(fields)).map(|context| {
            (
                context.trace_id().to_string(),
                context.span_id().to_string(),
                context.trace_state().to_string(),
            )
        })
    }

    fn found(state: &str) -> Found {
        Some((TRACE.into(), "1234567890123456".into(), state.into()))
    }

    #[test]
    fn headers_give_the_exact_context_or_none() {
        let cases: &[(&[(&str, &str)], Found)] = &[
            (&[], None),
            (&[("tracestate", "foo=1")], None),
            (&[("traceparent", VALID)], found("")),
            // Header names match in any case.
            (&[("TraceParent", VALID)], found("")),
            (
                &[("TRACEPARENT", VALID), ("TrAcEsTaTe", "foo=1")],
                found("foo=1"),
            ),
            (&[("trace-parent", VALID)], None),
            (&[("trace.parent", VALID)], None),
            (
                &[("traceparent", VALID), ("trace-state", "foo=1")],
                found(""),
            ),
            // Optional whitespace around the value.
            (&[("traceparent", &format!(" {VALID}"))], found("")),
            (&[("traceparent", &format!("\t{VALID}"))], found("")),
            (&[("traceparent", &format!("{VALID} "))], found("")),
            (&[("traceparent", &format!("\t {VALID} \t"))], found("")),
            // Two traceparents, or an invalid one: start over, ignoring tracestate.
            (&[("traceparent", VALID), ("traceparent", VALID)], None),
            (
                &[
                    (
                        "traceparent",
                        "00-00000000000000000000000000000000-1234567890123456-01",
                    ),
                    ("tracestate", "foo=1"),
                ],
                None,
            ),
            (
                &[(
                    "traceparent",
                    "00-12345678901234567890123456789012-1234567890123456-01.",
                )],
                None,
            ),
            (&[("traceparent", "")], None),
            // A later version continues the trace.
            (
                &[(
                    "traceparent",
                    "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
                )],
                found(""),
            ),
            // tracestate: kept, combined, made canonical, or dropped when invalid.
            (
                &[("traceparent", VALID), ("tracestate", "foo=1,bar=2")],
                found("foo=1,bar=2"),
            ),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", "foo=1,bar=2"),
                    ("tracestate", "rojo=1,congo=2"),
                    ("tracestate", "baz=3"),
                ],
                found("foo=1,bar=2,rojo=1,congo=2,baz=3"),
            ),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", "foo=1 \t , \t bar=2"),
                ],
                found("foo=1,bar=2"),
            ),
            (&[("traceparent", VALID), ("tracestate", "")], found("")),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", "foo=1"),
                    ("tracestate", ""),
                ],
                found("foo=1"),
            ),
            // A repeated key keeps its first member, and the rest of the list.
            (
                &[("traceparent", VALID), ("tracestate", "foo=1,foo=2")],
                found("foo=1"),
            ),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", "foo=1,bar=2"),
                    ("tracestate", "foo=1"),
                ],
                found("foo=1,bar=2"),
            ),
            (
                &[("traceparent", VALID), ("tracestate", "foo=,bar=3")],
                found(""),
            ),
            (
                &[("traceparent", VALID), ("tracestate", "FOO=1")],
                found(""),
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(&extract(fields), expected, "{fields:?}");
            // The same among many other headers, where they are looked up rather than scanned.
            let mut crowded: Vec<(String, String)> = (0..=SCAN_UP_TO)
                .map(|i| (format!("x-filler-{i}"), "1".to_owned()))
                .collect();
            crowded.extend(fields.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
            let crowded: Vec<(&str, &str)> = crowded
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert!(headers(&crowded).len() > SCAN_UP_TO);
            assert_eq!(&extract(&crowded), expected, "{fields:?} among others");
        }
    }

    #[test]
    fn thirty_two_members_over_four_headers_are_kept_and_thirty_three_dropped() {
        let member = |i: usize| format!("bar{i:02}={i:02}");
        let field = |range: std::ops::RangeInclusive<usize>| {
            range.map(member).collect::<Vec<_>>().join(",")
        };
        let fields = [
            field(1..=10),
            field(11..=20),
            field(21..=30),
            field(31..=32),
        ];
        let mut pairs = vec![("traceparent", VALID)];
        pairs.extend(fields.iter().map(|f| ("tracestate", f.as_str())));
        let context = TraceContext::from_headers(&headers(&pairs)).unwrap();
        assert_eq!(context.trace_state().len(), 32);
        assert_eq!(context.trace_state().get("bar01"), Some("01"));

        let fields = [
            field(1..=10),
            field(11..=20),
            field(21..=30),
            field(31..=33),
        ];
        let mut pairs = vec![("traceparent", VALID)];
        pairs.extend(fields.iter().map(|f| ("tracestate", f.as_str())));
        let context = TraceContext::from_headers(&headers(&pairs)).unwrap();
        assert!(context.trace_state().is_empty());
        assert_eq!(context.trace_id().to_string(), TRACE);
    }

    #[test]
    fn inject_writes_traceparent_and_passes_tracestate_on() {
        let incoming = headers(&[("traceparent", VALID), ("tracestate", "congo=t61rcWkgMzE")]);
        let caller = TraceContext::from_headers(&incoming).unwrap();
        let mut outgoing = HeaderMap::new();
        caller.inject(&mut outgoing);
        assert_eq!(outgoing, incoming);

        let child = caller.child();
        let mut outgoing = headers(&[("traceparent", "stale"), ("traceparent", "stale")]);
        child.inject(&mut outgoing);
        let expected = format!("00-{TRACE}-{}-01", child.span_id());
        assert_eq!(
            outgoing.get_all(TRACEPARENT).iter().collect::<Vec<_>>(),
            [expected.as_str()]
        );
        assert_eq!(outgoing[TRACESTATE], "congo=t61rcWkgMzE");
        assert_eq!(outgoing.len(), 2);
    }

    #[test]
    fn inject_removes_a_stale_tracestate_when_there_is_none() {
        let root = TraceContext::new_root();
        let mut outgoing = headers(&[("tracestate", "stale=1")]);
        root.inject(&mut outgoing);
        assert_eq!(outgoing.get(TRACESTATE), None);
        assert_eq!(
            outgoing[TRACEPARENT],
            format!("00-{}-{}-02", root.trace_id(), root.span_id()).as_str()
        );
    }

    #[test]
    fn inject_truncates_a_long_tracestate_to_512_characters() {
        let big = |key: char| format!("{key}={}", "v".repeat(198));
        let list = [big('a'), big('b'), big('c')].join(",");
        let incoming = headers(&[("traceparent", VALID), ("tracestate", &list)]);
        let context = TraceContext::from_headers(&incoming).unwrap().child();
        assert_eq!(context.trace_state().as_str(), list);
        let mut outgoing = HeaderMap::new();
        context.inject(&mut outgoing);
        assert_eq!(
            outgoing[TRACESTATE],
            format!("{},{}", big('a'), big('b')).as_str()
        );
    }

    #[test]
    fn continue_or_start_makes_a_server_span() {
        let incoming = headers(&[("traceparent", VALID), ("tracestate", "foo=1")]);
        let server = TraceContext::continue_or_start(&incoming);
        assert_eq!(server.trace_id().to_string(), TRACE);
        assert_eq!(
            server.parent_id().map(|id| id.to_string()),
            Some("1234567890123456".to_owned())
        );
        assert_ne!(server.span_id().to_string(), "1234567890123456");
        assert!(server.sampled());
        assert_eq!(server.trace_state().as_str(), "foo=1");

        let invalid = headers(&[
            (
                "traceparent",
                "00-00000000000000000000000000000000-1234567890123456-01",
            ),
            ("tracestate", "foo=1"),
        ]);
        let restarted = TraceContext::continue_or_start(&invalid);
        assert_ne!(
            restarted.trace_id().to_string(),
            "00000000000000000000000000000000"
        );
        assert_eq!(restarted.parent_id(), None);
        assert_eq!(restarted.flags(), TraceFlags::RANDOM);
        assert!(restarted.trace_state().is_empty());
    }
}
