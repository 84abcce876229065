//! Every line of `tests/data/<format>/*.log`, parsed and written out as text, must equal the
//! matching line of the `.expected` file next to it: one line per log line, either
//!
//! ```text
//! record<TAB>ts=…<TAB>method=…<TAB>…     every Record field; `<none>` when absent
//! filtered<TAB><reason>
//! malformed<TAB><kind message><TAB><offset>
//! ```
//!
//! Text fields are shown with `escape_ascii`, so quotes, backslashes and non-ASCII bytes are
//! visible.

use std::borrow::Cow;
use std::fmt::Display;
use std::fs;
use std::path::PathBuf;

use vantage_edge::format::{Format, LogFormat, ParseError, Parsed};
use vantage_edge::read::lines;

pub(crate) fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

pub(crate) fn read(path: &str) -> Vec<u8> {
    let path = data(path);
    fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

fn opt<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "<none>".to_owned(), |v| v.to_string())
}

fn text(value: &Option<Cow<'_, [u8]>>) -> String {
    value
        .as_deref()
        .map_or_else(|| "<none>".to_owned(), |v| v.escape_ascii().to_string())
}

/// One parse outcome as a line of an `.expected` file.
pub(crate) fn render(outcome: &Result<Parsed<'_>, ParseError>) -> String {
    match outcome {
        Ok(Parsed::Record(r)) => [
            "record".to_owned(),
            format!("ts={}", opt(r.timestamp)),
            format!("method={}", text(&r.method)),
            format!("target={}", text(&r.target)),
            format!("proto={}", text(&r.protocol)),
            format!("status={}", opt(r.status)),
            format!("bytes={}", opt(r.bytes_sent)),
            format!("dur_ns={}", opt(r.duration_ns)),
            format!("up_dur_ns={}", opt(r.upstream_duration_ns)),
            format!("up_status={}", opt(r.upstream_status)),
            format!("router={}", text(&r.router)),
            format!("service={}", text(&r.service)),
            format!("host={}", text(&r.host)),
        ]
        .join("\t"),
        Ok(Parsed::Filtered(reason)) => format!("filtered\t{}", reason.name()),
        Err(err) => format!("malformed\t{}\t{}", err.kind, err.offset),
    }
}

/// Parses `<name>.log` with `format` and compares with `<name>.expected`.
fn check(format: &Format, name: &str) {
    let log = read(&format!("{name}.log"));
    let actual: Vec<String> = lines(&log)
        .map(|line| render(&format.parse(line)))
        .collect();
    let expected_path = data(&format!("{name}.expected"));
    let expected = fs::read_to_string(&expected_path).unwrap_or_default();
    let expected: Vec<&str> = expected.lines().collect();
    let mut report = String::new();
    for (i, actual_line) in actual.iter().enumerate() {
        let expected_line = expected.get(i).copied().unwrap_or("<missing>");
        if expected_line != actual_line {
            report.push_str(&format!(
                "line {}:\n  expected: {expected_line}\n  actual:   {actual_line}\n",
                i + 1
            ));
        }
    }
    if expected.len() != actual.len() {
        report.push_str(&format!(
            "{} expected lines for {} log lines\n",
            expected.len(),
            actual.len()
        ));
    }
    assert!(
        report.is_empty(),
        "{name} with {format}:\n{report}\nfull actual output:\n{}\n",
        actual.join("\n")
    );
}

#[test]
fn traefik_common() {
    check(&Format::TraefikCommon, "traefik-common/lines");
}

#[test]
fn traefik_json() {
    check(&Format::TraefikJson, "traefik-json/lines");
}

#[test]
fn nginx_combined() {
    check(&Format::NginxCombined, "nginx-combined/lines");
}

#[test]
fn nginx_combined_with_request_time() {
    check(&Format::NginxCombinedRequestTime, "nginx-combined-rt/lines");
}

fn from_conf(name: &str) -> Format {
    let conf = read("nginx-custom/nginx.conf");
    let conf = String::from_utf8(conf).expect("nginx.conf is UTF-8");
    Format::Nginx(LogFormat::from_nginx_conf(&conf, name).expect("the log_format compiles"))
}

#[test]
fn nginx_custom_main_from_nginx_conf() {
    check(&from_conf("main"), "nginx-custom/main");
}

#[test]
fn nginx_custom_json_escaped_from_nginx_conf() {
    check(&from_conf("json_combined"), "nginx-custom/json");
}

#[test]
fn ingress_nginx() {
    check(&Format::IngressNginx, "ingress-nginx/lines");
}

#[test]
fn envoy() {
    check(&Format::Envoy, "envoy/lines");
}

#[test]
fn haproxy_raw() {
    check(&Format::Haproxy, "haproxy/lines");
}

#[test]
fn haproxy_syslog() {
    check(&Format::HaproxySyslog, "haproxy-syslog/lines");
}

#[test]
fn caddy_json() {
    check(&Format::CaddyJson, "caddy-json/lines");
}

#[test]
fn caddy_json_with_nanosecond_durations() {
    check(&Format::CaddyJsonNanos, "caddy-json-ns/lines");
}
