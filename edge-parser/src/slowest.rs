//! The slowest requests of a sliding window: the few slowest of each minute, for the last
//! [`MINUTES`] minutes (by the log's own time), so that the slowest of the last five minutes
//! are always at hand and an old outlier ages out with its minute.
//!
//! A request slower than nothing in its minute's full list is turned away after one comparison
//! ([`SlowestWindow::would_keep`], before the caller builds what it keeps); nothing is
//! allocated past the first request of each minute. A request older than the window, or for a
//! minute whose place a newer one took, is not kept.
//!
//! ```
//! use vantage_edge::slowest::{Slow, SlowestWindow};
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct Request { at: i64, ms: u64 }
//! impl Slow for Request {
//!     fn at(&self) -> i64 { self.at }
//!     fn duration(&self) -> u64 { self.ms }
//! }
//!
//! let mut window = SlowestWindow::new(2);
//! for (at, ms) in [(0, 30), (10, 900), (20, 5), (70, 40)] {
//!     window.offer(Request { at, ms });
//! }
//! let slowest: Vec<u64> = window.slowest(90, 2).map(|r| r.ms).collect();
//! assert_eq!(slowest, [900, 40]);
//! ```

/// Minutes in the window.
pub const MINUTES: usize = 5;
/// The window, seconds.
pub const WINDOW_SECONDS: i64 = 60 * MINUTES as i64;

/// What a window keeps: something that happened at a time and took a duration.
pub trait Slow {
    /// When, seconds since the epoch.
    fn at(&self) -> i64;
    /// How long, in any unit: the larger the slower.
    fn duration(&self) -> u64;
}

/// One minute's slowest, slowest first.
#[derive(Debug, Clone)]
struct Minute<T> {
    /// Which minute (`at / 60`); the requests of another are stale.
    index: i64,
    slowest: Vec<T>,
}

/// The slowest of the last [`MINUTES`] minutes; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct SlowestWindow<T> {
    /// Kept per minute.
    top: usize,
    /// Each minute at `index % MINUTES`.
    minutes: [Minute<T>; MINUTES],
    /// The newest time offered.
    newest: i64,
}

impl<T: Slow> SlowestWindow<T> {
    /// A window keeping the `top` slowest of each minute.
    #[must_use]
    pub fn new(top: usize) -> Self {
        Self {
            top,
            minutes: std::array::from_fn(|_| Minute {
                index: i64::MIN,
                slowest: Vec::new(),
            }),
            newest: i64::MIN,
        }
    }

    /// Whether a request at `at` taking `duration` would be kept.
    pub fn would_keep(&self, at: i64, duration: u64) -> bool {
        if at <= self.newest.saturating_sub(WINDOW_SECONDS) {
            return false;
        }
        let index = at.div_euclid(60);
        let minute = &self.minutes[slot(index)];
        if minute.index > index {
            // Its place holds a newer minute: it is past the window.
            return false;
        }
        minute.index < index
            || minute.slowest.len() < self.top
            || minute
                .slowest
                .last()
                .is_some_and(|fastest| fastest.duration() < duration)
    }

    /// Offers one request; it is kept if [`would_keep`](Self::would_keep) says so.
    pub fn offer(&mut self, request: T) {
        let (at, duration) = (request.at(), request.duration());
        if !self.would_keep(at, duration) {
            return;
        }
        self.newest = self.newest.max(at);
        let index = at.div_euclid(60);
        let top = self.top;
        let minute = &mut self.minutes[slot(index)];
        if minute.index != index {
            minute.index = index;
            minute.slowest.clear();
        }
        let place = minute
            .slowest
            .partition_point(|kept| kept.duration() >= duration);
        if minute.slowest.len() == top {
            minute.slowest.pop();
        }
        minute.slowest.insert(place, request);
    }

    /// The `count` slowest of the window ending at `now` (seconds since the epoch), slowest
    /// first; of equal durations, the later first.
    pub fn slowest(&self, now: i64, count: usize) -> impl Iterator<Item = &T> {
        let oldest = now.saturating_sub(WINDOW_SECONDS).div_euclid(60);
        let mut slowest: Vec<&T> = self
            .minutes
            .iter()
            .filter(|minute| minute.index > oldest && minute.index <= now.div_euclid(60))
            .flat_map(|minute| &minute.slowest)
            .collect();
        slowest.sort_by(|a, b| b.duration().cmp(&a.duration()).then(b.at().cmp(&a.at())));
        slowest.truncate(count);
        slowest.into_iter()
    }
}

fn slot(index: i64) -> usize {
    // rem_euclid of a positive divisor is in 0..MINUTES.
    index.rem_euclid(MINUTES as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Request(i64, u64, u32);

    impl Slow for Request {
        fn at(&self) -> i64 {
            self.0
        }
        fn duration(&self) -> u64 {
            self.1
        }
    }

    fn ids(window: &SlowestWindow<Request>, now: i64, count: usize) -> Vec<u32> {
        window.slowest(now, count).map(|r| r.2).collect()
    }

    #[test]
    fn each_minute_keeps_its_slowest_and_the_window_its_last_five_minutes() {
        let mut window = SlowestWindow::new(3);
        // Minute 1 000: ten requests of 10 to 100 ms; its three slowest are kept.
        for n in 1..=10 {
            window.offer(Request(60_000 + i64::from(n), u64::from(n) * 10, n));
        }
        assert_eq!(ids(&window, 60_030, 5), [10, 9, 8]);
        // Two minutes on, a fast request comes after them.
        window.offer(Request(60_120, 1, 11));
        assert_eq!(ids(&window, 60_130, 5), [10, 9, 8, 11]);
        // Past the window, minute 1 000 is gone.
        assert_eq!(ids(&window, 60_000 + WINDOW_SECONDS + 60, 5), [11]);
    }

    #[test]
    fn a_minute_whose_place_was_taken_is_past_the_window() {
        let mut window = SlowestWindow::new(3);
        window.offer(Request(0, 500, 1));
        window.offer(Request(WINDOW_SECONDS, 1, 2));
        assert_eq!(ids(&window, WINDOW_SECONDS, 5), [2]);
        assert!(!window.would_keep(10, 900));
        window.offer(Request(10, 900, 3));
        assert_eq!(ids(&window, WINDOW_SECONDS, 5), [2]);
    }

    #[test]
    fn ties_keep_the_first_offered_and_show_the_later_first() {
        let mut window = SlowestWindow::new(2);
        for n in 1..=4 {
            window.offer(Request(i64::from(n), 10, n));
        }
        // The first two were kept; a tie does not displace them.
        assert_eq!(ids(&window, 30, 5), [2, 1]);
        assert!(!window.would_keep(5, 10));
        assert!(window.would_keep(5, 11));
    }
}
