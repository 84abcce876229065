//! One test per behaviour of the tailer, each on a real temporary directory, driving
//! [`Tailer::poll`] directly: no sleeps, exact assertions.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::test_helpers::{Delivered, TempDir, file_name};
use super::*;
use crate::test_support::{permissions_ignored, rerun_unprivileged};

/// Every poll rescans, and files rotated away are closed once read to their end.
pub(super) fn config(dir: &TempDir, glob: &str) -> TailConfig {
    let mut config = TailConfig::new([dir.glob(glob)]);
    config.rescan_interval = Duration::ZERO;
    config.rotate_wait = Duration::ZERO;
    config
}

pub(super) fn from_start(dir: &TempDir, glob: &str) -> TailConfig {
    let mut config = config(dir, glob);
    config.from_start = true;
    config
}

pub(super) fn tailer(config: TailConfig) -> Tailer {
    Tailer::new(config).expect("valid configuration")
}

pub(super) fn ino(dir: &TempDir, name: &str) -> u64 {
    std::fs::metadata(dir.join(name)).expect("stat").ino()
}

#[test]
fn appended_lines_are_delivered_and_a_partial_line_waits_for_its_newline() {
    let dir = TempDir::new("append");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    let first = Delivered::poll(&mut tailer);
    assert_eq!(first.opened(), [("access.log".to_owned(), 0)]);
    assert!(first.lines().is_empty());

    dir.append("access.log", "one\ntwo\nthr");
    let second = Delivered::poll(&mut tailer);
    assert_eq!(second.lines(), ["one", "two"]);
    let batch = second.batches().next().expect("a batch");
    assert_eq!((batch.start_offset, batch.end_offset), (0, 8));

    assert!(Delivered::poll(&mut tailer).messages.is_empty(), "idle");
    dir.append("access.log", "ee\nfo");
    let third = Delivered::poll(&mut tailer);
    assert_eq!(third.lines(), ["three"]);
    let batch = third.batches().next().expect("a batch");
    assert_eq!((batch.start_offset, batch.end_offset), (8, 14));
    dir.append("access.log", "ur\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["four"]);
}

#[test]
fn files_present_at_startup_are_read_from_their_end_unless_from_start() {
    let dir = TempDir::new("from-end");
    dir.write("access.log", "old 1\nold 2\nhalf");
    let mut from_end = tailer(config(&dir, "*.log"));
    let first = Delivered::poll(&mut from_end);
    assert_eq!(first.opened(), [("access.log".to_owned(), 12)]);
    assert!(first.lines().is_empty());
    dir.append("access.log", " line\nnew\n");
    assert_eq!(Delivered::poll(&mut from_end).lines(), ["half line", "new"]);

    let mut whole = tailer(from_start(&dir, "*.log"));
    let delivered = Delivered::poll(&mut whole);
    assert_eq!(delivered.opened(), [("access.log".to_owned(), 0)]);
    assert_eq!(delivered.lines(), ["old 1", "old 2", "half line", "new"]);
}

#[test]
fn a_new_file_matching_the_glob_is_read_from_its_start() {
    let dir = TempDir::new("new-file");
    dir.write("a.log", "a old\n");
    let mut tailer = tailer(config(&dir, "*.log"));
    assert!(Delivered::poll(&mut tailer).lines().is_empty());
    dir.write("b.log", "b 1\nb 2\n");
    dir.write("ignored.txt", "not matched\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.opened(), [("b.log".to_owned(), 0)]);
    assert_eq!(delivered.lines(), ["b 1", "b 2"]);
    assert!(delivered.rotations().is_empty());
}

#[test]
fn a_literal_path_is_followed_once_it_exists() {
    let dir = TempDir::new("literal");
    let mut config = TailConfig::new([dir.join("access.log").display().to_string()]);
    config.rescan_interval = Duration::ZERO;
    let mut tailer = tailer(config);
    assert!(Delivered::poll(&mut tailer).messages.is_empty());
    assert!(!tailer.status().is_ready());
    dir.write("access.log", "first\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["first"]);
    assert!(tailer.status().is_ready());
}

#[test]
fn rename_rotation_delivers_the_old_tail_before_the_new_file() {
    let dir = TempDir::new("rename");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\na2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1", "a2"]);
    dir.append("access.log", "a3\n");
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", "b1\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["a3", "b1"]);
    assert_eq!(delivered.rotations(), [RotationKind::Rename]);
    let order: Vec<String> = delivered
        .messages
        .iter()
        .map(|message| match message {
            TailMessage::Lines(batch) => format!("lines {}", file_name(&batch.path)),
            TailMessage::Event(TailEvent::Rotated { kind, .. }) => format!("rotated {kind}"),
            TailMessage::Event(TailEvent::Opened { offset, .. }) => format!("opened {offset}"),
            TailMessage::Event(TailEvent::Closed { offset, .. }) => format!("closed {offset}"),
            TailMessage::Event(other) => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        order,
        [
            "lines access.log",
            "rotated rename",
            "opened 0",
            "lines access.log",
            "closed 9",
        ]
    );
    dir.append("access.log", "b2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["b2"]);
}

#[test]
fn a_file_renamed_to_another_matching_name_is_followed_there_without_rereading() {
    let dir = TempDir::new("rename-matching");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "access.log*"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1"]);
    dir.append("access.log", "a2\n");
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", "b1\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["a2", "b1"]);
    assert_eq!(delivered.rotations(), [RotationKind::Rename]);
    assert_eq!(delivered.opened(), [("access.log".to_owned(), 0)]);
    dir.append("access.log.1", "a3\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["a3"]);
    let batch = delivered.batches().next().expect("a batch");
    assert_eq!(file_name(&batch.path), "access.log.1");
    assert_eq!(
        tailer.status().patterns[0].followed,
        [dir.join("access.log"), dir.join("access.log.1")]
    );
}

#[test]
fn a_renamed_file_is_followed_until_rotate_wait_for_writers_that_reopen_late() {
    let dir = TempDir::new("rotate-wait");
    dir.write("access.log", "");
    let mut config = config(&dir, "*.log");
    config.rotate_wait = Duration::from_secs(3600);
    let mut tailer = tailer(config);
    Delivered::poll(&mut tailer);
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", "");
    let rotated = Delivered::poll(&mut tailer);
    assert_eq!(rotated.rotations(), [RotationKind::Rename]);
    // The writer still has the old file open.
    dir.append("access.log.1", "late\n");
    dir.append("access.log", "new\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["late", "new"]);
    assert!(
        !delivered
            .events()
            .any(|event| matches!(event, TailEvent::Closed { .. }))
    );
}

#[test]
fn copytruncate_rereads_the_file_from_its_start() {
    let dir = TempDir::new("copytruncate");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "access.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\na2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1", "a2"]);
    let inode = ino(&dir, "access.log");

    dir.copy_truncate("access.log", "access.log.1");
    dir.append("access.log", "b1\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(ino(&dir, "access.log"), inode, "truncated in place");
    assert_eq!(delivered.rotations(), [RotationKind::CopyTruncate]);
    assert_eq!(delivered.opened(), [("access.log".to_owned(), 0)]);
    assert_eq!(delivered.lines(), ["b1"]);

    // Truncated and refilled past the old offset before the next poll: the first bytes
    // changed.
    dir.append("access.log", "b2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["b2"]);
    dir.copy_truncate("access.log", "access.log.1");
    dir.append("access.log", "c1 is longer\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.rotations(), [RotationKind::CopyTruncate]);
    assert_eq!(delivered.lines(), ["c1 is longer"]);
}

#[test]
fn delete_and_recreate_drains_the_old_file_first() {
    let dir = TempDir::new("recreate");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1"]);
    dir.append("access.log", "a2\n");
    dir.remove("access.log");
    dir.write("access.log", "b1\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["a2", "b1"]);
    assert_eq!(delivered.rotations(), [RotationKind::Recreate]);
}

#[test]
fn a_deleted_file_is_read_to_its_end_then_closed() {
    let dir = TempDir::new("deleted");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    let opened = Delivered::poll(&mut tailer);
    dir.append("access.log", "last\n");
    dir.remove("access.log");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["last"]);
    let identity = opened
        .events()
        .find_map(|event| match event {
            TailEvent::Opened { identity, .. } => Some(*identity),
            _ => None,
        })
        .expect("opened");
    assert!(delivered.events().any(|event| matches!(
        event,
        TailEvent::Closed { identity: closed, offset: 5, .. } if closed.key() == identity.key()
    )));
    assert!(!tailer.status().is_ready());
}

#[test]
fn a_new_file_given_the_inode_of_a_closed_one_is_a_rotation_of_its_own_kind() {
    let dir = TempDir::new("inode-reuse");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1"]);
    let old = ino(&dir, "access.log");
    dir.remove("access.log");
    // The tailer reads the deleted file to its end and closes it: its inode is free again.
    Delivered::poll(&mut tailer);
    dir.write("access.log", "b1\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["b1"]);
    // ext4 and xfs hand the freed inode out again at once; tmpfs does not.
    let expected = if ino(&dir, "access.log") == old {
        RotationKind::InodeReuse
    } else {
        RotationKind::Recreate
    };
    assert_eq!(delivered.rotations(), [expected]);
}

#[test]
fn a_path_moved_away_and_back_is_not_read_again() {
    let dir = TempDir::new("away-and-back");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\na2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1", "a2"]);
    dir.rename("access.log", "access.away");
    // Read to its end and closed (rotate_wait is zero here; 10 s by default).
    let away = Delivered::poll(&mut tailer);
    assert!(
        away.events()
            .any(|e| matches!(e, TailEvent::Closed { offset: 6, .. }))
    );
    dir.rename("access.away", "access.log");
    let back = Delivered::poll(&mut tailer);
    assert!(back.lines().is_empty(), "read again: {:?}", back.lines());
    assert!(back.rotations().is_empty(), "{:?}", back.rotations());
    assert_eq!(back.opened(), [("access.log".to_owned(), 6)]);
    dir.append("access.log", "a3\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a3"]);
}

#[test]
fn a_symlink_flipped_away_and_back_reads_each_line_once() {
    let dir = TempDir::new("symlink-flip");
    dir.write("a.data", "");
    dir.write("b.data", "");
    let link = dir.join("current.log");
    std::os::unix::fs::symlink(dir.join("a.data"), &link).expect("symlink");
    let flip = |target: &str| {
        let next = dir.join("next.link");
        std::os::unix::fs::symlink(dir.join(target), &next).expect("symlink");
        std::fs::rename(&next, &link).expect("flipping the link");
    };
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("a.data", "a1\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1"]);
    dir.append("b.data", "b1\n");
    flip("b.data");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["b1"]);
    // a.data is closed now; back to it, then to b.data again: nothing is read twice.
    Delivered::poll(&mut tailer);
    dir.append("a.data", "a2\n");
    flip("a.data");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a2"]);
    Delivered::poll(&mut tailer);
    dir.append("b.data", "b2\n");
    flip("b.data");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["b2"]);
}

#[test]
fn a_returning_inode_with_other_first_bytes_is_read_from_its_start() {
    let dir = TempDir::new("away-rewritten");
    dir.write("access.log", "");
    let mut tailer = tailer(config(&dir, "*.log"));
    Delivered::poll(&mut tailer);
    dir.append("access.log", "a1\na2\n");
    assert_eq!(Delivered::poll(&mut tailer).lines(), ["a1", "a2"]);
    dir.rename("access.log", "access.away");
    Delivered::poll(&mut tailer);
    // Rewritten in place while away: the same inode, other contents.
    std::fs::write(dir.join("access.away"), "b1\nb2\nb3\n").expect("rewriting");
    dir.rename("access.away", "access.log");
    let back = Delivered::poll(&mut tailer);
    assert_eq!(back.lines(), ["b1", "b2", "b3"]);
    assert_eq!(back.rotations(), [RotationKind::InodeReuse]);
}

#[test]
fn files_past_the_cap_are_reported_and_followed_once_there_is_room() {
    let dir = TempDir::new("max-files");
    for name in ["a.log", "b.log", "c.log"] {
        dir.write(name, format!("{name}\n"));
    }
    let mut config = from_start(&dir, "*.log");
    config.max_files = 2;
    let mut tailer = tailer(config);
    let first = Delivered::poll(&mut tailer);
    assert_eq!(first.lines(), ["a.log", "b.log"]);
    assert_eq!(
        first.errors(),
        [(
            "c.log".to_owned(),
            "not followed: 2 files are followed already (the cap)".to_owned()
        )]
    );
    // Reported once, not at every poll.
    assert!(Delivered::poll(&mut tailer).errors().is_empty());
    dir.remove("a.log");
    // a.log is closed at the end of the next poll; c.log is opened at the one after.
    let lines: Vec<String> = (0..2)
        .flat_map(|_| Delivered::poll(&mut tailer).lines())
        .collect();
    assert_eq!(lines, ["c.log"]);
}

#[test]
fn over_long_lines_are_reported_once_complete_and_never_delivered() {
    let dir = TempDir::new("too-long");
    dir.write("access.log", "");
    let mut config = config(&dir, "*.log");
    config.max_line_bytes = 10;
    let mut tailer = tailer(config);
    Delivered::poll(&mut tailer);
    let long = "x".repeat(300);
    dir.append("access.log", format!("short\n{long}\nafter\n0123456789\n"));
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["short", "after", "0123456789"]);
    let too_long: Vec<&TooLong> = delivered.batches().flat_map(|b| &b.too_long).collect();
    assert_eq!(too_long.len(), 1);
    assert_eq!(too_long[0].offset, 6);
    assert_eq!(too_long[0].prefix, vec![b'x'; 256]);

    // One growing across polls is skipped as it comes and reported when it ends.
    dir.append("access.log", "y".repeat(25));
    let pending = Delivered::poll(&mut tailer);
    assert!(pending.batches().next().is_none(), "nothing to report yet");
    dir.append("access.log", "y".repeat(25));
    assert!(Delivered::poll(&mut tailer).batches().next().is_none());
    dir.append("access.log", "yy\nok\n");
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), ["ok"]);
    let batch = delivered.batches().next().expect("a batch");
    assert_eq!(
        batch.too_long,
        [TooLong {
            offset: 324,
            prefix: vec![b'y'; 52],
        }]
    );
    assert_eq!(batch.end_offset, 324 + 53 + 3);
}

