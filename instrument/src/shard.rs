//! Per-thread shards: a value every request updates is kept in one copy per shard, each on its
//! own cache line, and a thread always writes the same shard, so threads serving at once do not
//! pass a line back and forth on every request; a reader adds the shards up.
//!
//! Threads take shards in turn as they first ask, so up to [`count`] threads write each their
//! own. More threads share shards: still correct (every update is an atomic read-modify-write),
//! only contended again.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crossbeam_utils::CachePadded;

/// The most shards a value is split into: bounds a sharded value's memory.
pub const MAX: usize = 8;

static COUNT: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .next_power_of_two()
        .min(MAX)
});

static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % count();
}

/// How many shards a sharded value has on this machine: the available parallelism rounded up
/// to a power of two, at most [`MAX`].
pub fn count() -> usize {
    *COUNT
}

/// The shard of the calling thread, below [`count`].
#[inline]
pub fn current() -> usize {
    INDEX.with(|index| *index)
}

/// Runs `work` on four times as many threads as there are shards, started together, so that
/// threads share shards and race on them; returns how many threads ran it.
#[cfg(test)]
pub(crate) fn on_more_threads_than_shards(work: impl Fn() + Sync) -> usize {
    let threads = 4 * count();
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                start.wait();
                work();
            });
        }
    });
    threads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_the_shard_its_turn_gave_it() {
        let count = count();
        assert!(count.is_power_of_two() && count <= MAX);
        for _ in 0..count * 2 {
            let (first, again) = std::thread::spawn(|| (current(), current()))
                .join()
                .expect("thread");
            assert_eq!(first, again);
            assert!(first < count, "shard {first} of {count}");
        }
    }
}
