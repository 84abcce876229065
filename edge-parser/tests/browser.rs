//! A headless Chromium driven over the DevTools protocol: open a page, evaluate script in it,
//! wait for a condition, take a screenshot, and collect every console error and uncaught
//! exception the page produced.

mod websocket;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use self::websocket::WebSocket;
use crate::serve_util::POLL;
use crate::util::{Dir, WAIT_LIMIT, require};

/// The viewport of every page and screenshot.
pub(crate) const VIEWPORT: (u32, u32) = (1280, 800);

/// A running headless Chromium with one page open; killed when dropped.
#[derive(Debug)]
pub(crate) struct Browser {
    child: Child,
    socket: WebSocket,
    /// The page's session on the browser's connection.
    session: String,
    next_id: u64,
    /// Console errors and uncaught exceptions, as text.
    errors: Vec<String>,
    /// Its profile and its standard error (kept to explain a failure).
    dir: Dir,
}

impl Browser {
    /// Starts Chromium with a blank page; `None`, after saying why, when it is not installed
    /// (a failure under `CI`).
    pub(crate) fn launch() -> Option<Self> {
        let binary = require("chromium")?;
        let dir = Dir::new("chromium");
        let stderr = std::fs::File::create(dir.join("stderr")).expect("creating stderr");
        let child = Command::new(binary)
            .args([
                "--headless",
                // Root in a container has no user namespace to sandbox with.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting chromium");
        let url = devtools_url(&dir).unwrap_or_else(|| {
            panic!(
                "chromium did not open its DevTools port:\n{}",
                std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
            )
        });
        let socket = WebSocket::connect(&url, WAIT_LIMIT).expect("connecting to chromium");
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            errors: Vec::new(),
            dir,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.call("Runtime.enable", json!({}));
        browser.call("Log.enable", json!({}));
        browser.call("Page.enable", json!({}));
        browser.resize(VIEWPORT.0, VIEWPORT.1);
        Some(browser)
    }

    /// Makes the viewport `width` × `height` CSS pixels (a phone's when narrow).
    pub(crate) fn resize(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        );
    }

    /// Opens `url` and waits until the page says it has drawn (`body[data-ready]`).
    pub(crate) fn open(&mut self, url: &str) {
        self.call_navigate(url);
        self.wait_for(
            "document.body && document.body.dataset.ready === 'true'",
            "the first paint",
        );
    }

    /// Starts navigating to `url` (any page, not only the dashboard).
    pub(crate) fn call_navigate(&mut self, url: &str) {
        let navigated = self.call("Page.navigate", json!({"url": url}));
        assert!(
            navigated.get("errorText").is_none(),
            "opening {url}: {navigated}"
        );
    }

    /// The value of `expression` (awaited if it is a promise) in the page.
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until `accept` takes its value (within `limit`); returns that
    /// value, or fails with the last one seen and `what` was awaited.
    pub(crate) fn wait_until(
        &mut self,
        expression: &str,
        limit: Duration,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression);
            if accept(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; last seen: {value}"
            );
            std::thread::sleep(POLL * 5);
        }
    }

    /// [`wait_until`](Self::wait_until) `expression` is truthy, within [`WAIT_LIMIT`].
    pub(crate) fn wait_for(&mut self, expression: &str, what: &str) -> Value {
        let truthy = format!("Boolean({expression})");
        self.wait_until(&truthy, WAIT_LIMIT, what, |value| value == &json!(true))
    }

    /// Makes the page see a system that prefers dark colours (or light).
    pub(crate) fn prefer_dark(&mut self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Presses and releases Enter on the focused element, as a keyboard does.
    pub(crate) fn press_enter(&mut self) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": "Enter", "code": "Enter", "text": "\r",
                       "windowsVirtualKeyCode": 13}),
            );
        }
    }

    /// Writes a PNG of the viewport to `path` (its directory created).
    pub(crate) fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("a base64 screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating the screenshot directory");
        }
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// The console errors and uncaught exceptions so far (after taking in what is pending).
    pub(crate) fn errors(&mut self) -> Vec<String> {
        self.eval("0");
        self.errors.clone()
    }

    /// Sends `method` to the page (or to the browser before a page is attached) and returns
    /// its result, taking in the events that come before it.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method});
        message["params"] = params;
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(&message.to_string())
            .unwrap_or_else(|error| panic!("sending {method}: {error}"));
        loop {
            let text = self
                .socket
                .receive()
                .unwrap_or_else(|error| panic!("waiting for {method}: {error}\n{}", self.stderr()));
            let message: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    panic!("{method}: {error}");
                }
                return message["result"].clone();
            }
            self.take_event(&message);
        }
    }

    /// Keeps the errors among the page's events.
    fn take_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.errors.push(format!(
                    "uncaught: {} {}",
                    details["text"], details["exception"]["description"]
                ));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.errors.push(format!(
                    "{}: {} {}",
                    entry["source"], entry["text"], entry["url"]
                ));
            }
            _ => {}
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's DevTools address, from the file Chromium writes in its profile once it
/// listens (`--remote-debugging-port=0` picks a free port).
fn devtools_url(dir: &Dir) -> Option<String> {
    let file = dir.join("profile").join("DevToolsActivePort");
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some((port, path)) = text.split_once('\n')
            && !path.trim().is_empty()
        {
            return Some(format!("ws://127.0.0.1:{port}{}", path.trim()));
        }
        std::thread::sleep(POLL);
    }
    None
}
