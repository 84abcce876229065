use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use super::*;
use crate::tail::fingerprint::Fingerprint;
use crate::tail::test_helpers::TempDir;

const CONFIG: &str = "traefik-json /var/log/traefik/*.log";

fn position(path: &str, ino: u64, offset: u64) -> FilePosition {
    FilePosition {
        path: PathBuf::from(path),
        identity: FileIdentity {
            dev: 2049,
            ino,
            fingerprint: Fingerprint::of(b"{\"first\":\"line\"}\n"),
        },
        offset,
    }
}

/// A state with integer map keys, like `Aggregate`'s status counts.
fn sample() -> Checkpoint<BTreeMap<i16, u64>> {
    Checkpoint {
        config: CONFIG.to_owned(),
        files: vec![
            position("/var/log/traefik/access.log", 7, 18),
            position("/var/log/traefik/other.log", 9, 0),
        ],
        state: BTreeMap::from([(200, 1234), (-1, 2), (503, 7)]),
    }
}

fn read_error(path: &Path) -> String {
    Checkpoint::<BTreeMap<i16, u64>>::read(path, CONFIG)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_checkpoint_round_trips_with_its_state() {
    let dir = TempDir::new("checkpoint-round-trip");
    let path = dir.join("checkpoint.json");
    sample().write_atomic(&path).expect("writes");
    let back = Checkpoint::read(&path, CONFIG).expect("reads");
    assert_eq!(back, Some(sample()));
    let text = fs::read_to_string(&path).expect("reads");
    assert_eq!(text.as_bytes(), sample().to_json().expect("serialises"));
    assert!(
        text.starts_with(r#"{"magic":"vantage-edge-checkpoint","version":2,"config":"#),
        "{text}"
    );
    let sum = checksum([
        serde_json::to_string(CONFIG).expect("json").as_bytes(),
        serde_json::to_string(&sample().files)
            .expect("json")
            .as_bytes(),
        br#"{"-1":2,"200":1234,"503":7}"#,
    ]);
    assert!(
        text.ends_with(&format!(r#","checksum":"crc32:{sum:08x}"}}"#)),
        "{text}"
    );
    assert!(text.contains(r#""hash":"#), "{text}");
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("lists")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["checkpoint.json"], "no temporary file is left");
}

#[test]
fn no_file_is_a_first_start() {
    let dir = TempDir::new("checkpoint-none");
    let read = Checkpoint::<BTreeMap<i16, u64>>::read(&dir.join("absent.json"), CONFIG);
    assert_eq!(read.expect("no error"), None);
    let shown = Checkpoint::<BTreeMap<i16, u64>>::read_any(&dir.join("absent.json"));
    assert!(
        shown
            .unwrap_err()
            .to_string()
            .starts_with("cannot read checkpoint "),
        "a snapshot to show must exist"
    );
}

#[test]
fn a_replaced_checkpoint_is_never_seen_half_written() {
    let dir = TempDir::new("checkpoint-atomic");
    let path = dir.join("checkpoint.json");
    let mut first = sample();
    first.state = BTreeMap::from([(200, 1)]);
    first.write_atomic(&path).expect("writes");
    // A reader that opened the old file keeps reading it whole: the new one is a new file
    // renamed over the name, not the old one rewritten in place.
    let mut old_reader = File::open(&path).expect("opens");
    // A temporary file left by a crash in the middle of a write changes nothing.
    fs::write(dir.join(".checkpoint.json.tmp-1-0"), b"{\"magic\":").expect("writes");
    let mut second = sample();
    second.state = (0..2000).map(|status| (status, 1)).collect();
    second.write_atomic(&path).expect("writes");
    let mut old = Vec::new();
    old_reader.read_to_end(&mut old).expect("reads");
    let old: serde_json::Value = serde_json::from_slice(&old).expect("whole old document");
    assert_eq!(old["state"], serde_json::json!({"200": 1}));
    assert_eq!(
        Checkpoint::read(&path, CONFIG).expect("reads"),
        Some(second)
    );
}

#[test]
fn concurrent_readers_only_ever_see_whole_checkpoints() {
    let dir = TempDir::new("checkpoint-concurrent");
    let path: Arc<Path> = Arc::from(dir.join("checkpoint.json"));
    sample().write_atomic(&path).expect("writes");
    let reader = {
        let path = Arc::clone(&path);
        std::thread::spawn(move || {
            for _ in 0..300 {
                let read = Checkpoint::<BTreeMap<i16, u64>>::read(&path, CONFIG);
                let checkpoint = read.expect("whole").expect("present");
                assert_eq!(checkpoint.files.len(), 2);
            }
        })
    };
    for round in 0..300 {
        let mut checkpoint = sample();
        checkpoint.state = (0..(round % 50) * 20).map(|status| (status, 1)).collect();
        checkpoint.write_atomic(&path).expect("writes");
    }
    reader
        .join()
        .expect("the reader saw only whole checkpoints");
}

#[test]
fn bad_files_are_refused_naming_the_path_and_the_reason() {
    let dir = TempDir::new("checkpoint-refused");
    let path = dir.join("checkpoint.json");
    let shown = path.display().to_string();
    sample().write_atomic(&path).expect("writes");
    let whole = fs::read(&path).expect("reads");

    fs::write(&path, &whole[..whole.len() / 2]).expect("writes");
    let error = read_error(&path);
    assert!(
        error.starts_with(&format!(
            "checkpoint {shown} is truncated: EOF while parsing"
        )),
        "{error}"
    );

    fs::write(&path, b"").expect("writes");
    assert_eq!(
        read_error(&path),
        format!("checkpoint {shown} is truncated: the file is empty")
    );

    let mut corrupt = whole.clone();
    let comma = whole.iter().position(|&b| b == b',').expect("a comma");
    corrupt[comma] = b'#';
    fs::write(&path, &corrupt).expect("writes");
    let error = read_error(&path);
    assert!(
        error.starts_with(&format!("checkpoint {shown} is corrupt: ")),
        "{error}"
    );

    fs::write(&path, br#"{"magic":"other-tool","version":1}"#).expect("writes");
    assert_eq!(
        read_error(&path),
        format!(
            "{shown} is not a vantage-edge checkpoint: its magic is \"other-tool\", not \"vantage-edge-checkpoint\""
        )
    );

    fs::write(&path, br#"{"offsets":{"access.log":12}}"#).expect("writes");
    assert_eq!(
        read_error(&path),
        format!("{shown} is not a vantage-edge checkpoint: it has no magic field")
    );

    fs::write(&path, b"[1, 2, 3]").expect("writes");
    assert_eq!(
        read_error(&path),
        format!("{shown} is not a vantage-edge checkpoint: it is not a JSON object")
    );

    let newer = String::from_utf8(whole.clone()).expect("utf-8").replacen(
        r#""version":2"#,
        r#""version":3"#,
        1,
    );
    fs::write(&path, newer).expect("writes");
    assert_eq!(
        read_error(&path),
        format!("checkpoint {shown} has format version 3, this build reads versions 1 to 2")
    );

    fs::write(
        &path,
        seal(&format!("{CONFIG:?}"), "[]", r#"{"200":"many"}"#),
    )
    .expect("writes");
    assert_eq!(
        read_error(&path),
        format!(
            "checkpoint {shown} is corrupt: invalid type: string \"many\", expected u64 at line 1 column 13"
        )
    );

    fs::write(&path, &whole).expect("writes");
    let other_config = Checkpoint::<BTreeMap<i16, u64>>::read_any(&path).expect("reads");
    assert_eq!(other_config, sample(), "shown whatever its configuration");
    let error =
        Checkpoint::<BTreeMap<i16, u64>>::read(&path, "nginx-combined /var/log/nginx/*.log")
            .unwrap_err()
            .to_string();
    assert_eq!(
        error,
        format!(
            "checkpoint {shown} was made for another configuration: it has {CONFIG:?}, this run has \"nginx-combined /var/log/nginx/*.log\""
        )
    );
}

#[test]
fn a_hand_edit_that_leaves_valid_json_is_refused_as_a_checksum_mismatch() {
    let dir = TempDir::new("checkpoint-edited");
    let path = dir.join("checkpoint.json");
    let shown = path.display().to_string();
    sample().write_atomic(&path).expect("writes");
    let whole = fs::read_to_string(&path).expect("reads");
    let sum = |state: &str| {
        checksum([
            serde_json::to_string(CONFIG).expect("json").as_bytes(),
            serde_json::to_string(&sample().files)
                .expect("json")
                .as_bytes(),
            state.as_bytes(),
        ])
    };
    let (written, edited) = (
        sum(r#"{"-1":2,"200":1234,"503":7}"#),
        sum(r#"{"-1":2,"200":9234,"503":7}"#),
    );
    fs::write(&path, whole.replacen("1234", "9234", 1)).expect("writes");
    assert_eq!(
        read_error(&path),
        format!(
            "checkpoint {shown} is corrupt: checksum mismatch: the file says crc32:{written:08x}, its content has crc32:{edited:08x} (it was edited or damaged)"
        )
    );
    // Spaces between the parts are not content; an edit of the offset is.
    fs::write(&path, whole.replacen(r#","files":"#, r#",  "files" :"#, 1)).expect("writes");
    assert_eq!(
        Checkpoint::read(&path, CONFIG).expect("reads"),
        Some(sample())
    );
    fs::write(&path, whole.replacen(r#""offset":18"#, r#""offset":19"#, 1)).expect("writes");
    assert!(read_error(&path).contains("checksum mismatch"));
    // A checksum that is absent or not one.
    let (head, _) = whole.rsplit_once(r#","checksum""#).expect("a checksum");
    fs::write(&path, format!("{head}}}")).expect("writes");
    assert_eq!(
        read_error(&path),
        format!("checkpoint {shown} is corrupt: it has no checksum field")
    );
    fs::write(&path, format!(r#"{head},"checksum":"md5:00"}}"#)).expect("writes");
    assert_eq!(
        read_error(&path),
        format!(
            "checkpoint {shown} is corrupt: its checksum \"md5:00\" is not crc32: and 8 hexadecimal digits"
        )
    );
}

#[test]
fn a_version_1_checkpoint_is_shown_but_not_resumed_from() {
    let dir = TempDir::new("checkpoint-v1");
    let path = dir.write(
        "checkpoint.json",
        format!(
            r#"{{"magic":"vantage-edge-checkpoint","version":1,"config":{CONFIG:?},"files":[],"state":{{"200":3}}}}"#
        ),
    );
    assert_eq!(
        read_error(&path),
        format!(
            "checkpoint {} has format version 1, from before checksums: it can be shown but not resumed from (this build writes version 2)",
            path.display()
        )
    );
    let shown = Checkpoint::<BTreeMap<i16, u64>>::read_any(&path).expect("shown");
    assert_eq!(shown.state, BTreeMap::from([(200, 3)]));
}

#[test]
fn a_file_past_the_size_limit_is_refused_before_it_is_read() {
    let dir = TempDir::new("checkpoint-huge");
    let path = dir.join("checkpoint.json");
    // A sparse file: its size without its bytes.
    File::create(&path)
        .and_then(|file| file.set_len(MAX_CHECKPOINT_BYTES + 1))
        .expect("creates");
    let mut error = String::new();
    let allocated = allocation_counter::measure(|| error = read_error(&path));
    assert_eq!(
        error,
        format!(
            "checkpoint {} is 1073741825 bytes, more than the 1073741824 a checkpoint may have",
            path.display()
        )
    );
    assert!(allocated.bytes_max < 64 << 10, "{allocated:?}");
}

#[test]
fn positions_and_configuration_past_their_limits_are_refused() {
    let dir = TempDir::new("checkpoint-limits");
    let path = dir.join("checkpoint.json");
    let reason = |config: &str, files: &str| {
        fs::write(&path, seal(config, files, "{}")).expect("writes");
        let error = Checkpoint::<BTreeMap<i16, u64>>::read_any(&path)
            .expect_err("refused")
            .to_string();
        let reason = error
            .strip_prefix(&format!("checkpoint {} is corrupt: ", path.display()))
            .unwrap_or(&error);
        reason.to_owned()
    };
    let file = |path: &str, ino: u64, len: u32| {
        format!(
            r#"{{"path":{path:?},"identity":{{"dev":1,"ino":{ino},"fingerprint":{{"len":{len},"hash":"00000000000000ff"}}}},"offset":5}}"#
        )
    };
    let one = file("/logs/a.log", 7, 12);
    assert_eq!(
        reason(
            &format!("{CONFIG:?}"),
            &format!("[{one},{}]", file("/logs/b.log", 7, 12))
        ),
        "file /logs/b.log: device 1 inode 7 appears twice"
    );
    assert_eq!(
        reason(
            &format!("{CONFIG:?}"),
            &format!("[{}]", file("/logs/a.log", 7, 257))
        ),
        "file /logs/a.log: its fingerprint covers 257 bytes, more than 256"
    );
    let long = format!("/{}", "x".repeat(MAX_PATH_BYTES));
    assert_eq!(
        reason(&format!("{CONFIG:?}"), &format!("[{}]", file(&long, 7, 12))),
        "its files: a path of 4097 bytes, more than 4096 at line 1 column 4108"
    );
    let many: Vec<String> = (0..=MAX_FILES as u64)
        .map(|ino| file("/a", ino, 1))
        .collect();
    assert_eq!(
        reason(&format!("{CONFIG:?}"), &format!("[{}]", many.join(","))),
        format!(
            "its files: more than 65536 files at line 1 column {}",
            many[..MAX_FILES].join(",").len() + many[MAX_FILES].len() + 3
        )
    );
    let config = "c".repeat(MAX_CONFIG_BYTES + 1);
    assert_eq!(
        reason(&format!("{config:?}"), "[]"),
        "a configuration of 1048577 bytes, more than 1048576 at line 1 column 1048579"
    );
}

#[test]
fn positions_follow_batches_and_events_by_file() {
    use crate::tail::{Batch, TailEvent};
    let restored = position("/logs/a.log", 7, 18);
    let mut positions = Positions::new(vec![restored.clone()]);
    assert_eq!(positions.files(), std::slice::from_ref(&restored));
    let identity = restored.identity;
    let path: Arc<Path> = Arc::from(Path::new("/logs/a.log.1"));
    positions.observe(&TailMessage::Lines(Batch {
        path: Arc::clone(&path),
        identity,
        start_offset: 18,
        end_offset: 40,
        bytes: b"line\n".to_vec(),
        too_long: Vec::new(),
    }));
    let new = position("/logs/a.log", 8, 0);
    positions.observe(&TailMessage::Event(TailEvent::Opened {
        path: Arc::from(new.path.as_path()),
        identity: new.identity,
        offset: 0,
    }));
    assert_eq!(
        positions.files(),
        [
            new.clone(),
            FilePosition {
                path: path.to_path_buf(),
                identity,
                offset: 40
            }
        ]
    );
    positions.observe(&TailMessage::Event(TailEvent::Closed {
        path,
        identity,
        offset: 40,
    }));
    assert_eq!(positions.files(), std::slice::from_ref(&new));
    positions.observe(&TailMessage::Event(TailEvent::Missing {
        path: Arc::from(new.path.as_path()),
        identity: new.identity,
        offset: 0,
    }));
    assert_eq!(positions.files(), []);
}
