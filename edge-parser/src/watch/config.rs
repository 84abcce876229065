//! The watch tower's thresholds and limits, with their defaults and validation.

use std::fmt;

use serde::Serialize;

/// Default half-life of the baselines, in minutes.
pub const DEFAULT_HALF_LIFE_MINUTES: f64 = 10.0;
/// Default half-life of the baselines for minutes judged anomalous, in minutes.
pub const DEFAULT_ANOMALOUS_HALF_LIFE_MINUTES: f64 = 60.0;
/// Default number of complete minutes a baseline needs before it is judged against.
pub const DEFAULT_WARMUP_MINUTES: u32 = 5;
/// Default floor of the rate baseline, in requests per second, below which drops are not judged.
pub const DEFAULT_MIN_BASELINE_RPS: f64 = 1.0;
/// Default drop threshold: a minute under this fraction of the baseline is a drop.
pub const DEFAULT_DROP_RATIO: f64 = 0.2;
/// Default spike threshold: a minute over this multiple of the baseline is a spike.
pub const DEFAULT_SPIKE_RATIO: f64 = 5.0;
/// Default minimum excess over the baseline for a spike, in requests per second.
pub const DEFAULT_SPIKE_MIN_EXCESS_RPS: f64 = 1.0;
/// Default error threshold: a 5xx share over this multiple of the baseline share is anomalous.
pub const DEFAULT_ERROR_RATIO: f64 = 3.0;
/// Default minimum 5xx share judged anomalous, whatever the baseline share.
pub const DEFAULT_ERROR_MIN_SHARE: f64 = 0.05;
/// Default minimum number of requests in a minute for its 5xx share to count.
pub const DEFAULT_ERROR_MIN_REQUESTS: u64 = 100;
/// Default minimum number of 5xx responses in a minute judged anomalous.
pub const DEFAULT_ERROR_MIN_COUNT: u64 = 30;
/// Default cap on the number of routers watched.
pub const DEFAULT_MAX_ROUTERS: usize = 1000;
/// A tick this many minutes (one day) or fewer after the minute in progress closes every minute
/// in between; a longer jump restarts the baselines.
pub const MAX_CATCH_UP_MINUTES: i64 = 24 * 60;

/// Thresholds and limits of a [`Watch`](super::Watch); see the [module docs](super) for the
/// rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchConfig {
    /// Half-life of the baselines, in minutes of normal traffic (default 10).
    pub half_life_minutes: f64,
    /// Half-life of a baseline for minutes judged anomalous (default 60): how slowly an incident
    /// becomes the new normal. Infinite freezes the baseline during anomalies.
    pub anomalous_half_life_minutes: f64,
    /// Complete minutes a baseline averages before it is judged against (default 5).
    pub warmup_minutes: u32,
    /// Rate baseline, in requests per second, below which drops are not judged (default 1).
    pub min_baseline_rps: f64,
    /// A minute with fewer requests than this fraction of the baseline is a drop (default 0.2).
    pub drop_ratio: f64,
    /// A minute with more requests than this multiple of the baseline is a spike (default 5)…
    pub spike_ratio: f64,
    /// …if that is also this many requests per second above the baseline (default 1).
    pub spike_min_excess_rps: f64,
    /// A 5xx share above this multiple of the baseline share is anomalous (default 3)…
    pub error_ratio: f64,
    /// …if it is also above this share (default 0.05)…
    pub error_min_share: f64,
    /// …and the minute has at least this many requests (default 100)…
    pub error_min_requests: u64,
    /// …and at least this many 5xx responses (default 30).
    pub error_min_count: u64,
    /// Routers watched at most; others are ignored and counted (default 1000).
    pub max_routers: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            half_life_minutes: DEFAULT_HALF_LIFE_MINUTES,
            anomalous_half_life_minutes: DEFAULT_ANOMALOUS_HALF_LIFE_MINUTES,
            warmup_minutes: DEFAULT_WARMUP_MINUTES,
            min_baseline_rps: DEFAULT_MIN_BASELINE_RPS,
            drop_ratio: DEFAULT_DROP_RATIO,
            spike_ratio: DEFAULT_SPIKE_RATIO,
            spike_min_excess_rps: DEFAULT_SPIKE_MIN_EXCESS_RPS,
            error_ratio: DEFAULT_ERROR_RATIO,
            error_min_share: DEFAULT_ERROR_MIN_SHARE,
            error_min_requests: DEFAULT_ERROR_MIN_REQUESTS,
            error_min_count: DEFAULT_ERROR_MIN_COUNT,
            max_routers: DEFAULT_MAX_ROUTERS,
        }
    }
}

impl WatchConfig {
    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// The first setting out of its range (NaN included), named as the field.
    pub fn validate(&self) -> Result<(), WatchConfigError> {
        check(
            "half_life_minutes",
            self.half_life_minutes,
            self.half_life_minutes.is_finite() && self.half_life_minutes > 0.0,
            "a finite number of minutes above 0",
        )?;
        check(
            "anomalous_half_life_minutes",
            self.anomalous_half_life_minutes,
            self.anomalous_half_life_minutes > 0.0,
            "a number of minutes above 0 (infinite freezes the baseline)",
        )?;
        check(
            "warmup_minutes",
            self.warmup_minutes,
            self.warmup_minutes >= 1,
            "at least 1",
        )?;
        check(
            "min_baseline_rps",
            self.min_baseline_rps,
            self.min_baseline_rps.is_finite() && self.min_baseline_rps >= 0.0,
            "a finite rate of at least 0",
        )?;
        check(
            "drop_ratio",
            self.drop_ratio,
            self.drop_ratio > 0.0 && self.drop_ratio < 1.0,
            "between 0 and 1, both excluded",
        )?;
        check(
            "spike_ratio",
            self.spike_ratio,
            self.spike_ratio.is_finite() && self.spike_ratio > 1.0,
            "a finite ratio above 1",
        )?;
        check(
            "spike_min_excess_rps",
            self.spike_min_excess_rps,
            self.spike_min_excess_rps.is_finite() && self.spike_min_excess_rps >= 0.0,
            "a finite rate of at least 0",
        )?;
        check(
            "error_ratio",
            self.error_ratio,
            self.error_ratio.is_finite() && self.error_ratio >= 1.0,
            "a finite ratio of at least 1",
        )?;
        check(
            "error_min_share",
            self.error_min_share,
            self.error_min_share > 0.0 && self.error_min_share < 1.0,
            "between 0 and 1, both excluded",
        )?;
        check(
            "error_min_requests",
            self.error_min_requests,
            self.error_min_requests >= 1,
            "at least 1",
        )?;
        check(
            "max_routers",
            self.max_routers,
            self.max_routers >= 1,
            "at least 1",
        )
    }
}

fn check(
    field: &'static str,
    value: impl fmt::Display,
    valid: bool,
    expected: &'static str,
) -> Result<(), WatchConfigError> {
    if valid {
        Ok(())
    } else {
        Err(WatchConfigError::Invalid {
            field,
            value: value.to_string(),
            expected,
        })
    }
}

/// A [`WatchConfig`] that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchConfigError {
    /// A setting is out of its range.
    #[error("watch setting {field} = {value} is invalid: it must be {expected}")]
    Invalid {
        /// The field of [`WatchConfig`].
        field: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}
