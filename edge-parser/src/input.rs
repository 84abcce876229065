//! Inputs: files, globs and standard input, gzip-compressed or not, cut into chunks of whole
//! lines.
//!
//! A [`LineChunker`] reads an input into caller-owned buffers that end on a line boundary, so
//! that workers can parse chunks independently; it counts lines as it goes and caps their
//! length: a line longer than the limit is not buffered whole but reported, with its first
//! bytes, as too long.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::bufread::MultiGzDecoder;

/// Default size of a chunk handed to a worker.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;
/// Default cap on the length of a line.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 10;
/// How many bytes of an over-long line are kept to show it.
const TOO_LONG_PREFIX: usize = 256;

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl InputSpec {
    /// The name to show: the path, or `-` for standard input.
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "-".to_owned(),
            Self::Path(path) => path.display().to_string(),
        }
    }
}

/// An input that could not be found, opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A glob pattern was malformed.
    #[error("bad pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A glob pattern matched no file.
    #[error("no file matches {pattern:?}")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// A file could not be opened.
    #[error("cannot open {path}: {error}")]
    Open {
        /// The file.
        path: String,
        /// Why (part of the message, not a separate cause: printed once).
        error: io::Error,
    },
    /// An input failed while being read (including corrupt gzip data).
    #[error("cannot read {path}: {error}")]
    Read {
        /// The input.
        path: String,
        /// Why (part of the message, not a separate cause: printed once).
        error: io::Error,
    },
}

/// Expands command-line inputs: `-` is standard input, arguments with glob metacharacters are
/// expanded (sorted), other paths are kept as given. No argument means standard input.
///
/// # Errors
///
/// A malformed pattern, or one that matches nothing.
pub fn expand(args: &[String]) -> Result<Vec<InputSpec>, InputError> {
    if args.is_empty() {
        return Ok(vec![InputSpec::Stdin]);
    }
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(InputSpec::Stdin);
        } else if arg.contains(['*', '?', '[']) {
            let paths = glob::glob(arg).map_err(|error| InputError::BadPattern {
                pattern: arg.clone(),
                reason: error.to_string(),
            })?;
            let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            if matched.is_empty() {
                return Err(InputError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            matched.sort();
            inputs.extend(matched.into_iter().map(InputSpec::Path));
        } else {
            inputs.push(InputSpec::Path(PathBuf::from(arg)));
        }
    }
    Ok(inputs)
}

/// An input to read: named, or already opened (standard input after [`Input::peek`]).
#[derive(Debug)]
pub enum Source {
    /// Opened when its turn comes.
    Spec(InputSpec),
    /// Already open.
    Open(Input),
}

impl Source {
    /// Opens the input if it is not open yet.
    ///
    /// # Errors
    ///
    /// The file cannot be opened.
    pub fn open(self, raw_bytes: Arc<AtomicU64>) -> Result<Input, InputError> {
        match self {
            Self::Spec(spec) => Input::open(&spec, raw_bytes),
            Self::Open(input) => Ok(input),
        }
    }
}

/// An opened input: decompressed if it was gzip, counting the raw bytes read.
pub struct Input {
    /// The name to show.
    pub name: String,
    /// The raw size, when known (files), for progress.
    pub size: Option<u64>,
    reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Opens an input; `raw_bytes` counts the bytes read from it before decompression.
    ///
    /// # Errors
    ///
    /// The file cannot be opened.
    pub fn open(spec: &InputSpec, raw_bytes: Arc<AtomicU64>) -> Result<Self, InputError> {
        let (reader, size): (Box<dyn Read + Send>, _) = match spec {
            InputSpec::Stdin => (Box::new(io::stdin()), None),
            InputSpec::Path(path) => {
                let open_error = |error| InputError::Open {
                    path: path.display().to_string(),
                    error,
                };
                let file = File::open(path).map_err(open_error)?;
                let size = file.metadata().map_err(open_error)?.len();
                (Box::new(file), Some(size))
            }
        };
        Self::from_reader(spec.name(), size, reader, raw_bytes)
    }

