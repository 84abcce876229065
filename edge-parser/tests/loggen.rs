//! Lines written by `loggen.py` (formats.md §8: an independent Python generator of realistic
//! logs with 3 % malformed lines), parsed and counted, against the ground truth loggen computed
//! from its own values: line counts, status counts, latency percentiles as logged (nearest
//! rank, milliseconds) and request counts per key (the field that names the router).
//!
//! loggen counts every line that is not a request as malformed; lines this crate filters
//! (Caddy's `tls` logger entries) are among them.

use std::collections::BTreeMap;

use vantage_edge::format::{Format, Parsed, Record};
use vantage_edge::read::lines;

use crate::corpus::read;

#[derive(Debug, Default)]
struct Truth {
    lines: usize,
    valid: usize,
    malformed: usize,
    statuses: BTreeMap<i16, usize>,
    latency_ms: Vec<(f64, f64)>,
    keys: Option<BTreeMap<String, usize>>,
}

fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(' ')
        .map(|pair| pair.rsplit_once(':').expect("key:value"))
}

fn truth(dir: &str) -> Truth {
    let text = String::from_utf8(read(&format!("{dir}/loggen.truth"))).expect("UTF-8");
    let mut truth = Truth::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').expect("name value");
        match name {
            "lines" => truth.lines = value.parse().expect("count"),
            "valid" => truth.valid = value.parse().expect("count"),
            "malformed" => truth.malformed = value.parse().expect("count"),
            "statuses" => {
                truth.statuses = pairs(value)
                    .map(|(s, n)| (s.parse().expect("status"), n.parse().expect("count")))
                    .collect();
            }
            "latency_ms" => {
                truth.latency_ms = pairs(value)
                    .map(|(q, ms)| {
                        let q: f64 = q.trim_start_matches('p').parse().expect("quantile");
                        (q / 100.0, ms.parse().expect("milliseconds"))
                    })
                    .collect();
            }
            "keys" => {
                truth.keys = Some(
                    pairs(value)
                        .map(|(k, n)| (k.to_owned(), n.parse().expect("count")))
                        .collect(),
                );
            }
            other => panic!("unknown truth line {other}"),
        }
    }
    truth
}

/// The ⌈q·n⌉-th smallest value, as loggen defines its percentiles.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn text(field: &Option<std::borrow::Cow<'_, [u8]>>) -> String {
    field.as_deref().map_or_else(
        || "-".to_owned(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}

fn check(format: &Format, dir: &str, key: Option<fn(&Record<'_>) -> String>) {
    let truth = truth(dir);
    let log = read(&format!("{dir}/loggen.log"));
    let (mut records, mut not_records) = (0, 0);
    let mut statuses = BTreeMap::new();
    let mut durations = Vec::new();
    let mut keys = BTreeMap::new();
    for line in lines(&log) {
        match format.parse(line) {
            Ok(Parsed::Record(record)) => {
                records += 1;
                *statuses
                    .entry(record.status.expect("loggen logs a status").code())
                    .or_insert(0) += 1;
                durations.push(record.duration_ns.expect("loggen logs a latency"));
                if let Some(key) = key {
                    *keys.entry(key(&record)).or_insert(0) += 1;
                }
            }
            Ok(Parsed::Filtered(_)) | Err(_) => not_records += 1,
        }
    }
    assert_eq!(records + not_records, truth.lines, "{dir}: lines");
    assert_eq!(records, truth.valid, "{dir}: records");
    assert_eq!(
        not_records, truth.malformed,
        "{dir}: malformed and filtered"
    );
    assert_eq!(statuses, truth.statuses, "{dir}: statuses");
    durations.sort_unstable();
    for &(q, expected_ms) in &truth.latency_ms {
        let ms = nearest_rank(&durations, q) as f64 / 1e6;
        assert!(
            (ms - expected_ms).abs() <= 1e-9 * expected_ms.max(1.0),
            "{dir}: p{} is {ms} ms, loggen says {expected_ms} ms",
            q * 100.0
        );
    }
    if let Some(expected) = truth.keys {
        assert_eq!(keys, expected, "{dir}: requests per key");
    }
}

#[test]
fn traefik_common_matches_loggen_truth() {
    check(
        &Format::TraefikCommon,
        "traefik-common",
        Some(|r| text(&r.router)),
    );
}

#[test]
fn traefik_json_matches_loggen_truth() {
    check(
        &Format::TraefikJson,
        "traefik-json",
        Some(|r| text(&r.router)),
    );
}

#[test]
fn nginx_combined_with_request_time_matches_loggen_truth() {
    // loggen keys nginx by the router's path prefix, which is not a log field.
    check(&Format::NginxCombinedRequestTime, "nginx-combined-rt", None);
}

#[test]
fn ingress_nginx_matches_loggen_truth() {
    check(
        &Format::IngressNginx,
        "ingress-nginx",
        Some(|r| text(&r.router)),
    );
}

#[test]
fn envoy_matches_loggen_truth() {
    check(&Format::Envoy, "envoy", Some(|r| text(&r.host)));
}

#[test]
fn haproxy_raw_matches_loggen_truth() {
    check(&Format::Haproxy, "haproxy", Some(|r| text(&r.router)));
}

#[test]
fn haproxy_syslog_matches_loggen_truth() {
    check(
        &Format::HaproxySyslog,
        "haproxy-syslog",
        Some(|r| text(&r.router)),
    );
}

#[test]
fn caddy_json_matches_loggen_truth() {
    check(&Format::CaddyJson, "caddy-json", Some(|r| text(&r.host)));
}
