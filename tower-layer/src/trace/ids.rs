//! [`TraceIds`]: the request's trace and span ids in every log line, without a span per
//! request.

use std::cell::RefCell;
use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::current::peek;

thread_local! {
    /// The line being formatted, reused from event to event.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// How the ids are added to a formatted line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// ` trace_id=… span_id=…` at the end of the line.
    Text,
    /// `"trace_id":"…","span_id":"…"` as the last members of the line's JSON object.
    Json,
}

/// An event formatter that adds the [current](super::current) request's `trace_id` and
/// `span_id` to every log line written while a [`TraceContextLayer`](super::TraceContextLayer)
/// request is handled, around any other formatter: the correlation of a span per request at a
/// fraction of its cost (no span is made, stored or entered; the ids are read from the context
/// the layer makes current anyway). Lines outside a request are written as the inner formatter
/// writes them.
///
/// ```
/// use vantage_tower::trace::TraceIds;
///
/// // Text lines: `... user looked up user=7 trace_id=4bf9… span_id=00f0…`
/// let text = tracing_subscriber::fmt().map_event_format(TraceIds::text).finish();
/// // JSON lines: `{..., "trace_id":"4bf9…","span_id":"00f0…"}`
/// let json = tracing_subscriber::fmt().json().map_event_format(TraceIds::json).finish();
/// # drop((text, json));
/// ```
///
/// Lines inside a request are formatted into a reused per-thread buffer, then the ids are
/// added: no allocation in the steady state. Written to a terminal, those lines lose the inner
/// formatter's colours (tracing-subscriber lets only its own writers carry them).
#[derive(Clone, Copy, Debug)]
pub struct TraceIds<F> {
    inner: F,
    shape: Shape,
}

impl<F> TraceIds<F> {
    /// Adds ` trace_id=… span_id=…` to the lines of a text formatter (such as
    /// `tracing_subscriber::fmt::format()`).
    pub fn text(inner: F) -> Self {
        Self {
            inner,
            shape: Shape::Text,
        }
    }

    /// Adds `"trace_id"` and `"span_id"` members to the lines of a JSON formatter (such as
    /// `tracing_subscriber::fmt::format().json()`).
    pub fn json(inner: F) -> Self {
        Self {
            inner,
            shape: Shape::Json,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = peek(|context| context.map(|c| (c.trace_id(), c.span_id())));
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        LINE.with(|line| {
            // A log line written while one is formatted (from a `Debug` impl) gets its own.
            let Ok(mut line) = line.try_borrow_mut() else {
                let mut own = String::new();
                return self.add_ids(ctx, &mut own, event, (trace_id, span_id), writer);
            };
            line.clear();
            self.add_ids(ctx, &mut line, event, (trace_id, span_id), writer)
        })
    }
}

impl<F> TraceIds<F> {
    fn add_ids<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        line: &mut String,
        event: &Event<'_>,
        (trace_id, span_id): (
            vantage_instrument::trace_context::TraceId,
            vantage_instrument::trace_context::SpanId,
        ),
        mut writer: Writer<'_>,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
        F: FormatEvent<S, N>,
    {
        self.inner.format_event(ctx, Writer::new(line), event)?;
        let newline = line.ends_with('\n');
        if newline {
            line.pop();
        }
        match self.shape {
            Shape::Json if line.ends_with('}') => {
                line.pop();
                if !line.ends_with('{') {
                    line.push(',');
                }
                push_ascii(
                    line,
                    &assemble::<JSON_LEN>([
                        b"\"trace_id\":\"",
                        &trace_id.to_hex(),
                        b"\",\"span_id\":\"",
                        &span_id.to_hex(),
                        b"\"}",
                    ]),
                );
            }
            Shape::Json | Shape::Text => push_ascii(
                line,
                &assemble::<TEXT_LEN>([
                    b" trace_id=",
                    &trace_id.to_hex(),
                    b" span_id=",
                    &span_id.to_hex(),
                    b"",
                ]),
            ),
        }
        if newline {
            line.push('\n');
        }
        writer.write_str(line)
    }
}

/// Length of ` trace_id=<32 digits> span_id=<16 digits>`.
const TEXT_LEN: usize = 10 + 32 + 9 + 16;
/// Length of `"trace_id":"<32 digits>","span_id":"<16 digits>"}`.
const JSON_LEN: usize = 12 + 32 + 13 + 16 + 2;

/// The pieces side by side in one array (their lengths add up to `N`): the ids are appended
/// with one UTF-8 check and one copy, a third of the cost of appending each piece.
#[inline]
fn assemble<const N: usize>(pieces: [&[u8]; 5]) -> [u8; N] {
    let mut out = [0; N];
    let mut at = 0;
    for piece in pieces {
        out[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    debug_assert_eq!(at, N, "the pieces fill the array");
    out
}

/// Appends ASCII bytes to a line.
fn push_ascii(line: &mut String, ascii: &[u8]) {
    if let Ok(text) = std::str::from_utf8(ascii) {
        line.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use vantage_instrument::trace_context::TraceContext;

    use crate::test_helpers::capture_logs;
    use crate::trace::Scoped;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Logs a line of its own while it is formatted into another.
    struct Chatty;

    impl std::fmt::Debug for Chatty {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!("from inside a Debug");
            f.write_str("chatty")
        }
    }

    #[test]
    fn a_line_logged_while_another_is_formatted_gets_the_ids_too() {
        let logs = capture_logs();
        let context =
            TraceContext::from_traceparent(TRACEPARENT.parse().expect("valid"), Default::default());
        Scoped::new(context, async { tracing::info!(value = ?Chatty, "outer") })
            .now_or_never()
            .expect("ready");
        let target = "vantage_tower::trace::ids::tests";
        let ids = "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7";
        // The test subscriber formats each event twice (text, then JSON): the JSON formatting
        // of `outer` logs the inner line a second time.
        assert_eq!(
            logs.text.lines(),
            [
                format!(" INFO {target}: from inside a Debug {ids}"),
                format!(" INFO {target}: outer value=chatty {ids}"),
                format!(" INFO {target}: from inside a Debug {ids}"),
            ]
        );
    }

    #[test]
    fn lines_inside_a_request_get_its_ids_in_text_and_json() {
        let logs = capture_logs();
        tracing::info!("before");
        let context =
            TraceContext::from_traceparent(TRACEPARENT.parse().expect("valid"), Default::default());
        Scoped::new(context, async { tracing::info!(user = 7, "inside") })
            .now_or_never()
            .expect("ready");
        tracing::info!("after");

        let target = "vantage_tower::trace::ids::tests";
        assert_eq!(
            logs.text.lines(),
            [
                format!(" INFO {target}: before"),
                format!(
                    " INFO {target}: inside user=7 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"
                ),
                format!(" INFO {target}: after"),
            ]
        );
        let lines: Vec<serde_json::Value> = logs
            .json
            .lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"level": "INFO", "target": target, "fields": {"message": "before"}}),
                serde_json::json!({
                    "level": "INFO",
                    "target": target,
                    "fields": {"message": "inside", "user": 7},
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "span_id": "00f067aa0ba902b7",
                }),
                serde_json::json!({"level": "INFO", "target": target, "fields": {"message": "after"}}),
            ]
        );
    }
}
