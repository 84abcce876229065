//! [`TraceIds`]: the request's trace and span ids in every log line, without a span per
//! request.

use std::cell::{Cell, RefCell};
use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use vantage_instrument::trace_context::{SpanId, TraceId};

use super::current::peek;

thread_local! {
    /// The line being formatted, reused from event to event.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The ids that the event being formatted by [`TraceIdsAfterFields`] leaves to
    /// [`TraceIdFields`] to write after its fields.
    static PENDING: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
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
/// formatter's colours (tracing-subscriber lets only its own writers carry them). For text
/// lines, [`TraceIdFields`] with [`TraceIds::after_fields`] writes the ids with no buffer and
/// keeps the colours.
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
        (trace_id, span_id): (TraceId, SpanId),
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
                write_ascii(
                    line,
                    &assemble::<JSON_LEN, 5>([
                        b"\"trace_id\":\"",
                        &trace_id.to_hex(),
                        b"\",\"span_id\":\"",
                        &span_id.to_hex(),
                        b"\"}",
                    ]),
                )?;
            }
            Shape::Json | Shape::Text => write_ascii(line, &text_suffix(trace_id, span_id))?,
        }
        if newline {
            line.push('\n');
        }
        writer.write_str(line)
    }
}

/// A field formatter that writes the [current](super::current) request's ids after an event's
/// fields, ` trace_id=… span_id=…`, straight into the line: the fast way to correlate text log
/// lines, paired with [`TraceIds::after_fields`] as the event formatter (the pair is checked
/// by the compiler):
///
/// ```
/// use vantage_tower::trace::{TraceIdFields, TraceIds};
///
/// // `... user looked up user=7 trace_id=4bf9… span_id=00f0…`, in the formatter's colours.
/// let subscriber = tracing_subscriber::fmt()
///     .fmt_fields(TraceIdFields::default())
///     .map_event_format(TraceIds::after_fields)
///     .finish();
/// # drop(subscriber);
/// ```
///
/// Unlike [`TraceIds::text`], the line is not formatted into a buffer of its own and copied:
/// a log line inside a request costs a third less, and keeps the formatter's colours. The ids
/// are written where the event formatter has the field formatter write the event's fields (the
/// end of the line with `tracing_subscriber`'s full and compact formats; its pretty format
/// writes them itself, so wrap it in [`TraceIds::text`] instead); a span's fields, formatted
/// when the span is made or records, never get them.
#[derive(Clone, Copy, Debug)]
pub struct TraceIdFields<N = DefaultFields> {
    inner: N,
}

/// Around `tracing_subscriber`'s default field formatter.
impl Default for TraceIdFields {
    fn default() -> Self {
        Self::new(DefaultFields::new())
    }
}

impl<N> TraceIdFields<N> {
    /// Writes the ids after what `inner` writes of an event's fields.
    pub fn new(inner: N) -> Self {
        Self { inner }
    }
}

impl<'writer, N: for<'w> FormatFields<'w>> FormatFields<'writer> for TraceIdFields<N> {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Taken before the fields are formatted: a span made, or an event logged, by a field's
        // `Debug` meanwhile finds none.
        let pending = PENDING.with(Cell::take);
        self.inner.format_fields(writer.by_ref(), fields)?;
        match pending {
            Some((trace_id, span_id)) => write_ascii(&mut writer, &text_suffix(trace_id, span_id)),
            None => Ok(()),
        }
    }
}

/// The event formatter paired with [`TraceIdFields`]; made by [`TraceIds::after_fields`].
#[derive(Clone, Copy, Debug)]
pub struct TraceIdsAfterFields<F> {
    inner: F,
}

impl<F> TraceIds<F> {
    /// Leaves the ids to [`TraceIdFields`], the subscriber's field formatter, which writes them
    /// after the event's fields; `inner` formats the rest of the line, unbuffered. See
    /// [`TraceIdFields`] for an example.
    pub fn after_fields(inner: F) -> TraceIdsAfterFields<F> {
        TraceIdsAfterFields { inner }
    }
}

impl<S, N, F> FormatEvent<S, TraceIdFields<N>> for TraceIdsAfterFields<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    TraceIdFields<N>: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, TraceIdFields<N>>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, TraceIdFields<N>>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = peek(|context| context.map(|c| (c.trace_id(), c.span_id())));
        if ids.is_none() && !Pending::armed() {
            // Outside a request, with nothing armed: nothing to arm or to restore.
            return self.inner.format_event(ctx, writer, event);
        }
        // Restored on the way out, a panic included: an event logged while this one is
        // formatted arms its own fields, and a span formatted later finds none.
        let _restore = Pending::arm(ids);
        self.inner.format_event(ctx, writer, event)
    }
}

/// The ids pending for an event's fields, and those of the event whose formatting this one
/// interrupted, put back when dropped.
struct Pending(Option<(TraceId, SpanId)>);

impl Pending {
    /// Whether some event's ids wait for its fields.
    fn armed() -> bool {
        PENDING.with(|pending| pending.get().is_some())
    }

