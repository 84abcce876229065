//! The dashboard in a real headless Chromium: the live page of `edge-parser serve` and the
//! page `edge-parser report --html` writes, read from the DOM as a person would read them.
//!
//! Its own test binary (`cargo test -p vantage-edge --test dashboard`): it needs a browser,
//! and is the one to run when only the page changed. Without Chromium it says so and passes,
//! except under `CI`, where a missing browser is a failure. Screenshots at 1280×800 go to
//! `target/dashboard/`.

// Shared with the integration binary, which uses the rest of them.
#[allow(dead_code, reason = "helpers shared with the integration binary")]
mod serve_util;
#[allow(dead_code, reason = "helpers shared with the integration binary")]
mod util;
// Chromium over the DevTools protocol.
mod browser;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use browser::Browser;
use serve_util::{Server, append, traefik_line_at, unix_now};
use util::{Dir, WAIT_LIMIT};

/// The routers of the generated log, in turn, and their statuses in turn.
const ROUTERS: [&str; 3] = ["api@docker", "web@docker", "auth@file"];
const STATUSES: [u16; 4] = [200, 200, 404, 503];
/// How soon the page must show lines appended to the log.
const UPDATE_LIMIT: Duration = Duration::from_secs(2);
/// `serve --stale-after`.
const STALE_AFTER: Duration = Duration::from_secs(2);

/// The rows of the groups table as (router, requests) from their text, summed by router (the
/// live page groups by router and service).
const ROWS_BY_ROUTER: &str = r#"(() => {
  const rows = {};
  for (const tr of document.querySelectorAll('#groups tbody tr')) {
    const router = tr.querySelector('[data-col="key:router"]');
    const requests = tr.querySelector('[data-col="requests"]');
    if (!router || !requests) continue;
    const n = Number(requests.textContent.replace(/,/g, ''));
    rows[router.title] = (rows[router.title] || 0) + n;
  }
  return rows;
})()"#;

/// Whether the element `id` (a banner, a panel) is shown.
fn shown(id: &str) -> String {
    format!("!document.getElementById('{id}').hidden")
}

/// Where screenshots go: `target/dashboard/`.
fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("dashboard")
        .join(name)
}

/// A log of `count` requests numbered from `first`, stamped now; with the requests per router
/// added to `expected`.
fn lines_now(first: u64, count: u64, expected: &mut BTreeMap<String, u64>) -> String {
    let now = unix_now();
    (first..first + count)
        .map(|n| {
            let router = ROUTERS[n as usize % ROUTERS.len()];
            *expected.entry(router.to_owned()).or_default() += 1;
            let status = STATUSES[n as usize % STATUSES.len()];
            traefik_line_at(n, now, router, "GET", status, (n % 50) as u32 + 1)
        })
        .collect()
}

fn as_counts(expected: &BTreeMap<String, u64>) -> Value {
    json!(expected)
}

