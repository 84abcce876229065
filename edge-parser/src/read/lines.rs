//! The one bounded line reader: whole lines from any byte source into reused buffers, with a
//! cap on the length of a line, for `report` (files, pipes, gzip) and `serve` (followed files)
//! alike.

use std::io::{self, Read};

/// Default cap on the length of a line, without its newline.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 10;
/// How many bytes of an over-long line are kept to show it.
pub const TOO_LONG_PREFIX: usize = 256;
/// Largest single read.
const MAX_READ: usize = 64 << 10;
/// The read that finishes the last line of a full buffer: small, so little is carried over.
const FINISH_READ: usize = 4 << 10;

/// A line longer than the reader's limit: skipped as it is read (never buffered whole) and
/// reported with its first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// The offset of its first byte in its input.
    pub offset: u64,
    /// Its first bytes (at most [`TOO_LONG_PREFIX`]).
    pub prefix: Vec<u8>,
}

/// The lines of `buf`, split on `\n`, without the `\n` nor a `\r` just before it. A last line
/// without `\n` is yielded too, so pass a buffer that ends on a line boundary.
///
/// ```
/// let lines: Vec<&[u8]> = vantage_edge::read::lines(b"a\r\n\nb").collect();
/// assert_eq!(lines, [&b"a"[..], b"", b"b"]);
/// ```
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, after) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &[][..]),
        };
        rest = after;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// What a buffer filled by a [`LineReader`] holds, in input order: the over-long lines met
/// before its lines, then its lines.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Line<'a> {
    /// A line, without its line ending.
    Whole(&'a [u8]),
    /// An over-long line's first bytes.
    TooLong(&'a [u8]),
}

/// Calls `each` with every line of a buffer the reader filled, the over-long lines first,
/// numbered from `first_line`; returns how many there were.
#[inline]
pub(crate) fn for_each_line(
    bytes: &[u8],
    too_long: &[TooLong],
    first_line: u64,
    mut each: impl FnMut(u64, Line<'_>),
) -> u64 {
    let mut number = first_line;
    for line in too_long {
        each(number, Line::TooLong(&line.prefix));
        number += 1;
    }
    for line in lines(bytes) {
        each(number, Line::Whole(line));
        number += 1;
    }
    number - first_line
}

/// A buffer reused from fill to fill: its storage is zeroed once, when it grows, not before
/// every read.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    storage: Vec<u8>,
    len: usize,
}

impl LineBuffer {
    /// A buffer for fills of `target` bytes: room for the target and the read that finishes
    /// its last line, so that it never grows in the common case.
    pub(crate) fn for_fills(target: usize) -> Self {
        Self {
            storage: vec![0; target + FINISH_READ],
            len: 0,
        }
    }

    /// A buffer holding `bytes`.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        Self {
            len: bytes.len(),
            storage: bytes,
        }
    }

    /// The bytes, as a `Vec` of exactly their length.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.storage.truncate(self.len);
        self.storage
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.storage[..self.len]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes that fit after the content without growing the buffer.
    fn free(&self) -> usize {
        self.storage.capacity() - self.len
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// At least `room` writable bytes after the content.
    fn spare(&mut self, room: usize) -> &mut [u8] {
        let needed = self.len + room;
        if self.storage.len() < needed {
            // Within the capacity a recycled buffer came with, no reallocation; past it, room
            // for one more read.
            let size = if needed <= self.storage.capacity() {
                self.storage.capacity()
            } else {
                needed + MAX_READ
            };
            self.storage.resize(size, 0);
        }
        &mut self.storage[self.len..needed]
    }

    fn advance(&mut self, read: usize) {
        self.len += read;
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Removes the first `count` bytes.
    fn drain_front(&mut self, count: usize) {
        self.storage.copy_within(count..self.len, 0);
        self.len -= count;
    }
}

/// What the input does when it has nothing more to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtEnd {
    /// It may grow (a followed file): an unfinished last line waits for its newline.
    Wait,
    /// It has ended (a file read once, a pipe closed): its unfinished last line is a line.
    Finish,
}

/// What [`LineReader::scan`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Continue,
    /// An over-long line ended after lines already in the buffer: it is reported at the start
    /// of the next fill, so that over-long lines always come before a buffer's lines.
    Stop,
}