    fn arm(ids: Option<(TraceId, SpanId)>) -> Self {
        Self(PENDING.with(|pending| pending.replace(ids)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.with(|pending| pending.set(self.0));
    }
}

/// ` trace_id=<32 digits> span_id=<16 digits>`.
#[inline]
fn text_suffix(trace_id: TraceId, span_id: SpanId) -> [u8; TEXT_LEN] {
    assemble([
        b" trace_id=",
        &trace_id.to_hex(),
        b" span_id=",
        &span_id.to_hex(),
    ])
}

/// Writes ASCII bytes: into a formatter's writer, or onto a line.
fn write_ascii(out: &mut impl fmt::Write, ascii: &[u8]) -> fmt::Result {
    out.write_str(std::str::from_utf8(ascii).map_err(|_| fmt::Error)?)
}

/// Length of ` trace_id=<32 digits> span_id=<16 digits>`.
const TEXT_LEN: usize = 10 + 32 + 9 + 16;
/// Length of `"trace_id":"<32 digits>","span_id":"<16 digits>"}`.
const JSON_LEN: usize = 12 + 32 + 13 + 16 + 2;

/// The pieces side by side in one array (their lengths add up to `N`): the ids are appended
/// with one UTF-8 check and one copy, a third of the cost of appending each piece.
#[inline]
fn assemble<const N: usize, const PIECES: usize>(pieces: [&[u8]; PIECES]) -> [u8; N] {
    let mut out = [0; N];
    let mut at = 0;
    for piece in pieces {
        out[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    debug_assert_eq!(at, N, "the pieces fill the array");
    out
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use vantage_instrument::trace_context::TraceContext;

    use crate::test_helpers::capture_logs;
    use crate::trace::Scoped;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TARGET: &str = "vantage_tower::trace::ids::tests";
    /// What a line written while the request of [`TRACEPARENT`] is handled ends with.
    const IDS: &str = "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7";

    /// Runs `work` while the request of [`TRACEPARENT`] is handled.
    fn in_a_request(work: impl FnOnce()) {
        let context =
            TraceContext::from_traceparent(TRACEPARENT.parse().expect("valid"), Default::default());
        Scoped::new(context, async { work() })
            .now_or_never()
            .expect("ready");
    }

    /// Logs `inside user=7` in a request, then `after` outside it.
    fn log_inside_then_after() {
        in_a_request(|| tracing::info!(user = 7, "inside"));
        tracing::info!("after");
    }

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
        in_a_request(|| tracing::info!(value = ?Chatty, "outer"));
        // The test subscriber formats each event three times (text, JSON, buffered text), and
        // each formatting of `outer` logs the inner line again.
        let inner = format!(" INFO {TARGET}: from inside a Debug {IDS}");
        let outer = format!(" INFO {TARGET}: outer value=chatty {IDS}");
        assert_eq!(
            logs.text.lines(),
            [&inner, &outer, &inner, &inner].map(String::clone)
        );
        assert_eq!(
            logs.buffered.lines(),
            [&inner, &inner, &inner, &outer].map(String::clone)
        );
    }

    #[test]
    fn lines_inside_a_request_get_its_ids_in_text_and_json() {
        let logs = capture_logs();
        tracing::info!("before");
        log_inside_then_after();

        assert_eq!(
            logs.text.lines(),
            [
                format!(" INFO {TARGET}: before"),
                format!(" INFO {TARGET}: inside user=7 {IDS}"),
                format!(" INFO {TARGET}: after"),
            ]
        );
        assert_eq!(logs.buffered.lines(), logs.text.lines());
        let lines: Vec<serde_json::Value> = logs
            .json
            .lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"level": "INFO", "target": TARGET, "fields": {"message": "before"}}),
                serde_json::json!({
                    "level": "INFO",
                    "target": TARGET,
                    "fields": {"message": "inside", "user": 7},
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "span_id": "00f067aa0ba902b7",
                }),
                serde_json::json!({"level": "INFO", "target": TARGET, "fields": {"message": "after"}}),
            ]
        );
    }

    #[test]
    fn the_fields_of_a_span_made_in_a_request_get_no_ids_and_its_lines_get_them_once() {
        let logs = capture_logs();
        in_a_request(|| {
            let span = tracing::info_span!("work", n = 1, done = tracing::field::Empty);
            let _entered = span.enter();
            span.record("done", true);
            tracing::info!(user = 7, "inside");
        });
        tracing::info!("after");

        let expected = [
            format!(" INFO work{{n=1 done=true}}: {TARGET}: inside user=7 {IDS}"),
            format!(" INFO {TARGET}: after"),
        ];
        assert_eq!(logs.text.lines(), expected);
        assert_eq!(logs.buffered.lines(), expected);
    }

    #[test]
    fn the_compact_format_gets_the_ids_after_its_fields_too() {
        use crate::test_helpers::{Logs, ThreadWriter};

        let logs = Logs::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .compact()
            .without_time()
            .with_ansi(false)
            .with_writer(move || ThreadWriter(Some(sink.clone())))
            .fmt_fields(super::TraceIdFields::default())
            .map_event_format(super::TraceIds::after_fields)
            .finish();
        tracing::subscriber::with_default(subscriber, log_inside_then_after);
        assert_eq!(
            logs.lines(),
            [
                format!(" INFO {TARGET}: inside user=7 {IDS}"),
                format!(" INFO {TARGET}: after"),
            ]
        );
    }
}
