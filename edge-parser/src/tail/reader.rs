//! The lines of one followed file: positioned reads through the shared
//! [line reader](crate::read), into batches.

use std::fs::File;
use std::io;
use std::mem;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::follow::Tracked;
use super::types::{Batch, TailConfig};
use crate::read::{AtEnd, LineBuffer};

/// Largest single read when looking for the end of a file's last line.
const READ_CHUNK: usize = 64 << 10;

/// Buffers reused from poll to poll.
#[derive(Debug, Default)]
pub(super) struct Buffers {
    pub(super) chunk: Vec<u8>,
    pub(super) head: Vec<u8>,
    pub(super) batch: Vec<u8>,
    pub(super) spares: Option<Receiver<Vec<u8>>>,
}

impl Buffers {
    pub(super) fn take_batch(&mut self) -> Vec<u8> {
        let mut batch = mem::take(&mut self.batch);
        if batch.capacity() == 0
            && let Some(spare) = self.spares.as_ref().and_then(|s| s.try_recv().ok())
        {
            batch = spare;
        }
        batch.clear();
        batch
    }
}

/// The offset just past the last newline among the first `size` bytes of a file (0 when
/// there is none): where its unfinished last line, if any, starts.
pub(super) fn end_of_last_line(file: &File, size: u64, buffer: &mut Vec<u8>) -> io::Result<u64> {
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(READ_CHUNK as u64);
        buffer.resize((end - start) as usize, 0);
        file.read_exact_at(buffer, start)?;
        if let Some(at) = memchr::memrchr(b'\n', buffer) {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads complete lines from the file's offset until the batch is full or the end of the
/// file. Returns the batch (if the offset moved) and whether the end was reached.
pub(super) fn read_batch(
    file: &mut Tracked,
    buffers: &mut Buffers,
    config: &TailConfig,
) -> io::Result<(Option<Batch>, bool)> {
    let start_offset = file.lines.offset();
    let mut bytes = LineBuffer::from_vec(buffers.take_batch());
    let mut too_long = Vec::new();
    let mut at = FileAt {
        file: &file.file,
        offset: file.lines.read_offset(),
    };
    let filled = file.lines.fill(
        &mut at,
        &mut bytes,
        config.batch_bytes,
        AtEnd::Wait,
        &mut too_long,
    );
    let bytes = bytes.into_vec();
    let end = match filled {
        Ok(end) => end,
        Err(error) => {
            buffers.batch = bytes;
            return Err(error);
        }
    };
    if file.lines.offset() == start_offset {
        buffers.batch = bytes;
        return Ok((None, end));
    }
    let batch = Batch {
        path: Arc::clone(&file.path),
        identity: file.identity,
        start_offset,
        end_offset: file.lines.offset(),
        bytes,
        too_long,
    };
    Ok((Some(batch), end))
}

/// A file read from an offset with positioned reads: the handle's own position is never used.
struct FileAt<'a> {
    file: &'a File,
    offset: u64,
}

impl io::Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}
