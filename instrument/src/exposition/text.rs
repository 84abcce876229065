//! Reading a Prometheus text exposition (format 0.0.4, and the sample lines of OpenMetrics): what
//! a service's `/metrics` answers.
//!
//! Every sample line is read into a [`Sample`] borrowing the text (label values are copied only
//! when they hold an escape); `#` lines (help, type, comments) and blank lines are skipped. A
//! malformed line is an [`ExpositionError`] naming its line number and what is wrong, and the
//! reader goes on with the next line, so one bad line costs one sample, not the scrape. The text
//! is untrusted (any service's endpoint): lines and label lists are bounded, nothing panics (a
//! property test feeds arbitrary text).
//!
//! ```
//! use vantage_instrument::exposition::text::samples;
//!
//! let text = "# TYPE x counter\nx_total{route=\"/a\",code=\"200\"} 3\n";
//! let sample = samples(text).next().unwrap()?;
//! assert_eq!(sample.name, "x_total");
//! assert_eq!(sample.label("route").as_deref(), Some("/a"));
//! assert_eq!(sample.value, 3.0);
//! # Ok::<(), vantage_instrument::exposition::text::ExpositionError>(())
//! ```

use std::borrow::Cow;

/// The longest sample line read; longer ones are errors (a route label is at most a few hundred
/// bytes; a line of megabytes is an attack or a bug).
pub const MAX_LINE_BYTES: usize = 16 << 10;

/// The most labels a sample may have.
pub const MAX_LABELS: usize = 32;

/// One sample: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name, with its `_bucket`, `_sum`, `_count` or `_total` suffix.
    pub name: &'a str,
    /// The labels in the order written.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<Cow<'_, str>> {
        self.labels
            .iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| Cow::Borrowed(value.as_ref()))
    }
}

/// A line that is not a sample, a comment or blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExpositionError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The samples of `text`, in order, one item per line that is not a comment or blank.
pub fn samples(text: &str) -> impl Iterator<Item = Result<Sample<'_>, ExpositionError>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(index, line)| {
            sample(line).map_err(|reason| ExpositionError {
                line: index + 1,
                reason,
            })
        })
}

