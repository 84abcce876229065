//! Views of the [`crate::aggregate::Aggregate`]: one model, many renderings.
//!
//! - [`table`]: the report table for people (`edge-parser report`).
//! - [`json`]: the report JSON document for programs (`edge-parser report --json`).
//! - [`html`]: the dashboard page, live from `serve` or as a report file (`report --html`).
//! - [`prometheus`]: the `/metrics` exposition of `serve`, labels named by dimension.
//! - `summary` (crate-private): the `/ready`, `/api/summary` and snapshot documents of `serve`.
//!
//! Table and JSON show, per group and in total: requests, requests per second over the log's
//! time span, the status-class mix and latency percentiles (nearest rank, from the
//! [`LatencyHistogram`](crate::histogram::LatencyHistogram)s: within 0.1 % of exact, maximum
//! exact), and the line accounting: every line parsed, malformed or filtered.

#[cfg(feature = "serve")]
pub mod exemplars;
pub mod html;
pub mod json;
pub mod native;
pub mod prometheus;
#[cfg(feature = "serve")]
pub(crate) mod summary;
pub mod table;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::fmt::Write as _;
use std::str::FromStr;

use crate::aggregate::{Aggregate, Group};
use crate::format::{StatusClass, Timestamp};

/// How groups are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Most requests first (the default).
    #[default]
    Requests,
    /// Highest p99 latency first.
    P99,
    /// Highest share of 5xx first.
    Errors,
    /// By key, alphabetically.
    Key,
}

impl SortKey {
    /// The accepted names.
    pub const NAMES: &'static str = "requests, p99, errors, key";
}

/// A sort key name that is not one of [`SortKey::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort key {0:?} (known: requests, p99, errors, key)")]
pub struct UnknownSortKey(pub String);

impl FromStr for SortKey {
    type Err = UnknownSortKey;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "requests" => Ok(Self::Requests),
            "p99" => Ok(Self::P99),
            "errors" => Ok(Self::Errors),
            "key" => Ok(Self::Key),
            _ => Err(UnknownSortKey(name.to_owned())),
        }
    }
}

/// What the report is about, beside the aggregate.
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// The format's name.
    pub format: String,
    /// The inputs, in reading order.
    pub inputs: Vec<String>,
}

/// Which groups to show, in which order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// Order of the groups.
    pub sort: SortKey,
    /// Show only the first this many groups.
    pub top: Option<usize>,
}

/// The groups in display order, cut to `top`; also how many were left out.
fn ordered(aggregate: &Aggregate, options: ReportOptions) -> (Vec<Group<'_>>, usize) {
    let mut groups: Vec<Group<'_>> = aggregate.groups().collect();
    match options.sort {
        SortKey::Requests => {
            groups.sort_by_key(|group| (Reverse(group.stats().requests), group.key()));
        }
        SortKey::P99 => {
            groups.sort_by_key(|group| (Reverse(group.stats().latency.quantile(0.99)), group.key()))
        }
        SortKey::Errors => groups.sort_by(|a, b| {
            error_share(b)
                .total_cmp(&error_share(a))
                .then(a.key().cmp(b.key()))
        }),
        SortKey::Key => groups.sort_by_key(|group| group.key()),
    }
    let shown = options.top.unwrap_or(usize::MAX).min(groups.len());
    let hidden = groups.len() - shown;
    groups.truncate(shown);
    (groups, hidden)
}

fn error_share(group: &Group<'_>) -> f64 {
    let stats = group.stats();
    share(
        stats.status_classes.get(StatusClass::ServerError),
        stats.requests,
    )
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// RFC 3339 in UTC, with as many fractional digits as needed (none for whole seconds).
fn rfc3339(nanos: i64) -> String {
    let text = Timestamp::from_unix_nanos(nanos).to_string();
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{digits}Z")
            }
        }
        None => text,
    }
}

/// `text` with every control character (C0, DEL and C1: what a terminal acts on, such as the
/// ESC that opens a colour or window-title sequence) written visibly as `\u{1b}`: for any
/// text from a log (group keys, malformed lines, input names) printed where a terminal may
/// show it.
///
/// ```
/// use vantage_edge::export::terminal_safe;
///
/// assert_eq!(terminal_safe("a\x1b]0;title\x07b"), r"a\u{1b}]0;title\u{7}b");
/// assert_eq!(terminal_safe("caf\u{e9} \u{9b}31m"), r"café \u{9b}31m");
/// ```
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(safe, "\\u{{{:x}}}", u32::from(c));
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// A duration in microseconds, in the unit that reads best.
pub fn micros(value: u64) -> String {
    match value {
        0..1_000 => format!("{value}µs"),
        1_000..10_000 => format!("{:.2}ms", value as f64 / 1e3),
        10_000..1_000_000 => format!("{:.1}ms", value as f64 / 1e3),
        _ => format!("{:.2}s", value as f64 / 1e6),
    }
}

#[cfg(test)]
pub(crate) mod test_aggregate {
    use crate::aggregate::{Aggregate, AggregateConfig, Aggregator, LinePosition};
    use crate::format::Format;

    /// Two routers, a 502 and a malformed line.
    pub(crate) const LINES: [&str; 4] = [
        r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 1 "a@docker" "http://x" 10ms"#,
        r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 2 "a@docker" "http://x" 20ms"#,
        r#"1.1.1.1 - - [09/Mar/2025:12:00:03 +0000] "GET /b HTTP/1.1" 502 0 "-" "-" 3 "b@docker" "http://x" 3000ms"#,
        "not a log line",
    ];

    /// What the report of [`LINES`] is about.
    pub(crate) fn meta() -> super::ReportMeta {
        super::ReportMeta {
            format: "traefik-common".to_owned(),
            inputs: vec!["access.log".to_owned()],
        }
    }

    /// The aggregate of `lines` read as Traefik `common`, by router.
    pub(crate) fn traefik(lines: &[&str]) -> Aggregate {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let mut aggregator = Aggregator::new(&config);
        for (n, line) in lines.iter().enumerate() {
            aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        aggregator.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1_234), "1.23ms");
        assert_eq!(micros(45_600), "45.6ms");
        assert_eq!(micros(2_500_000), "2.50s");
        assert_eq!(
            rfc3339(1_741_521_600_120_000_000),
            "2025-03-09T12:00:00.12Z"
        );
    }
}