#[test]
fn a_batch_that_only_skips_an_over_long_line_still_moves_the_position() {
    let dir = TempDir::new("too-long-only");
    dir.write("access.log", "");
    let mut config = config(&dir, "*.log");
    config.max_line_bytes = 4;
    let mut tailer = tailer(config);
    Delivered::poll(&mut tailer);
    dir.append("access.log", "toolong\n");
    let delivered = Delivered::poll(&mut tailer);
    let batch = delivered.batches().next().expect("a batch");
    assert!(batch.bytes.is_empty());
    assert_eq!((batch.start_offset, batch.end_offset), (0, 8));
    assert_eq!(batch.too_long.len(), 1);
}

#[test]
fn batches_end_on_line_boundaries_near_batch_bytes() {
    let dir = TempDir::new("batches");
    let lines: Vec<String> = (0..100).map(|n| format!("line number {n}")).collect();
    dir.write("access.log", lines.join("\n") + "\n");
    let mut config = from_start(&dir, "*.log");
    config.batch_bytes = 100;
    let (spare_tx, spare_rx) = crossbeam_channel::bounded(1);
    let spare = Vec::with_capacity(4096);
    let spare_address = spare.as_ptr();
    spare_tx.send(spare).expect("room");
    let size = std::fs::metadata(dir.join("access.log"))
        .expect("stat")
        .len();
    let mut tailer = tailer(config).recycle_buffers(spare_rx);
    let delivered = Delivered::poll(&mut tailer);
    assert_eq!(delivered.lines(), lines);
    let batches: Vec<&Batch> = delivered.batches().collect();
    assert!(batches.len() > 10, "{} batches", batches.len());
    assert_eq!(
        batches[0].bytes.as_ptr(),
        spare_address,
        "a recycled buffer"
    );
    for pair in batches.windows(2) {
        assert_eq!(pair[0].end_offset, pair[1].start_offset);
    }
    for batch in &batches {
        assert!(batch.bytes.len() >= 100 || batch.end_offset == size);
        assert!(batch.bytes.len() < 100 + 16, "{}", batch.bytes.len());
        assert_eq!(
            batch.end_offset - batch.start_offset,
            batch.bytes.len() as u64
        );
    }
}