#[test]
fn live_page_shows_exact_counts_follows_appends_and_marks_stale() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = Dir::new("dashboard-live");
    let log = dir.join("access.log");
    let mut expected = BTreeMap::new();
    append(&log, &lines_now(1, 40, &mut expected));
    append(&log, "not an access log line\n");
    let log_arg = log.display().to_string();
    let stale_after = format!("{}s", STALE_AFTER.as_secs());
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
            "--poll-interval",
            "50ms",
            "--stale-after",
            &stale_after,
        ],
    );
    server.wait_taken_in(40);

    // The page and its files, as a browser and an ingress see them.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    let script = server.get("/dashboard.js");
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let etag = page.header("etag").expect("an ETag");
    let again = serve_util::request(server.addr(), "GET", "/", &[("If-None-Match", etag)])
        .expect("GET / again");
    assert_eq!((again.status, again.body.len()), (304, 0));
    let zipped = serve_util::request(server.addr(), "GET", "/", &[("Accept-Encoding", "gzip")])
        .expect("GET / gzipped");
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut unzipped,
    )
    .expect("gzip");
    assert_eq!(unzipped, page.body);

    let url = format!("http://{}/", server.addr());
    browser.open(&url);
    // Printed for BENCHMARKS.md, never asserted: timing is for benches.
    let drawn = browser.eval("performance.getEntriesByName('vantage-drawn')[0].startTime");
    eprintln!("first view with data {drawn} ms after navigation");
    browser.eval("document.querySelector('#windows input[value=\"1h\"]').click()");
    browser.wait_until(ROWS_BY_ROUTER, WAIT_LIMIT, "the log's counts", |rows| {
        rows == &as_counts(&expected)
    });
    let health = browser.eval("document.getElementById('health').textContent");
    assert!(
        health
            .as_str()
            .is_some_and(|text| text.contains("41 read: 40 parsed, 1 malformed")),
        "{health}"
    );
    browser.screenshot(&screenshot_path("live.png"));
    browser.resize(390, 844);
    browser.screenshot(&screenshot_path("live-narrow.png"));
    browser.resize(browser::VIEWPORT.0, browser::VIEWPORT.1);

    // Appended lines reach the table.
    append(&log, &lines_now(41, 12, &mut expected));
    browser.wait_until(ROWS_BY_ROUTER, UPDATE_LIMIT, "the appended lines", |rows| {
        rows == &as_counts(&expected)
    });
    assert_eq!(browser.eval(&shown("banner-stale")), json!(false));

    // Filters narrow the rows: text, router, status class.
    let narrow = |browser: &mut Browser, id: &str, value: &str| {
        browser.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.value = '{value}'; \
             e.dispatchEvent(new Event('input')); }})()"
        ));
        browser.eval(ROWS_BY_ROUTER)
    };
    let web = narrow(&mut browser, "filter-text", "web");
    assert_eq!(web, json!({"web@docker": expected["web@docker"]}));
    narrow(&mut browser, "filter-text", "");
    let auth = narrow(&mut browser, "filter-router", "auth@file");
    assert_eq!(auth, json!({"auth@file": expected["auth@file"]}));
    narrow(&mut browser, "filter-router", "");
    // Every router has had 503s (statuses and routers cycle with coprime periods).
    let errors = narrow(&mut browser, "filter-class", "5xx");
    assert_eq!(errors, as_counts(&expected));
    let none = narrow(&mut browser, "filter-class", "3xx");
    assert_eq!(none, json!({}));
    narrow(&mut browser, "filter-class", "");

    // Headers sort, and say so.
    browser.eval("document.querySelector('th[data-col=\"key:router\"] button').click()");
    let sorted = browser.eval(
        "[document.querySelector('th[data-col=\"key:router\"]').getAttribute('aria-sort'), \
         [...document.querySelectorAll('#groups tbody [data-col=\"key:router\"]')].map(td => td.title)]",
    );
    assert_eq!(
        sorted,
        json!(["ascending", ["api@docker", "auth@file", "web@docker"]])
    );
    // And from the keyboard: Enter on a focused header sorts by it, largest first.
    browser.eval("document.querySelector('th[data-col=\"requests\"] button').focus()");
    browser.press_enter();
    let sorted = browser.eval(
        "[document.querySelector('th[data-col=\"requests\"]').getAttribute('aria-sort'), \
         document.querySelector('th[data-col=\"key:router\"]').hasAttribute('aria-sort')]",
    );
    assert_eq!(sorted, json!(["descending", false]));

    // A row selected charts that group's own hour: its requests, and nothing of the others.
    browser.eval(
        "[...document.querySelectorAll('#groups tbody tr')].find(tr => \
         tr.querySelector('[data-col=\"key:router\"]').title === 'api@docker').click()",
    );
    let chart = browser.wait_until(
        "[document.getElementById('chart-caption').textContent, \
          Number((document.querySelector('#chart svg') || { dataset: {} }).dataset.requests), \
          document.getElementById('chart-all').hidden]",
        WAIT_LIMIT,
        "the chart of one group",
        |chart| {
            chart[0]
                .as_str()
                .is_some_and(|c| c.starts_with("router=api@docker"))
        },
    );
    assert_eq!(chart[1], json!(expected["api@docker"]), "{chart}");
    assert_eq!(chart[2], json!(false));
    // The button brings every group back.
    browser.eval("document.getElementById('chart-all').click()");
    let caption = browser.eval("document.getElementById('chart-caption').textContent");
    assert!(
        caption
            .as_str()
            .is_some_and(|c| c.starts_with("All groups")),
        "{caption}"
    );
    // The endpoint behind it names what a group is when asked wrongly.
    let wrong = server.get("/api/group?key=api@docker");
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json()["error"],
        "a group is 2 key values (router, service), in that order: ?key=VALUE&key=VALUE"
    );
    assert_eq!(server.get("/api/group?key=nobody&key=-").status, 404);

    // Grouped by router alone (the server groups by router and service): one column of keys,
    // the same counts, from `api/summary?by=router`.
    browser.eval("document.querySelector('#group-by input[value=\"service\"]').click()");
    let columns = browser.wait_until(
        "[...document.querySelectorAll('#groups thead th')].map(th => th.dataset.col)",
        WAIT_LIMIT,
        "the table grouped by router",
        |columns| !columns.to_string().contains("key:service"),
    );
    assert!(columns.to_string().contains("key:router"), "{columns}");
    browser.wait_until(ROWS_BY_ROUTER, WAIT_LIMIT, "the counts by router", |rows| {
        rows == &as_counts(&expected)
    });
    let by_router = server.get("/api/summary?by=router").json();
    assert_eq!(by_router["group_by"], json!(["router"]));
    assert_eq!(by_router["groupable_by"], json!(["router", "service"]));
    let one_hour = &by_router["windows"][2]["groups"];
    let counts: BTreeMap<String, u64> = one_hour
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["key"]["router"].as_str().expect("router").to_owned(),
                g["requests"].as_u64().expect("requests"),
            )
        })
        .collect();
    assert_eq!(json!(counts), as_counts(&expected));
    let wrong = server.get("/api/summary?by=host");
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json()["error"],
        r#""host" is not one of this server's groupings: router, service"#
    );
    browser.eval("document.querySelector('#group-by input[value=\"service\"]').click()");
    browser.wait_until(
        "[...document.querySelectorAll('#groups thead th')].map(th => th.dataset.col)",
        WAIT_LIMIT,
        "the table grouped by router and service again",
        |columns| columns.to_string().contains("key:service"),
    );

    // The slowest request of the log leads the slowest (durations are 1 to 50 ms, the 50 ms
    // one is request 49); the sampled tail holds a few of the latest.
    let slowest = browser.eval(
        "[...document.querySelector('#slowest tbody tr').cells].map(td => td.textContent).slice(1)",
    );
    assert_eq!(slowest, json!(["web@docker", "-", "GET", "200", "50.0 ms"]));
    let tail = browser.eval("document.querySelectorAll('#recent tbody tr').length");
    assert!(
        tail.as_u64().is_some_and(|rows| (1..=50).contains(&rows)),
        "{tail}"
    );

    // With the writer stopped, the stale banner comes on after --stale-after; the rows stay.
    browser.wait_until(
        &shown("banner-stale"),
        STALE_AFTER + WAIT_LIMIT,
        "the stale banner",
        |shown| shown == &json!(true),
    );
    assert_eq!(browser.eval(ROWS_BY_ROUTER), as_counts(&expected));

    // The snapshot button downloads what `report --snapshot` reads.
    let href = browser.eval("document.getElementById('snapshot').href");
    let path = href
        .as_str()
        .and_then(|href| href.strip_prefix(&url[..url.len() - 1]))
        .unwrap_or_else(|| panic!("the snapshot link is on this server: {href}"));
    assert_eq!(path, "/api/snapshot");
    let snapshot = server.get(path);
    assert_eq!(snapshot.status, 200);
    let saved = dir.create("snapshot.json", &snapshot.body);
    let report = dir
        .command()
        .args(["report", "--json", "--snapshot"])
        .arg(&saved)
        .json();
    let total: u64 = expected.values().sum();
    assert_eq!(report["total"]["requests"], total);
    assert_eq!(report["lines"]["malformed"], 1);

    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // A server gone: the page says since when, and its numbers are no longer shown as live.
    server.kill();
    browser.wait_for(
        "document.body.classList.contains('offline') && \
         document.getElementById('connection').textContent.startsWith('disconnected since ')",
        "the disconnected state",
    );
    assert_eq!(browser.eval(&shown("banner-disconnected")), json!(true));
}