/// Reads whole lines from a byte source into [`LineBuffer`]s.
///
/// Each [`fill`](Self::fill) appends whole lines (each ending in `\n`, the last line of a
/// finished input possibly without) and reports the over-long lines met before them; the start
/// of an unfinished line is carried to the next fill. Memory is the buffer plus at most one
/// line limit of carry: a line longer than [`max_line`](Self::new) is not buffered but skipped
/// as it is read, keeping its first [`TOO_LONG_PREFIX`] bytes.
///
/// Reads are at most one line limit long, so a line that lies whole within one read is never
/// over the limit: only the line that continues from the previous read, and the one that
/// continues to the next, need measuring, and no read is scanned line by line.
#[derive(Debug)]
pub(crate) struct LineReader {
    max_line: usize,
    /// The offset just past the last line handed out or reported: where the carry starts (or
    /// the over-long line being skipped).
    offset: u64,
    /// The start of an unfinished line; after a [`Scan::Stop`], whole lines too.
    carry: Vec<u8>,
    /// The first bytes of an over-long line being skipped, which starts at `offset`.
    discard: Option<Vec<u8>>,
    /// An over-long line to report at the next fill, and the offset just past it.
    pending: Option<(TooLong, u64)>,
    /// The offset of the next byte to read.
    read_offset: u64,
}

impl LineReader {
    /// A reader of lines up to `max_line` bytes (without the newline) from an input whose
    /// next byte is at `offset`.
    pub(crate) fn new(max_line: usize, offset: u64) -> Self {
        Self {
            max_line: max_line.max(1),
            offset,
            carry: Vec::new(),
            discard: None,
            pending: None,
            read_offset: offset,
        }
    }

    /// The offset just past the last line handed out or reported: where to resume.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The offset of the next byte to read from the source.
    pub(crate) fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// The line limit.
    pub(crate) fn max_line(&self) -> usize {
        self.max_line
    }