#[test]
fn unreadable_paths_are_reported_and_the_other_files_followed() {
    let dir = TempDir::new("unreadable");
    dir.write("good.log", "");
    std::os::unix::fs::symlink(dir.join("loop.log"), dir.join("loop.log")).expect("symlink");
    std::fs::create_dir(dir.join("directory.log")).expect("mkdir");
    let mut tailer = tailer(config(&dir, "*.log"));
    let first = Delivered::poll(&mut tailer);
    let mut errors = first.errors();
    errors.sort();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        ("directory.log".to_owned(), "not a regular file".to_owned())
    );
    assert_eq!(errors[1].0, "loop.log");
    assert!(
        errors[1].1.contains("symbolic links"),
        "the reason: {}",
        errors[1].1
    );
    let status = tailer.status();
    assert_eq!(status.patterns[0].failing.len(), 2);
    assert_eq!(status.patterns[0].followed, [dir.join("good.log")]);
    assert!(status.is_ready());

    dir.append("good.log", "still followed\n");
    let second = Delivered::poll(&mut tailer);
    assert_eq!(second.lines(), ["still followed"]);
    assert!(second.errors().is_empty(), "reported once");

    // Fixed: the file is new, so it is read from its start.
    dir.remove("loop.log");
    dir.write("loop.log", "fixed\n");
    let third = Delivered::poll(&mut tailer);
    assert_eq!(third.lines(), ["fixed"]);
    assert_eq!(tailer.status().patterns[0].failing.len(), 1);
}

