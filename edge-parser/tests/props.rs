//! Property tests of every parser and the detector.
//!
//! - Arbitrary bytes, and generated lines with random edits, never panic; nor does detection,
//!   nor compiling an arbitrary `log_format` or reading an arbitrary nginx.conf.
//! - A generated request, written as a line of a format and parsed back, gives exactly the
//!   record its ground truth says that format logs (`synth::Request::expected`); generated
//!   malformed lines are malformed and filtered lines filtered. The generator is pushed towards
//!   unusual content (quotes, backslashes, non-ASCII, odd router names) to exercise escaping.
//!
//! Failing cases are kept in `proptest-regressions/` next to this file.

use proptest::collection::vec;
use proptest::prelude::*;
use vantage_edge::format::{
    Escape, Format, LogFormat, Parsed, detect, detect_lines, ingress_nginx, nginx,
};
use vantage_edge::synth::{Generator, SynthConfig, Truth, write_request};

/// Custom `log_format`s beside the presets: the compiler's variable roles, list variables,
/// `escape=json`, adjacent self-ending variables and `${}` names.
fn custom_formats() -> Vec<Format> {
    let custom = |source: &str, escape| {
        let format = LogFormat::compile_with_escape(source, escape)
            .unwrap_or_else(|err| panic!("{source}: {err}"));
        Format::Nginx(format)
    };
    vec![
        custom(
            "$remote_addr [$time_local] $host $status $body_bytes_sent $request_time",
            Escape::None,
        ),
        custom(nginx::COMBINED, Escape::Default),
        custom(ingress_nginx::UPSTREAMINFO, Escape::Default),
        custom(
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" rt=$request_time uct="$upstream_connect_time" urt="$upstream_response_time" ust=$upstream_status host=$host"#,
            Escape::Default,
        ),
        custom(
            r#"{"time":"$time_iso8601","addr":"$remote_addr","method":"$request_method","uri":"$request_uri","proto":"$server_protocol","status":${status},"bytes":$bytes_sent,"rt":$request_time,"urt":"$upstream_response_time","ust":"$upstream_status","host":"$http_host","ua":"$http_user_agent"}"#,
            Escape::Json,
        ),
        custom(
            r#"$msec|$server_name|$request_method|uri="$uri"|$status|$request_length|[$proxy_upstream_name]|$upstream_addr|$upstream_status|$req_id"#,
            Escape::Default,
        ),
        custom(
            r#"[$time_iso8601]$request_method $request_uri $server_protocol $status "$http_user_agent""#,
            Escape::Default,
        ),
    ]
}

fn all_formats() -> Vec<Format> {
    let mut formats = Format::PRESETS.to_vec();
    formats.extend(custom_formats());
    formats
}

/// Lines of `format` from a seed, with a high share of odd, malformed and filtered lines.
fn generated(format: &Format, seed: u64, count: usize) -> Vec<vantage_edge::synth::SynthLine> {
    let config = SynthConfig::new()
        .seed(seed)
        .odd_rate(0.3)
        .malformed_rate(0.15)
        .filtered_rate(0.1)
        .scanner_rate(0.05)
        .query_rate(0.4);
    Generator::new(format.clone(), config).take(count).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        for format in all_formats() {
            let _ = format.parse(&bytes);
        }
        let _ = detect(&bytes);
    }

    #[test]
    fn any_log_format_or_nginx_conf_compiles_or_is_refused_without_panic(
        source in "[$a-z_{}\\\"' \\[\\]:;/#\n-]{0,80}",
        text in any::<String>(),
    ) {
        for escape in [Escape::Default, Escape::Json, Escape::None] {
            if let Ok(format) = LogFormat::compile_with_escape(&source, escape) {
                let _ = Format::Nginx(format).parse(source.as_bytes());
            }
        }
        let _ = LogFormat::compile(&text);
        let conf = format!("http {{ log_format main {source}; {text} }}");
        let _ = LogFormat::from_nginx_conf(&conf, "main");
        let _ = LogFormat::from_nginx_conf(&text, "main");
    }

    #[test]
    fn bytes_from_the_formats_alphabet_never_panic(
        bytes in vec(prop::sample::select(b"0123456789 -:/.,[]{}\"\\#<>+xXeE|=@~\r\nabcGETHTP".to_vec()), 0..300)
    ) {
        for format in all_formats() {
            let _ = format.parse(&bytes);
        }
    }

    #[test]
    fn edited_lines_never_panic(
        seed in any::<u64>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..6),
    ) {
        for format in all_formats() {
            for line in generated(&format, seed, 3) {
                let mut text = line.text;
                for (at, byte, op) in &edits {
                    match op {
                        0 if !text.is_empty() => {
                            let i = at.index(text.len());
                            text[i] = *byte;
                        }
                        1 => text.insert(at.index(text.len() + 1), *byte),
                        2 if !text.is_empty() => {
                            text.remove(at.index(text.len()));
                        }
                        _ => text.truncate(at.index(text.len() + 1)),
                    }
                }
                let _ = format.parse(&text);
            }
        }
    }

    #[test]
    fn detector_never_panics(lines in vec(vec(any::<u8>(), 0..200), 0..12)) {
        let _ = detect_lines(lines.iter().map(Vec::as_slice), &all_formats());
    }

    #[test]
    fn generated_lines_parse_back_to_their_truth(seed in any::<u64>()) {
        for format in all_formats() {
            for line in generated(&format, seed, 12) {
                let parsed = format.parse(&line.text);
                let shown = String::from_utf8_lossy(&line.text);
                match &line.truth {
                    Truth::Request(request) => prop_assert_eq!(
                        parsed,
                        Ok(Parsed::Record(request.expected(&format))),
                        "{} line {}", format, shown
                    ),
                    Truth::Malformed(kind) => prop_assert!(
                        parsed.is_err(),
                        "{} {} line parsed: {} -> {:?}", format, kind, shown, parsed
                    ),
                    Truth::Filtered => prop_assert!(
                        matches!(parsed, Ok(Parsed::Filtered(_))),
                        "{} filtered line: {} -> {:?}", format, shown, parsed
                    ),
                }
            }
        }
    }

    #[test]
    fn a_request_written_by_one_format_is_foreign_to_the_others(seed in any::<u64>()) {
        let config = SynthConfig::new().seed(seed);
        let mut generator = Generator::new(Format::TraefikCommon, config);
        let request = generator.next_request();
        for writer in Format::PRESETS {
            let line = write_request(writer, &request);
            for reader in Format::PRESETS {
                let same_family = reader == writer
                    || matches!(
                        (reader, writer),
                        (
                            Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis,
                            Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis
                        )
                    );
                if !same_family {
                    prop_assert!(
                        !matches!(reader.parse(&line), Ok(Parsed::Record(_))),
                        "{} read a {} line: {}", reader, writer, String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }
}
