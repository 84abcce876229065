//! The restart behaviour of the tailer (resuming from checkpointed positions) and its thread,
//! each on a real temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::test_helpers::{Delivered, TempDir, file_name};
use super::tests::{config, from_start, ino, tailer};
use super::*;

/// A consumer that follows the checkpoint protocol: it observes everything its tailer
/// delivers, and a restart resumes a new tailer from what it observed.
struct Consumer {
    config: TailConfig,
    /// `None` while stopped.
    tailer: Option<Tailer>,
    positions: Positions,
}

impl Consumer {
    fn start(config: TailConfig) -> Self {
        Self {
            tailer: Some(tailer(config.clone())),
            config,
            positions: Positions::new(Vec::new()),
        }
    }

    /// Polls and observes what was delivered.
    fn poll(&mut self) -> Delivered {
        let delivered = Delivered::poll(self.tailer.as_mut().expect("started"));
        for message in &delivered.messages {
            self.positions.observe(message);
        }
        delivered
    }

    /// What a checkpoint written now would hold.
    fn files(&self) -> Vec<FilePosition> {
        self.positions.files()
    }

    /// Stops the tailer: its files are closed, as when edge-parser is stopped.
    fn stop(&mut self) {
        self.tailer = None;
    }

    /// Resumes a new tailer from the observed positions (stopping the old one if running).
    fn restart(&mut self) {
        self.stop();
        self.tailer = Some(Tailer::resume(self.config.clone(), self.files()).expect("valid"));
    }
}

#[test]
fn a_restart_resumes_exactly_at_the_checkpointed_positions() {
    let dir = TempDir::new("restart");
    dir.write("a.log", "");
    dir.write("b.log", "");
    let mut consumer = Consumer::start(config(&dir, "*.log"));
    consumer.poll();
    dir.append("a.log", "a1\na2\npart");
    dir.append("b.log", "b1\n");
    let delivered = consumer.poll();
    assert_eq!(delivered.lines(), ["a1", "a2", "b1"]);
    consumer.stop();

    dir.append("a.log", "ial\na3\n");
    dir.append("b.log", "b2\n");
    dir.write("c.log", "c1\n");
    assert_eq!(
        consumer
            .files()
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>(),
        [6, 3],
        "a.log then b.log"
    );
    consumer.restart();
    let delivered = consumer.poll();
    assert_eq!(delivered.lines(), ["partial", "a3", "b2", "c1"]);
    assert_eq!(
        delivered.opened(),
        [
            ("a.log".to_owned(), 6),
            ("b.log".to_owned(), 3),
            ("c.log".to_owned(), 0),
        ]
    );
    assert!(delivered.rotations().is_empty());
}

#[test]
fn a_restart_after_a_rename_while_stopped_finishes_the_old_file_then_the_new_one() {
    let dir = TempDir::new("restart-rename");
    dir.write("access.log", "");
    let mut consumer = Consumer::start(config(&dir, "*.log"));
    consumer.poll();
    dir.append("access.log", "a1\n");
    consumer.poll();
    consumer.stop();

    dir.append("access.log", "a2\n");
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", "b1\n");
    consumer.restart();
    let delivered = consumer.poll();
    assert_eq!(delivered.lines(), ["a2", "b1"]);
    assert_eq!(delivered.rotations(), [RotationKind::Rename]);
    assert_eq!(
        delivered.opened(),
        [("access.log.1".to_owned(), 3), ("access.log".to_owned(), 0)]
    );
    assert_eq!(
        consumer.files().len(),
        1,
        "the old file was closed: {:?}",
        consumer.files()
    );
}

#[test]
fn a_restart_names_the_rotation_by_the_file_last_at_the_path_whatever_the_inodes() {
    let dir = TempDir::new("restart-two-renames");
    // The second file is made first, so that it has the lower inode on most file systems:
    // the order of inodes must not decide which of two files once at a path left it last.
    dir.write("second.tmp", "");
    dir.write("access.log", "a1\n");
    let mut config = from_start(&dir, "access.log");
    config.rotate_wait = Duration::from_secs(3600);
    let mut consumer = Consumer::start(config);
    consumer.poll();
    dir.rename("access.log", "access.log.1");
    dir.rename("second.tmp", "access.log");
    dir.append("access.log", "b1\n");
    let delivered = consumer.poll();
    assert_eq!(delivered.rotations(), [RotationKind::Rename]);
    assert_eq!(
        consumer.files().len(),
        2,
        "the first file is still followed"
    );
    consumer.stop();

    // While stopped: the first file is deleted (kept open, so that its inode is not reused),
    // the second renamed away, a third one made.
    let first = std::fs::File::open(dir.join("access.log.1")).expect("opening access.log.1");
    dir.remove("access.log.1");
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", "c1\n");
    consumer.restart();
    let delivered = consumer.poll();
    drop(first);
    assert_eq!(delivered.rotations(), [RotationKind::Rename]);
    assert_eq!(delivered.lines(), ["c1"]);
}

