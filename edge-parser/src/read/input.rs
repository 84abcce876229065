//! Inputs: files, globs and standard input, gzip-compressed or not.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::lines::{AtEnd, LineBuffer, LineReader, TooLong};

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputSpec {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl InputSpec {
    /// The name to show: the path, or `-` for standard input.
    pub(crate) fn name(&self) -> String {
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
pub(crate) fn expand(args: &[String]) -> Result<Vec<InputSpec>, InputError> {
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

/// An input to read: named, or already opened (one that can be read only once, such as
/// standard input, after [`Input::peek`]).
#[derive(Debug)]
pub(crate) enum Source {
    /// Opened when its turn comes.
    Spec(InputSpec),
    /// Already open.
    Open(Input),
}

impl Source {
    /// Opens the input if it is not open yet.
    pub(crate) fn open(self, raw_bytes: Arc<AtomicU64>) -> Result<Input, InputError> {
        match self {
            Self::Spec(spec) => Input::open(&spec, raw_bytes),
            Self::Open(input) => Ok(input),
        }
    }

    /// The name to show.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Spec(spec) => spec.name(),
            Self::Open(input) => input.name.clone(),
        }
    }

    /// The raw size of a file not open yet (for progress), 0 when unknown.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Self::Spec(InputSpec::Path(path)) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Self::Spec(InputSpec::Stdin) => 0,
            Self::Open(input) => input.size.unwrap_or(0),
        }
    }
}

/// An opened input: decompressed if it was gzip, counting the raw bytes read.
pub(crate) struct Input {
    /// The name to show.
    pub(crate) name: String,
    /// The raw size, when known (files), for progress.
    pub(crate) size: Option<u64>,
    reader: Box<dyn Read + Send>,
    /// Lines already read from `reader` (to sample them), still to be handed out.
    ahead: Option<ReadAhead>,
}

/// What one [`Input::read_ahead`] read.
#[derive(Debug)]
pub(crate) struct ReadAheadFill<'a> {
    /// The whole lines read.
    pub(crate) lines: &'a LineBuffer,
    /// The input had nothing more.
    pub(crate) done: bool,
    /// The bytes read from the input so far (decompressed).
    pub(crate) read: u64,
}

