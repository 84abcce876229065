//! Errors of the instrumentation setup.

/// A configuration value was refused when a builder was set up (never per request).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A bucket list was empty.
    #[error("{what} buckets are empty: give at least one upper bound")]
    EmptyBuckets {
        /// Which bucket list.
        what: &'static str,
    },
    /// A bucket bound was negative, zero, NaN or infinite.
    #[error("{what} bucket bound {bound} is not a positive finite number")]
    InvalidBucket {
        /// Which bucket list.
        what: &'static str,
        /// The offending bound.
        bound: f64,
    },
    /// Bucket bounds were not strictly increasing.
    #[error("{what} buckets must be strictly increasing, but {next} follows {previous}")]
    UnsortedBuckets {
        /// Which bucket list.
        what: &'static str,
        /// The bound before the offending one.
        previous: f64,
        /// The offending bound.
        next: f64,
    },
    /// A limit that must be at least one was zero.
    #[error("{what} must be at least 1")]
    ZeroLimit {
        /// Which limit.
        what: &'static str,
    },
    /// A limit was above its largest value.
    #[error("{what} must be at most {max}, not {limit}")]
    LimitTooLarge {
        /// Which limit.
        what: &'static str,
        /// The value refused.
        limit: usize,
        /// The largest value accepted.
        max: usize,
    },
}

/// Checks that `bounds` is a usable histogram bucket layout: non-empty, positive, finite,
/// strictly increasing.
///
/// # Errors
///
/// Returns the [`ConfigError`] that names the first offending bound.
pub fn validate_buckets(what: &'static str, bounds: &[f64]) -> Result<(), ConfigError> {
    if bounds.is_empty() {
        return Err(ConfigError::EmptyBuckets { what });
    }
    if let Some(&bound) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
        return Err(ConfigError::InvalidBucket { what, bound });
    }
    if let Some(pair) = bounds.windows(2).find(|pair| pair[1] <= pair[0]) {
        return Err(ConfigError::UnsortedBuckets {
            what,
            previous: pair[0],
            next: pair[1],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_are_valid() {
        assert_eq!(
            validate_buckets("duration", crate::names::DEFAULT_DURATION_BUCKETS),
            Ok(())
        );
        assert_eq!(
            validate_buckets("body size", crate::names::DEFAULT_BODY_SIZE_BUCKETS),
            Ok(())
        );
    }

    #[test]
    fn bad_buckets_are_refused_with_the_offending_bound() {
        assert_eq!(
            validate_buckets("duration", &[]),
            Err(ConfigError::EmptyBuckets { what: "duration" })
        );
        assert_eq!(
            validate_buckets("duration", &[0.1, f64::NAN]).map_err(|e| e.to_string()),
            Err("duration bucket bound NaN is not a positive finite number".to_owned())
        );
        assert_eq!(
            validate_buckets("duration", &[0.1, 0.5, 0.5]),
            Err(ConfigError::UnsortedBuckets {
                what: "duration",
                previous: 0.5,
                next: 0.5
            })
        );
    }
}
