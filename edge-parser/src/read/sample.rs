//! The lines format detection looks at: the first non-blank lines of the inputs, in reading
//! order, across as many inputs as it takes.
//!
//! Empty inputs and blank lines are passed over, and so are lines over the line limit (they
//! are read past with the [line reader](super::LineReader), never buffered whole), so an empty
//! first file or an over-long first line does not hide the lines after it. An input read only
//! once (standard input, a pipe) keeps what was read to hand it out again: it is still read
//! once, and every line of it is still counted.

use super::{Input, InputError, InputSpec, Source, lines};
use crate::format::{DEFAULT_DETECT_LINES, DetectError, Detection, detect_presets};

/// How much each look at an input reads at a time.
const SAMPLE_FILL: usize = 64 << 10;
/// Past this many bytes of one input without enough lines, the sample goes on to the next
/// input: it bounds the time spent on (and, for an input read once, the memory kept for) a
/// log that starts with megabytes of blank lines. (One over-long line is read past whole,
/// its bytes not kept.)
pub(crate) const MAX_SAMPLE_SCAN: usize = 16 << 20;

/// The first non-blank lines of some inputs; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Sample {
    lines: Vec<Vec<u8>>,
    /// The inputs the lines come from, in order.
    inputs: Vec<String>,
}

impl Sample {
    /// Samples up to [`DEFAULT_DETECT_LINES`] non-blank lines of up to `max_line` bytes from
    /// `sources`, in order. Inputs read only once are opened (standard input named in a
    /// [`Source::Spec`] included) and keep what was read; files are opened for a look.
    ///
    /// # Errors
    ///
    /// An input that cannot be opened or read.
    pub(crate) fn take(sources: &mut [Source], max_line: usize) -> Result<Self, InputError> {
        let mut sample = Self::default();
        for source in sources {
            if sample.lines.len() >= DEFAULT_DETECT_LINES {
                break;
            }
            if let Source::Spec(InputSpec::Stdin) = source {
                *source = Source::Open(Input::open(&InputSpec::Stdin, Default::default())?);
            }
            let before = sample.lines.len();
            match source {
                Source::Open(input) => sample.read(input, max_line, true)?,
                Source::Spec(spec) => {
                    let mut input = Input::open(spec, Default::default())?;
                    sample.read(&mut input, max_line, false)?;
                }
            }
            if sample.lines.len() > before {
                sample.inputs.push(source.name());
            }
        }
        Ok(sample)
    }

    /// Adds the first non-blank lines of `input`, up to [`MAX_SAMPLE_SCAN`] bytes into it.
    fn read(&mut self, input: &mut Input, max_line: usize, keep: bool) -> Result<(), InputError> {
        while self.lines.len() < DEFAULT_DETECT_LINES {
            let fill = input.read_ahead(SAMPLE_FILL, max_line, keep)?;
            let wanted = DEFAULT_DETECT_LINES - self.lines.len();
            self.lines.extend(
                lines(fill.lines.as_slice())
                    .filter(|line| !is_blank(line))
                    .take(wanted)
                    .map(<[u8]>::to_vec),
            );
            if fill.done || fill.read >= MAX_SAMPLE_SCAN as u64 {
                break;
            }
        }
        Ok(())
    }

    /// Whether no input had a non-blank line.
    #[cfg(any(test, feature = "serve"))]
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The inputs the lines come from, comma-separated.
    pub(crate) fn inputs(&self) -> String {
        self.inputs.join(", ")
    }

