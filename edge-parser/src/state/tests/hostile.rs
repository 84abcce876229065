//! Checkpoints edited by a hostile hand or damaged on disk: each is refused or accepted, never
//! a panic, never more memory than the bound of [`allocation_bound`]; one accepted is a state
//! `serve` could have written.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::histogram::{LatencyHistogram, PAGE_LEN};
use crate::synth::{SynthConfig, generate};
use crate::tail::reseal;

/// The group cap of the checkpoints below: the synthetic routers are more, so there is an
/// overflow group.
const MAX_GROUPS: usize = 6;

/// The most a histogram's counters can hold once read: every page of counters and the list of
/// pages, twice over for its growth.
const MAX_HISTOGRAM_HEAP: usize = (LatencyHistogram::MAX_INDEX as usize / PAGE_LEN + 1)
    * (PAGE_LEN * 8 + 2 * std::mem::size_of::<Option<Box<[u64]>>>());

/// The most reading a checkpoint of `len` bytes for [`config`] may hold at once: the bound of
/// this test. The file and what is built from its bytes (maps of a few bytes per entry cost
/// more than those bytes, a list of positions, the aggregate copied from them): 16 times its
/// length; the pages of the two histograms of each group the cap allows (the overflow group
/// included), whatever their indices; 1 MiB for the rest (status slots, hash maps).
fn allocation_bound(len: usize) -> u64 {
    (16 * len + (MAX_GROUPS + 1) * 2 * MAX_HISTOGRAM_HEAP + (1 << 20)) as u64
}

fn config() -> AggregateConfig {
    serve_config(Format::TraefikJson, RouteRules::auto(), MAX_GROUPS, None)
}

fn patterns() -> Vec<String> {
    vec!["/var/log/traefik/*.log".to_owned()]
}

/// The checkpoint `serve` writes after `lines`, its positions two files and its health two
/// kinds of rotation.
fn checkpoint_of(lines: &[u8]) -> Vec<u8> {
    let config = config();
    let mut aggregator = Aggregator::new(&config).with_exact_cap();
    let mut sequence = 0;
    for line in lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        sequence += 1;
        aggregator.add_line(LinePosition::new(0, sequence), line);
    }
    let health = Health {
        bytes_read: lines.len() as u64,
        rotations: BTreeMap::from([("rename".to_owned(), 2), ("copytruncate".to_owned(), 1)]),
        checkpoint_writes: 9,
        checkpoint_errors: 1,
        checkpoint_last_success: Some(1_741_521_605),
    };
    let files = [
        ("/var/log/traefik/access.log", 7),
        ("/var/log/traefik/access.log.1", 5),
    ]
    .map(|(path, ino)| FilePosition {
        path: path.into(),
        identity: FileIdentity {
            dev: 2049,
            ino,
            fingerprint: Fingerprint::of(path.as_bytes()),
        },
        offset: 100 * ino,
    });
    checkpoint(
        fingerprint(&config, &patterns()),
        files.to_vec(),
        aggregator.aggregate(),
        &health,
        sequence,
    )
    .to_json()
    .expect("serialises")
}

/// 300 synthetic Traefik JSON lines (routers past the cap, malformed lines, latencies and
/// upstream latencies), checkpointed.
fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let synth = SynthConfig::new().seed(7).malformed_rate(0.05);
        checkpoint_of(&generate(&Format::TraefikJson, &synth, 300).text)
    })
}

/// What [`restore`] gives, its error as [`reason`] tells it.
type Restored = Result<Option<(EdgeState, Vec<FilePosition>)>, String>;

/// Restores `document` for [`config`], measuring the most it held at once.
fn restore_measured(document: &[u8]) -> (Restored, u64) {
    let dir = TempDir::new("hostile");
    let path = dir.write("checkpoint.json", document);
    let config = config();
    let patterns = patterns();
    let mut result = Ok(None);
    let allocated = allocation_counter::measure(|| {
        result = restore(&path, &config, &patterns).map_err(|error| reason(&error, &path));
    });
    (result, allocated.bytes_max)
}

#[test]
fn the_base_checkpoint_is_resumed_and_has_what_the_mutations_need() {
    let (restored, allocated) = restore_measured(base());
    let (state, files) = restored.expect("valid").expect("present");
    assert_eq!(files.len(), 2);
    let aggregate = &state.aggregate;
    assert_eq!(aggregate.group_count(), MAX_GROUPS + 1);
    assert!(aggregate.groups().any(|group| group.key().is_overflow()));
    assert!(aggregate.lines().malformed > 0);
    assert!(!aggregate.malformed_samples().is_empty());
    assert!(aggregate.total().upstream_latency.count() > 0);
    assert!(allocated <= allocation_bound(base().len()));
}

