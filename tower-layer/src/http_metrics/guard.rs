//! The per-request record: started once, finished exactly once, whatever the end.

use http::StatusCode;
use vantage_instrument::exposition::with_exemplar_trace;
use vantage_instrument::names::{CLIENT_CLOSED_STATUS_CODE, error_type};
use vantage_instrument::trace_context::TraceId;

use super::classify;
use super::labels::{ErrorType, MethodLabel, Outcome, RouteId};
use super::layer::SharedRef;

/// Status recorded for a handler that panicked (what `CatchPanicLayer` answers).
const PANICKED: u16 = 500;

/// Times requests: raw TSC readings at both ends (`quanta::Instant::now` would check a
/// thread-local override and a global clock on each reading), their difference turned into
/// seconds by one multiplication (no 128-bit scaling to nanoseconds and no division on the way
/// from the clock to the histogram's first atomic add).
#[derive(Debug)]
pub(crate) struct Stopwatch {
    clock: quanta::Clock,
    seconds_per_tick: f64,
}

impl Stopwatch {
    pub(crate) fn new() -> Self {
        // Scaled over 2^40 ticks (minutes of TSC) so the factor keeps the calibration's digits.
        const TICKS: u64 = 1 << 40;
        let clock = quanta::Clock::new();
        let seconds_per_tick = clock.delta_as_nanos(0, TICKS) as f64 / TICKS as f64 / 1e9;
        Self {
            clock,
            seconds_per_tick,
        }
    }

    /// A reading to pass to [`seconds_since`](Self::seconds_since).
    #[inline]
    pub(crate) fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Seconds from `start` to now; 0 if the clock went back (a TSC read on another core).
    #[inline]
    pub(crate) fn seconds_since(&self, start: u64) -> f64 {
        self.clock.raw().saturating_sub(start) as f64 * self.seconds_per_tick
    }
}

/// One in-flight request: holds the in-flight gauge up and records the duration sample exactly
/// once (timed with `quanta`'s TSC clock: a third of `std::time::Instant`'s cost per read),
/// either through [`Recording::finish`] or, if it is dropped unfinished, on drop: as a panic
/// while the thread is unwinding, otherwise as a cancellation.
#[derive(Debug)]
pub(crate) struct Recording {
    shared: SharedRef,
    /// The layer's clock's raw reading at the start.
    start: u64,
    method: MethodLabel,
    route: RouteId,
    status: u16,
    response_bytes: u64,
    /// The exemplar of its duration sample, and offered to the slow-request store when it
    /// finishes, if the layer has one.
    trace_id: Option<TraceId>,
    finished: bool,
}

impl Recording {
    /// Starts the clock and raises the in-flight gauge.
    pub(crate) fn start(
        shared: SharedRef,
        method: MethodLabel,
        route: RouteId,
        trace_id: Option<TraceId>,
    ) -> Self {
        shared.registry.active(method).increment(1.0);
        Self {
            start: shared.stopwatch.start(),
            shared,
            method,
            route,
            status: 0,
            response_bytes: 0,
            trace_id,
            finished: false,
        }
    }

    pub(crate) fn method(&self) -> MethodLabel {
        self.method
    }

    /// Notes the response head; the request goes on until the body ends.
    pub(crate) fn set_status(&mut self, status: StatusCode) {
        self.status = status.as_u16();
    }

    pub(crate) fn add_response_bytes(&mut self, bytes: usize) {
        self.response_bytes += bytes as u64;
    }

    /// Records the request as ended with the response status noted before.
    pub(crate) fn finish(self) {
        let status = self.status;
        self.finish_with(status, classify::status(status));
    }

    /// Records the request as ended by the response body stream failing.
    pub(crate) fn finish_body_error(self) {
        let status = self.status;
        self.finish_with(status, ErrorType::Named(error_type::BODY_ERROR));
    }

    /// Records the request as failed by the inner service, with no response.
    pub(crate) fn finish_error(self, error: ErrorType) {
        self.finish_with(0, error);
    }

    /// Records the request as ended by a panic.
    pub(crate) fn finish_panic(self) {
        self.finish_with(PANICKED, ErrorType::Named(error_type::PANIC));
    }

    fn finish_with(mut self, status: u16, error: ErrorType) {
        self.record(status, error);
    }

    fn record(&mut self, status: u16, error: ErrorType) {
        self.finished = true;
        let outcome = Outcome {
            route: self.route,
            method: self.method,
            status,
            error,
        };
        let seconds = self.shared.stopwatch.seconds_since(self.start);
        let registry = &self.shared.registry;
        with_exemplar_trace(self.trace_id, || {
            registry.record(outcome, seconds, self.response_bytes);
        });
        if let (Some(slow), Some(trace_id)) = (&self.shared.slow, self.trace_id) {
            slow.offer(&self.shared.registry, self.route, seconds, trace_id);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.finished {
            if std::thread::panicking() {
                self.record(PANICKED, ErrorType::Named(error_type::PANIC));
            } else {
                self.record(
                    CLIENT_CLOSED_STATUS_CODE,
                    ErrorType::Named(error_type::CANCELLED),
                );
            }
        }
        self.shared.registry.active(self.method).decrement(1.0);
    }
}

/// Finishes a request as panicked if dropped while the thread unwinds out of the inner poll:
/// the panic is caught further out (`CatchPanicLayer`, the runtime), where it is too late to
/// tell a panic from a cancellation.
pub(crate) struct PanicGuard<'a>(pub(crate) &'a mut Option<Recording>);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(recording) = self.0.take() {
                recording.finish_panic();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stopwatch_gives_seconds_and_none_below_zero() {
        let stopwatch = Stopwatch::new();
        let start = stopwatch.start();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let seconds = stopwatch.seconds_since(start);
        // A sleep lasts at least as asked; the upper bound only has to catch a wrong scale.
        assert!((0.05..5.0).contains(&seconds), "{seconds}");
        assert_eq!(stopwatch.seconds_since(u64::MAX), 0.0);
    }
}