    /// The format of the lines, among the [presets](crate::format::Format::PRESETS).
    ///
    /// # Errors
    ///
    /// [`DetectError`] when there is no line, or no preset or several fit.
    pub(crate) fn detect(&self) -> Result<Detection, DetectError> {
        detect_presets(self.lines.iter().map(Vec::as_slice))
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::format::Format;
    use crate::read::{Chunker, DEFAULT_MAX_LINE_BYTES, Line, LineBuffer, for_each_line};
    use crate::test_support::TempDir;

    const LINE: &str = r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "-" 1 "a@docker" "http://10.0.0.7:80" 3ms"#;

    fn log(lines: usize) -> String {
        format!("{LINE}\n").repeat(lines)
    }

    fn piped(name: &str, data: impl Into<Vec<u8>>) -> Source {
        let reader = Box::new(io::Cursor::new(data.into()));
        Source::Open(
            Input::from_reader(name.to_owned(), None, reader, Default::default())
                .expect("in memory"),
        )
    }

    /// Every line the pipeline would get from `source`: whole lines as text, over-long ones as
    /// `TOO LONG`.
    fn read_all(source: Source) -> Vec<String> {
        let input = source.open(Default::default()).expect("opens");
        let mut chunker = Chunker::new(input, 1 << 20, DEFAULT_MAX_LINE_BYTES);
        let (mut chunk, mut too_long, mut seen) = (LineBuffer::default(), Vec::new(), Vec::new());
        while chunker
            .next_chunk(&mut chunk, &mut too_long)
            .expect("reads")
        {
            for_each_line(chunk.as_slice(), &too_long, 1, |_, line| {
                seen.push(match line {
                    Line::Whole(line) => String::from_utf8_lossy(line).into_owned(),
                    Line::TooLong(_) => "TOO LONG".to_owned(),
                });
            });
        }
        seen
    }

    #[test]
    fn empty_inputs_blank_and_over_long_lines_are_passed_over() {
        let dir = TempDir::new("sample-skips");
        let empty = dir.write("access.log", "");
        let long = format!(
            "{}\n\n \n{}",
            "x".repeat(DEFAULT_MAX_LINE_BYTES + 1),
            log(3)
        );
        let rotated = dir.write("access.log.1", &long);
        let mut sources = vec![
            Source::Spec(InputSpec::Path(empty)),
            Source::Spec(InputSpec::Path(rotated.clone())),
            piped("-", log(100)),
        ];
        let sample = Sample::take(&mut sources, DEFAULT_MAX_LINE_BYTES).expect("reads");
        assert_eq!(sample.lines.len(), DEFAULT_DETECT_LINES);
        assert!(sample.lines.iter().all(|line| line == LINE.as_bytes()));
        assert_eq!(sample.inputs(), format!("{}, -", rotated.display()));
        let detection = sample.detect().expect("detects");
        assert_eq!(
            (detection.format, detection.sampled),
            (Format::TraefikCommon, 64)
        );
    }

    #[test]
    fn an_input_read_once_still_yields_every_line_after_the_sample() {
        let data = format!(
            "\n{}\n{}",
            "y".repeat(3 * SAMPLE_FILL),
            log(3 * DEFAULT_DETECT_LINES)
        );
        let mut sources = vec![piped("-", data)];
        let sample = Sample::take(&mut sources, DEFAULT_MAX_LINE_BYTES).expect("reads");
        assert_eq!(sample.lines.len(), DEFAULT_DETECT_LINES);
        let [source] = <[Source; 1]>::try_from(sources).expect("one source");
        let seen = read_all(source);
        assert_eq!(seen.len(), 2 + 3 * DEFAULT_DETECT_LINES);
        assert_eq!((seen[0].as_str(), seen[1].as_str()), ("", "TOO LONG"));
        assert!(seen[2..].iter().all(|line| line == LINE));
    }

    #[test]
    fn a_short_input_read_once_is_sampled_to_its_end_and_kept_whole() {
        let mut sources = vec![piped("a", log(2)), piped("b", log(1))];
        let sample = Sample::take(&mut sources, DEFAULT_MAX_LINE_BYTES).expect("reads");
        assert_eq!((sample.lines.len(), sample.inputs().as_str()), (3, "a, b"));
        let counts: Vec<usize> = sources.into_iter().map(|s| read_all(s).len()).collect();
        assert_eq!(counts, [2, 1]);
    }

    #[test]
    fn no_line_anywhere_is_an_empty_sample() {
        let mut sources = vec![piped("a", "\n\n"), piped("b", "")];
        let sample = Sample::take(&mut sources, DEFAULT_MAX_LINE_BYTES).expect("reads");
        assert!(sample.is_empty());
        assert_eq!(sample.detect(), Err(DetectError::NoLines));
        assert_eq!(read_all(sources.remove(0)), ["", ""]);
    }
}
