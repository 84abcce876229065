//! OpenMetrics 1.0 text from a Prometheus text exposition, with exemplars on histogram buckets.
//!
//! What a Prometheus with exemplar storage asks for first. The samples are the text's: a
//! counter's family is named without its `_total` (its samples keep it), `untyped` becomes
//! `unknown`, comments other than `# HELP` and `# TYPE` and blank lines are left out, and the
//! exposition ends with `# EOF`. Each `_bucket` sample whose series has an exemplar in
//! [`Extras`] for that `le` carries it: ` # {trace_id="…"} value timestamp`.
//!
//! ```
//! use vantage_instrument::exposition::{openmetrics, Exemplar, Extras, SeriesExtras};
//! use vantage_instrument::trace_context::TraceId;
//!
//! let text = concat!(
//!     "# TYPE jobs_total counter\njobs_total 3\n",
//!     "# TYPE d histogram\nd_bucket{le=\"0.5\"} 1\nd_bucket{le=\"+Inf\"} 1\nd_sum 0.25\nd_count 1\n",
//! );
//! let exemplar = Exemplar {
//!     trace_id: TraceId::from_u128(0xab).unwrap(),
//!     value: 0.25,
//!     timestamp: 1_700_000_000.5,
//! };
//! let extras = Extras::from([(
//!     ("d".to_owned(), vec![]),
//!     SeriesExtras { native: None, exemplars: vec![(0.5, exemplar)] },
//! )]);
//! let mut out = String::new();
//! openmetrics::encode(text, &extras, &mut out);
//! assert_eq!(out, "# TYPE jobs counter\njobs_total 3\n# TYPE d histogram\n\
//!     d_bucket{le=\"0.5\"} 1 # {trace_id=\"000000000000000000000000000000ab\"} 0.25 1700000000.5\n\
//!     d_bucket{le=\"+Inf\"} 1\nd_sum 0.25\nd_count 1\n# EOF\n");
//! ```

use std::fmt::Write as _;

use super::series::{Part, SeriesCursor};
use super::{Extras, SeriesExtras};

/// Appends `text` as OpenMetrics to `out`, with the exemplars of `extras`, and the `# EOF`
/// that ends an exposition.
pub fn encode(text: &str, extras: &Extras, out: &mut String) {
    encode_families(text, extras, out);
    out.push_str("# EOF\n");
}

/// [`encode`] without the final `# EOF`: for an exposition made of parts encoded apart (each
/// holding whole families), all but the last.
pub fn encode_families(text: &str, extras: &Extras, out: &mut String) {
    out.reserve(text.len() + text.len() / 8);
    let mut family = Family::default();
    let mut help: Option<&str> = None;
    let mut cursor = SeriesCursor::default();
    // The extras of the series being read.
    let mut series: Option<&SeriesExtras> = None;
    for line in super::lines(text) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            family = Family::of(rest);
            cursor.reset();
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                let _ = writeln!(out, "# HELP {} {text}", family.name);
            }
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        } else if line.starts_with('#') {
            // OpenMetrics allows no other comment.
        } else {
            family.write_sample(line, extras, (&mut cursor, &mut series), out);
        }
    }
}

/// The family the samples being read belong to.
#[derive(Debug, Default)]
struct Family<'a> {
    /// Its OpenMetrics name: a counter's without `_total`.
    name: &'a str,
    /// Its OpenMetrics type.
    kind: &'a str,
}

impl<'a> Family<'a> {
    fn of(type_line: &'a str) -> Self {
        let (name, kind) = type_line.split_once(' ').unwrap_or((type_line, "untyped"));
        match kind.trim() {
            "counter" => Self {
                name: name.strip_suffix("_total").unwrap_or(name),
                kind: "counter",
            },
            "untyped" => Self {
                name,
                kind: "unknown",
            },
            kind => Self { name, kind },
        }
    }