#[test]
fn live_page_waits_for_the_format_without_calling_itself_disconnected() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = Dir::new("dashboard-waiting");
    let log = dir.create("access.log", "");
    let server = Server::start(
        &dir,
        &[
            "--log",
            log.to_str().expect("a path"),
            "--poll-interval",
            "50ms",
        ],
    );
    browser.open(&format!("http://{}/", server.addr()));
    browser.wait_for(&shown("banner-waiting"), "the waiting banner");
    // Longer than the page waits for a summary before it calls itself disconnected (5 s):
    // while the format is unknown the stream is silent, and the page asks the summary.
    std::thread::sleep(Duration::from_secs(6));
    let state = browser.eval(
        "[document.getElementById('connection').textContent, \
          !document.getElementById('banner-disconnected').hidden]",
    );
    assert_eq!(state, json!(["live", false]));

    let mut expected = BTreeMap::new();
    append(&log, &lines_now(1, 80, &mut expected));
    browser.wait_until(
        ROWS_BY_ROUTER,
        WAIT_LIMIT,
        "the detected log's counts",
        |rows| rows == &as_counts(&expected),
    );
    assert_eq!(browser.eval(&shown("banner-waiting")), json!(false));
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn report_page_shows_the_numbers_of_report_json_without_network() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = Dir::new("dashboard-report");
    let log = dir.join("access.log");
    let generated = dir
        .command()
        .args(["generate", "--format", "traefik-common", "-n", "3000"])
        .run_to_file(&log);
    assert_eq!(generated.code, 0, "{generated}");
    let report = dir.command().arg("report").arg(&log).arg("--json").json();
    let page = dir.join("report.html");
    let written = dir
        .command()
        .arg("report")
        .arg(&log)
        .arg("--html")
        .arg(&page)
        .run();
    assert_eq!(written.code, 0, "{written}");
    assert_eq!(written.stdout, "");
    let html = std::fs::read_to_string(&page).expect("the report page");
    let to_stdout = dir
        .command()
        .arg("report")
        .arg(&log)
        .args(["--html", "-"])
        .stdout();
    assert_eq!(to_stdout, html, "--html - writes the same page to stdout");
    assert!(html.contains(r#"<script type="application/json" id="vantage-data">"#));
    assert!(!html.contains("src=\"") && !html.contains("href=\"dashboard"));

    browser.open(&format!("file://{}", page.display()));
    // (router, requests, p50, p99, p99.9 in seconds) per row, in the page's order.
    type Row = (String, u64, f64, f64, f64);
    let shown: Vec<Row> = serde_json::from_value(browser.eval(
        r#"[...document.querySelectorAll('#groups tbody tr')].map(tr => {
             const cell = (col) => tr.querySelector(`[data-col="${col}"]`);
             return [cell('key:router').title, Number(cell('requests').textContent.replace(/,/g, '')),
                     Number(cell('p50').dataset.value), Number(cell('p99').dataset.value),
                     Number(cell('p999').dataset.value)];
           })"#,
    ))
    .expect("rows of five figures");
    let from_json: Vec<Row> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|group| {
            let latency = |at: &str| group["latency_seconds"][at].as_f64().unwrap_or(f64::NAN);
            (
                group["key"]["router"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                group["requests"].as_u64().unwrap_or_default(),
                latency("p50"),
                latency("p99"),
                latency("p999"),
            )
        })
        .collect();
    assert_eq!(shown, from_json);
    let health = browser.eval("document.getElementById('health').textContent");
    assert_eq!(
        report["lines"],
        json!({"total": 3000, "parsed": 3000, "malformed": 0, "filtered": 0})
    );
    assert!(
        health
            .as_str()
            .is_some_and(|text| text.contains("3,000 read: 3,000 parsed, 0 malformed")),
        "{health}"
    );
    browser.prefer_dark(false);
    browser.screenshot(&screenshot_path("report.png"));
    browser.prefer_dark(true);
    browser.screenshot(&screenshot_path("report-dark.png"));
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A service's `/metrics` that never changes (the route `/r/{id}` with 7 requests), on a
/// loopback port, answered by a thread of its own until the test ends.
fn frozen_service() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    const BODY: &str = "\
http_server_request_duration_seconds_bucket{http_route=\"/r/{id}\",http_response_status_code=\"200\",le=\"+Inf\"} 7
http_server_request_duration_seconds_sum{http_route=\"/r/{id}\",http_response_status_code=\"200\"} 0.07
http_server_request_duration_seconds_count{http_route=\"/r/{id}\",http_response_status_code=\"200\"} 7
";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().expect("a local address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
        }
    });
    addr
}

