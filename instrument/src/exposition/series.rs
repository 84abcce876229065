//! Reading a histogram family's sample lines fast: a thousand groups are tens of thousands of
//! bucket lines a scrape, and most continue the series of the line before. A line is cut into
//! name, label text and value without reading its labels; only a line whose labels (but `le`)
//! differ from the previous line's is read in full, once per series.

use super::text::{Sample, parse_value, samples};

/// Which sample of a histogram series a line is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    /// A `_bucket` sample with its upper bound.
    Bucket(f64),
    /// `_sum`.
    Sum,
    /// `_count`.
    Count,
    /// Anything else (not of this family's series).
    Other,
}

/// One line of a histogram family.
#[derive(Debug)]
pub(crate) struct HistogramLine<'a> {
    pub(crate) part: Part,
    /// The sample's value (the protobuf encoding's; OpenMetrics copies the line).
    #[cfg_attr(not(feature = "protobuf"), allow(dead_code))]
    pub(crate) value: f64,
    /// The line read in full when it starts a new series.
    pub(crate) new_series: Option<Sample<'a>>,
}

/// Where the reading of a family is: the label text (but `le`) of the current series.
#[derive(Debug, Default)]
pub(crate) struct SeriesCursor {
    key: String,
    started: bool,
}

impl SeriesCursor {
    /// Forgets the current series (a new family starts).
    pub(crate) fn reset(&mut self) {
        self.started = false;
        self.key.clear();
    }

    /// Reads `line`, a sample of the histogram family `family`; `None` when it is malformed.
    pub(crate) fn read<'a>(&mut self, family: &str, line: &'a str) -> Option<HistogramLine<'a>> {
        let (name, labels, value) = cut(line)?;
        let value = parse_value(value).ok()?;
        let (part, before, after) = match name.strip_prefix(family) {
            Some("_bucket") => {
                let (le, before, after) = without_le(labels)?;
                (Part::Bucket(parse_value(le).ok()?), before, after)
            }
            Some("_sum") => (Part::Sum, labels, ""),
            Some("_count") => (Part::Count, labels, ""),
            _ => (Part::Other, labels, ""),
        };
        let same = self.started && joined_equals(&self.key, before, after);
        let new_series = if same {
            None
        } else {
            let sample = samples(line).next()?.ok()?;
            self.key.clear();
            self.key.push_str(before);
            self.key.push_str(if before.is_empty() {
                after.strip_prefix(',').unwrap_or(after)
            } else {
                after
            });
            self.started = true;
            Some(sample)
        };
        Some(HistogramLine {
            part,
            value,
            new_series,
        })
    }
}

/// `before` and `after` joined as [`SeriesCursor::read`] keeps them, compared with `key`.
fn joined_equals(key: &str, before: &str, after: &str) -> bool {
    let after = if before.is_empty() {
        after.strip_prefix(',').unwrap_or(after)
    } else {
        after
    };
    key.len() == before.len() + after.len()
        && key.starts_with(before)
        && key.get(before.len()..) == Some(after)
}

/// A sample line's name, label text (between the braces) and value text.
fn cut(line: &str) -> Option<(&str, &str, &str)> {
    let name_end = memchr::memchr2(b'{', b' ', line.as_bytes())?;
    let (name, rest) = line.split_at(name_end);
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(body) => {
            let end = closing_brace(body)?;
            (body.get(..end)?, body.get(end + 1..)?)
        }
        None => ("", rest),
    };
    let value = rest.trim_start().split(' ').next()?;
    Some((name, labels, value))
}

/// The index of the `}` that closes a label text, outside quotes.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let (mut quoted, mut at) = (false, 0);
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' if quoted => at += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(at),
            _ => {}
        }
        at += 1;
    }
    None
}

/// The `le` value of a label text, and the text before and after its pair (the renderers
/// write `le` last; the last `le="` at a label's start is taken).
fn without_le(labels: &str) -> Option<(&str, &str, &str)> {
    // Where `le` is last (as rendered): its value is the last quoted one (bounds hold no
    // quote), found from the end without a substring search.
    let last = labels.strip_suffix('"').and_then(|head| {
        let open = memchr::memrchr(b'"', head.as_bytes())?;
        let name_start = open.checked_sub("le=".len())?;
        let at_label_start =
            name_start == 0 || labels.as_bytes().get(name_start - 1) == Some(&b',');
        (labels.get(name_start..open) == Some("le=") && at_label_start).then_some(name_start)
    });
    let start = match last.or_else(|| labels.rfind(",le=\"").map(|comma| comma + 1)) {
        Some(start) => start,
        None if labels.starts_with("le=\"") => 0,
        None => return None,
    };
    let value_start = start + "le=\"".len();
    let value_len = labels.get(value_start..)?.find('"')?;
    let before = labels.get(..start.saturating_sub(1))?;
    let after = labels.get(value_start + value_len + 1..)?;
    Some((
        labels.get(value_start..value_start + value_len)?,
        before,
        after,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_read_in_full_once_and_its_lines_by_part() {
        let text = [
            "d_bucket{a=\"1\",le=\"0.5\"} 1",
            "d_bucket{a=\"1\",le=\"+Inf\"} 2",
            "d_sum{a=\"1\"} 0.75",
            "d_count{a=\"1\"} 2",
            "d_bucket{a=\"x}\\\"\",le=\"0.5\"} 0",
            "d_sum{a=\"x}\\\"\"} 0",
            "d_bucket{le=\"0.5\"} 3",
            "d_count 3",
        ];
        let mut cursor = SeriesCursor::default();
        let read: Vec<(Part, f64, bool)> = text
            .iter()
            .map(|line| {
                let line = cursor.read("d", line).expect("a sample");
                (line.part, line.value, line.new_series.is_some())
            })
            .collect();
        assert_eq!(
            read,
            [
                (Part::Bucket(0.5), 1.0, true),
                (Part::Bucket(f64::INFINITY), 2.0, false),
                (Part::Sum, 0.75, false),
                (Part::Count, 2.0, false),
                (Part::Bucket(0.5), 0.0, true),
                (Part::Sum, 0.0, false),
                (Part::Bucket(0.5), 3.0, true),
                (Part::Count, 3.0, false),
            ]
        );
        cursor.reset();
        let line = cursor.read("d", "d_count 3").expect("a sample");
        assert!(line.new_series.is_some());
    }

    #[test]
    fn le_anywhere_is_cut_out_of_the_key() {
        assert_eq!(without_le("le=\"1\",a=\"2\""), Some(("1", "", ",a=\"2\"")));
        assert_eq!(
            without_le("a=\"1\",le=\"2\",b=\"3\""),
            Some(("2", "a=\"1\"", ",b=\"3\""))
        );
        assert_eq!(without_le("handle=\"1\""), None);
        assert!(joined_equals("a=\"2\"", "", ",a=\"2\""));
        assert!(joined_equals("a=\"1\",b=\"3\"", "a=\"1\"", ",b=\"3\""));
    }

    proptest::proptest! {
        #[test]
        fn any_line_is_read_without_panic(line in ".{0,200}") {
            let _ = SeriesCursor::default().read("d", &line);
        }
    }
}
