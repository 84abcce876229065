//! Native histograms in a real Prometheus: two sidecars on two generated logs, scraped with
//! native histograms on (the protobuf exposition), and Prometheus's quantile over both is the
//! exact quantile of the union of the logs (`report` on both files) within 1 %.

use std::time::Duration;

use vantage_edge::reconcile::split::Buckets;

use crate::serve_util::{Prometheus, Server, append, poll_until};
use crate::util::{Dir, WAIT_LIMIT};

/// Lines logged before Prometheus's first samples, then the bulk: only lines of the groups
/// the first lines made, since Prometheus's `rate()` never sees a new series' first
/// increment (the quantiles would lose the requests of groups born during the bulk).
const FIRST: u64 = 300;
const BULK: u64 = 5_000;

/// A generated Traefik JSON log of `lines` lines.
fn generated(dir: &Dir, seed: u64, lines: u64) -> String {
    dir.command()
        .args(["generate", "--format", "traefik-json", "-n"])
        .arg(lines.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .stdout()
}

/// Both sidecars' classic `edge_request_duration_seconds` buckets, summed by bound, in order
/// (`+Inf` last).
fn classic_buckets(servers: &[(Server, std::path::PathBuf, String)]) -> Vec<(f64, u64)> {
    let mut sums: std::collections::BTreeMap<u64, (f64, u64)> = Default::default();
    for (server, _, _) in servers {
        let metrics = server.metrics();
        for (key, count) in metrics.sum_by("edge_request_duration_seconds_bucket", &["le"]) {
            let le = match key[0].as_str() {
                "+Inf" => f64::INFINITY,
                le => match le.parse::<f64>() {
                    Ok(le) => le,
                    Err(_) => continue,
                },
            };
            let entry = sums.entry(le.to_bits()).or_insert((le, 0));
            entry.1 += count;
        }
    }
    let mut buckets: Vec<(f64, u64)> = sums.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

#[test]
fn two_sidecars_native_histograms_give_prometheus_the_exact_quantiles_within_one_percent() {
    let dir = Dir::new("serve-native");
    let mut servers = Vec::new();
    let mut bulks = Vec::new();
    let mut bulk_lines = 0;
    for (name, seed) in [("a", 11), ("b", 12)] {
        let text = generated(&dir, seed, FIRST + BULK);
        let split = text
            .match_indices('\n')
            .nth(FIRST as usize - 1)
            .map_or(0, |(at, _)| at + 1);
        let (first, rest) = text.split_at(split);
        let group = |line: &str| {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (record["RouterName"].clone(), record["ServiceName"].clone())
        };
        let groups: std::collections::HashSet<_> = first.lines().map(group).collect();
        let bulk: String = rest
            .lines()
            .filter(|line| groups.contains(&group(line)))
            .map(|line| format!("{line}\n"))
            .collect();
        bulk_lines += bulk.lines().count() as u64;
        let bulk = bulk.as_str();
        let log = dir.create(&format!("{name}.log"), first);
        bulks.push(dir.create(&format!("{name}-bulk.log"), bulk));
        let server = Server::following(&dir, &log, "traefik-json", &["--from-start"]);
        server.wait_taken_in(FIRST);
        servers.push((server, log, bulk.to_owned()));
    }
    let targets: Vec<_> = servers.iter().map(|(s, _, _)| (s.addr(), "edge")).collect();
    let Some(prometheus) =
        Prometheus::start_with_rules(&dir, &targets, &[], "250ms", &["native-histograms"])
    else {
        return;
    };
    // Both sidecars' native histograms are stored before the bulk comes.
    let stored = poll_until(WAIT_LIMIT, || {
        let instances = prometheus
            .query("count by (instance) (histogram_count(edge_request_duration_seconds))");
        if instances.len() == 2 {
            Ok(())
        } else {
            Err(format!(
                "native histograms of {} sidecars stored",
                instances.len()
            ))
        }
    });
    stored.unwrap_or_else(|error| panic!("{error}\n{}", prometheus.log()));
    std::thread::sleep(Duration::from_secs(1));
    let before = classic_buckets(&servers);
    for (server, log, bulk) in &servers {
        append(log, bulk);
        server.wait_taken_in(FIRST + bulk.lines().count() as u64);
    }
    // A few scrapes after the last line.
    std::thread::sleep(Duration::from_millis(1500));
    // The classic buckets of the bulk, both sidecars together, read as histogram_quantile
    // does (Prometheus 2.42 keeps only the native buckets of a histogram that has them).
    let classic: Vec<(f64, u64)> = classic_buckets(&servers)
        .into_iter()
        .zip(before)
        .map(|((le, after), (_, before))| (le, after - before))
        .collect();
    let classic = Buckets::from_service(&classic).expect("the default bounds");

    let report = dir
        .command()
        .arg("report")
        .args(bulks.iter().map(|path| path.display().to_string()))
        .args(["--format", "traefik-json", "--json"])
        .json();
    let exact = &report["total"]["latency_seconds"];
    assert_eq!(exact["count"], bulk_lines);
    for (q, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
        let exact = exact[name].as_f64().expect("an exact quantile");
        let native = prometheus.query(&format!(
            "histogram_quantile({q}, sum(rate(edge_request_duration_seconds[1m])))"
        ));
        let error = |value: f64| (value - exact).abs() / exact;
        let native = native
            .first()
            .map(|(_, value)| *value)
            .expect("a native quantile");
        let classic = classic.quantile(q).expect("a classic quantile");
        // Printed for BENCHMARKS.md: the classic buckets' error beside the native one.
        eprintln!(
            "{name}: exact {exact:.6} s, native {native:.6} s ({:.2} %), classic {classic:.6} s ({:.2} %)",
            error(native) * 100.0,
            error(classic) * 100.0
        );
        assert!(
            error(native) <= 0.01,
            "{name}: native {native} against {exact}"
        );
    }
}

/// A Traefik JSON line of router `router` taking `duration_ns`, with `trace` as its `TraceId`
/// when given.
fn traced_line(router: &str, duration_ns: u64, trace: Option<&str>) -> String {
    let trace = trace.map_or(String::new(), |id| format!(",\"TraceId\":\"{id}\""));
    format!(
        "{{\"DownstreamStatus\":200,\"Duration\":{duration_ns},\"RequestMethod\":\"GET\",\"RequestPath\":\"/\",\"RouterName\":\"{router}\",\"ServiceName\":\"svc\",\"StartUTC\":\"2025-03-09T12:00:00Z\"{trace}}}\n"
    )
}

#[test]
fn a_traced_line_is_its_buckets_exemplar_in_openmetrics_and_the_text_stays_valid() {
    let dir = Dir::new("serve-exemplars");
    let log = dir.create("access.log", "");
    let server = Server::following(&dir, &log, "traefik-json", &["--from-start"]);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    append(
        &log,
        &format!(
            "{}{}{}",
            traced_line("web", 300_000_000, Some(trace)),
            traced_line("web", 20_000_000, None),
            traced_line("api", 5_000_000, None),
        ),
    );
    server.wait_parsed(3);
    let accept = [("Accept", "application/openmetrics-text;version=1.0.0")];
    let open = poll_until(WAIT_LIMIT, || {
        let response = crate::serve_util::request(server.addr(), "GET", "/metrics", &accept)
            .map_err(|error| error.to_string())?;
        let text = response.text();
        if text.contains(" # {trace_id=") {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .unwrap_or_else(|text| panic!("no exemplar in OpenMetrics:\n{text}"));
    assert!(open.ends_with("# EOF\n"));
    let exemplars: Vec<&str> = open.lines().filter(|line| line.contains(" # {")).collect();
    assert_eq!(exemplars.len(), 1, "{exemplars:?}");
    let (sample, exemplar) = exemplars[0].split_once(" # ").expect("an exemplar");
    assert_eq!(
        sample,
        "edge_request_duration_seconds_bucket{router=\"web\",service=\"svc\",le=\"0.5\"} 2"
    );
    let (labels, rest) = exemplar.split_once("} ").expect("exemplar labels");
    assert_eq!(labels, format!("{{trace_id=\"{trace}\""));
    let (value, timestamp) = rest.split_once(' ').expect("value and timestamp");
    assert_eq!(value, "0.3");
    // Timestamped as logged (`StartUTC`, 2025-03-09T12:00:00Z).
    assert_eq!(timestamp, "1741521600");
    // The text exposition is unchanged by it, and valid.
    let text = server.get("/metrics").text();
    assert!(!text.contains("trace_id"));
    crate::serve_util::promtool_check(&text);
}