/// A checkpoint whose one request took a second: its latency is the counter `[11169,1]`.
fn one_second() -> String {
    let line = r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "-" 1 "a@docker" "http://10.0.0.7:80" 1000ms"#;
    let config = serve_config(Format::TraefikCommon, RouteRules::auto(), MAX_GROUPS, None);
    let mut aggregator = Aggregator::new(&config).with_exact_cap();
    aggregator.add_line(LinePosition::new(0, 1), line.as_bytes());
    let document = checkpoint(
        fingerprint(&config, &patterns()),
        Vec::new(),
        aggregator.aggregate(),
        &Health::default(),
        1,
    )
    .to_json()
    .expect("serialises");
    String::from_utf8(document).expect("utf-8")
}

/// Why the Traefik common checkpoint `document` is refused.
fn refused_common(document: &[u8]) -> (String, u64) {
    let dir = TempDir::new("hand-edit");
    let path = dir.write("checkpoint.json", document);
    let config = serve_config(Format::TraefikCommon, RouteRules::auto(), MAX_GROUPS, None);
    let patterns = patterns();
    let mut refused = String::new();
    let allocated = allocation_counter::measure(|| {
        let error = restore(&path, &config, &patterns).expect_err("refused");
        refused = reason(&error, &path);
    });
    (refused, allocated.bytes_max)
}

