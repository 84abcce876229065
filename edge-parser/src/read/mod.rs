//! Reading lines: one bounded line reader and one line splitter, used by `report` and `serve`
//! alike.
//!
//! The reader fills reused buffers with whole lines from any byte source (a file read once, a
//! gzip stream, standard input, or a followed file read with positioned reads), carries the
//! start of an unfinished line to the next fill, and caps the length of a line: a line longer
//! than the limit ([`DEFAULT_MAX_LINE_BYTES`] by default) is never buffered whole but skipped
//! as it is read and reported as a [`TooLong`] with its first [`TOO_LONG_PREFIX`] bytes, before
//! the lines that follow it. [`lines`] splits a buffer into lines, without `\n` or `\r\n`.
//!
//! # Example
//!
//! ```
//! use vantage_edge::read::lines;
//!
//! let buffer = b"GET /a 200\r\nGET /b 404\n";
//! assert_eq!(lines(buffer).collect::<Vec<_>>(), [&b"GET /a 200"[..], b"GET /b 404"]);
//! ```

mod input;
mod lines;
mod sample;

pub use input::InputError;
pub(crate) use input::{Chunker, Input, InputSpec, Source, expand};
pub(crate) use lines::{AtEnd, Line, LineBuffer, LineReader, for_each_line};
pub use lines::{DEFAULT_MAX_LINE_BYTES, TOO_LONG_PREFIX, TooLong, lines};
pub(crate) use sample::Sample;
