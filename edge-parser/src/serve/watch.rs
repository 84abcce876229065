//! The watch tower: a baseline of each router's request rate and 5xx share, and the
//! `edge_anomaly{router, kind}` signals raised while a minute is far outside it.
//!
//! [`Watch`] is a state machine driven by its caller: [`record`](Watch::record) (or
//! [`record_counts`](Watch::record_counts) for a batch) counts requests per router into the
//! current minute, and [`tick`](Watch::tick), called about once a second with the current time,
//! closes the minutes that have ended into the baselines, judges them and the minute in progress,
//! and returns the [`AnomalyChange`]s. Each change is also logged: a `tracing` warning when an
//! anomaly starts, an info event when it clears. [`anomalies`](Watch::anomalies) lists the
//! state of every watched router and every [`AnomalyKind`], for the exporter to write 0 as well
//! as 1. The watch never reads a clock: time is what the caller passes, which is how the tests
//! replay hours of traffic without sleeping.
//!
//! # Baselines
//!
//! Per router, two exponentially weighted moving averages over complete minutes: the requests
//! per minute (every minute, including minutes without a single line: a router that stops
//! sending lines is judged like any other) and the 5xx share (minutes with at least
//! [`error_min_requests`](WatchConfig::error_min_requests) requests only). They learn with a
//! half-life of [`half_life_minutes`](WatchConfig::half_life_minutes); a minute judged anomalous
//! teaches its baseline more slowly
//! ([`anomalous_half_life_minutes`](WatchConfig::anomalous_half_life_minutes)), so an incident
//! does not become normal within minutes but a lasting change does within hours. The first
//! [`warmup_minutes`](WatchConfig::warmup_minutes) samples of a baseline are averaged plainly
//! and nothing is judged against it before it has them. The minute a router is first seen in is
//! left out: it is partial (the watch or the router started during it).
//!
//! # Rules and defaults
//!
//! With `B` the baseline requests per minute, `S` the baseline 5xx share, and `n`, `e` the
//! requests and 5xx responses of the minute judged:
//!
//! | kind | raised when | defaults |
//! |---|---|---|
//! | `drop` | `B` ≥ 60 × [`min_baseline_rps`](WatchConfig::min_baseline_rps) and `n` < [`drop_ratio`](WatchConfig::drop_ratio) × `B` | floor 1 request/s, ratio 0.2 |
//! | `spike` | `n` > max([`spike_ratio`](WatchConfig::spike_ratio) × `B`, `B` + 60 × [`spike_min_excess_rps`](WatchConfig::spike_min_excess_rps)) | 5 ×, 1 request/s more |
//! | `errors` | `n` ≥ [`error_min_requests`](WatchConfig::error_min_requests), `e` ≥ [`error_min_count`](WatchConfig::error_min_count) and `e`/`n` > max([`error_ratio`](WatchConfig::error_ratio) × `S`, [`error_min_share`](WatchConfig::error_min_share)) | 100 requests, 30 5xx, 3 ×, 5 % |
//!
//! Rates are judged once the rate baseline is warm (5 minutes by default), the 5xx share once
//! the share baseline is. Below the floor, drops are not judged (an empty minute is normal for
//! a router at 0.1 request/s); spikes and errors still are, their absolute minimums keep noise
//! out. The minimum count of 5xx responses is what keeps a small router quiet: with about 100
//! requests a minute and a 2 % baseline share, the 5 % threshold is 5 responses where 2 are
//! expected, and Poisson noise crosses it about once an hour; with at least 30 responses the
//! worst case over all rates and shares is about once in 4 million minutes. Half-lives default to 10 minutes (60 while anomalous). At most
//! [`max_routers`](WatchConfig::max_routers) routers (1000) are watched; lines of any other
//! router are ignored and counted in [`WatchStats::overflow_lines`].
//!
//! # When a state changes
//!
//! When a minute ends, its verdict sets each kind, active or not. During the minute, a kind is
//! raised early when the minute would be anomalous even if its remaining seconds went as the
//! baseline expects (requests at `B`, 5xx at `S`): a router at 100 request/s that stops at the
//! start of a minute is flagged 49 seconds into it, one that stops anywhere is flagged within
//! two minutes. A drop also clears early, as soon as the minute has enough requests not to be
//! one; a spike or an error burst clears when a minute ends that is not one, since until then
//! the rest of the minute could still make it so.
//!
//! # Time, late and early lines
//!
//! Minutes are Unix minutes (`timestamp.div_euclid(60)`) and only [`tick`](Watch::tick) moves
//! from one to the next; `at` and `now` must come from the same clock (the request's logged
//! time and the wall clock are the same clock to within the pipeline's lag). A line is counted
//! in the minute in progress, with two exceptions that keep the order of `record` and `tick`
//! within a second irrelevant and never corrupt a closed minute:
//!
//! - a line dated in a minute already closed (late) is counted in the minute in progress, and
//!   in [`WatchStats::late_lines`]: nothing is lost and a closed minute is never reopened, so a
//!   log read with a steady lag shifts the minutes by the lag but keeps their counts;
//! - a line dated after the minute in progress (early) is held for the next minute; lines dated
//!   two or more minutes ahead are also counted in [`WatchStats::early_lines`].
//!
//! A tick earlier than the minute in progress (the clock went back) changes nothing. Ticks that
//! skip minutes close each skipped minute as a minute without lines; a jump of more than
//! [`MAX_CATCH_UP_MINUTES`] restarts every baseline (and clears every anomaly) instead.
//!
//! # Example
//!
//! ```
//! use vantage_edge::serve::watch::{AnomalyKind, Watch, WatchConfig};
//!
//! let mut watch = Watch::new(WatchConfig::default())?;
//! let start = 1_700_000_040; // a minute boundary
//! let mut changes = Vec::new();
//! for now in start..start + 40 * 60 {
//!     // 100 requests per second, 1 % of them 5xx, for 30 minutes; then nothing.
//!     if now < start + 30 * 60 {
//!         watch.record_counts("api@docker", now, 100, 1);
//!     }
//!     changes.extend(watch.tick(now).into_iter().map(|change| (now, change)));
//! }
//! let (flagged_at, change) = &changes[0];
//! assert_eq!((change.kind, change.active), (AnomalyKind::Drop, true));
//! assert_eq!(flagged_at - (start + 30 * 60), 49);
//! assert_eq!(changes.len(), 1);
//!
//! // What the exporter writes: every router, every kind, active or not.
//! let exported: Vec<_> = watch
//!     .anomalies()
//!     .map(|a| (a.router, a.kind.as_str(), u8::from(a.active)))
//!     .collect();
//! assert_eq!(
//!     exported,
//!     [("api@docker", "drop", 1), ("api@docker", "spike", 0), ("api@docker", "errors", 0)]
//! );
//! # Ok::<(), vantage_edge::serve::watch::WatchConfigError>(())
//! ```

