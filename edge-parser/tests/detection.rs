//! Format detection: the corpora, loggen's samples and generated logs are recognised; mixed
//! and unknown logs are refused with errors that name the candidates.

use vantage_edge::format::{DetectError, Format, LogFormat, detect, detect_lines};
use vantage_edge::read::lines;
use vantage_edge::synth::{SynthConfig, generate};

use crate::corpus::read;

#[test]
fn every_corpus_is_recognised() {
    for (file, format) in [
        ("traefik-common/lines.log", Format::TraefikCommon),
        ("traefik-json/lines.log", Format::TraefikJson),
        ("nginx-combined/lines.log", Format::NginxCombined),
        (
            "nginx-combined-rt/lines.log",
            Format::NginxCombinedRequestTime,
        ),
        ("ingress-nginx/lines.log", Format::IngressNginx),
        ("envoy/lines.log", Format::Envoy),
        ("haproxy/lines.log", Format::Haproxy),
        ("haproxy-syslog/lines.log", Format::HaproxySyslog),
        ("caddy-json/lines.log", Format::CaddyJson),
        ("caddy-json-ns/lines.log", Format::CaddyJsonNanos),
    ] {
        let detection = detect(&read(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(detection.format, format, "{file}: {detection}");
    }
}

#[test]
fn every_loggen_sample_is_recognised() {
    for (dir, format) in [
        ("traefik-common", Format::TraefikCommon),
        ("traefik-json", Format::TraefikJson),
        ("nginx-combined-rt", Format::NginxCombinedRequestTime),
        ("ingress-nginx", Format::IngressNginx),
        ("envoy", Format::Envoy),
        ("haproxy", Format::Haproxy),
        ("haproxy-syslog", Format::HaproxySyslog),
        ("caddy-json", Format::CaddyJson),
    ] {
        let detection = detect(&read(&format!("{dir}/loggen.log"))).expect(dir);
        assert_eq!(detection.format, format, "{dir}: {detection}");
    }
}

#[test]
fn says_what_it_chose_and_how_well() {
    let detection = detect(&read("traefik-common/loggen.log")).expect("detected");
    assert_eq!(detection.sampled, 64);
    assert_eq!(
        detection.to_string(),
        "detected traefik-common: 60 of 64 sample lines parsed, 0 filtered"
    );
    let detection = detect(&read("haproxy-syslog/lines.log")).expect("detected");
    assert_eq!(
        detection.to_string(),
        "detected haproxy-syslog: 5 of 11 sample lines parsed, 3 filtered"
    );
}

#[test]
fn generated_logs_of_every_preset_are_recognised() {
    let config = SynthConfig::new()
        .seed(3)
        .malformed_rate(0.02)
        .filtered_rate(0.02);
    for format in Format::PRESETS {
        let log = generate(format, &config, 200);
        let detection = detect(&log.text).unwrap_or_else(|err| panic!("{format}: {err}"));
        // Caddy's millisecond durations cannot be told from seconds; the default is chosen.
        let expected = match format {
            Format::CaddyJsonMillis => Format::CaddyJson,
            other => other.clone(),
        };
        assert_eq!(detection.format, expected, "{detection}");
    }
}

#[test]
fn a_custom_log_format_is_recognised_among_the_presets() {
    let conf = String::from_utf8(read("nginx-custom/nginx.conf")).expect("UTF-8");
    let main = Format::Nginx(LogFormat::from_nginx_conf(&conf, "main").expect("compiles"));
    let mut candidates = Format::PRESETS.to_vec();
    candidates.push(main.clone());
    let log = read("nginx-custom/main.log");
    let detection = detect_lines(lines(&log), &candidates).expect("detected");
    assert_eq!(detection.format, main);
    assert_eq!(detection.score().map(|s| s.parsed), Some(3));
}

#[test]
fn a_mixed_log_is_refused_naming_the_tied_candidates() {
    let traefik = read("traefik-common/lines.log");
    let envoy = read("envoy/lines.log");
    let mixed: Vec<&[u8]> = lines(&traefik)
        .take(5)
        .chain(lines(&envoy).take(5))
        .collect();
    let err = detect_lines(mixed, Format::PRESETS).expect_err("ambiguous");
    assert!(matches!(
        &err,
        DetectError::Ambiguous { sampled: 10, candidates, .. }
            if candidates == &[Format::TraefikCommon, Format::Envoy]
    ));
    assert_eq!(
        err.to_string(),
        "cannot tell the log format from 10 sample lines: traefik-common and envoy read them \
         equally well (lines parsed per candidate: traefik-common 5, traefik-json 0, \
         nginx-combined 0, nginx-combined-rt 0, ingress-nginx 0, envoy 5, haproxy 0, \
         haproxy-syslog 0, caddy-json 0, caddy-json-ns 0, caddy-json-ms 0); choose the format \
         explicitly"
    );
}

#[test]
fn an_unknown_log_is_refused_naming_every_candidate() {
    let log = b"2025-03-09 12:00:00,123 INFO app started\n2025-03-09 12:00:01,001 WARN slow\n";
    let err = detect(log).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "cannot detect the log format: no candidate reads at least half of the 2 sample lines \
         (lines parsed per candidate: traefik-common 0, traefik-json 0, nginx-combined 0, \
         nginx-combined-rt 0, ingress-nginx 0, envoy 0, haproxy 0, haproxy-syslog 0, \
         caddy-json 0); choose the format explicitly"
    );
}

#[test]
fn a_log_with_too_few_good_lines_is_refused() {
    let traefik = read("traefik-common/lines.log");
    let good = lines(&traefik).next().expect("a line");
    let sample: Vec<&[u8]> = vec![good, b"junk", b"junk", b"junk"];
    let err = detect_lines(sample, Format::PRESETS).expect_err("too few");
    assert!(
        matches!(err, DetectError::NoMatch { sampled: 4, .. }),
        "{err}"
    );
}