#[test]
fn reconcile_panel_shows_the_edge_against_the_service() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let service = frozen_service();
    let dir = Dir::new("dashboard-reconcile");
    let log = dir.create("access.log", "");
    let metrics = format!("http://{service}/metrics");
    let server = Server::start(
        &dir,
        &[
            "--log",
            log.to_str().expect("a path"),
            "--format",
            "traefik-common",
            "--poll-interval",
            "50ms",
            "--service-metrics",
            &metrics,
            "--service-scrape-interval",
            "100ms",
            "--route",
            "/health",
        ],
    );
    // The first scrape starts the reconciliation; the service's 7 requests are before it.
    server.wait_reconciled("/r/{id}", 0, 0);
    let mut expected = BTreeMap::new();
    append(&log, &lines_now(1, 12, &mut expected));
    // And 3 health checks the backend answered: a route the service does not measure.
    let now = unix_now();
    let checks: String = (13..16)
        .map(|n| {
            traefik_line_at(n, now, "api@docker", "GET", 200, 1)
                .replace(&format!("/r/{n} "), "/health ")
        })
        .collect();
    append(&log, &checks);
    server.wait_reconciled("/health", 3, 0);
    let reconcile = server.wait_reconciled("/r/{id}", 12, 0);
    let row = serve_util::route_row(&reconcile["routes"], "/r/{id}");
    let health = serve_util::route_row(&reconcile["routes"], "/health");
    assert_eq!(
        (&health["lost"], &health["unmeasured"]),
        (&json!(0), &json!(3))
    );

    browser.open(&format!("http://{}/", server.addr()));
    let cells = browser.wait_until(
        "[...document.querySelectorAll('#reconcile tbody tr')]
           .map(tr => [...tr.cells].map(td => td.textContent))
           .find(cells => cells[0] === '/r/{id}')",
        WAIT_LIMIT,
        "the route's reconciliation",
        |cells| cells[1] == "12",
    );
    assert_eq!(
        browser.eval(&shown("reconcile-panel")),
        json!(true),
        "the panel is shown"
    );
    assert_eq!(cells[2], "0");
    assert_eq!(cells[3], row["lost"].to_string());
    assert_eq!(row["lost"], 12);
    let reasons: Vec<String> = ["proxy_answered", "client_cancelled", "unexplained"]
        .into_iter()
        .filter(|reason| row["reasons"][reason].as_u64() > Some(0))
        .map(|reason| format!("{} {}", reason.replace('_', " "), row["reasons"][reason]))
        .collect();
    assert_eq!(cells[4], reasons.join(", "));
    let health = browser.eval(
        "[...document.querySelectorAll('#reconcile tbody tr')]
           .map(tr => [...tr.cells].map(td => td.textContent))
           .find(cells => cells[0] === '/health')",
    );
    assert_eq!(
        health,
        json!([
            "/health",
            "3",
            "0",
            "0",
            "not measured by the service 3",
            "0",
            "—"
        ]),
        "a route the service does not measure"
    );
    browser.eval("document.getElementById('reconcile-panel').scrollIntoView()");
    browser.screenshot(&screenshot_path("reconcile.png"));
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn report_page_shows_every_group_up_to_the_cap() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = Dir::new("dashboard-groups");
    let lines: String = (0..1500)
        .map(|n| serve_util::traefik_line(n, &format!("r{n}@file"), "GET", 200, 5))
        .collect();
    let log = dir.create("access.log", lines);
    let report = dir.command().arg("report").arg(&log).arg("--json").json();
    let groups = report["groups"].as_array().map_or(0, Vec::len);
    // The default cap of 1 000 routers of their own, and the rest folded into one group.
    assert_eq!(groups, 1001);
    let page = dir.join("report.html");
    let written = dir
        .command()
        .arg("report")
        .arg(&log)
        .arg("--html")
        .arg(&page)
        .run();
    assert_eq!(written.code, 0, "{written}");
    browser.open(&format!("file://{}", page.display()));
    browser.wait_until(
        "document.querySelectorAll('#groups tbody tr').length",
        WAIT_LIMIT,
        "every group drawn",
        |rows| rows == &json!(groups),
    );
    let overflow = browser.eval(
        "[...document.querySelectorAll('#groups [data-col=\"key:router\"]')]
           .filter(td => td.title === '(overflow)').length",
    );
    assert_eq!(overflow, json!(1));
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A measurement for BENCHMARKS.md, not a test (timing is for benches): the live page's first
/// contentful paint and its first view with data (its `vantage-drawn` mark), from navigation,
/// over 21 loads in one browser (the first, which compiles the script, printed apart). Run with `cargo test
/// --release -p vantage-edge --test dashboard -- --ignored --nocapture first_view`.
#[test]
#[ignore = "a measurement: run by hand, quoted in BENCHMARKS.md"]
fn first_view_timing() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let dir = Dir::new("dashboard-timing");
    let log = dir.join("access.log");
    let mut expected = BTreeMap::new();
    append(&log, &lines_now(1, 400, &mut expected));
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
        ],
    );
    server.wait_taken_in(400);
    let url = format!("http://{}/", server.addr());
    let (mut painted, mut drawn) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        browser.open(&url);
        browser.wait_for(
            "performance.getEntriesByName('first-contentful-paint').length",
            "the first paint's entry",
        );
        let times = browser.eval(
            "[performance.getEntriesByName('first-contentful-paint')[0].startTime, \
              performance.getEntriesByName('vantage-drawn')[0].startTime]",
        );
        painted.push(times[0].as_f64().expect("a paint time"));
        drawn.push(times[1].as_f64().expect("a drawing time"));
    }
    // The same browser painting the smallest page there is: what any page costs here.
    let mut plain = Vec::new();
    for _ in 0..21 {
        browser.call_navigate(&format!("http://{}/health", server.addr()));
        browser.wait_for(
            "performance.getEntriesByName('first-contentful-paint').length",
            "the plain page's paint",
        );
        let time =
            browser.eval("performance.getEntriesByName('first-contentful-paint')[0].startTime");
        plain.push(time.as_f64().expect("a paint time"));
    }
    for (what, mut loads) in [
        ("first contentful paint", painted),
        ("first view with data", drawn),
        ("a plain text page's first paint", plain),
    ] {
        let first = loads.remove(0);
        loads.sort_by(f64::total_cmp);
        eprintln!(
            "{what}: first load {first:.1} ms; the next 20: min {:.1}, median {:.1}, max {:.1} ms",
            loads[0], loads[10], loads[19]
        );
    }
}