    /// Wraps any reader (gzip detected from its first bytes).
    ///
    /// # Errors
    ///
    /// The first bytes cannot be read.
    pub fn from_reader(
        name: String,
        size: Option<u64>,
        reader: Box<dyn Read + Send>,
        raw_bytes: Arc<AtomicU64>,
    ) -> Result<Self, InputError> {
        let mut buffered = BufReader::with_capacity(
            128 << 10,
            Counting {
                inner: reader,
                bytes: raw_bytes,
            },
        );
        let head = buffered.fill_buf().map_err(|error| InputError::Read {
            path: name.clone(),
            error,
        })?;
        let reader: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Self { name, size, reader })
    }

    /// Reads up to `limit` bytes (decompressed) from the input and puts them back: the input
    /// still yields everything. For detecting the format of standard input.
    ///
    /// # Errors
    ///
    /// The input failed to read.
    pub fn peek(&mut self, limit: usize) -> Result<Vec<u8>, InputError> {
        let mut head = Vec::new();
        let read_error = |error| InputError::Read {
            path: self.name.clone(),
            error,
        };
        (&mut self.reader)
            .take(limit as u64)
            .read_to_end(&mut head)
            .map_err(read_error)?;
        let rest = std::mem::replace(&mut self.reader, Box::new(io::empty()));
        self.reader = Box::new(io::Cursor::new(head.clone()).chain(rest));
        Ok(head)
    }

    /// Reads up to `limit` bytes from the start of the file at `path` (decompressed), to detect
    /// a format or find a first timestamp.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or read.
    pub fn head(path: &Path, limit: usize) -> Result<Vec<u8>, InputError> {
        let spec = InputSpec::Path(path.to_owned());
        let input = Self::open(&spec, Arc::default())?;
        let mut head = Vec::new();
        input
            .reader
            .take(limit as u64)
            .read_to_end(&mut head)
            .map_err(|error| InputError::Read {
                path: spec.name(),
                error,
            })?;
        Ok(head)
    }
}

struct Counting {
    inner: Box<dyn Read + Send>,
    bytes: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// A line longer than the limit: where it is, and its first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// Its line number, from 1.
    pub line: u64,
    /// Its first bytes.
    pub prefix: Vec<u8>,
}

/// What [`LineChunker::next_chunk`] put in the buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkInfo {
    /// The number of the buffer's first line, from 1.
    pub first_line: u64,
    /// Over-long lines met before the buffer's lines.
    pub too_long: Vec<TooLong>,
}

/// Cuts an input into buffers of whole lines; see the [module docs](self).
pub struct LineChunker {
    input: Input,
    chunk_bytes: usize,
    max_line_bytes: usize,
    /// The start of a line that did not fit in the previous chunk.
    carry: Vec<u8>,
    next_line: u64,
    eof: bool,
}

impl std::fmt::Debug for LineChunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineChunker")
            .field("input", &self.input)
            .field("next_line", &self.next_line)
            .finish_non_exhaustive()
    }
}

impl LineChunker {
    /// A chunker over `input`.
    pub fn new(input: Input, chunk_bytes: usize, max_line_bytes: usize) -> Self {
        Self {
            input,
            chunk_bytes: chunk_bytes.max(1),
            max_line_bytes: max_line_bytes.max(1),
            carry: Vec::new(),
            next_line: 1,
            eof: false,
        }
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        &self.input.name
    }