#[test]
fn an_unreadable_file_is_reported_and_read_once_permitted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("permission");
    let path = dir.write("secret.log", "old\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if permissions_ignored(&path) {
        // Root (as CI runs): the same test as a user permissions apply to.
        rerun_unprivileged("tail::tests::an_unreadable_file_is_reported_and_read_once_permitted");
        return;
    }
    let mut tailer = tailer(config(&dir, "*.log"));
    let first = Delivered::poll(&mut tailer);
    assert_eq!(first.errors().len(), 1);
    assert!(first.errors()[0].1.starts_with("cannot open: "));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    dir.append("secret.log", "new\n");
    // Present at startup: read from where it ended then, like the others; the line written
    // while it could not be read came after the start and is new.
    let permitted = Delivered::poll(&mut tailer);
    assert_eq!(permitted.opened(), [("secret.log".to_owned(), 4)]);
    assert_eq!(permitted.lines(), ["new"]);
}

#[test]
fn status_tells_which_patterns_have_files_and_which_fail() {
    let dir = TempDir::new("status");
    dir.write("a.log", "");
    std::fs::create_dir(dir.join("b.log")).expect("mkdir");
    let mut config = config(&dir, "*.log");
    config
        .patterns
        .push(dir.join("missing.json").display().to_string());
    let mut tailer = tailer(config);
    let handle = tailer.status_handle();
    assert_eq!(handle.get(), TailStatus::default());
    Delivered::poll(&mut tailer);
    let status = handle.get();
    assert_eq!(status.polls, 1);
    assert_eq!(
        status.patterns,
        [
            PatternStatus {
                pattern: dir.glob("*.log"),
                followed: vec![dir.join("a.log")],
                failing: vec![(dir.join("b.log"), "not a regular file".to_owned())],
            },
            PatternStatus {
                pattern: dir.join("missing.json").display().to_string(),
                followed: Vec::new(),
                failing: Vec::new(),
            },
        ]
    );
    assert!(!status.is_ready(), "the second pattern has no file yet");
}

#[test]
fn bad_configurations_are_refused() {
    let error = |config: TailConfig| Tailer::new(config).unwrap_err().to_string();
    assert_eq!(
        error(TailConfig::new(Vec::<String>::new())),
        "no log file pattern given"
    );
    assert_eq!(
        error(TailConfig::new([""])),
        "bad pattern \"\": empty pattern"
    );
    let mut zero = TailConfig::new(["/var/log/access.log"]);
    zero.batch_bytes = 0;
    assert_eq!(error(zero), "batch_bytes must be at least 1");
}
