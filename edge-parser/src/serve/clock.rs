//! Time `serve` can trust: which log timestamps place a request in the live windows.
//!
//! The windows, the watch tower, the lag and the last-line time key on the proxy's own
//! timestamps, so that a backlog read late lands in the right minute. One line stamped in the
//! future (a clock step on the proxy's host) must not pull them all ahead: the ring of window
//! slots would move past the present and drop every later line, and the lag would read 0 until
//! the clock caught up. So each timestamp is judged against the arrival time (the clock, an
//! argument: nothing here reads it):
//!
//! | the line's time | verdict | placed at |
//! |---|---|---|
//! | more than [`AHEAD_TOLERANCE`] ahead of the clock | [`Verdict::Ahead`] | arrival |
//! | more than [`BEHIND_TOLERANCE`] behind the newest trusted line (a clock stepped back) | [`Verdict::Behind`] | arrival |
//! | otherwise (a backlog read late included) | [`Verdict::Trusted`] | its own time |
//! | none logged | [`Verdict::Untimed`] | arrival |
//!
//! Skewed lines are still counted in every total; they are counted apart too, and the last few
//! are kept as samples. When lines keep arriving behind for [`REANCHOR_AFTER`], the proxy's
//! clock really moved back: the newest trusted time follows it. The last-line time is the time
//! of the last *trusted* line to arrive (not the largest ever seen), so neither it nor the lag
//! is pinned by one line.

use std::collections::VecDeque;

use serde::Serialize;

/// A line further ahead of the clock than this, in seconds, is not trusted.
pub(crate) const AHEAD_TOLERANCE: i64 = 60;
/// A line further behind the newest trusted one than this, in seconds (the longest window), is
/// not trusted.
pub(crate) const BEHIND_TOLERANCE: i64 = 3600;
/// After this many seconds of arrivals with only lines behind, their time is trusted again.
pub(crate) const REANCHOR_AFTER: i64 = 60;
/// Skewed lines kept as samples.
const MAX_SAMPLES: usize = 5;
const NANOS: i64 = 1_000_000_000;

/// What a line's timestamp is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its own time, unix seconds.
    Trusted(i64),
    /// Too far ahead of the clock.
    Ahead,
    /// Too far behind the newest trusted line.
    Behind,
    /// No timestamp.
    Untimed,
}

/// A skewed line, as `/api/summary` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SkewSample {
    /// `ahead` or `behind`.
    pub(crate) direction: &'static str,
    /// The line's number since the first start.
    pub(crate) line: u64,
    /// Its timestamp, unix seconds.
    pub(crate) logged_at: f64,
    /// When it was read, unix seconds.
    pub(crate) read_at: f64,
}

/// Counts of skewed lines since this process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SkewCounts {
    pub(crate) ahead: u64,
    pub(crate) behind: u64,
}

/// The judge of log timestamps; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct LogClock {
    /// The newest trusted timestamp, ns.
    newest: Option<i64>,
    /// The timestamp of the last trusted line to arrive, ns.
    last_line: Option<i64>,
    /// Since when (arrival, unix seconds) only lines behind have arrived.
    behind_since: Option<i64>,
    counts: SkewCounts,
    samples: VecDeque<SkewSample>,
}

impl LogClock {
    /// A clock going on from a restored last-line time (ignored when ahead of `now`).
    pub(crate) fn resume(last_line: Option<i64>, now: f64) -> Self {
        let trusted = last_line.filter(|&ns| ns / NANOS <= now as i64 + AHEAD_TOLERANCE);
        Self {
            newest: trusted,
            last_line: trusted,
            ..Self::default()
        }
    }

    /// Judges line `line` stamped `timestamp` (ns) read at `now` (unix seconds).
    pub(crate) fn judge(&mut self, line: u64, timestamp: Option<i64>, now: f64) -> Verdict {
        let Some(nanos) = timestamp else {
            return Verdict::Untimed;
        };
        let at = nanos.div_euclid(NANOS);
        let arrival = now as i64;
        let verdict = if at > arrival.saturating_add(AHEAD_TOLERANCE) {
            Verdict::Ahead
        } else if self
            .newest
            .is_some_and(|newest| at < newest.div_euclid(NANOS).saturating_sub(BEHIND_TOLERANCE))
        {
            let since = *self.behind_since.get_or_insert(arrival);
            if arrival.saturating_sub(since) >= REANCHOR_AFTER {
                self.newest = Some(nanos);
                Verdict::Trusted(at)
            } else {
                Verdict::Behind
            }
        } else {
            Verdict::Trusted(at)
        };
        match verdict {
            Verdict::Trusted(_) => {
                self.behind_since = None;
                self.newest = self.newest.max(Some(nanos));
                self.last_line = Some(nanos);
            }
            Verdict::Ahead | Verdict::Behind => {
                let direction = if verdict == Verdict::Ahead {
                    self.counts.ahead += 1;
                    "ahead"
                } else {
                    self.counts.behind += 1;
                    "behind"
                };
                if self.samples.len() == MAX_SAMPLES {
                    self.samples.pop_front();
                }
                self.samples.push_back(SkewSample {
                    direction,
                    line,
                    logged_at: nanos as f64 / 1e9,
                    read_at: now,
                });
            }
            Verdict::Untimed => {}
        }
        verdict
    }

