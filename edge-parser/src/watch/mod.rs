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
//! use vantage_edge::watch::{AnomalyKind, Watch, WatchConfig};
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
//! # Ok::<(), vantage_edge::watch::WatchConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

mod config;

pub use config::{
    DEFAULT_ANOMALOUS_HALF_LIFE_MINUTES, DEFAULT_DROP_RATIO, DEFAULT_ERROR_MIN_COUNT,
    DEFAULT_ERROR_MIN_REQUESTS, DEFAULT_ERROR_MIN_SHARE, DEFAULT_ERROR_RATIO,
    DEFAULT_HALF_LIFE_MINUTES, DEFAULT_MAX_ROUTERS, DEFAULT_MIN_BASELINE_RPS,
    DEFAULT_SPIKE_MIN_EXCESS_RPS, DEFAULT_SPIKE_RATIO, DEFAULT_WARMUP_MINUTES,
    MAX_CATCH_UP_MINUTES, WatchConfig, WatchConfigError,
};

const SECONDS_PER_MINUTE: i64 = 60;
const SECONDS_PER_MINUTE_F: f64 = 60.0;

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
    /// In the order of [`AnomalyKind::ALL`]: while that anomaly is on, the start of the minute it came
    /// on in (Unix seconds).
    pub active_since: [Option<i64>; 3],
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
            active_since: state.active_since,
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
    router.active_since[kind.index()] = active.then_some(minute);
    // One event, two levels: `tracing` wants the level of a call site as a constant.
    macro_rules! log_change {
        ($level:expr, $message:literal) => {
            tracing::event!(
                $level,
                router = &*router.name,
                kind = kind.as_str(),
                minute,
                requests = counts.requests,
                errors_5xx = counts.errors,
                baseline_requests_per_minute = router.rate.value,
                baseline_error_share = router.share.value,
                $message
            )
        };
    }
    if active {
        log_change!(tracing::Level::WARN, "edge anomaly started");
    } else {
        log_change!(tracing::Level::INFO, "edge anomaly cleared");
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
    /// Per [`AnomalyKind::index`]: the minute an active anomaly came on in, Unix seconds.
    active_since: [Option<i64>; 3],
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
            active_since: [None; 3],
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
mod tests;