    /// The number the next line will have: lines read so far, plus one.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// Fills `buffer` (cleared first) with whole lines, the last one possibly without its
    /// newline at the end of the input. Returns `None` once the input is exhausted.
    ///
    /// # Errors
    ///
    /// The input failed to read.
    pub fn next_chunk(&mut self, buffer: &mut Vec<u8>) -> Result<Option<ChunkInfo>, InputError> {
        buffer.clear();
        let mut info = ChunkInfo {
            first_line: self.next_line,
            too_long: Vec::new(),
        };
        loop {
            buffer.append(&mut self.carry);
            while buffer.len() < self.chunk_bytes && !self.eof {
                self.read_more(buffer)?;
            }
            // A line may run past the chunk size: read on to its end, within the line limit.
            let mut last_newline = memchr::memrchr(b'\n', buffer);
            while last_newline.is_none() && !self.eof && buffer.len() < self.max_line_bytes {
                let scanned = buffer.len();
                self.read_more(buffer)?;
                last_newline = memchr::memrchr(b'\n', &buffer[scanned..]).map(|at| at + scanned);
            }
            let cut = match last_newline {
                Some(last) => last + 1,
                None if self.eof && buffer.len() <= self.max_line_bytes => buffer.len(),
                None => 0,
            };
            self.carry.extend_from_slice(&buffer[cut..]);
            buffer.truncate(cut);
            if !buffer.is_empty() {
                let newlines = memchr::memchr_iter(b'\n', buffer).count() as u64;
                let unterminated = u64::from(buffer.last() != Some(&b'\n'));
                self.next_line += newlines + unterminated;
                return Ok(Some(info));
            }
            if self.carry.is_empty() {
                return Ok((!info.too_long.is_empty()).then_some(info));
            }
            info.too_long.push(self.skip_long_line()?);
            info.first_line = self.next_line;
        }
    }

    fn read_more(&mut self, buffer: &mut Vec<u8>) -> Result<(), InputError> {
        let start = buffer.len();
        let room = if start < self.chunk_bytes {
            self.chunk_bytes - start
        } else {
            self.max_line_bytes.min(64 << 10)
        };
        buffer.resize(start + room.clamp(1, 1 << 20), 0);
        let read = loop {
            match self.input.reader.read(&mut buffer[start..]) {
                Ok(read) => break read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    buffer.truncate(start);
                    return Err(InputError::Read {
                        path: self.input.name.clone(),
                        error,
                    });
                }
            }
        };
        buffer.truncate(start + read);
        self.eof = read == 0;
        Ok(())
    }

    /// Drops the over-long line that `carry` starts, through its newline.
    #[cold]
    fn skip_long_line(&mut self) -> Result<TooLong, InputError> {
        let too_long = TooLong {
            line: self.next_line,
            prefix: self.carry[..TOO_LONG_PREFIX
                .min(self.max_line_bytes)
                .min(self.carry.len())]
                .to_vec(),
        };
        self.next_line += 1;
        let mut scratch = std::mem::take(&mut self.carry);
        loop {
            if let Some(end) = memchr::memchr(b'\n', &scratch) {
                self.carry.extend_from_slice(&scratch[end + 1..]);
                return Ok(too_long);
            }
            if self.eof {
                return Ok(too_long);
            }
            scratch.clear();
            self.read_more(&mut scratch)?;
        }
    }
}

