//! The dashboard page: one HTML file, one stylesheet and one script, embedded in the binary.
//!
//! The same files make two views of the data:
//!
//! - **live**, served by `edge-parser serve` at `/` (see `serve::page`): the script paints from
//!   `api/summary`, then follows `api/stream`. Every URL is relative, so the page works behind
//!   a path prefix (an ingress serving the sidecar at `/edge/`).
//! - **a report file** ([`report_page`], `edge-parser report --html FILE`): the stylesheet and
//!   the script inlined and the [report document](super::json) embedded, so that the file opens
//!   anywhere with no network at all (its content security policy forbids any).
//!
//! The script turns either input into one model (groups per window, the measurement's health,
//! anomalies, the reconciliation) and draws every view from that model alone.

use serde_json::Value;

/// The page's HTML.
pub const INDEX_HTML: &str = include_str!("index.html");
/// The page's stylesheet.
pub const DASHBOARD_CSS: &str = include_str!("dashboard.css");
/// The page's script.
pub const DASHBOARD_JS: &str = include_str!("dashboard.js");

/// How the page links its stylesheet: replaced by the stylesheet itself in a report file.
const STYLESHEET_LINK: &str = r#"<link rel="stylesheet" href="dashboard.css">"#;
/// How the page loads its script: replaced by the data and the script in a report file.
const SCRIPT_TAG: &str = r#"<script src="dashboard.js" defer></script>"#;
/// The report file's policy: inline style and script only; no request of any kind.
const REPORT_POLICY: &str = r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">"#;

/// The page as one self-contained HTML file showing `document` (a
/// [report document](super::json::to_json)): no external file and no network.
pub fn report_page(document: &Value) -> String {
    let data = embeddable_json(document);
    let mut page = String::with_capacity(
        INDEX_HTML.len() + DASHBOARD_CSS.len() + DASHBOARD_JS.len() + data.len() + 256,
    );
    let (head, rest) = INDEX_HTML
        .split_once(STYLESHEET_LINK)
        .unwrap_or((INDEX_HTML, ""));
    let (middle, tail) = rest.split_once(SCRIPT_TAG).unwrap_or((rest, ""));
    page.push_str(head);
    page.push_str(REPORT_POLICY);
    page.push_str("<style>\n");
    page.push_str(DASHBOARD_CSS);
    page.push_str("</style>");
    page.push_str(middle);
    page.push_str(r#"<script type="application/json" id="vantage-data">"#);
    page.push_str(&data);
    page.push_str("</script>\n<script>\n");
    page.push_str(DASHBOARD_JS);
    page.push_str("</script>");
    page.push_str(tail);
    page
}

/// `document` as JSON that cannot end the `<script>` element holding it: `<` appears in JSON
/// text only inside strings, where `\u003c` means the same.
fn embeddable_json(document: &Value) -> String {
    serde_json::to_string(document)
        .unwrap_or_default()
        .replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_links_its_assets_where_a_report_inlines_them() {
        assert!(INDEX_HTML.contains(STYLESHEET_LINK));
        assert!(INDEX_HTML.contains(SCRIPT_TAG));
        let page = report_page(&json!({"lines": {"total": 1}}));
        assert!(!page.contains(STYLESHEET_LINK));
        assert!(!page.contains(SCRIPT_TAG));
        assert!(page.contains(DASHBOARD_CSS));
        assert!(page.contains(DASHBOARD_JS));
        assert!(page.contains(r#"{"lines":{"total":1}}"#));
    }

    #[test]
    fn embedded_data_cannot_close_its_script_element() {
        let page = report_page(&json!({"text": "</script><script>alert(1)</script>"}));
        assert!(!page.contains("</script><script>alert"));
        let data = embeddable_json(&json!({"text": "</script>"}));
        let back: Value = serde_json::from_str(&data).expect("still JSON");
        assert_eq!(back["text"], "</script>");
    }
}