    /// Fills `out` (emptied first) with whole lines from `source`: at least `target` bytes of
    /// them, ending at the first line end from there, unless the source has nothing more;
    /// over-long lines met before those lines are appended to `too_long`. Returns whether the source had nothing
    /// more (for [`AtEnd::Finish`], everything has then been handed out).
    ///
    /// # Errors
    ///
    /// The source failed to read.
    pub(crate) fn fill(
        &mut self,
        source: &mut (impl Read + ?Sized),
        out: &mut LineBuffer,
        target: usize,
        at_end: AtEnd,
        too_long: &mut Vec<TooLong>,
    ) -> io::Result<bool> {
        let target = target.max(1);
        out.clear();
        if let Some((line, end)) = self.pending.take() {
            too_long.push(line);
            self.offset = end;
        }
        let mut line_start = 0;
        if !self.carry.is_empty() {
            let from = out.len();
            out.extend(&self.carry);
            self.carry.clear();
            if self.scan(out, from, &mut line_start, too_long) == Scan::Stop {
                return Ok(false);
            }
        }
        loop {
            if line_start >= target {
                self.cut(out, line_start, target);
                return Ok(false);
            }
            let room = if out.len() < target {
                target - out.len()
            } else {
                // Finishing the last line: within the buffer's room when it has some.
                match out.free() {
                    0 => FINISH_READ,
                    free => free.min(FINISH_READ),
                }
            };
            let room = room.clamp(1, self.max_line.min(MAX_READ));
            let read = loop {
                match source.read(out.spare(room)) {
                    Ok(read) => break read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        self.carry.extend_from_slice(&out.as_slice()[line_start..]);
                        out.truncate(line_start);
                        return Err(error);
                    }
                }
            };
            if read == 0 {
                return Ok(self.at_end(out, line_start, at_end, too_long));
            }
            let from = out.len();
            out.advance(read);
            self.read_offset += read as u64;
            if self.scan(out, from, &mut line_start, too_long) == Scan::Stop {
                return Ok(false);
            }
        }
    }

    /// Ends a fill whose whole lines reach `target`: at the first line end from `target` on,
    /// carrying the rest to the next fill (while skipping a line, the buffer ends where it
    /// starts, so the whole lines all stay).
    fn cut(&mut self, out: &mut LineBuffer, line_start: usize, target: usize) {
        let bytes = out.as_slice();
        let cut = match self.discard {
            Some(_) => line_start,
            None => memchr::memchr(b'\n', &bytes[target - 1..line_start])
                .map_or(line_start, |at| target + at),
        };
        self.carry.extend_from_slice(&bytes[cut..]);
        if self.discard.is_none() {
            self.offset -= (line_start - cut) as u64;
        }
        out.truncate(cut);
    }

    /// The source has nothing more for now.
    fn at_end(
        &mut self,
        out: &mut LineBuffer,
        line_start: usize,
        at_end: AtEnd,
        too_long: &mut Vec<TooLong>,
    ) -> bool {
        match (at_end, self.discard.take()) {
            (AtEnd::Wait, discard) => {
                self.discard = discard;
                self.carry.extend_from_slice(&out.as_slice()[line_start..]);
                out.truncate(line_start);
                true
            }
            (AtEnd::Finish, Some(prefix)) => {
                let line = TooLong {
                    offset: self.offset,
                    prefix,
                };
                if line_start == 0 {
                    too_long.push(line);
                    self.offset = self.read_offset;
                    true
                } else {
                    self.pending = Some((line, self.read_offset));
                    false
                }
            }
            (AtEnd::Finish, None) => {
                self.offset += (out.len() - line_start) as u64;
                true
            }
        }
    }

    /// Takes in `out[from..]`, just read: moves `line_start` past the whole lines, skips
    /// over-long ones.
    fn scan(
        &mut self,
        out: &mut LineBuffer,
        mut from: usize,
        line_start: &mut usize,
        too_long: &mut Vec<TooLong>,
    ) -> Scan {
        if let Some(prefix) = &mut self.discard {
            let new = &out.as_slice()[from..];
            let Some(newline) = memchr::memchr(b'\n', new) else {
                extend_prefix(prefix, new);
                out.truncate(from);
                return Scan::Continue;
            };
            extend_prefix(prefix, &new[..newline]);
            let line = TooLong {
                offset: self.offset,
                prefix: std::mem::take(prefix),
            };
            self.discard = None;
            let end = self.read_offset - (new.len() - newline - 1) as u64;
            if let Scan::Stop = self.skipped(out, line, end, from + newline, line_start, too_long) {
                return Scan::Stop;
            }
            from = *line_start;
        }
        loop {
            let bytes = out.as_slice();
            let Some(first) = memchr::memchr(b'\n', &bytes[from..]).map(|at| from + at) else {
                if bytes.len() - *line_start > self.max_line {
                    self.discard = Some(prefix_of(&bytes[*line_start..]));
                    out.truncate(*line_start);
                }
                return Scan::Continue;
            };
            if first - *line_start > self.max_line {
                let line = TooLong {
                    offset: self.offset,
                    prefix: prefix_of(&bytes[*line_start..first]),
                };
                let end = self.offset + (first + 1 - *line_start) as u64;
                if let Scan::Stop = self.skipped(out, line, end, first, line_start, too_long) {
                    return Scan::Stop;
                }
                from = *line_start;
                continue;
            }
            // Lines that lie whole within this read are shorter than a read.
            let last = memchr::memrchr(b'\n', &bytes[first..]).map_or(first, |at| first + at);
            self.offset += (last + 1 - *line_start) as u64;
            *line_start = last + 1;
            return Scan::Continue;
        }
    }

    /// An over-long line ended at `out[newline]` (its kept bytes start at `line_start`), and
    /// the input just past it is at `end`.
    fn skipped(
        &mut self,
        out: &mut LineBuffer,
        line: TooLong,
        end: u64,
        newline: usize,
        line_start: &mut usize,
        too_long: &mut Vec<TooLong>,
    ) -> Scan {
        if *line_start == 0 {
            too_long.push(line);
            out.drain_front(newline + 1);
            self.offset = end;
            Scan::Continue
        } else {
            self.carry.extend_from_slice(&out.as_slice()[newline + 1..]);
            out.truncate(*line_start);
            self.pending = Some((line, end));
            Scan::Stop
        }
    }
}

/// The first [`TOO_LONG_PREFIX`] bytes of `line`.
fn prefix_of(line: &[u8]) -> Vec<u8> {
    line[..line.len().min(TOO_LONG_PREFIX)].to_vec()
}

/// Adds the start of `more` to `prefix`, up to [`TOO_LONG_PREFIX`] bytes in all.
fn extend_prefix(prefix: &mut Vec<u8>, more: &[u8]) {
    let room = TOO_LONG_PREFIX.saturating_sub(prefix.len());
    prefix.extend_from_slice(&more[..more.len().min(room)]);
}

#[cfg(test)]
mod tests;