fn sample(line: &str) -> Result<Sample<'_>, &'static str> {
    if line.len() > MAX_LINE_BYTES {
        return Err("longer than the limit");
    }
    let line = line.trim_start();
    let name_end = line.find(['{', ' ', '\t']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("not a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = read_labels(inside, &mut labels)?;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    // An optional timestamp (an integer), then an optional OpenMetrics exemplar (`# {...} v`).
    match fields.next() {
        None => {}
        Some("#") => {}
        Some(timestamp) => {
            timestamp
                .parse::<i64>()
                .map_err(|_| "a timestamp that is not an integer")?;
            if fields.next().is_some_and(|field| field != "#") {
                return Err("text after the timestamp");
            }
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Reads `name="value",...}` into `labels`; returns what follows the `}`.
fn read_labels<'a>(
    mut inside: &'a str,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<&'a str, &'static str> {
    loop {
        inside = inside.trim_start();
        if let Some(after) = inside.strip_prefix('}') {
            return Ok(after);
        }
        let equals = inside.find('=').ok_or("a label without a value")?;
        let name = inside[..equals].trim();
        if !is_label_name(name) {
            return Err("not a label name");
        }
        let quoted = inside[equals + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value that is not quoted")?;
        let (value, after) = read_quoted(quoted)?;
        if labels.len() == MAX_LABELS {
            return Err("more labels than the limit");
        }
        labels.push((name, value));
        inside = after.trim_start();
        if let Some(after) = inside.strip_prefix(',') {
            inside = after;
        } else if !inside.starts_with('}') {
            return Err("labels not separated by commas");
        }
    }
}

/// Reads a label value up to its closing quote; returns it (unescaped) and what follows.
fn read_quoted(text: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut owned: Option<String> = None;
    let mut copied_to = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let value = match owned {
                    Some(mut value) => {
                        value.push_str(&text[copied_to..at]);
                        Cow::Owned(value)
                    }
                    None => Cow::Borrowed(&text[..at]),
                };
                return Ok((value, &text[at + 1..]));
            }
            b'\\' => {
                let escaped = match bytes.get(at + 1) {
                    Some(b'n') => '\n',
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    _ => return Err("an unknown escape in a label value"),
                };
                let value = owned.get_or_insert_with(String::new);
                value.push_str(&text[copied_to..at]);
                value.push(escaped);
                at += 2;
                copied_to = at;
            }
            _ => at += 1,
        }
    }
    Err("a label value without its closing quote")
}

pub(crate) fn parse_value(text: &str) -> Result<f64, &'static str> {
    // Counts are integers: read as such, a third of the time of a float.
    if text.len() < 16 && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(|n| n as f64)
            .map_err(|_| "a value that is not a number");
    }
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        text => text.parse().map_err(|_| "a value that is not a number"),
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_' || first == b':')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Sample<'_>, ExpositionError> {
        samples(line).next().expect("a sample line")
    }

    #[test]
    fn samples_with_and_without_labels_timestamps_and_exemplars() {
        let text = "# HELP h Duration.\n# TYPE h histogram\n\
            h_bucket{le=\"0.005\",http_route=\"/users/{id}\"} 7\n\
            h_bucket{le=\"+Inf\",http_route=\"/users/{id}\"} 9 1700000000000\n\
            h_count{http_route=\"/users/{id}\",} 9\n\
            \n\
            up 1\n\
            x_total{a=\"1\"} 2 # {trace_id=\"abc\"} 1.0\n";
        let read: Vec<_> = samples(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), 5);
        assert_eq!(read[0].name, "h_bucket");
        assert_eq!(read[0].label("le").as_deref(), Some("0.005"));
        assert_eq!(read[0].label("http_route").as_deref(), Some("/users/{id}"));
        assert_eq!(read[0].value, 7.0);
        assert_eq!(read[1].label("le").as_deref(), Some("+Inf"));
        assert_eq!(read[1].value, 9.0);
        assert_eq!(read[2].labels.len(), 1, "a trailing comma is allowed");
        assert_eq!(read[3].name, "up");
        assert!(read[3].labels.is_empty());
        assert_eq!(read[4].value, 2.0);
    }

    #[test]
    fn escapes_are_read_and_plain_values_borrowed() {
        let sample = one(r#"m{path="a\"b\\c\nd",plain="x"} 1"#).unwrap();
        assert_eq!(sample.label("path").as_deref(), Some("a\"b\\c\nd"));
        assert!(matches!(sample.labels[0].1, Cow::Owned(_)));
        assert!(matches!(sample.labels[1].1, Cow::Borrowed("x")));
    }

    #[test]
    fn special_values() {
        assert_eq!(one("m +Inf").unwrap().value, f64::INFINITY);
        assert_eq!(one("m -Inf").unwrap().value, f64::NEG_INFINITY);
        assert!(one("m NaN").unwrap().value.is_nan());
        assert_eq!(one("m 1e3").unwrap().value, 1000.0);
    }

    #[test]
    fn every_malformed_line_names_its_line_and_its_fault() {
        let cases = [
            ("m", "no value"),
            ("m{a=\"1\"}", "no value"),
            ("m x", "a value that is not a number"),
            ("1m 1", "not a metric name"),
            ("m{1a=\"1\"} 1", "not a label name"),
            ("m{a=1} 1", "a label value that is not quoted"),
            ("m{a} 1", "a label without a value"),
            ("m{a=\"1\" b=\"2\"} 1", "labels not separated by commas"),
            ("m{a=\"1} 1", "a label value without its closing quote"),
            ("m{a=\"\\t\"} 1", "an unknown escape in a label value"),
            ("m 1 x", "a timestamp that is not an integer"),
            ("m 1 2 3", "text after the timestamp"),
        ];
        for (line, reason) in cases {
            let text = format!("# first\n{line}\n");
            assert_eq!(
                samples(&text).next(),
                Some(Err(ExpositionError { line: 2, reason })),
                "{line}"
            );
        }
    }

    #[test]
    fn limits_are_errors_and_the_next_line_is_read() {
        let labels: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
        let many = format!("m{{{}}} 1", labels.join(","));
        let long = format!("m{{a=\"{}\"}} 1", "x".repeat(MAX_LINE_BYTES));
        let text = format!("{many}\n{long}\nok 1\n");
        let read: Vec<_> = samples(&text).collect();
        assert_eq!(
            read[0],
            Err(ExpositionError {
                line: 1,
                reason: "more labels than the limit"
            })
        );
        assert_eq!(
            read[1],
            Err(ExpositionError {
                line: 2,
                reason: "longer than the limit"
            })
        );
        assert_eq!(read[2].as_ref().map(|s| s.name), Ok("ok"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_without_panic(text in ".{0,400}") {
            for sample in samples(&text) {
                let _ = sample;
            }
        }

        #[test]
        fn any_label_value_written_escaped_reads_back(value in ".{0,60}") {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("m{{v=\"{escaped}\"}} 1");
            let sample = one(&line).unwrap();
            let read = sample.label("v");
            proptest::prop_assert_eq!(read.as_deref(), Some(value.as_str()));
        }
    }
}