use std::collections::HashMap;
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

const SECONDS_PER_MINUTE: i64 = 60;
const SECONDS_PER_MINUTE_F: f64 = 60.0;

/// Thresholds and limits of a [`Watch`]; see the [module docs](self) for the rules.
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

/// What is anomalous about a router's minute: the `kind` label of `edge_anomaly`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    /// Far fewer requests than the baseline.
    Drop,
    /// Far more requests than the baseline.
    Spike,
    /// A 5xx share far above the baseline share.
    Errors,
}

impl AnomalyKind {
    /// Every kind, in export order.
    pub const ALL: [Self; 3] = [Self::Drop, Self::Spike, Self::Errors];

    /// The label value: `drop`, `spike` or `errors`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Spike => "spike",
            Self::Errors => "errors",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Drop => 0,
            Self::Spike => 1,
            Self::Errors => 2,
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An anomaly that started or cleared, as returned by [`Watch::tick`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnomalyChange {
    /// The router.
    pub router: String,
    /// What is anomalous.
    pub kind: AnomalyKind,
    /// Whether the anomaly started (`true`) or cleared.
    pub active: bool,
    /// Start of the minute whose judgement changed the state, in Unix seconds.
    pub minute: i64,
}

/// The current state of one router and kind, as listed by [`Watch::anomalies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly<'a> {
    /// The router.
    pub router: &'a str,
    /// What is judged.
    pub kind: AnomalyKind,
    /// Whether it is anomalous now (`edge_anomaly` 1) or not (0).
    pub active: bool,
}

/// A router's baselines and minute in progress, as returned by [`Watch::router`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RouterStatus {
    /// Baseline requests per minute.
    pub baseline_requests_per_minute: f64,
    /// Complete minutes the rate baseline has learnt from.
    pub baseline_minutes: u32,
    /// Baseline 5xx share, from 0 to 1.
    pub baseline_error_share: f64,
    /// Complete minutes the 5xx share baseline has learnt from.
    pub baseline_error_minutes: u32,
    /// Requests counted in the minute in progress so far.
    pub minute_requests: u64,
    /// 5xx responses counted in the minute in progress so far.
    pub minute_errors: u64,
}

/// Counters of what the watch did with its input, as returned by [`Watch::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WatchStats {
    /// Routers watched.
    pub routers: usize,
    /// Requests of routers past [`WatchConfig::max_routers`], ignored.
    pub overflow_lines: u64,
    /// Requests dated in a minute already closed, counted in the minute in progress.
    pub late_lines: u64,
    /// Requests dated two or more minutes after the minute in progress, counted in the next.
    pub early_lines: u64,
}

/// Per-router baselines and anomaly states; see the [module docs](self).
#[derive(Debug)]
pub struct Watch {
    rules: Rules,
    /// The minute in progress, set by the first call of `record` or `tick`.
    open: Option<i64>,
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    routers: Vec<RouterState>,
    stats: WatchStats,
}

