//! The per-route table, built from the service's own `/metrics` exposition.
//!
//! Percentiles are estimated from the histogram buckets the way Prometheus'
//! `histogram_quantile` does (linear within a bucket), so they are as precise as the buckets.
//! The exposition is read with a small parser of the text format's sample lines: label values
//! hold characters (`{`, `}`) that general-purpose parsers stumble on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

const BUCKET: &str = "http_server_request_duration_seconds_bucket";

/// What one route did.
#[derive(Debug, Default)]
struct RouteStats {
    requests: f64,
    errors: BTreeMap<String, f64>,
    /// Cumulative bucket counts by upper bound, summed over the route's series.
    buckets: BTreeMap<u64, (f64, f64)>,
}

/// Renders the table for an exposition covering `seconds` of traffic.
pub(crate) fn render(exposition: &str, seconds: f64) -> String {
    let mut routes: BTreeMap<String, RouteStats> = BTreeMap::new();
    for (labels, count) in exposition.lines().filter_map(|line| sample(line, BUCKET)) {
        let label = |name: &str| {
            labels
                .iter()
                .find(|(key, _)| key == name)
                .map_or("", |(_, value)| value.as_str())
        };
        let Ok(bound) = label("le").parse::<f64>() else {
            continue;
        };
        let stats = routes.entry(label("http_route").to_owned()).or_default();
        let entry = stats.buckets.entry(bound.to_bits()).or_insert((bound, 0.0));
        entry.1 += count;
        if bound.is_infinite() {
            stats.requests += count;
            let error = label("error_type");
            if !error.is_empty() {
                *stats.errors.entry(error.to_owned()).or_default() += count;
            }
        }
    }
    let mut rows: Vec<_> = routes.into_iter().collect();
    rows.sort_by(|a, b| b.1.requests.total_cmp(&a.1.requests));

    let mut out = String::new();
    out.push_str(
        "route          requests     rps      p50      p90      p99  errors (share of the route's requests, by error_type)\n",
    );
    let mut total = 0.0;
    for (route, stats) in &rows {
        total += stats.requests;
        let _ = writeln!(
            out,
            "{:<14} {:>8} {:>7.1} {:>8} {:>8} {:>8}  {}",
            route,
            stats.requests,
            stats.requests / seconds,
            quantile(stats, 0.50),
            quantile(stats, 0.90),
            quantile(stats, 0.99),
            errors(stats),
        );
    }
    let _ = writeln!(out, "total          {total:>8} {:>7.1}", total / seconds);
    out
}

/// One sample line of metric `name`: its labels (unescaped) and value.
fn sample(line: &str, name: &str) -> Option<(Vec<(String, String)>, f64)> {
    let rest = line.strip_prefix(name)?.strip_prefix('{')?;
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), value));
        let rest = chars.as_str();
        if let Some(value) = rest.strip_prefix("} ") {
            return Some((labels, value.trim().parse().ok()?));
        }
    }
}

fn errors(stats: &RouteStats) -> String {
    if stats.errors.is_empty() {
        return "-".to_owned();
    }
    let failed: f64 = stats.errors.values().sum();
    let mut reasons: Vec<_> = stats.errors.iter().collect();
    reasons.sort_by(|a, b| b.1.total_cmp(a.1));
    let reasons: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{reason} {:.1}%", 100.0 * **count / stats.requests))
        .collect();
    format!(
        "{:.1}%: {}",
        100.0 * failed / stats.requests,
        reasons.join(", ")
    )
}

/// The `q` quantile by linear interpolation within the bucket that holds it.
fn quantile(stats: &RouteStats, q: f64) -> String {
    let mut buckets: Vec<(f64, f64)> = stats.buckets.values().copied().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(&(_, total)) = buckets.last() else {
        return "-".to_owned();
    };
    if total == 0.0 {
        return "-".to_owned();
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, cumulative) in buckets {
        if cumulative >= rank {
            if bound.is_infinite() {
                return format!(">{}", seconds(lower));
            }
            if lower == 0.0 {
                // Within the first bucket nothing says where: show its bound, not a guess.
                return format!("<{}", seconds(bound));
            }
            let within = if cumulative > below {
                (rank - below) / (cumulative - below)
            } else {
                1.0
            };
            return seconds(lower + (bound - lower) * within);
        }
        (lower, below) = (bound, cumulative);
    }
    "-".to_owned()
}

fn seconds(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.2}s")
    } else if value >= 0.01 {
        format!("{:.0}ms", value * 1000.0)
    } else {
        format!("{:.1}ms", value * 1000.0)
    }
}
