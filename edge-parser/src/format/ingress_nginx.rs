//! ingress-nginx: the default `upstreaminfo` log format and the `$upstream_*` lists.
//!
//! The format is an nginx `log_format` ([`UPSTREAMINFO`]), parsed by the compiled
//! [`LogFormat`] machinery; what is specific is its upstream fields. `$upstream_addr`,
//! `$upstream_response_length`, `$upstream_response_time` and `$upstream_status` are lists:
//! `, ` separates attempts within one upstream group (retries, `proxy_next_upstream`), ` : `
//! separates groups after an internal redirect (`X-Accel-Redirect`, `error_page`), and an
//! element is `-` when that attempt got no response. Because the lists contain spaces, their
//! extent is found by this grammar (nginx's, shared by every `log_format` that logs them), not
//! by splitting on spaces.
//!
//! Semantics (formats.md §3, as netdata does): the upstream duration is the **sum** of the
//! numeric elements of `$upstream_response_time` (all the time spent waiting on upstreams;
//! missing when no element is numeric), the upstream status is the **last numeric** element of
//! `$upstream_status` (the response that was used; a trailing `-` is an attempt that never
//! answered). The request duration is `$request_time` and the router is
//! `[$proxy_upstream_name]` (`<namespace>-<service>-<port>`).

use std::sync::LazyLock;

use super::nginx::{LogFormat, preset};

/// ingress-nginx's default `log-format-upstream` (`internal/ingress/controller/config`).
pub const UPSTREAMINFO: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;

pub(crate) static UPSTREAMINFO_FORMAT: LazyLock<LogFormat> = LazyLock::new(|| preset(UPSTREAMINFO));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_helpers::text;
    use crate::format::{Status, Timestamp};

    #[test]
    fn retry_line_from_beats_issue() {
        let format = &*UPSTREAMINFO_FORMAT;
        let line = br#"192.168.64.14 - - [07/Feb/2020:12:02:42 +0000] "GET /A%20Beka%20G1%20Howe/029_AND_30/15%20reading%20elephants.mp4 HTTP/1.1" 200 61 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:72.0) Gecko/20100101 Firefox/72.0" 348 0.001 [default-web2-8080] [] 172.17.0.6:8080, 172.17.0.7:8080 61, - 0.100, - 200, - 835136ae24486dbb4156dcbe21f5d402"#;
        let r = format.parse(line).unwrap();
        assert_eq!(r.timestamp, Some(Timestamp::from_unix_secs(1_581_076_962)));
        assert_eq!(text(&r.router), Some("default-web2-8080"));
        assert_eq!(r.status, Some(Status::new(200)));
        assert_eq!(r.bytes_sent, Some(61));
        assert_eq!(r.duration_ns, Some(1_000_000));
        assert_eq!(r.upstream_duration_ns, Some(100_000_000));
        assert_eq!(r.upstream_status, Some(Status::new(200)));
        // `200, -`: two attempts, the second never answered.
        assert_eq!(r.upstream_attempts, Some(2));
    }

    #[test]
    fn a_line_glued_to_the_next_by_interleaved_writes_is_malformed() {
        // Found by `props::generated_lines_parse_back_to_their_truth`: the tail of the second
        // line was taken as the first line's `$req_id`.
        let line = br#"2001:db8::e0f7 - - [09/Mar/2025:12:00:00 +0000] "GET / HTTP/2.0" 200 1189 "-" "okhttp/4.12.0" 151 0.008 [default-web-frontend-80] [-] 10.42.75.155:8080 :185.1.68.164 - - [09/Mar/2025:12:00:00 +0000] "GET /?page=31 HTTP/2.0" 200 1650 "-" "Mozilla/5.0" 169 0.022 [default-web-frontend-80] [-] 10.42.75.155:8080 1650 0.021 200 0b6f9f7d1e4f514de3635571728dabe5"#;
        assert!(UPSTREAMINFO_FORMAT.parse(line).is_err());
    }

    #[test]
    fn redirect_groups_and_no_upstream() {
        let format = &*UPSTREAMINFO_FORMAT;
        let line = br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /x HTTP/2.0" 404 10 "-" "-" 300 0.530 [shop-web-80] [] 172.17.0.124:80 : 172.17.0.80:80 0 : 10 0.518 : 0.009 500 : 404 00000000000000000000000000000001"#;
        let r = format.parse(line).unwrap();
        assert_eq!(r.upstream_duration_ns, Some(527_000_000));
        assert_eq!(r.upstream_status, Some(Status::new(404)));
        assert_eq!(r.upstream_attempts, Some(2));
        let line = br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /x HTTP/2.0" 503 190 "-" "-" 300 0.000 [shop-web-80] [] - - - - 00000000000000000000000000000001"#;
        let r = format.parse(line).unwrap();
        assert_eq!((r.upstream_duration_ns, r.upstream_status), (None, None));
        // nginx answered itself (`limit_req`, `return`): no upstream was tried.
        assert_eq!(r.upstream_attempts, Some(0));
        assert_eq!(r.duration_ns, Some(0));
        // A lone `-` status with an upstream time: one attempt that got no response.
        let line = br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /x HTTP/2.0" 499 0 "-" "-" 300 2.000 [shop-web-80] [] 172.17.0.124:80 0 1.999 - 00000000000000000000000000000001"#;
        assert_eq!(format.parse(line).unwrap().upstream_attempts, Some(1));
    }
}