impl Watch {
    /// A watch with no routers yet.
    ///
    /// # Errors
    ///
    /// A setting of `config` out of its range; see [`WatchConfig::validate`].
    pub fn new(config: WatchConfig) -> Result<Self, WatchConfigError> {
        config.validate()?;
        Ok(Self {
            rules: Rules::new(config),
            open: None,
            index: HashMap::default(),
            routers: Vec::new(),
            stats: WatchStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WatchConfig {
        &self.rules.config
    }

    /// Counts one request of `router` dated `at` (Unix seconds), a 5xx response or not.
    ///
    /// Allocates only the first time a router is seen.
    #[inline]
    pub fn record(&mut self, router: &str, at: i64, is_5xx: bool) {
        self.record_counts(router, at, 1, u64::from(is_5xx));
    }

    /// Counts `requests` requests of `router` dated `at` (Unix seconds), `errors_5xx` of which
    /// had a 5xx response (capped at `requests`).
    ///
    /// Allocates only the first time a router is seen.
    pub fn record_counts(&mut self, router: &str, at: i64, requests: u64, errors_5xx: u64) {
        if requests == 0 {
            return;
        }
        let minute = at.div_euclid(SECONDS_PER_MINUTE);
        let open = *self.open.get_or_insert(minute);
        let ahead = minute > open;
        let index = if let Some(&index) = self.index.get(router) {
            index
        } else {
            if self.routers.len() >= self.rules.config.max_routers {
                self.stats.overflow_lines = self.stats.overflow_lines.saturating_add(requests);
                return;
            }
            let index = self.routers.len();
            self.routers.push(RouterState::new(
                router,
                if ahead { open + 1 } else { open },
            ));
            self.index.insert(router.into(), index);
            index
        };
        let state = &mut self.routers[index];
        let counts = if ahead {
            if minute > open + 1 {
                self.stats.early_lines = self.stats.early_lines.saturating_add(requests);
            }
            &mut state.next
        } else {
            if minute < open {
                self.stats.late_lines = self.stats.late_lines.saturating_add(requests);
            }
            &mut state.current
        };
        counts.add(requests, errors_5xx.min(requests));
    }

    /// Moves the watch to `now` (Unix seconds): closes every minute that ended into the
    /// baselines, judges it and the minute in progress, and returns the changes of state (also
    /// logged: a warning when an anomaly starts, an info event when it clears).
    ///
    /// Call it about once a second; see the [module docs](self) for when states change.
    pub fn tick(&mut self, now: i64) -> Vec<AnomalyChange> {
        let mut changes = Vec::new();
        let minute = now.div_euclid(SECONDS_PER_MINUTE);
        let open = *self.open.get_or_insert(minute);
        if minute < open {
            return changes;
        }
        if minute - open > MAX_CATCH_UP_MINUTES {
            self.restart(open, minute, &mut changes);
        } else {
            for closing in open..minute {
                self.close_minute(closing, &mut changes);
            }
        }
        self.open = Some(minute);
        self.judge_open_minute(minute, now.rem_euclid(SECONDS_PER_MINUTE), &mut changes);
        changes
    }

    /// The state of every watched router and every kind, routers in the order first seen.
    pub fn anomalies(&self) -> impl Iterator<Item = Anomaly<'_>> {
        self.routers.iter().flat_map(|router| {
            AnomalyKind::ALL.into_iter().map(|kind| Anomaly {
                router: &router.name,
                kind,
                active: router.active[kind.index()],
            })
        })
    }

    /// The baselines and minute in progress of `router`, if it is watched.
    pub fn router(&self, router: &str) -> Option<RouterStatus> {
        let state = &self.routers[*self.index.get(router)?];
        Some(RouterStatus {
            baseline_requests_per_minute: state.rate.value,
            baseline_minutes: state.rate.samples,
            baseline_error_share: state.share.value,
            baseline_error_minutes: state.share.samples,
            minute_requests: state.current.requests,
            minute_errors: state.current.errors,
        })
    }

    /// What the watch did with its input so far.
    pub fn stats(&self) -> WatchStats {
        WatchStats {
            routers: self.routers.len(),
            ..self.stats
        }
    }

    /// Closes `minute` for every router: judges it as a whole, then learns from it.
    fn close_minute(&mut self, minute: i64, changes: &mut Vec<AnomalyChange>) {
        for router in &mut self.routers {
            let counts = std::mem::replace(&mut router.current, std::mem::take(&mut router.next));
            // Before its first minute the router did not exist; its first minute is partial.
            if minute <= router.since {
                continue;
            }
            let verdict = self.rules.judge(router, counts, 0.0);
            for kind in AnomalyKind::ALL {
                if router.active[kind.index()] != verdict[kind.index()] {
                    set_state(router, kind, verdict[kind.index()], minute, counts, changes);
                }
            }
            self.rules.learn(router, counts, verdict);
        }
    }

    /// Raises what the minute in progress already shows, and clears a drop it rules out.
    fn judge_open_minute(&mut self, minute: i64, elapsed: i64, changes: &mut Vec<AnomalyChange>) {
        let rest = (SECONDS_PER_MINUTE - elapsed) as f64 / SECONDS_PER_MINUTE_F;
        for router in &mut self.routers {
            if minute <= router.since {
                continue;
            }
            let counts = router.current;
            let projected = self.rules.judge(router, counts, rest);
            let observed = self.rules.judge(router, counts, 0.0);
            for kind in AnomalyKind::ALL {
                let i = kind.index();
                if !router.active[i] && projected[i] {
                    set_state(router, kind, true, minute, counts, changes);
                } else if kind == AnomalyKind::Drop && router.active[i] && !observed[i] {
                    set_state(router, kind, false, minute, counts, changes);
                }
            }
        }
    }

    /// Forgets every baseline after the clock jumped from `open` to `minute`.
    fn restart(&mut self, open: i64, minute: i64, changes: &mut Vec<AnomalyChange>) {
        tracing::warn!(
            from_minute = open.saturating_mul(SECONDS_PER_MINUTE),
            to_minute = minute.saturating_mul(SECONDS_PER_MINUTE),
            "watch clock jumped by more than {MAX_CATCH_UP_MINUTES} minutes: baselines restarted"
        );
        for router in &mut self.routers {
            for kind in AnomalyKind::ALL {
                if router.active[kind.index()] {
                    set_state(router, kind, false, minute, Counts::default(), changes);
                }
            }
            let name = std::mem::take(&mut router.name);
            *router = RouterState {
                name,
                ..RouterState::new("", minute)
            };
        }
    }
}

/// Records a change of state, logs it and returns it.
fn set_state(
    router: &mut RouterState,
    kind: AnomalyKind,
    active: bool,
    minute: i64,
    counts: Counts,
    changes: &mut Vec<AnomalyChange>,
) {
    router.active[kind.index()] = active;
    let minute = minute.saturating_mul(SECONDS_PER_MINUTE);
    if active {
        tracing::warn!(
            router = &*router.name,
            kind = kind.as_str(),
            minute,
            requests = counts.requests,
            errors_5xx = counts.errors,
            baseline_requests_per_minute = router.rate.value,
            baseline_error_share = router.share.value,
            "edge anomaly started"
        );
    } else {
        tracing::info!(
            router = &*router.name,
            kind = kind.as_str(),
            minute,
            requests = counts.requests,
            errors_5xx = counts.errors,
            baseline_requests_per_minute = router.rate.value,
            baseline_error_share = router.share.value,
            "edge anomaly cleared"
        );
    }
    changes.push(AnomalyChange {
        router: router.name.to_string(),
        kind,
        active,
        minute,
    });
}

/// The configuration with the per-minute figures derived from it.
#[derive(Debug)]
struct Rules {
    config: WatchConfig,
    alpha: f64,
    anomalous_alpha: f64,
    floor_per_minute: f64,
    spike_excess_per_minute: f64,
}

impl Rules {
    fn new(config: WatchConfig) -> Self {
        Self {
            alpha: alpha(config.half_life_minutes),
            anomalous_alpha: alpha(config.anomalous_half_life_minutes),
            floor_per_minute: config.min_baseline_rps * SECONDS_PER_MINUTE_F,
            spike_excess_per_minute: config.spike_min_excess_rps * SECONDS_PER_MINUTE_F,
            config,
        }
    }

    /// The verdict per kind on a minute with `counts` so far and `rest` (a fraction of a
    /// minute) still to come, expected to go as the baselines say.
    fn judge(&self, router: &RouterState, counts: Counts, rest: f64) -> [bool; 3] {
        let config = &self.config;
        let mut verdict = [false; 3];
        let baseline = router.rate.value;
        let requests = counts.requests as f64 + baseline * rest;
        if router.rate.samples >= config.warmup_minutes {
            verdict[AnomalyKind::Drop.index()] =
                baseline >= self.floor_per_minute && requests < config.drop_ratio * baseline;
            verdict[AnomalyKind::Spike.index()] = requests
                > (config.spike_ratio * baseline).max(baseline + self.spike_excess_per_minute);
        }
        if router.share.samples >= config.warmup_minutes
            && counts.requests >= config.error_min_requests
            && counts.errors >= config.error_min_count
        {
            let share = router.share.value;
            let errors = counts.errors as f64 + share * baseline * rest;
            verdict[AnomalyKind::Errors.index()] =
                errors > (config.error_ratio * share).max(config.error_min_share) * requests;
        }
        verdict
    }

    /// Feeds a closed minute into the baselines, slowly if it was judged anomalous.
    fn learn(&self, router: &mut RouterState, counts: Counts, verdict: [bool; 3]) {
        let warmup = self.config.warmup_minutes;
        let rate_anomalous =
            verdict[AnomalyKind::Drop.index()] || verdict[AnomalyKind::Spike.index()];
        router.rate.learn(
            counts.requests as f64,
            self.alpha_for(rate_anomalous),
            warmup,
        );
        if counts.requests >= self.config.error_min_requests {
            router.share.learn(
                counts.errors as f64 / counts.requests as f64,
                self.alpha_for(verdict[AnomalyKind::Errors.index()]),
                warmup,
            );
        }
    }

    fn alpha_for(&self, anomalous: bool) -> f64 {
        if anomalous {
            self.anomalous_alpha
        } else {
            self.alpha
        }
    }
}

/// The weight of a new sample for a half-life in samples (0 for an infinite half-life).
fn alpha(half_life: f64) -> f64 {
    1.0 - 0.5_f64.powf(half_life.recip())
}

/// One watched router.
#[derive(Debug)]
struct RouterState {
    name: Box<str>,
    /// The first minute the router was seen in: partial, so neither judged nor learnt from.
    since: i64,
    /// The minute in progress.
    current: Counts,
    /// Lines dated after the minute in progress.
    next: Counts,
    rate: Ewma,
    share: Ewma,
    /// Per [`AnomalyKind::index`].
    active: [bool; 3],
}

impl RouterState {
    fn new(name: &str, since: i64) -> Self {
        Self {
            name: name.into(),
            since,
            current: Counts::default(),
            next: Counts::default(),
            rate: Ewma::default(),
            share: Ewma::default(),
            active: [false; 3],
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    errors: u64,
}

impl Counts {
    fn add(&mut self, requests: u64, errors: u64) {
        self.requests = self.requests.saturating_add(requests);
        self.errors = self.errors.saturating_add(errors);
    }
}

/// An exponentially weighted moving average whose first samples are averaged plainly.
#[derive(Clone, Copy, Debug, Default)]
struct Ewma {
    value: f64,
    samples: u32,
}

impl Ewma {
    fn learn(&mut self, sample: f64, alpha: f64, warmup: u32) {
        self.samples = self.samples.saturating_add(1);
        let weight = if self.samples <= warmup {
            f64::from(self.samples).recip().max(alpha)
        } else {
            alpha
        };
        self.value += weight * (sample - self.value);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::ops::Range;
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;

    use super::*;

    /// A minute boundary: minute `m` of a test starts at `at(m, 0)`.
    const T0: i64 = 1_700_000_040;

    fn at(minute: i64, second: i64) -> i64 {
        T0 + minute * SECONDS_PER_MINUTE + second
    }

    fn change(router: &str, kind: AnomalyKind, active: bool, minute: i64) -> AnomalyChange {
        AnomalyChange {
            router: router.to_owned(),
            kind,
            active,
            minute: at(minute, 0),
        }
    }

    /// Drives a watch second by second, recording the traffic of each second before its tick,
    /// and keeps every change with the time of the tick that returned it.
    struct Sim {
        watch: Watch,
        changes: Vec<(i64, AnomalyChange)>,
    }

    impl Sim {
        fn new(config: WatchConfig) -> Self {
            Self {
                watch: Watch::new(config).unwrap(),
                changes: Vec::new(),
            }
        }

        fn run(&mut self, minutes: Range<i64>, mut traffic: impl FnMut(&mut Watch, i64)) {
            for now in at(minutes.start, 0)..at(minutes.end, 0) {
                traffic(&mut self.watch, now);
                let changes = self.watch.tick(now);
                self.changes.extend(changes.into_iter().map(|c| (now, c)));
            }
        }
    }

    fn steady(router: &'static str, per_second: u64, errors: u64) -> impl FnMut(&mut Watch, i64) {
        move |watch, now| watch.record_counts(router, now, per_second, errors)
    }

    fn silence(_: &mut Watch, _: i64) {}

    fn active(watch: &Watch) -> Vec<(&str, AnomalyKind)> {
        watch
            .anomalies()
            .filter(|a| a.active)
            .map(|a| (a.router, a.kind))
            .collect()
    }

    #[test]
    fn drop_to_zero_is_flagged_49_seconds_into_the_silent_minute_and_clears_when_traffic_returns() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..30, steady("api", 100, 1));
        assert!(sim.changes.is_empty());
        sim.run(30..40, silence);
        assert_eq!(active(&sim.watch), [("api", AnomalyKind::Drop)]);
        // The baseline learnt slowly from the 10 anomalous minutes: 6000 × 0.5^(10/60) = 5345
        // a minute, so 20 % of it (1069) is reached after 11 seconds at 100 requests/s.
        sim.run(40..45, steady("api", 100, 1));
        assert_eq!(
            sim.changes,
            [
                (at(30, 49), change("api", AnomalyKind::Drop, true, 30)),
                (at(40, 10), change("api", AnomalyKind::Drop, false, 40)),
            ]
        );
        assert!(active(&sim.watch).is_empty());
    }

    #[test]
    fn drop_is_flagged_within_two_minutes_wherever_traffic_stops_in_a_minute() {
        for stop in 0..SECONDS_PER_MINUTE {
            let mut sim = Sim::new(WatchConfig::default());
            sim.run(0..30, steady("api", 100, 0));
            sim.run(30..34, |watch, now| {
                if now < at(30, stop) {
                    watch.record_counts("api", now, 100, 0);
                }
            });
            let [(flagged, first)] = &sim.changes[..] else {
                panic!("stop at second {stop}: {:?}", sim.changes);
            };
            assert_eq!((first.kind, first.active), (AnomalyKind::Drop, true));
            // Up to second 11 the stopping minute itself ends under 20 % of the baseline (at
            // second 11 it is known only at its end); from second 12 the next minute is the first
            // drop, raised at its 49th second.
            let expected_delay = if stop <= 11 { 49 } else { 109 - stop };
            assert_eq!(
                flagged - at(30, stop),
                expected_delay,
                "stop at second {stop}"
            );
            assert!(expected_delay <= 120);
        }
    }

    #[test]
    fn tenfold_burst_is_a_spike_until_a_normal_minute_ends() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..20, steady("api", 100, 0));
        sim.run(20..22, steady("api", 1000, 0));
        sim.run(22..30, steady("api", 100, 0));
        // 1000 × 27 requests plus 34 seconds at the baseline's 100/s exceed 5 × 6000 at second 26.
        assert_eq!(
            sim.changes,
            [
                (at(20, 26), change("api", AnomalyKind::Spike, true, 20)),
                (at(23, 0), change("api", AnomalyKind::Spike, false, 22)),
            ]
        );
    }

    #[test]
    fn steady_noise_is_never_flagged() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let mut sim = Sim::new(WatchConfig::default());
        let (mut busy_level, mut quiet_percent) = (100, 10);
        let (mut quiet_in_minute, mut empty_quiet_minutes) = (0, 0);
        sim.run(0..12 * 60, |watch, now| {
            let second = now.rem_euclid(SECONDS_PER_MINUTE);
            if second == 0 {
                busy_level = rng.u64(80..=120);
                quiet_percent = rng.u32(0..=20);
            }
            // Around 100 requests/s, ±20 % per minute and per second, 1 % of them 5xx.
            let busy = rng.u64(busy_level * 8 / 10..=busy_level * 12 / 10);
            let busy_errors = (0..busy).filter(|_| rng.u32(0..100) == 0).count() as u64;
            watch.record_counts("busy", now, busy, busy_errors);
            // Around 2 requests/s, 1 % of them 5xx: above the drop floor, near the error minimum.
            let thin = rng.u64(0..=4);
            let thin_errors = (0..thin).filter(|_| rng.u32(0..100) == 0).count() as u64;
            watch.record_counts("thin", now, thin, thin_errors);
            // Around 0.1 request/s: a request in a second with a probability of 0 to 20 %.
            if rng.u32(0..100) < quiet_percent {
                watch.record("quiet", now, false);
                quiet_in_minute += 1;
            }
            if second == 59 {
                if quiet_in_minute == 0 {
                    empty_quiet_minutes += 1;
                }
                quiet_in_minute = 0;
            }
        });
        assert_eq!(sim.changes, []);
        assert!(empty_quiet_minutes > 10, "{empty_quiet_minutes}");
        let busy = sim.watch.router("busy").unwrap();
        assert!((busy.baseline_requests_per_minute - 6000.0).abs() < 600.0);
        assert!((busy.baseline_error_share - 0.01).abs() < 0.002);
        let quiet = sim.watch.router("quiet").unwrap();
        assert!(quiet.baseline_requests_per_minute < 20.0);
        assert_eq!(sim.watch.anomalies().count(), 9);
        assert!(active(&sim.watch).is_empty());
    }