#[test]
fn the_hand_edits_found_are_refused_with_or_without_a_fixed_checksum() {
    let original = one_second();
    assert!(original.contains(r#""counters":[[11169,1]]"#), "{original}");

    // One counter index changed: as edited, the checksum tells; fixed, the index does.
    let edited = original.replacen("[11169,1]", "[91169,1]", 1);
    let (refused, _) = refused_common(edited.as_bytes());
    assert!(
        refused.starts_with("checkpoint FILE is corrupt: checksum mismatch: the file says crc32:"),
        "{refused}"
    );
    let (refused, _) = refused_common(&reseal(&edited));
    assert_eq!(
        refused,
        "checkpoint FILE is corrupt: groups[0]: histogram counter index 91169 is past the last one, 56319"
    );

    // The index that sized 268 MB of pages: refused before anything is sized by it.
    let edited = original.replacen("[11169,1]", "[4294967295,1]", 1);
    let (refused, allocated) = refused_common(&reseal(&edited));
    assert_eq!(
        refused,
        "checkpoint FILE is corrupt: groups[0]: histogram counter index 4294967295 is past the last one, 56319"
    );
    assert!(allocated < 1 << 20, "{allocated} bytes");

    // 300 counters more than the one request: refused as counts that do not add up.
    let extra: String = (0..300).map(|n| format!(",[{},1]", 11170 + n)).collect();
    let edited = original.replacen("[11169,1]", &format!("[11169,1]{extra}"), 1);
    let (refused, _) = refused_common(edited.as_bytes());
    assert!(refused.contains("checksum mismatch"), "{refused}");
    let (refused, _) = refused_common(&reseal(&edited));
    assert_eq!(
        refused,
        "checkpoint FILE is corrupt: groups[0]: histogram counters add up to 301, its count is 1"
    );
}

/// Mutated documents are kept below this size.
const MAX_MUTATED_BYTES: usize = 2 << 20;

/// One change to a checkpoint.
#[derive(Clone, Debug)]
enum Mutation {
    /// One bit of the document flipped (the checksum left as it was).
    Flip { at: usize, bit: u8 },
    /// The document cut short.
    Truncate { at: usize },
    /// The `at`th number of the parts replaced (resealed).
    Number { at: usize, value: Value },
    /// The elements of the `at`th list repeated `times` times (resealed).
    Lengthen { at: usize, times: usize },
    /// `count` counters a page apart appended to the `at`th list (resealed).
    Spread { at: usize, count: usize },
    /// The `at`th field of an object removed (resealed).
    Remove { at: usize },
    /// The `at`th string replaced by `len` bytes (resealed).
    Text { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let huge = prop_oneof![
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(-1)),
        Just(Value::from(0)),
        Just(Value::from(1)),
        Just(Value::from(u64::from(u32::MAX))),
        Just(Value::from(LatencyHistogram::MAX_INDEX + 1)),
        Just(Value::from(91_169)),
        Just(Value::from(1e300)),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), huge).prop_map(|(at, value)| Mutation::Number { at, value }),
        (any::<usize>(), 2usize..40).prop_map(|(at, times)| Mutation::Lengthen { at, times }),
        (any::<usize>(), 1usize..500).prop_map(|(at, count)| Mutation::Spread { at, count }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        (any::<usize>(), 0usize..100_000).prop_map(|(at, len)| Mutation::Text { at, len }),
    ]
}

/// The JSON pointers of the nodes of `value` that `wanted` picks, in document order.
fn pointers(value: &Value, wanted: &dyn Fn(&Value) -> bool) -> Vec<String> {
    fn walk(value: &Value, at: &str, wanted: &dyn Fn(&Value) -> bool, out: &mut Vec<String>) {
        if wanted(value) {
            out.push(at.to_owned());
        }
        match value {
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    walk(item, &format!("{at}/{n}"), wanted, out);
                }
            }
            Value::Object(fields) => {
                for (name, field) in fields {
                    let name = name.replace('~', "~0").replace('/', "~1");
                    walk(field, &format!("{at}/{name}"), wanted, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", wanted, &mut out);
    out
}

/// `mutation` applied to the checkpoint `document`.
fn mutate(document: &[u8], mutation: &Mutation) -> Vec<u8> {
    match *mutation {
        Mutation::Flip { at, bit } => {
            let mut bytes = document.to_vec();
            bytes[at % document.len()] ^= 1 << bit;
            return bytes;
        }
        Mutation::Truncate { at } => return document[..at % document.len()].to_vec(),
        _ => {}
    }
    // Not a JSON object any more (cut): nothing to mutate.
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(document) else {
        return document.to_vec();
    };
    for name in ["magic", "version", "checksum"] {
        fields.remove(name);
    }
    let mut parts = Value::Object(fields);
    let pick = |parts: &Value, wanted: &dyn Fn(&Value) -> bool, at: usize| {
        let found = pointers(parts, wanted);
        (!found.is_empty()).then(|| found[at % found.len()].clone())
    };
    match mutation {
        Mutation::Number { at, value } => {
            if let Some(pointer) = pick(&parts, &Value::is_number, *at) {
                *parts.pointer_mut(&pointer).expect("found") = value.clone();
            }
        }
        Mutation::Lengthen { at, times } => {
            if let Some(pointer) = pick(&parts, &Value::is_array, *at) {
                let list = parts.pointer_mut(&pointer).and_then(Value::as_array_mut);
                let list = list.expect("found");
                *list = std::iter::repeat_n(list.clone(), *times)
                    .flatten()
                    .collect();
            }
        }
        Mutation::Spread { at, count } => {
            if let Some(pointer) = pick(&parts, &Value::is_array, *at) {
                let list = parts.pointer_mut(&pointer).and_then(Value::as_array_mut);
                list.expect("found")
                    .extend((0..*count).map(|n| serde_json::json!([3 + n * PAGE_LEN, 1])));
            }
        }
        Mutation::Remove { at } => {
            let fields = pointers(&parts, &|value| value.is_object())
                .into_iter()
                .flat_map(|pointer| {
                    let names: Vec<String> = parts
                        .pointer(&pointer)
                        .and_then(Value::as_object)
                        .map(|object| object.keys().cloned().collect())
                        .unwrap_or_default();
                    names.into_iter().map(move |name| (pointer.clone(), name))
                })
                .collect::<Vec<_>>();
            if !fields.is_empty() {
                let (pointer, name) = &fields[at % fields.len()];
                let object = parts.pointer_mut(pointer).and_then(Value::as_object_mut);
                object.expect("found").remove(name);
            }
        }
        Mutation::Text { at, len } => {
            if let Some(pointer) = pick(&parts, &Value::is_string, *at) {
                *parts.pointer_mut(&pointer).expect("found") = Value::from("é".repeat(len / 2));
            }
        }
        Mutation::Flip { .. } | Mutation::Truncate { .. } => unreachable!("handled above"),
    }
    let part = |name: &str| {
        parts
            .get(name)
            .map_or_else(|| "null".to_owned(), Value::to_string)
    };
    let mutated = seal(&part("config"), &part("files"), &part("state"));
    // Lengthened lists compound: past a few MiB the test would measure its own slowness.
    if mutated.len() > MAX_MUTATED_BYTES {
        return document.to_vec();
    }
    mutated
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn a_mutated_checkpoint_is_refused_or_a_state_serve_could_write_within_the_bound(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut document = base().to_vec();
        // Once flipped or cut, a document is only damaged further: a later mutation of its
        // parts would seal it again, flip included.
        let mut damaged = false;
        for mutation in &mutations {
            if document.is_empty() {
                break;
            }
            let bytes_only = matches!(mutation, Mutation::Flip { .. } | Mutation::Truncate { .. });
            if damaged && !bytes_only {
                continue;
            }
            damaged |= bytes_only;
            document = mutate(&document, mutation);
        }
        let (restored, allocated) = restore_measured(&document);
        prop_assert!(
            allocated <= allocation_bound(document.len()),
            "{} bytes held reading {} bytes: {:?}",
            allocated,
            document.len(),
            restored.as_ref().err()
        );
        let resealed = !damaged;
        match restored {
            Ok(Some((state, files))) => {
                prop_assert!(resealed, "a flipped or cut document was accepted");
                // Accepted: written again by `serve`, it reads back the same.
                let again = checkpoint(
                    fingerprint(&config(), &patterns()),
                    files.clone(),
                    &state.aggregate,
                    &state.health,
                    state.sequence,
                )
                .to_json()
                .expect("serialises");
                let (back, _) = restore_measured(&again);
                prop_assert_eq!(back, Ok(Some((state, files))));
            }
            Ok(None) => prop_assert!(false, "the file exists"),
            Err(reason) => prop_assert!(reason.contains("FILE"), "{}", reason),
        }
    }
}
