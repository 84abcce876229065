//! The report table (`edge-parser report`): one row per group and a total, then the line
//! accounting and the first malformed lines. Text from the logs (keys, lines, input names) is
//! [terminal-safe](super::terminal_safe).

use std::fmt::Write as _;

use super::{ReportMeta, ReportOptions, micros, ordered, rfc3339, share, terminal_safe};
use crate::aggregate::{Aggregate, GroupStats};
use crate::format::StatusClass;

/// The table described in the [module docs](self).
pub fn to_table(aggregate: &Aggregate, meta: &ReportMeta, options: ReportOptions) -> String {
    let seconds = aggregate.seconds();
    let (groups, hidden) = ordered(aggregate, options);
    let lines = aggregate.lines();
    let mut out = String::new();
    let span = match (aggregate.first_timestamp(), aggregate.last_timestamp()) {
        (Some(first), Some(last)) => {
            format!("{} to {} ({seconds:.0} s)", rfc3339(first), rfc3339(last))
        }
        _ => "no timestamps".to_owned(),
    };
    let _ = writeln!(
        out,
        "{}: {} input{}, {} lines: {} parsed, {} malformed, {} filtered; {span}\n",
        terminal_safe(&meta.format),
        meta.inputs.len(),
        if meta.inputs.len() == 1 { "" } else { "s" },
        lines.total,
        lines.parsed,
        lines.malformed,
        lines.filtered,
    );
    let key_header = aggregate
        .group_by()
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" ");
    let names: Vec<String> = groups
        .iter()
        .map(|group| terminal_safe(&group.key().to_string()).into_owned())
        .collect();
    let key_width = names
        .iter()
        .map(|name| name.chars().count())
        .chain([key_header.len(), 5])
        .max()
        .unwrap_or(5)
        .min(60);
    let _ = writeln!(
        out,
        "{key_header:<key_width$} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "requests", "rps", "2xx", "3xx", "4xx", "5xx", "p50", "p90", "p99", "p99.9", "max"
    );
    for (group, name) in groups.iter().zip(&names) {
        let name: String = name.chars().take(key_width).collect();
        row(&mut out, &name, key_width, group.stats(), seconds);
    }
    if hidden > 0 {
        let _ = writeln!(out, "({hidden} more groups; --top to show more)");
    }
    let total = aggregate.total();
    row(&mut out, "total", key_width, &total, seconds);
    if total.latency_missing > 0 {
        let _ = writeln!(
            out,
            "\n{} requests had no latency in their line: counted, left out of the percentiles",
            total.latency_missing
        );
    }
    let other = total.status_classes.get(StatusClass::Other);
    if other > 0 {
        let _ = writeln!(
            out,
            "{other} requests had a status outside 100-599 (no response sent)"
        );
    }
    let samples = aggregate.malformed_samples();
    if !samples.is_empty() {
        let _ = writeln!(
            out,
            "\nmalformed lines ({} in all; the first {}):",
            lines.malformed,
            samples.len()
        );
        for sample in samples {
            let input = meta
                .inputs
                .get(sample.position.input as usize)
                .map_or("?", String::as_str);
            let text: String = sample.text.chars().take(120).collect();
            let _ = writeln!(
                out,
                "  {}:{}: {} ({})",
                terminal_safe(input),
                sample.position.line,
                terminal_safe(&text),
                terminal_safe(&sample.error)
            );
        }
    }
    out
}

fn row(out: &mut String, name: &str, key_width: usize, stats: &GroupStats, seconds: f64) {
    let classes = &stats.status_classes;
    let pct =
        |class: StatusClass| format!("{:.1}%", 100.0 * share(classes.get(class), stats.requests));
    let latency = |q: f64| {
        if stats.latency.count() == 0 {
            "-".to_owned()
        } else {
            micros(stats.latency.quantile(q))
        }
    };
    let _ = writeln!(
        out,
        "{name:<key_width$} {:>9} {:>8.1} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        stats.requests,
        stats.requests as f64 / seconds,
        pct(StatusClass::Success),
        pct(StatusClass::Redirection),
        pct(StatusClass::ClientError),
        pct(StatusClass::ServerError),
        latency(0.5),
        latency(0.9),
        latency(0.99),
        latency(0.999),
        latency(1.0),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::SortKey;
    use crate::export::test_aggregate::{LINES, meta, traefik};

    #[test]
    fn the_table_shows_groups_totals_and_malformed_samples() {
        let table = to_table(&traefik(&LINES), &meta(), ReportOptions::default());
        let expected = "\
traefik-common: 1 input, 4 lines: 3 parsed, 1 malformed, 0 filtered; 2025-03-09T12:00:00Z to 2025-03-09T12:00:03Z (3 s)

router    requests      rps    2xx    3xx    4xx    5xx      p50      p90      p99    p99.9      max
a@docker         2      0.7 100.0%   0.0%   0.0%   0.0%   10.0ms   20.0ms   20.0ms   20.0ms   20.0ms
b@docker         1      0.3   0.0%   0.0%   0.0% 100.0%    3.00s    3.00s    3.00s    3.00s    3.00s
total            3      1.0  66.7%   0.0%   0.0%  33.3%   20.0ms    3.00s    3.00s    3.00s    3.00s

malformed lines (1 in all; the first 1):
  access.log:4: not a log line (";
        assert!(table.starts_with(expected), "{table}");
    }

    #[test]
    fn top_and_sort_choose_the_groups() {
        let options = ReportOptions {
            sort: SortKey::P99,
            top: Some(1),
        };
        let table = to_table(&traefik(&LINES), &meta(), options);
        assert!(table.contains("b@docker"));
        assert!(!table.contains("a@docker"));
        assert!(table.contains("(1 more groups; --top to show more)"));
    }
}
