//! What the hand-rolled benches share (interleaved rounds need their own harness): the median of
//! a variant's rounds, command-line options, and the slower of threads started together.

use std::sync::Barrier;

/// The median of a variant's figures.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// `--name value` from the command line (cargo bench adds `--bench`).
pub(crate) fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1).cloned())
}

/// Runs `run` on `threads` threads started together (each with what `setup` made for it before
/// the start); the slowest thread's figure.
pub(crate) fn slowest_thread<T>(
    threads: usize,
    setup: impl Fn() -> T + Sync,
    run: impl Fn(T) -> f64 + Sync,
) -> f64 {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let prepared = setup();
                    barrier.wait();
                    run(prepared)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("bench thread"))
            .fold(0.0, f64::max)
    })
}
