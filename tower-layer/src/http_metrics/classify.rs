//! What counts as an error, and what it is called in the `error_type` label.

use std::any::Any;
use std::error::Error;

use vantage_instrument::names::error_type;

use super::labels::ErrorType;

type BoxError = Box<dyn Error + Send + Sync>;

/// The error type of a response status: 5xx is its code (as OpenTelemetry prescribes), and
/// 408/504 are timeouts (tower-http's `TimeoutLayer` answers one of them).
pub(crate) fn status(status: u16) -> ErrorType {
    match status {
        408 | 504 => ErrorType::Named(error_type::TIMEOUT),
        500..=599 => ErrorType::Status,
        _ => ErrorType::None,
    }
}

/// The error type of an inner service error: `timeout` for tower's `Elapsed` and timed-out I/O,
/// otherwise the error's type name, or `_OTHER` when the type is a boxed trait object.
pub(crate) fn error<E: Any>(error: &E) -> ErrorType {
    let any: &dyn Any = error;
    if let Some(boxed) = any.downcast_ref::<BoxError>() {
        return ErrorType::Named(dyn_error(boxed.as_ref()));
    }
    if let Some(io) = any.downcast_ref::<std::io::Error>() {
        return ErrorType::Named(io_error(io));
    }
    if any.is::<tower::timeout::error::Elapsed>() {
        return ErrorType::Named(error_type::TIMEOUT);
    }
    ErrorType::Named(std::any::type_name::<E>())
}

fn dyn_error(error: &(dyn Error + 'static)) -> &'static str {
    if error.is::<tower::timeout::error::Elapsed>() {
        error_type::TIMEOUT
    } else if let Some(io) = error.downcast_ref::<std::io::Error>() {
        io_error(io)
    } else {
        error_type::OTHER
    }
}

fn io_error(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::TimedOut {
        error_type::TIMEOUT
    } else {
        "std::io::Error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Refused;

    #[test]
    fn statuses_are_classified_by_otel_rules_with_timeouts_named() {
        assert_eq!(status(200), ErrorType::None);
        assert_eq!(status(404), ErrorType::None);
        assert_eq!(status(408), ErrorType::Named("timeout"));
        assert_eq!(status(500), ErrorType::Status);
        assert_eq!(status(503), ErrorType::Status);
        assert_eq!(status(504), ErrorType::Named("timeout"));
    }

    #[test]
    fn errors_are_named_by_type_and_timeouts_recognised() {
        let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
        assert_eq!(error(&elapsed), ErrorType::Named("timeout"));
        assert_eq!(
            error(&tower::timeout::error::Elapsed::new()),
            ErrorType::Named("timeout")
        );
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(error(&timed_out), ErrorType::Named("timeout"));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(error(&reset), ErrorType::Named("std::io::Error"));
        let boxed: BoxError = "anything".into();
        assert_eq!(error(&boxed), ErrorType::Named("_OTHER"));
        assert_eq!(
            error(&Refused),
            ErrorType::Named("vantage_tower::http_metrics::classify::tests::Refused")
        );
    }
}
