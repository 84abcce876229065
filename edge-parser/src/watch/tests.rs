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
    let status = sim.watch.router("api").expect("watched");
    assert_eq!(status.active_since, [Some(at(30, 0)), None, None]);
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
    let status = sim.watch.router("api").expect("watched");
    assert_eq!(status.active_since, [None; 3]);
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
        " WARN vantage_edge::watch: edge anomaly started router=\"api\" kind=\"drop\" \
         minute={} requests=0 errors_5xx=0 baseline_requests_per_minute=6000.0",
        at(10, 0)
    );
    assert!(lines[0].starts_with(&started), "{log}");
    assert!(
        lines[1].starts_with(
            " INFO vantage_edge::watch: edge anomaly cleared router=\"api\" kind=\"drop\""
        ),
        "{log}"
    );
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
