//! The dashboard's files at `/` (see [`crate::export::html`]): their content types, an `ETag`
//! per file, gzip when the client takes it, and a content security policy that lets the page
//! load and fetch from its own origin only.
//!
//! `Cache-Control: no-cache` makes a browser ask again each time, answered `304` while the
//! file is unchanged: a sidecar upgraded in place serves its new page at once.

use std::io::Write as _;
use std::sync::LazyLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use super::http::Body;
use crate::export::html::{DASHBOARD_CSS, DASHBOARD_JS, INDEX_HTML};

/// What the page may load: its own files and endpoints, nothing else (no inline script, no
/// other origin, no framing by another site).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One embedded file, ready to send.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    plain: Bytes,
    gzip: Bytes,
    etag: HeaderValue,
}

impl Asset {
    fn new(content_type: &'static str, text: &'static str) -> Self {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        // Writing to a Vec cannot fail.
        let gzip = encoder
            .write_all(text.as_bytes())
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        let etag = format!("\"{:08x}\"", crc32fast::hash(text.as_bytes()));
        Self {
            content_type,
            plain: Bytes::from_static(text.as_bytes()),
            gzip: Bytes::from(gzip),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        }
    }
}

/// The files by path (the page is also at `/index.html`), compressed once, at the first
/// request for one of them.
static ASSETS: LazyLock<[(&str, Asset); 3]> = LazyLock::new(|| {
    [
        ("/", Asset::new("text/html; charset=utf-8", INDEX_HTML)),
        (
            "/dashboard.css",
            Asset::new("text/css; charset=utf-8", DASHBOARD_CSS),
        ),
        (
            "/dashboard.js",
            Asset::new("text/javascript; charset=utf-8", DASHBOARD_JS),
        ),
    ]
});

/// The answer for `path` if it is one of the page's files; `None` otherwise.
pub(crate) fn answer(path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    let path = if path == "/index.html" { "/" } else { path };
    let (_, asset) = ASSETS.iter().find(|(served, _)| *served == path)?;
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag.as_bytes() == asset.etag.as_bytes() || tag == "*");
    let gzip = accepts_gzip(headers);
    let (status, body) = match (unchanged, gzip) {
        (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new()),
        (false, true) => (StatusCode::OK, asset.gzip.clone()),
        (false, false) => (StatusCode::OK, asset.plain.clone()),
    };
    let mut response = Response::new(super::http::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if gzip && !unchanged {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Some(response)
}

/// Whether `Accept-Encoding` takes gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn each_file_has_its_content_type_and_other_paths_are_not_the_page() {
        let types = ["/", "/index.html", "/dashboard.css", "/dashboard.js"].map(|path| {
            let response = answer(path, &HeaderMap::new()).expect("a page file");
            response.headers()[header::CONTENT_TYPE].clone()
        });
        assert_eq!(
            types,
            [
                "text/html; charset=utf-8",
                "text/html; charset=utf-8",
                "text/css; charset=utf-8",
                "text/javascript; charset=utf-8"
            ]
        );
        assert!(answer("/metrics", &HeaderMap::new()).is_none());
        assert!(answer("/dashboard.js.map", &HeaderMap::new()).is_none());
    }

    #[test]
    fn an_unchanged_file_is_not_sent_again() {
        let first = answer("/", &HeaderMap::new()).expect("the page");
        let etag = first.headers()[header::ETAG].clone();
        let mut asked = HeaderMap::new();
        asked.insert(header::IF_NONE_MATCH, etag.clone());
        let again = answer("/", &asked).expect("the page");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        asked.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(
            answer("/", &asked).map(|r| r.status()),
            Some(StatusCode::OK)
        );
        // A list of tags, as a cache holding several versions sends.
        let listed = format!("\"other\", {}", etag.to_str().unwrap_or_default());
        asked.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&listed).expect("a value"),
        );
        let listed = answer("/", &asked).map(|r| r.status());
        assert_eq!(listed, Some(StatusCode::NOT_MODIFIED));
    }

    #[test]
    fn gzip_is_sent_only_when_taken() {
        let gzip = |accept: &'static str| {
            answer("/", &headers(&[(header::ACCEPT_ENCODING, accept)]))
                .is_some_and(|response| response.headers().contains_key(header::CONTENT_ENCODING))
        };
        assert!(gzip("gzip, deflate, br"));
        assert!(gzip("br;q=1.0, gzip;q=0.5"));
        assert!(gzip("*"));
        assert!(!gzip("gzip;q=0"));
        assert!(!gzip("identity"));
        assert!(!gzip("br"));
    }
}
