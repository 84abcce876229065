//! Format detection from the first lines of a log.
//!
//! Every candidate parses every sampled (non-blank) line. A candidate is *eligible* when it
//! parses at least one line as a record and recognises (parses or filters) at least half of
//! them. The eligible candidate that recognises the most lines wins, ties broken by the number
//! of records; a remaining tie is refused as [`DetectError::Ambiguous`], no eligible candidate
//! as [`DetectError::NoMatch`], and both errors name every candidate with its score. The
//! presets' layouts are strict enough (fixed trailing fields, whole-line matches) that real logs
//! never tie.
//!
//! Caddy's `duration` unit cannot be seen in one number: detection reports `caddy-json`
//! (seconds) unless every sampled duration is an integer and at least half of them are 1000 or
//! more, which as seconds would be requests of over 16 minutes: then `caddy-json-ns`.
//! `caddy-json-ms` is never detected.

use std::fmt;

use super::{Format, Parsed};
use crate::read::lines;

/// How many lines [`detect`] samples.
pub const DEFAULT_DETECT_LINES: usize = 64;

/// How well one candidate format read the sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    /// The candidate.
    pub format: Format,
    /// Lines parsed as records.
    pub parsed: usize,
    /// Lines filtered (well-formed, not requests).
    pub filtered: usize,
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format, self.parsed)?;
        if self.filtered > 0 {
            write!(f, "+{} filtered", self.filtered)?;
        }
        Ok(())
    }
}

/// The detected format and the evidence for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The chosen format.
    pub format: Format,
    /// Non-blank lines sampled.
    pub sampled: usize,
    /// Every candidate's score, in candidate order.
    pub scores: Vec<Score>,
}

impl Detection {
    /// The chosen format's score.
    #[must_use]
    pub fn score(&self) -> Option<&Score> {
        self.scores.iter().find(|s| s.format == self.format)
    }
}

impl fmt::Display for Detection {
    /// `detected traefik-common: 63 of 64 sample lines parsed, 0 filtered`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (parsed, filtered) = self.score().map_or((0, 0), |s| (s.parsed, s.filtered));
        write!(
            f,
            "detected {}: {parsed} of {} sample lines parsed, {filtered} filtered",
            self.format, self.sampled
        )
    }
}

/// Scores, written as `name parsed[+N filtered], …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scores(pub Vec<Score>);

impl fmt::Display for Scores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, score) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            score.fmt(f)?;
        }
        Ok(())
    }
}

/// Why detection refused to choose.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// The sample has no non-blank line.
    #[error("cannot detect the log format: the sample has no non-empty line")]
    NoLines,
    /// No candidate reads at least half of the sample.
    #[error(
        "cannot detect the log format: no candidate reads at least half of the {sampled} sample lines (lines parsed per candidate: {scores}); choose the format explicitly"
    )]
    NoMatch {
        /// Non-blank lines sampled.
        sampled: usize,
        /// Every candidate's score.
        scores: Scores,
    },
    /// Several candidates read the sample equally well.
    #[error(
        "cannot tell the log format from {sampled} sample lines: {} read them equally well (lines parsed per candidate: {scores}); choose the format explicitly",
        names(.candidates)
    )]
    Ambiguous {
        /// Non-blank lines sampled.
        sampled: usize,
        /// The tied candidates.
        candidates: Vec<Format>,
        /// Every candidate's score.
        scores: Scores,
    },
}

fn names(formats: &[Format]) -> String {
    formats
        .iter()
        .map(Format::name)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Detects the format of `sample` (the start of a log) among the [presets](Format::PRESETS),
/// from its first [`DEFAULT_DETECT_LINES`] lines.
///
/// Lines are split on `\n`; a final line without one is used too, so pass whole lines.
///
/// # Errors
///
/// [`DetectError`] when the sample is empty or no preset, or more than one, fits.
pub fn detect(sample: &[u8]) -> Result<Detection, DetectError> {
    detect_presets(lines(sample).take(DEFAULT_DETECT_LINES))
}

/// Detects which preset `lines` are written in, as [`detect`] does (all of them are sampled).
pub(crate) fn detect_presets<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Detection, DetectError> {
    let candidates: Vec<Format> = Format::PRESETS
        .iter()
        .filter(|f| !matches!(f, Format::CaddyJsonNanos | Format::CaddyJsonMillis))
        .cloned()
        .collect();
    detect_lines(lines, &candidates)
}

/// Detects which of `candidates` the `lines` are written in (all of them are sampled; blank
/// lines are skipped). Pass a compiled [`Format::Nginx`] among the candidates to recognise a
/// custom `log_format`.
///
/// # Errors
///
/// [`DetectError`] when there is no non-blank line, or no candidate or more than one fits.
pub fn detect_lines<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    candidates: &[Format],
) -> Result<Detection, DetectError> {
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.is_empty() {
        return Err(DetectError::NoLines);
    }
    let sampled = lines.len();
    let scores: Vec<Score> = candidates
        .iter()
        .map(|format| {
            let (mut parsed, mut filtered) = (0, 0);
            for line in &lines {
                match format.parse(line) {
                    Ok(Parsed::Record(_)) => parsed += 1,
                    Ok(Parsed::Filtered(_)) => filtered += 1,
                    Err(_) => {}
                }
            }
            Score {
                format: format.clone(),
                parsed,
                filtered,
            }
        })
        .collect();
    let key = |s: &Score| (s.parsed + s.filtered, s.parsed);
    let best = scores
        .iter()
        .filter(|s| s.parsed > 0 && 2 * (s.parsed + s.filtered) >= sampled)
        .map(key)
        .max();
    let Some(best) = best else {
        return Err(DetectError::NoMatch {
            sampled,
            scores: Scores(scores),
        });
    };
    let tied: Vec<Format> = scores
        .iter()
        .filter(|s| s.parsed > 0 && key(s) == best)
        .map(|s| s.format.clone())
        .collect();
    let format = match tied.as_slice() {
        [one] => one.clone(),
        several if several.iter().all(is_caddy) => {
            caddy_unit(&lines, several).ok_or_else(|| DetectError::Ambiguous {
                sampled,
                candidates: tied.clone(),
                scores: Scores(scores.clone()),
            })?
        }
        _ => {
            return Err(DetectError::Ambiguous {
                sampled,
                candidates: tied,
                scores: Scores(scores),
            });
        }
    };
    let format = if format == Format::CaddyJson && looks_like_nanos(&lines) {
        Format::CaddyJsonNanos
    } else {
        format
    };
    Ok(Detection {
        format,
        sampled,
        scores,
    })
}