/// Calls `each` with every line of a chunk (without `\n` or `\r\n`) and its number.
#[inline]
pub fn for_each_line(chunk: &[u8], first_line: u64, mut each: impl FnMut(u64, &[u8])) {
    let mut start = 0;
    let mut number = first_line;
    for end in memchr::memchr_iter(b'\n', chunk) {
        each(number, trim_cr(&chunk[start..end]));
        number += 1;
        start = end + 1;
    }
    if start < chunk.len() {
        each(number, trim_cr(&chunk[start..]));
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunker(data: &[u8], chunk_bytes: usize, max_line_bytes: usize) -> LineChunker {
        let input = Input::from_reader(
            "test".to_owned(),
            None,
            Box::new(io::Cursor::new(data.to_vec())),
            Arc::default(),
        )
        .expect("in memory");
        LineChunker::new(input, chunk_bytes, max_line_bytes)
    }

    /// Every line with its number, and the over-long ones.
    fn lines(mut chunker: LineChunker) -> (Vec<(u64, String)>, Vec<TooLong>) {
        let mut buffer = Vec::new();
        let (mut lines, mut too_long) = (Vec::new(), Vec::new());
        while let Some(info) = chunker.next_chunk(&mut buffer).expect("reads") {
            too_long.extend(info.too_long);
            for_each_line(&buffer, info.first_line, |n, line| {
                lines.push((n, String::from_utf8_lossy(line).into_owned()));
            });
        }
        (lines, too_long)
    }

    #[test]
    fn chunks_end_on_line_boundaries_whatever_their_size() {
        let data = b"alpha\nbeta\r\ngamma\n\ndelta";
        for chunk_bytes in [1, 3, 7, 64] {
            let (got, too_long) = lines(chunker(data, chunk_bytes, 1024));
            assert_eq!(
                got,
                [
                    (1, "alpha".to_owned()),
                    (2, "beta".to_owned()),
                    (3, "gamma".to_owned()),
                    (4, String::new()),
                    (5, "delta".to_owned()),
                ],
                "chunk size {chunk_bytes}"
            );
            assert!(too_long.is_empty());
        }
    }

    #[test]
    fn over_long_lines_are_reported_and_skipped() {
        let long = "x".repeat(5000);
        let data = format!("short\n{long}\nafter\n{long}");
        let (got, too_long) = lines(chunker(data.as_bytes(), 64, 100));
        assert_eq!(got, [(1, "short".to_owned()), (3, "after".to_owned())]);
        assert_eq!(too_long.len(), 2);
        assert_eq!((too_long[0].line, too_long[1].line), (2, 4));
        assert_eq!(too_long[0].prefix, vec![b'x'; 100]);
    }

    #[test]
    fn gzip_is_decompressed_transparently() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"one\ntwo\n").expect("compress");
        let compressed = encoder.finish().expect("compress");
        let raw = Arc::new(AtomicU64::new(0));
        let input = Input::from_reader(
            "log.gz".to_owned(),
            None,
            Box::new(io::Cursor::new(compressed.clone())),
            Arc::clone(&raw),
        )
        .expect("in memory");
        let (got, _) = lines(LineChunker::new(input, 1024, 1024));
        assert_eq!(got, [(1, "one".to_owned()), (2, "two".to_owned())]);
        assert_eq!(raw.load(Ordering::Relaxed), compressed.len() as u64);
    }

    #[test]
    fn a_peeked_input_still_yields_everything() {
        let mut input = Input::from_reader(
            "stdin".to_owned(),
            None,
            Box::new(io::Cursor::new(b"first\nsecond\n".to_vec())),
            Arc::default(),
        )
        .expect("in memory");
        assert_eq!(input.peek(3).expect("reads"), b"fir");
        let (got, _) = lines(LineChunker::new(input, 1024, 1024));
        assert_eq!(got, [(1, "first".to_owned()), (2, "second".to_owned())]);
    }

    #[test]
    fn corrupt_gzip_is_a_read_error_naming_the_input() {
        let mut data = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(b"not deflate at all");
        let mut chunker = chunker(&data, 1024, 1024);
        let error = chunker.next_chunk(&mut Vec::new()).unwrap_err();
        assert!(
            error.to_string().starts_with("cannot read test: "),
            "{error}"
        );
    }

    #[test]
    fn globs_expand_sorted_and_refuse_empty_matches() {
        let dir = std::env::temp_dir().join(format!("vantage-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for name in ["b.log", "a.log", "c.txt"] {
            std::fs::write(dir.join(name), "x\n").expect("write");
        }
        let pattern = format!("{}/*.log", dir.display());
        let got = expand(&[pattern, "-".to_owned()]).expect("matches");
        assert_eq!(
            got,
            [
                InputSpec::Path(dir.join("a.log")),
                InputSpec::Path(dir.join("b.log")),
                InputSpec::Stdin,
            ]
        );
        let none = format!("{}/*.gz", dir.display());
        assert_eq!(
            expand(std::slice::from_ref(&none)).unwrap_err().to_string(),
            format!("no file matches {none:?}")
        );
        assert_eq!(expand(&[]).expect("stdin"), [InputSpec::Stdin]);
        let missing = Input::open(&InputSpec::Path(dir.join("missing.log")), Arc::default());
        assert!(missing.unwrap_err().to_string().contains("missing.log"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
