//! Unit tests of the generator, the model and the low-level writers.

use std::time::Duration;

use fastrand::Rng;

use super::generator::fill_template;
use super::model::SLUGS;
use super::write::decimal;
use super::*;

#[test]
fn same_seed_same_lines_other_seed_other_lines() {
    let config = SynthConfig::new().seed(42).malformed_rate(0.05);
    let a = generate(&Format::TraefikCommon, &config, 200);
    let b = generate(&Format::TraefikCommon, &config, 200);
    let c = generate(&Format::TraefikCommon, &config.seed(43), 200);
    assert_eq!(a, b);
    assert_ne!(a.text, c.text);
    assert_eq!(a.lines.len(), 200);
    assert_eq!(a.text.iter().filter(|&&b| b == b'\n').count(), 200);
}

#[test]
fn templates_fill_id_like_segments() {
    let mut rng = Rng::with_seed(3);
    let path = fill_template(
        &mut rng,
        "/orders/{uuid}/items/{id}/{hex}.{n}/{slug}/{unknown}",
    );
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts[1], "orders");
    assert_eq!(parts[2].len(), 36);
    assert_eq!(parts[2].as_bytes()[14], b'4');
    assert!(parts[4].parse::<u64>().unwrap() >= 100);
    assert!(
        parts[5]
            .split('.')
            .next()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_hexdigit())
    );
    assert!(SLUGS.contains(&parts[6]));
    assert_eq!(parts[7], "{unknown}");
}

#[test]
fn decimals_trim_trailing_zeros() {
    let mut out = Vec::new();
    decimal(&mut out, 3_550_188, 9);
    out.push(b' ');
    decimal(&mut out, 1_500_000_000, 9);
    out.push(b' ');
    decimal(&mut out, 2_000_000_000, 9);
    out.push(b' ');
    decimal(&mut out, 42, 0);
    assert_eq!(out, b"0.003550188 1.5 2 42");
}

#[test]
fn status_mix_respects_weights() {
    let mut rng = Rng::with_seed(1);
    let mix = StatusMix::new(vec![(200, 3), (500, 1), (404, 0)]);
    let picks: Vec<i16> = (0..4000).map(|_| mix.pick(&mut rng)).collect();
    let errors = picks.iter().filter(|&&s| s == 500).count();
    assert!((800..1200).contains(&errors), "{errors}");
    assert!(!picks.contains(&404));
    assert_eq!(StatusMix::new(Vec::new()).pick(&mut rng), 200);
}

#[test]
fn latency_distributions() {
    let mut rng = Rng::with_seed(9);
    let fixed = Latency::Fixed(Duration::from_millis(5));
    assert_eq!(fixed.sample_ns(&mut rng), 5e6);
    let uniform = Latency::Uniform {
        min: Duration::from_millis(1),
        max: Duration::from_millis(2),
    };
    assert!((0..100).all(|_| (1e6..=2e6).contains(&uniform.sample_ns(&mut rng))));
    let mut samples: Vec<f64> = (0..2001)
        .map(|_| {
            Latency::LogNormal {
                median: Duration::from_millis(10),
                sigma: 0.5,
            }
            .sample_ns(&mut rng)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    assert!((9e6..11e6).contains(&samples[1000]), "{}", samples[1000]);
}

#[test]
fn sample_lines_look_like_the_real_thing() {
    let config = SynthConfig::new().seed(5);
    let mut generator = Generator::new(Format::TraefikCommon, config);
    let line = generator.next().unwrap();
    let text = String::from_utf8(line.text).unwrap();
    assert!(
        text.contains(" - - [09/Mar/2025:12:00:00 +0000] \""),
        "{text}"
    );
    assert!(text.ends_with("ms"), "{text}");
}