fn is_caddy(format: &Format) -> bool {
    matches!(
        format,
        Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis
    )
}

/// Among tied Caddy variants (they parse the same lines), seconds unless the durations look
/// like nanoseconds.
fn caddy_unit(lines: &[&[u8]], tied: &[Format]) -> Option<Format> {
    let wanted = if looks_like_nanos(lines) {
        Format::CaddyJsonNanos
    } else {
        Format::CaddyJson
    };
    tied.contains(&wanted).then_some(wanted)
}

/// Every duration, read as seconds, is whole, and at least half are 1000 s or more.
fn looks_like_nanos(lines: &[&[u8]]) -> bool {
    const SECOND: u64 = 1_000_000_000;
    let durations: Vec<u64> = lines
        .iter()
        .filter_map(|line| match Format::CaddyJson.parse(line) {
            Ok(Parsed::Record(record)) => record.duration_ns,
            _ => None,
        })
        .collect();
    !durations.is_empty()
        && durations.iter().all(|d| d % SECOND == 0)
        && 2 * durations.iter().filter(|&&d| d >= 1000 * SECOND).count() >= durations.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAEFIK: &[u8] = br#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-" 1 "r@file" "http://127.0.0.1:8080" 1ms"#;

    #[test]
    fn detects_and_says_how_well() {
        let sample = [TRAEFIK, b"garbage", TRAEFIK, b""].join(&b'\n');
        let detection = detect(&sample).unwrap();
        assert_eq!(detection.format, Format::TraefikCommon);
        assert_eq!(detection.sampled, 3);
        assert_eq!(
            detection.to_string(),
            "detected traefik-common: 2 of 3 sample lines parsed, 0 filtered"
        );
    }

    #[test]
    fn refuses_when_nothing_fits_naming_the_candidates() {
        let err = detect(b"hello\nworld\n").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("cannot detect the log format: no candidate reads at least half of the 2 sample lines (lines parsed per candidate: traefik-common 0, traefik-json 0, nginx-combined 0,"), "{message}");
        assert!(
            message.ends_with("caddy-json 0); choose the format explicitly"),
            "{message}"
        );
        assert_eq!(detect(b"\n \n"), Err(DetectError::NoLines));
    }

    #[test]
    fn refuses_ties() {
        let candidates = [Format::TraefikCommon, Format::TraefikCommon];
        let err = detect_lines([TRAEFIK], &candidates).unwrap_err();
        assert!(
            matches!(err, DetectError::Ambiguous { ref candidates, .. } if candidates.len() == 2)
        );
        assert!(err.to_string().starts_with(
            "cannot tell the log format from 1 sample lines: traefik-common and traefik-common read them equally well"
        ));
    }

    #[test]
    fn caddy_duration_unit_from_the_values() {
        let line =
            |d: &str| format!(r#"{{"logger":"http.log.access.log0","duration":{d},"status":200}}"#);
        let seconds = [line("0.0035"), line("1"), line("12")].join("\n");
        assert_eq!(
            detect(seconds.as_bytes()).unwrap().format,
            Format::CaddyJson
        );
        let nanos = [line("3550188"), line("1"), line("120000")].join("\n");
        assert_eq!(
            detect(nanos.as_bytes()).unwrap().format,
            Format::CaddyJsonNanos
        );
        let all = [
            Format::CaddyJson,
            Format::CaddyJsonNanos,
            Format::CaddyJsonMillis,
        ];
        let d = detect_lines(nanos.lines().map(str::as_bytes), &all).unwrap();
        assert_eq!(d.format, Format::CaddyJsonNanos);
    }

    #[test]
    fn caddy_startup_lines_count_but_a_record_is_needed() {
        let startup: &[u8] = br#"{"level":"info","ts":1741521600.1,"logger":"admin","msg":"admin endpoint started"}"#;
        let err = detect(&[startup, startup].join(&b'\n')).unwrap_err();
        assert!(matches!(err, DetectError::NoMatch { .. }));
        let access: &[u8] = br#"{"logger":"http.log.access","duration":0.5,"status":200}"#;
        let d = detect(&[startup, startup, access].join(&b'\n')).unwrap();
        assert_eq!(d.format, Format::CaddyJson);
        assert_eq!(d.score().map(|s| (s.parsed, s.filtered)), Some((1, 2)));
    }
}