/// The lines read ahead from an input read only once: the fills made so far, in order, and the
/// reader that made them, which goes on from there.
#[derive(Debug)]
struct ReadAhead {
    lines: LineReader,
    fills: VecDeque<(LineBuffer, Vec<TooLong>)>,
    /// The input had nothing more.
    done: bool,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("ahead", &self.ahead)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Opens an input; `raw_bytes` counts the bytes read from it before decompression.
    pub(crate) fn open(spec: &InputSpec, raw_bytes: Arc<AtomicU64>) -> Result<Self, InputError> {
        let path = match spec {
            InputSpec::Stdin => {
                return Self::from_reader(spec.name(), None, Box::new(io::stdin()), raw_bytes);
            }
            InputSpec::Path(path) => path,
        };
        let open_error = |error| InputError::Open {
            path: spec.name(),
            error,
        };
        let file = File::open(path).map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        if !metadata.is_file() {
            // A pipe or a device can be read only once: sniffed through a buffer.
            return Self::from_reader(spec.name(), None, Box::new(file), raw_bytes);
        }
        // A regular file is sniffed with a positioned read and then read directly, with no
        // buffer in between: a plain log is copied once, from the page cache to the chunk.
        let mut magic = [0; 2];
        let sniffed = file
            .read_at(&mut magic, 0)
            .map_err(|error| InputError::Read {
                path: spec.name(),
                error,
            })?;
        let counting = Counting {
            inner: Box::new(file),
            bytes: raw_bytes,
        };
        let reader: Box<dyn Read + Send> = if sniffed == 2 && magic == GZIP_MAGIC {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                128 << 10,
                counting,
            )))
        } else {
            Box::new(counting)
        };
        Ok(Self {
            name: spec.name(),
            size: Some(metadata.len()),
            reader,
            ahead: None,
        })
    }

    /// Wraps a reader that can be read only once (gzip detected from its first bytes).
    pub(crate) fn from_reader(
        name: String,
        size: Option<u64>,
        reader: Box<dyn Read + Send>,
        raw_bytes: Arc<AtomicU64>,
    ) -> Result<Self, InputError> {
        let mut counting = Counting {
            inner: reader,
            bytes: raw_bytes,
        };
        let mut head = Vec::with_capacity(GZIP_MAGIC.len());
        (&mut counting)
            .take(GZIP_MAGIC.len() as u64)
            .read_to_end(&mut head)
            .map_err(|error| InputError::Read {
                path: name.clone(),
                error,
            })?;
        let gzip = head == GZIP_MAGIC;
        let whole = io::Cursor::new(head).chain(counting);
        let reader: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                128 << 10,
                whole,
            )))
        } else {
            Box::new(whole)
        };
        Ok(Self {
            name,
            size,
            reader,
            ahead: None,
        })
    }

    /// Reads up to `limit` bytes (decompressed) from the input and puts them back: the input
    /// still yields everything. For detecting the format of an input read only once.
    pub(crate) fn peek(&mut self, limit: usize) -> Result<Vec<u8>, InputError> {
        let mut head = Vec::new();
        (&mut self.reader)
            .take(limit as u64)
            .read_to_end(&mut head)
            .map_err(|error| InputError::Read {
                path: self.name.clone(),
                error,
            })?;
        let rest = std::mem::replace(&mut self.reader, Box::new(io::empty()));
        self.reader = Box::new(io::Cursor::new(head.clone()).chain(rest));
        Ok(head)
    }

    /// Reads up to `limit` bytes from the start of the file at `path` (decompressed), to detect
    /// a format or find a first timestamp.
    pub(crate) fn head(path: &Path, limit: usize) -> Result<Vec<u8>, InputError> {
        let spec = InputSpec::Path(path.to_owned());
        let mut input = Self::open(&spec, Arc::default())?;
        input.peek(limit)
    }

    /// Reads the next lines (`target` bytes of them, at least) with a reader of lines up to
    /// `max_line` bytes. With `keep`, they are kept to be handed out again by the [`Chunker`] (for
    /// an input read only once); without, they are read past (a file opened for a look).
    pub(crate) fn read_ahead(
        &mut self,
        target: usize,
        max_line: usize,
        keep: bool,
    ) -> Result<ReadAheadFill<'_>, InputError> {
        let ahead = self.ahead.get_or_insert_with(|| ReadAhead {
            lines: LineReader::new(max_line, 0),
            fills: VecDeque::new(),
            done: false,
        });
        let mut buffer = LineBuffer::default();
        let mut too_long = Vec::new();
        if !ahead.done {
            ahead.done = ahead
                .lines
                .fill(
                    &mut *self.reader,
                    &mut buffer,
                    target,
                    AtEnd::Finish,
                    &mut too_long,
                )
                .map_err(|error| InputError::Read {
                    path: self.name.clone(),
                    error,
                })?;
        }
        if !keep {
            ahead.fills.clear();
        }
        ahead.fills.push_back((buffer, too_long));
        let (done, read) = (ahead.done, ahead.lines.read_offset());
        let (lines, _) = ahead.fills.back().expect("just pushed");
        Ok(ReadAheadFill { lines, done, read })
    }

    /// The decompressed bytes.
    #[cfg(test)]
    fn reader(&mut self) -> &mut (dyn Read + Send) {
        &mut *self.reader
    }
}

/// Cuts an input into chunks of whole lines with the [`LineReader`].
#[derive(Debug)]
pub(crate) struct Chunker {
    input: Input,
    lines: LineReader,
    /// Fills read ahead, handed out first.
    ahead: VecDeque<(LineBuffer, Vec<TooLong>)>,
    chunk_bytes: usize,
    done: bool,
}

impl Chunker {
    /// Cuts `input` into chunks of about `chunk_bytes`, lines over `max_line_bytes` reported as
    /// too long (unless lines were read ahead: they go on with the reader that read them).
    pub(crate) fn new(mut input: Input, chunk_bytes: usize, max_line_bytes: usize) -> Self {
        let (lines, fills, done) = match input.ahead.take() {
            Some(ahead) => (ahead.lines, ahead.fills, ahead.done),
            None => (LineReader::new(max_line_bytes, 0), VecDeque::new(), false),
        };
        Self {
            input,
            lines,
            ahead: fills,
            chunk_bytes,
            done,
        }
    }