#[test]
fn a_restart_finds_a_same_inode_file_with_other_contents_and_reads_it_whole() {
    let dir = TempDir::new("restart-reuse");
    dir.write("access.log", "");
    let mut consumer = Consumer::start(config(&dir, "*.log"));
    consumer.poll();
    dir.append("access.log", "a1\n");
    consumer.poll();
    consumer.stop();
    let inode = ino(&dir, "access.log");

    // Rewritten in place while stopped: the same inode, other first bytes, longer.
    dir.write("access.log", "b1 other\nb2\n");
    assert_eq!(ino(&dir, "access.log"), inode);
    consumer.restart();
    let delivered = consumer.poll();
    assert_eq!(delivered.rotations(), [RotationKind::InodeReuse]);
    assert_eq!(delivered.lines(), ["b1 other", "b2"]);

    // Truncated below the checkpointed offset while stopped.
    consumer.stop();
    dir.write("access.log", "c\n");
    consumer.restart();
    let delivered = consumer.poll();
    assert_eq!(delivered.rotations(), [RotationKind::CopyTruncate]);
    assert_eq!(delivered.lines(), ["c"]);
}

#[test]
fn a_checkpointed_file_gone_while_stopped_is_reported_missing() {
    let dir = TempDir::new("restart-missing");
    dir.write("access.log", "");
    let mut consumer = Consumer::start(config(&dir, "*.log"));
    consumer.poll();
    dir.append("access.log", "a1\n");
    consumer.poll();
    consumer.stop();

    dir.append("access.log", "a2 lost\n");
    dir.remove("access.log");
    dir.write("other.txt", "keeps the inode busy\n");
    dir.write("access.log", "b1\n");
    let saved = consumer.files();
    consumer.restart();
    let delivered = consumer.poll();
    let missing: Vec<(String, u64)> = delivered
        .events()
        .filter_map(|event| match event {
            TailEvent::Missing { path, offset, .. } => Some((file_name(path), *offset)),
            _ => None,
        })
        .collect();
    if ino(&dir, "access.log") == saved[0].identity.ino {
        // The file system gave the new file the old inode: told apart by the fingerprint.
        assert!(missing.is_empty());
        assert_eq!(delivered.rotations(), [RotationKind::InodeReuse]);
    } else {
        assert_eq!(missing, [("access.log".to_owned(), 3)]);
        assert_eq!(delivered.rotations(), [RotationKind::Recreate]);
    }
    assert_eq!(delivered.lines(), ["b1"]);
    assert_eq!(consumer.files().len(), 1);
}

#[test]
fn the_spawned_thread_is_named_blocks_on_a_full_channel_and_stops_on_shutdown() {
    let dir = TempDir::new("spawn");
    let lines: Vec<String> = (0..50).map(|n| format!("line {n}")).collect();
    dir.write("access.log", lines.join("\n") + "\n");
    let mut config = from_start(&dir, "*.log");
    config.batch_bytes = 10;
    config.poll_interval = Duration::from_millis(5);
    let (sender, receiver) = crossbeam_channel::bounded(1);
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle = tailer(config)
        .spawn(sender, Arc::clone(&shutdown))
        .expect("spawns");
    assert_eq!(handle.thread().name(), Some("edge-tail"));

    let mut delivered = Delivered::default();
    while delivered.lines().len() < 20 {
        let message = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("a message within the time limit");
        delivered.messages.push(message);
        assert!(receiver.len() <= 1, "the channel is bounded");
    }
    // Leave the thread blocked on the full channel, then stop it.
    shutdown.store(true, Ordering::Release);
    handle.join().expect("the thread ends");
    delivered.messages.extend(receiver.try_iter());
    let got = delivered.lines();
    assert_eq!(got[..], lines[..got.len()], "in order, none twice");
    assert!(got.len() < lines.len(), "stopped before the end");
}

#[test]
fn the_spawned_thread_stops_at_its_next_message_once_the_receiver_is_dropped() {
    let dir = TempDir::new("spawn-drop");
    let lines: Vec<String> = (0..50).map(|n| format!("line {n}")).collect();
    dir.write("access.log", lines.join("\n") + "\n");
    let mut config = from_start(&dir, "*.log");
    config.batch_bytes = 10;
    config.poll_interval = Duration::from_millis(5);
    let (sender, receiver) = crossbeam_channel::bounded(1);
    let handle = tailer(config)
        .spawn(sender, Arc::new(AtomicBool::new(false)))
        .expect("spawns");
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("a first message");
    drop(receiver);
    handle.join().expect("the thread ends");
}
