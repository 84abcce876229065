//! Shared by the tail tests: helpers to collect what a [`Tailer`] delivers (the temporary
//! directories are [`crate::test_support::TempDir`]).

use std::path::Path;

pub(crate) use crate::test_support::TempDir;

use super::{Batch, RotationKind, TailEvent, TailMessage, Tailer};

/// Everything one or more polls delivered.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    pub(crate) messages: Vec<TailMessage>,
}

impl Delivered {
    /// Polls until the tailer reports nothing left to read right now.
    pub(crate) fn poll(tailer: &mut Tailer) -> Self {
        let mut delivered = Self::default();
        while tailer.poll(|message| delivered.messages.push(message)) {}
        delivered
    }

    pub(crate) fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.messages.iter().filter_map(|message| match message {
            TailMessage::Lines(batch) => Some(batch),
            TailMessage::Event(_) => None,
        })
    }

    pub(crate) fn events(&self) -> impl Iterator<Item = &TailEvent> {
        self.messages.iter().filter_map(|message| match message {
            TailMessage::Event(event) => Some(event),
            TailMessage::Lines(_) => None,
        })
    }

    /// Every delivered line, without its newline, in delivery order.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for batch in self.batches() {
            assert!(
                batch.bytes.is_empty() || batch.bytes.ends_with(b"\n"),
                "a batch holds whole lines"
            );
            for line in batch.bytes.split_inclusive(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
        lines
    }

    /// The kinds of the rotations reported, in order.
    pub(crate) fn rotations(&self) -> Vec<RotationKind> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Rotated { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// The file names of the errors reported, with their reasons.
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Error { path, reason } => Some((file_name(path), reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The file names and offsets of the files opened, in order.
    pub(crate) fn opened(&self) -> Vec<(String, u64)> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Opened { path, offset, .. } => Some((file_name(path), *offset)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