    /// The timestamp of the last trusted line to arrive, ns.
    pub(crate) fn last_line(&self) -> Option<i64> {
        self.last_line
    }

    /// Skewed lines since this process started.
    pub(crate) fn counts(&self) -> SkewCounts {
        self.counts
    }

    /// The last few skewed lines, oldest first.
    pub(crate) fn samples(&self) -> impl Iterator<Item = &SkewSample> {
        self.samples.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_741_521_600.0;

    fn ns(secs: f64) -> Option<i64> {
        Some((secs * 1e9) as i64)
    }

    #[test]
    fn a_line_an_hour_ahead_is_placed_at_arrival_and_does_not_move_the_last_line() {
        let mut clock = LogClock::default();
        assert_eq!(
            clock.judge(1, ns(NOW - 1.0), NOW),
            Verdict::Trusted(NOW as i64 - 1)
        );
        assert_eq!(clock.judge(2, ns(NOW + 3600.0), NOW), Verdict::Ahead);
        assert_eq!(clock.last_line(), ns(NOW - 1.0));
        assert_eq!(
            clock.judge(3, ns(NOW), NOW + 0.5),
            Verdict::Trusted(NOW as i64)
        );
        assert_eq!(clock.last_line(), ns(NOW));
        assert_eq!(
            clock.counts(),
            SkewCounts {
                ahead: 1,
                behind: 0
            }
        );
        let samples: Vec<_> = clock.samples().cloned().collect();
        assert_eq!(
            samples,
            vec![SkewSample {
                direction: "ahead",
                line: 2,
                logged_at: NOW + 3600.0,
                read_at: NOW,
            }]
        );
    }

    #[test]
    fn within_the_tolerance_the_proxy_clock_is_trusted() {
        let mut clock = LogClock::default();
        let ahead = NOW + AHEAD_TOLERANCE as f64;
        assert_eq!(
            clock.judge(1, ns(ahead), NOW),
            Verdict::Trusted(ahead as i64)
        );
        assert_eq!(clock.judge(2, None, NOW), Verdict::Untimed);
        assert_eq!(clock.last_line(), ns(ahead));
    }

    #[test]
    fn a_backlog_read_late_is_trusted() {
        let mut clock = LogClock::default();
        for n in 0..100u32 {
            let at = NOW - 86_400.0 + f64::from(n);
            assert_eq!(
                clock.judge(n.into(), ns(at), NOW),
                Verdict::Trusted(at as i64)
            );
        }
        assert_eq!(clock.counts(), SkewCounts::default());
    }

    #[test]
    fn a_clock_stepped_back_is_followed_after_a_minute_of_lines_behind() {
        let mut clock = LogClock::default();
        clock.judge(1, ns(NOW), NOW);
        let back = NOW - 7200.0;
        assert_eq!(clock.judge(2, ns(back), NOW), Verdict::Behind);
        assert_eq!(clock.judge(3, ns(back + 30.0), NOW + 30.0), Verdict::Behind);
        assert_eq!(
            clock.judge(4, ns(back + 60.0), NOW + 60.0),
            Verdict::Trusted(back as i64 + 60)
        );
        assert_eq!(clock.last_line(), ns(back + 60.0));
        assert_eq!(
            clock.counts(),
            SkewCounts {
                ahead: 0,
                behind: 2
            }
        );
    }

    #[test]
    fn samples_are_bounded() {
        let mut clock = LogClock::default();
        for n in 0..20 {
            clock.judge(n, ns(NOW + 7200.0), NOW);
        }
        assert_eq!(clock.samples().count(), MAX_SAMPLES);
        assert_eq!(clock.samples().next().map(|s| s.line), Some(15));
        assert_eq!(clock.counts().ahead, 20);
    }

    #[test]
    fn a_restored_last_line_in_the_future_is_not_trusted() {
        assert_eq!(LogClock::resume(ns(NOW + 3600.0), NOW).last_line(), None);
        assert_eq!(
            LogClock::resume(ns(NOW - 5.0), NOW).last_line(),
            ns(NOW - 5.0)
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let mut clock = LogClock::default();
        assert_eq!(clock.judge(1, Some(i64::MAX), NOW), Verdict::Ahead);
        assert_eq!(
            clock.judge(2, Some(i64::MIN), NOW),
            Verdict::Trusted(i64::MIN.div_euclid(NANOS))
        );
        assert_eq!(clock.judge(3, ns(NOW), NOW), Verdict::Trusted(NOW as i64));
        assert_eq!(clock.judge(4, Some(i64::MIN), NOW), Verdict::Behind);
    }
}