    #[test]
    fn error_share_from_1_to_30_percent_is_flagged() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..20, steady("api", 100, 1));
        sim.run(20..25, steady("api", 100, 30));
        sim.run(25..30, steady("api", 100, 1));
        // At second 8, 270 of 900 requests failed; with the rest of the minute as usual that is
        // (270 + 0.01 × 5200) / 6100 = 5.3 % > max(3 × 1 %, 5 %).
        assert_eq!(
            sim.changes,
            [
                (at(20, 8), change("api", AnomalyKind::Errors, true, 20)),
                (at(26, 0), change("api", AnomalyKind::Errors, false, 25)),
            ]
        );
    }

    #[test]
    fn errors_need_a_minimum_count_of_5xx() {
        let mut sim = Sim::new(WatchConfig::default());
        let thin = |errors: fn(i64) -> bool| {
            move |watch: &mut Watch, now: i64| {
                let second = now.rem_euclid(SECONDS_PER_MINUTE);
                watch.record_counts("thin", now, 2, u64::from(errors(second)));
            }
        };
        // 2 requests/s and one 5xx a minute (0.8 %).
        sim.run(0..20, thin(|second| second == 0));
        // 10 %, twice the minimum share, but only 12 responses: not anomalous.
        sim.run(20..21, thin(|second| second % 5 == 0));
        assert!(sim.changes.is_empty());
        // 50 %: by second 49 there are 50 responses of 100 requests.
        sim.run(21..23, thin(|_| true));
        sim.run(23..25, thin(|second| second == 0));
        assert_eq!(
            sim.changes,
            [
                (at(21, 49), change("thin", AnomalyKind::Errors, true, 21)),
                (at(24, 0), change("thin", AnomalyKind::Errors, false, 23)),
            ]
        );
    }

    #[test]
    fn drops_below_the_floor_are_not_judged() {
        let mut sim = Sim::new(WatchConfig::default());
        let traffic = |watch: &mut Watch, now: i64| {
            // 0.5 and 1.5 requests/s: 30 and 90 a minute, around the floor of 60.
            watch.record_counts("low", now, u64::from(now % 2 == 0), 0);
            watch.record_counts("above", now, 1 + u64::from(now % 2 == 0), 0);
        };
        sim.run(0..20, traffic);
        sim.run(20..60, silence);
        // "above" learns slowly from its anomalous minutes: after 36 of them its baseline,
        // 90 × 0.5^(36/60) = 59.4, is under the floor, and a silent router is the new normal.
        assert_eq!(
            sim.changes,
            [
                (at(20, 49), change("above", AnomalyKind::Drop, true, 20)),
                (at(56, 0), change("above", AnomalyKind::Drop, false, 56)),
            ]
        );
        // Minutes 20 to 58 are closed (minute 59 is in progress): 39 empty minutes learnt at
        // the normal half-life, since nothing is judged below the floor.
        let low = sim
            .watch
            .router("low")
            .unwrap()
            .baseline_requests_per_minute;
        assert!(
            (low - 30.0 * 0.5_f64.powf(39.0 / 10.0)).abs() < 1e-9,
            "{low}"
        );
    }

    #[test]
    fn nothing_is_judged_during_warm_up() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..3, steady("api", 100, 0));
        // Minutes 3 to 5 are empty but the baseline is still warming up: minute 0 is left out,
        // minutes 1 to 5 make it.
        sim.run(3..6, silence);
        let status = sim.watch.router("api").unwrap();
        assert_eq!(status.baseline_minutes, 4);
        assert_eq!(status.baseline_requests_per_minute, 3000.0);
        // Minute 5 closes unjudged; minute 6 is judged against (6000 + 6000 + 0 + 0 + 0) / 5.
        sim.run(6..7, silence);
        assert_eq!(
            sim.watch
                .router("api")
                .unwrap()
                .baseline_requests_per_minute,
            2400.0
        );
        assert_eq!(
            sim.changes,
            [(at(6, 49), change("api", AnomalyKind::Drop, true, 6))]
        );
    }

    #[test]
    fn first_minute_of_a_router_is_left_out_of_its_baseline() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..7, |watch, now| {
            if now >= at(0, 30) {
                watch.record_counts("api", now, 100, 2);
            }
        });
        let status = sim.watch.router("api").unwrap();
        assert_eq!(status.baseline_minutes, 5);
        assert_eq!(status.baseline_requests_per_minute, 6000.0);
        assert_eq!(status.baseline_error_minutes, 5);
        assert_eq!(status.baseline_error_share, 0.02);
        assert_eq!((status.minute_requests, status.minute_errors), (6000, 120));
    }

    #[test]
    fn routers_past_the_cap_are_ignored_and_counted() {
        let config = WatchConfig {
            max_routers: 2,
            ..WatchConfig::default()
        };
        let mut watch = Watch::new(config).unwrap();
        watch.record("a", T0, false);
        watch.record("b", T0, true);
        watch.record_counts("c", T0, 7, 1);
        watch.record("a", T0 + 1, false);
        assert_eq!(watch.router("c"), None);
        assert_eq!(
            watch.stats(),
            WatchStats {
                routers: 2,
                overflow_lines: 7,
                late_lines: 0,
                early_lines: 0,
            }
        );
        let listed: Vec<_> = watch
            .anomalies()
            .map(|a| (a.router, a.kind.as_str(), a.active))
            .collect();
        assert_eq!(
            listed,
            [
                ("a", "drop", false),
                ("a", "spike", false),
                ("a", "errors", false),
                ("b", "drop", false),
                ("b", "spike", false),
                ("b", "errors", false),
            ]
        );
    }

    #[test]
    fn late_lines_count_in_the_minute_in_progress_and_early_lines_wait_for_the_next() {
        let mut watch = Watch::new(WatchConfig::default()).unwrap();
        assert_eq!(watch.tick(at(5, 0)), []);
        watch.record("api", at(5, 1), false);
        watch.record("api", at(4, 59), true);
        watch.record("api", at(6, 0), false);
        watch.record("api", at(9, 0), false);
        watch.record_counts("api", at(5, 2), 0, 0);
        let status = watch.router("api").unwrap();
        assert_eq!((status.minute_requests, status.minute_errors), (2, 1));
        assert_eq!(watch.tick(at(6, 0)), []);
        let status = watch.router("api").unwrap();
        assert_eq!((status.minute_requests, status.baseline_minutes), (2, 0));
        watch.record_counts("api", at(5, 30), 3, 9);
        assert_eq!(watch.tick(at(7, 0)), []);
        let status = watch.router("api").unwrap();
        assert_eq!(status.baseline_minutes, 1);
        assert_eq!(status.baseline_requests_per_minute, 5.0);
        assert_eq!(
            watch.stats(),
            WatchStats {
                routers: 1,
                overflow_lines: 0,
                late_lines: 4,
                early_lines: 1,
            }
        );
    }

    #[test]
    fn router_first_seen_through_an_early_line_starts_with_the_next_minute() {
        let mut watch = Watch::new(WatchConfig {
            warmup_minutes: 1,
            ..WatchConfig::default()
        })
        .unwrap();
        watch.tick(at(0, 0));
        watch.record_counts("api", at(1, 0), 6000, 0);
        watch.tick(at(1, 0));
        watch.tick(at(2, 0));
        // Minute 0 did not exist for the router, minute 1 was its first: nothing learnt yet.
        assert_eq!(watch.router("api").unwrap().baseline_minutes, 0);
    }

    #[test]
    fn skipped_minutes_are_closed_as_empty_and_a_clock_going_back_changes_nothing() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..20, steady("api", 100, 0));
        assert_eq!(
            sim.watch.tick(at(23, 0)),
            [change("api", AnomalyKind::Drop, true, 20)]
        );
        let before = sim.watch.router("api").unwrap();
        assert_eq!(before.baseline_minutes, 22);
        assert_eq!(sim.watch.tick(at(22, 30)), []);
        assert_eq!(sim.watch.router("api"), Some(before));
        assert_eq!(active(&sim.watch), [("api", AnomalyKind::Drop)]);
    }

    #[test]
    fn a_jump_of_more_than_a_day_restarts_the_baselines() {
        let mut sim = Sim::new(WatchConfig::default());
        sim.run(0..20, steady("api", 100, 0));
        sim.run(20..22, silence);
        assert_eq!(active(&sim.watch), [("api", AnomalyKind::Drop)]);
        let later = 22 + MAX_CATCH_UP_MINUTES + 1;
        assert_eq!(
            sim.watch.tick(at(later, 5)),
            [change("api", AnomalyKind::Drop, false, later)]
        );
        let status = sim.watch.router("api").unwrap();
        assert_eq!((status.baseline_minutes, status.minute_requests), (0, 0));
        // The minute the clock jumped into is partial: left out like a router's first minute.
        sim.watch.record_counts("api", at(later, 6), 100, 0);
        assert_eq!(sim.watch.tick(at(later + 1, 0)), []);
        assert_eq!(sim.watch.router("api").unwrap().baseline_minutes, 0);
    }

    #[test]
    fn an_infinite_anomalous_half_life_freezes_the_baseline_during_an_anomaly() {
        let mut sim = Sim::new(WatchConfig {
            anomalous_half_life_minutes: f64::INFINITY,
            ..WatchConfig::default()
        });
        sim.run(0..20, steady("api", 100, 0));
        sim.run(20..200, silence);
        let status = sim.watch.router("api").unwrap();
        assert_eq!(status.baseline_requests_per_minute, 6000.0);
        assert_eq!(
            sim.changes,
            [(at(20, 49), change("api", AnomalyKind::Drop, true, 20))]
        );
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_warning_is_logged_when_an_anomaly_starts_and_an_info_event_when_it_clears() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        // While a single `Dispatch` exists, a callsite first hit on a thread without a subscriber
        // (another test) caches "never" for every thread; a second live one avoids that.
        // See: https://github.com/tokio-rs/tracing/issues/3611
        let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        tracing::subscriber::with_default(subscriber, || {
            let mut sim = Sim::new(WatchConfig::default());
            sim.run(0..10, steady("api", 100, 0));
            sim.run(10..12, silence);
            sim.run(12..13, steady("api", 100, 0));
            assert_eq!(sim.changes.len(), 2);
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        let started = format!(
            " WARN vantage_edge::serve::watch: edge anomaly started router=\"api\" kind=\"drop\" \
             minute={} requests=0 errors_5xx=0 baseline_requests_per_minute=6000.0",
            at(10, 0)
        );
        assert!(lines[0].starts_with(&started), "{log}");
        assert!(lines[1].starts_with(" INFO vantage_edge::serve::watch: edge anomaly cleared router=\"api\" kind=\"drop\""), "{log}");
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(WatchConfig::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_settings_are_refused_naming_the_field() {
        type Spoil = fn(&mut WatchConfig);
        let cases: [(&str, Spoil); 14] = [
            ("half_life_minutes", |c| c.half_life_minutes = 0.0),
            ("half_life_minutes", |c| c.half_life_minutes = f64::INFINITY),
            ("anomalous_half_life_minutes", |c| {
                c.anomalous_half_life_minutes = f64::NAN;
            }),
            ("warmup_minutes", |c| c.warmup_minutes = 0),
            ("min_baseline_rps", |c| c.min_baseline_rps = -1.0),
            ("drop_ratio", |c| c.drop_ratio = 1.0),
            ("drop_ratio", |c| c.drop_ratio = 0.0),
            ("spike_ratio", |c| c.spike_ratio = 1.0),
            ("spike_min_excess_rps", |c| {
                c.spike_min_excess_rps = f64::NAN
            }),
            ("error_ratio", |c| c.error_ratio = 0.5),
            ("error_min_share", |c| c.error_min_share = 1.0),
            ("error_min_share", |c| c.error_min_share = 0.0),
            ("error_min_requests", |c| c.error_min_requests = 0),
            ("max_routers", |c| c.max_routers = 0),
        ];
        for (field, spoil) in cases {
            let mut config = WatchConfig::default();
            spoil(&mut config);
            let Err(WatchConfigError::Invalid { field: named, .. }) = Watch::new(config) else {
                panic!("{field} was accepted");
            };
            assert_eq!(named, field);
        }
        let config = WatchConfig {
            drop_ratio: 1.5,
            ..WatchConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "watch setting drop_ratio = 1.5 is invalid: it must be between 0 and 1, both excluded"
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Record {
            router: u8,
            at: i64,
            requests: u64,
            errors: u64,
        },
        Tick(i64),
    }

    fn timestamp() -> impl Strategy<Value = i64> {
        prop_oneof![
            8 => (0..4 * 3600_i64).prop_map(|offset| T0 + offset),
            1 => any::<i64>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..5_u8, timestamp(), 0..5000_u64, 0..6000_u64).prop_map(
                |(router, at, requests, errors)| Op::Record {
                    router,
                    at,
                    requests,
                    errors,
                }
            ),
            timestamp().prop_map(Op::Tick),
        ]
    }

    proptest! {
        #[test]
        fn any_input_keeps_the_state_consistent(ops in prop::collection::vec(op(), 0..200)) {
            const ROUTERS: [&str; 5] = ["a", "b", "c", "d", "e"];
            let mut watch = Watch::new(WatchConfig {
                warmup_minutes: 1,
                max_routers: 4,
                ..WatchConfig::default()
            })
            .unwrap();
            let mut states = HashMap::new();
            for op in ops {
                match op {
                    Op::Record { router, at, requests, errors } => {
                        watch.record_counts(ROUTERS[usize::from(router)], at, requests, errors);
                    }
                    Op::Tick(now) => {
                        for change in watch.tick(now) {
                            // Every change flips the state: starts, then clears, then starts.
                            let state = states.entry((change.router, change.kind)).or_insert(false);
                            prop_assert_ne!(*state, change.active);
                            *state = change.active;
                        }
                    }
                }
            }
            let stats = watch.stats();
            prop_assert!(stats.routers <= 4);
            prop_assert_eq!(watch.anomalies().count(), 3 * stats.routers);
            for anomaly in watch.anomalies() {
                let state = states.get(&(anomaly.router.to_owned(), anomaly.kind));
                prop_assert_eq!(anomaly.active, state.copied().unwrap_or(false));
                let status = watch.router(anomaly.router).unwrap();
                prop_assert!(status.minute_errors <= status.minute_requests);
                prop_assert!(status.baseline_requests_per_minute.is_finite());
                prop_assert!((0.0..=1.0).contains(&status.baseline_error_share));
            }
        }
    }
}