    fn write_sample<'e>(
        &self,
        line: &str,
        extras: &'e Extras,
        (cursor, series): (&mut SeriesCursor, &mut Option<&'e SeriesExtras>),
        out: &mut String,
    ) {
        let (head, rest) = split_name(line);
        // A counter's sample is `<family>_total` in OpenMetrics.
        if self.kind == "counter" && head == self.name {
            let _ = writeln!(out, "{head}_total{rest}");
            return;
        }
        out.push_str(line);
        if self.kind == "histogram" && !extras.is_empty() {
            if let Some(read) = cursor.read(self.name, line) {
                if let Some(sample) = &read.new_series {
                    let labels = sample
                        .labels
                        .iter()
                        .map(|(name, value)| (*name, value.as_ref()));
                    *series = extras.get(&(self.name.to_owned(), super::sorted_labels(labels)));
                }
                let exemplar = match read.part {
                    Part::Bucket(le) => series.and_then(|series| series.exemplar(le)),
                    _ => None,
                };
                if let Some(exemplar) = exemplar {
                    let _ = write!(
                        out,
                        " # {{trace_id=\"{}\"}} {} {}",
                        exemplar.trace_id,
                        super::Value(exemplar.value),
                        exemplar.timestamp
                    );
                }
            }
        }
        out.push('\n');
    }
}

/// A sample line's metric name and what follows it.
fn split_name(line: &str) -> (&str, &str) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    line.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Exemplar;
    use crate::trace_context::TraceId;

    fn exemplar(id: u128, value: f64) -> Exemplar {
        Exemplar {
            trace_id: TraceId::from_u128(id).expect("not zero"),
            value,
            timestamp: 1_700_000_000.0,
        }
    }

    #[test]
    fn families_are_renamed_comments_dropped_and_each_series_gets_its_own_exemplars() {
        let text = "\
# HELP requests_total All requests.
# TYPE requests_total counter
requests_total{route=\"/a\"} 3

# a comment
# TYPE odd counter
odd 1
# TYPE thing untyped
thing 2
# HELP d Durations.
# TYPE d histogram
d_bucket{route=\"/a\",le=\"0.1\"} 1
d_bucket{route=\"/a\",le=\"+Inf\"} 2
d_sum{route=\"/a\"} 1.05
d_count{route=\"/a\"} 2
d_bucket{route=\"/b\",le=\"0.1\"} 1
d_bucket{route=\"/b\",le=\"+Inf\"} 1
d_sum{route=\"/b\"} 0.05
d_count{route=\"/b\"} 1
";
        let key = |route: &str| ("d".to_owned(), vec![("route".to_owned(), route.to_owned())]);
        let extras = Extras::from([
            (
                key("/a"),
                SeriesExtras {
                    native: None,
                    exemplars: vec![(f64::INFINITY, exemplar(1, 1.0))],
                },
            ),
            (
                key("/b"),
                SeriesExtras {
                    native: None,
                    exemplars: vec![(0.1, exemplar(2, 0.05))],
                },
            ),
        ]);
        let mut out = String::new();
        encode(text, &extras, &mut out);
        let one = "00000000000000000000000000000001";
        let two = "00000000000000000000000000000002";
        assert_eq!(
            out,
            format!(
                "\
# HELP requests All requests.
# TYPE requests counter
requests_total{{route=\"/a\"}} 3
# TYPE odd counter
odd_total 1
# TYPE thing unknown
thing 2
# HELP d Durations.
# TYPE d histogram
d_bucket{{route=\"/a\",le=\"0.1\"}} 1
d_bucket{{route=\"/a\",le=\"+Inf\"}} 2 # {{trace_id=\"{one}\"}} 1 1700000000
d_sum{{route=\"/a\"}} 1.05
d_count{{route=\"/a\"}} 2
d_bucket{{route=\"/b\",le=\"0.1\"}} 1 # {{trace_id=\"{two}\"}} 0.05 1700000000
d_bucket{{route=\"/b\",le=\"+Inf\"}} 1
d_sum{{route=\"/b\"}} 0.05
d_count{{route=\"/b\"}} 1
# EOF
"
            )
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_encodes_without_panic(text in ".{0,400}") {
            let extras = Extras::from([(("d".to_owned(), vec![]), SeriesExtras::default())]);
            let mut out = String::new();
            encode(&text, &extras, &mut out);
            proptest::prop_assert!(out.ends_with("# EOF\n"));
        }
    }
}