    /// Fills `chunk` with the next lines and `too_long` (emptied first) with the over-long
    /// lines before them; `false` once the input is exhausted.
    pub(crate) fn next_chunk(
        &mut self,
        chunk: &mut LineBuffer,
        too_long: &mut Vec<TooLong>,
    ) -> Result<bool, InputError> {
        too_long.clear();
        chunk.clear();
        while let Some((bytes, lines)) = self.ahead.pop_front() {
            if !bytes.is_empty() || !lines.is_empty() {
                *chunk = bytes;
                *too_long = lines;
                return Ok(true);
            }
        }
        if self.done {
            return Ok(false);
        }
        let reader = &mut *self.input.reader;
        self.done = self
            .lines
            .fill(reader, chunk, self.chunk_bytes, AtEnd::Finish, too_long)
            .map_err(|error| InputError::Read {
                path: self.input.name.clone(),
                error,
            })?;
        Ok(!chunk.is_empty() || !too_long.is_empty())
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::test_support::TempDir;

    #[test]
    fn gzip_is_decompressed_transparently_from_files_and_pipes() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"one\ntwo\n").expect("compress");
        let compressed = encoder.finish().expect("compress");
        let raw = Arc::new(AtomicU64::new(0));
        let mut piped = Input::from_reader(
            "log.gz".to_owned(),
            None,
            Box::new(io::Cursor::new(compressed.clone())),
            Arc::clone(&raw),
        )
        .expect("in memory");
        let mut text = String::new();
        piped.reader().read_to_string(&mut text).expect("reads");
        assert_eq!(text, "one\ntwo\n");
        assert_eq!(raw.load(Ordering::Relaxed), compressed.len() as u64);

        let dir = TempDir::new("input-gzip");
        let path = dir.write("access.log.gz", &compressed);
        let mut file = Input::open(&InputSpec::Path(path), Arc::default()).expect("opens");
        let mut text = String::new();
        file.reader().read_to_string(&mut text).expect("reads");
        assert_eq!(text, "one\ntwo\n");
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
        let mut text = String::new();
        input.reader().read_to_string(&mut text).expect("reads");
        assert_eq!(text, "first\nsecond\n");
    }

    #[test]
    fn corrupt_gzip_is_a_read_error_naming_the_input() {
        let mut data = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(b"not deflate at all");
        let input = Input::from_reader(
            "test".to_owned(),
            None,
            Box::new(io::Cursor::new(data)),
            Arc::default(),
        )
        .expect("the magic is read");
        let mut chunker = Chunker::new(input, 1024, 1024);
        let error = chunker
            .next_chunk(&mut LineBuffer::default(), &mut Vec::new())
            .unwrap_err();
        assert!(
            error.to_string().starts_with("cannot read test: "),
            "{error}"
        );
    }

    #[test]
    fn globs_expand_sorted_and_refuse_empty_matches() {
        let dir = TempDir::new("input-globs");
        for name in ["b.log", "a.log", "c.txt"] {
            dir.write(name, "x\n");
        }
        let pattern = format!("{}/*.log", dir.path().display());
        let got = expand(&[pattern, "-".to_owned()]).expect("matches");
        assert_eq!(
            got,
            [
                InputSpec::Path(dir.join("a.log")),
                InputSpec::Path(dir.join("b.log")),
                InputSpec::Stdin,
            ]
        );
        let none = format!("{}/*.gz", dir.path().display());
        assert_eq!(
            expand(std::slice::from_ref(&none)).unwrap_err().to_string(),
            format!("no file matches {none:?}")
        );
        assert_eq!(expand(&[]).expect("stdin"), [InputSpec::Stdin]);
        let missing = Input::open(&InputSpec::Path(dir.join("missing.log")), Arc::default());
        assert!(missing.unwrap_err().to_string().contains("missing.log"));
    }
}
