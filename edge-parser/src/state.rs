//! What `serve` persists: the [`EdgeState`] that the checkpoint holds beside the file positions
//! and that `/api/snapshot` downloads, its configuration [`fingerprint`] (log patterns
//! included), and the grouping `serve` uses ([`serve_config`]).
//!
//! The persisted form is its own versioned type (`v1`), written straight from the live state
//! without copying the histograms. The checkpoint envelope around it ([`Checkpoint`]) refuses a
//! file damaged or edited by hand by its checksum; the state is validated all the same when
//! read back, so that a file that passes (a checksum anyone can recompute, a version 1 file that
//! has none) is a state `serve` could have written, or is refused as corrupt naming the rule it
//! breaks:
//!
//! | what | rule |
//! | --- | --- |
//! | lines | total = parsed + malformed + filtered; the sequence (lines since the first start) = total |
//! | statuses | every count > 0; they add up to the parsed lines |
//! | groups | at most `max_groups` + 1 (the overflow group), counted before any is read; each key has one value per grouping dimension (at most 64 KiB each), appears once; their requests add up to the parsed lines, their status classes to the statuses' |
//! | a group | requests ≥ 1 = status classes summed = latency count + latency missing ≥ upstream latency count; first seen within the sequence; counts by method and code (required when `serve` counts them): known methods, each pair once, none zero, adding up to the requests and the status classes, and over all groups to the statuses |
//! | a histogram | indices ≤ the last there is (56 319), increasing; counts > 0 adding up to its count; minimum and maximum in the first and last counter; sum within what the counters allow |
//! | samples | at most the configured number and the malformed lines; in line order within the sequence; text ≤ 1 536 bytes, error ≤ 1 KiB |
//! | timestamps | both or neither, first ≤ last, none without a parsed line; a timeline counts at most the parsed lines |
//! | health | rotation kinds are known ones, each once |
//!
//! Reading allocates in proportion to the file's bytes, never to a number it holds: the file is
//! at most [`MAX_CHECKPOINT_BYTES`](crate::tail::MAX_CHECKPOINT_BYTES), lists stop at their
//! limit before the next element is built, a histogram index is checked before it sizes
//! anything, and no group is read before their number is known to be within the cap. The
//! largest state a checkpoint can hold is the largest the live state can reach.
//!
//! A change of this shape is a new `v2` module and a new envelope version
//! ([`CHECKPOINT_VERSION`](crate::tail::CHECKPOINT_VERSION)); files of a version this build
//! does not read are refused naming it.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::Format;
//! use vantage_edge::route::RouteRules;
//! use vantage_edge::state::{fingerprint, serve_config};
//!
//! let config = serve_config(Format::TraefikJson, RouteRules::auto(), 1000, None);
//! assert_eq!(
//!     fingerprint(&config, &["/var/log/traefik/*.log".to_owned()]),
//!     r#"format=traefik-json by=router,service logs=["/var/log/traefik/*.log"]"#
//! );
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, AggregateConfig, Dimension, default_dimension};
use crate::bounded;
use crate::format::Format;
use crate::route::RouteRules;
#[cfg(any(test, feature = "serve"))]
use crate::tail::FilePosition;
use crate::tail::{Checkpoint, CheckpointError, RotationKind};

/// Counters of edge-parser's own work, kept in the checkpoint so they never go backwards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Bytes read from the logs.
    pub bytes_read: u64,
    /// Rotations seen, by kind ([`RotationKind::as_str`]).
    #[serde(deserialize_with = "rotations")]
    pub rotations: BTreeMap<String, u64>,
    /// Checkpoints written.
    pub checkpoint_writes: u64,
    /// Checkpoint writes that failed.
    pub checkpoint_errors: u64,
    /// When the last checkpoint was written, unix seconds.
    pub checkpoint_last_success: Option<i64>,
}

/// The rotation counts of a [`Health`]: known kinds only, each once.
fn rotations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, u64>, D::Error> {
    let rotations: BTreeMap<String, u64> =
        bounded::map(deserializer, RotationKind::ALL.len(), "rotations")?;
    match rotations.keys().find(|kind| {
        !RotationKind::ALL
            .iter()
            .any(|known| known.as_str() == *kind)
    }) {
        Some(unknown) => Err(de::Error::custom(format!(
            "unknown rotation kind {unknown:?}"
        ))),
        None => Ok(rotations),
    }
}

/// What the checkpoint holds beside the file positions, and what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeState {
    /// The cumulative aggregate.
    pub aggregate: Aggregate,
    /// edge-parser's own counters.
    pub health: Health,
    /// Lines taken in since the first start: the order of first appearance of groups.
    pub sequence: u64,
}

/// A snapshot read back from a file: the state and the configuration it was made with.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The configuration fingerprint of the `serve` that wrote it (see [`fingerprint`]).
    pub config: String,
    /// The state.
    pub state: EdgeState,
}

/// How `serve` groups: by `group_by`, or by default by router (route for formats that log no
/// router) and service, counting requests per method and status code for
/// `edge_requests_total{method, code}`, and without a per-second timeline (it runs for months).
pub fn serve_config(
    format: Format,
    routes: RouteRules,
    max_groups: usize,
    group_by: Option<Vec<Dimension>>,
) -> AggregateConfig {
    let group_by = group_by.unwrap_or_else(|| vec![default_dimension(&format), Dimension::Service]);
    let mut config = AggregateConfig::new(format);
    config.group_by = group_by;
    config.routes = routes;
    config.max_groups = max_groups.max(1);
    config.count_codes = true;
    config.timeline = false;
    config
}

/// What a checkpoint's counters and positions mean: the configuration `config` of the logs
/// named by `patterns` (`--log`, in any order). Resuming one made with another format,
/// grouping or routes would mix different things under the same names; one made for other
/// logs would follow their files again and count them as these.
pub fn fingerprint(config: &AggregateConfig, patterns: &[String]) -> String {
    let group_by: Vec<&str> = config.group_by.iter().map(|d| d.name()).collect();
    let mut fingerprint = format!("format={} by={}", config.format.name(), group_by.join(","));
    if let Some(log_format) = config.format.log_format() {
        fingerprint.push_str(&format!(" log_format={:?}", log_format.source()));
    }
    let routes: Vec<&str> = config.routes.templates().collect();
    if !routes.is_empty() {
        fingerprint.push_str(&format!(" routes={}", routes.join(",")));
    }
    if let Some(prefix) = config.routes.strip_prefix() {
        fingerprint.push_str(&format!(" strip_prefix={prefix}"));
    }
    let mut logs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    logs.sort_unstable();
    logs.dedup();
    fingerprint.push_str(&format!(" logs={logs:?}"));
    fingerprint
}

/// What a persisted state may hold; past these it is refused, before it is allocated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Groups, the overflow group included.
    groups: usize,
    /// Malformed samples.
    samples: usize,
    /// Whether every group must count its requests by method and code.
    codes: bool,
}

/// Groups of a snapshot shown whatever configuration made it.
const MAX_SHOWN_GROUPS: usize = 1 << 20;

impl Limits {
    /// What `serve` with `config` can have written: its group cap and the overflow group, its
    /// samples, its counts by code.
    #[cfg(any(test, feature = "serve"))]
    fn of(config: &AggregateConfig) -> Self {
        Self {
            groups: config.max_groups.saturating_add(1),
            samples: config.malformed_samples,
            codes: config.count_codes,
        }
    }

    /// For a snapshot shown whatever configuration made it.
    const SHOWN: Self = Self {
        groups: MAX_SHOWN_GROUPS,
        samples: usize::MAX,
        codes: false,
    };
}

/// Reads a snapshot saved from `/api/snapshot` (or a checkpoint), whatever configuration it
/// was made with, to show it.
///
/// # Errors
///
/// A file that is missing, unreadable, not a checkpoint, of another format version, or whose
/// state is corrupt.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, CheckpointError> {
    let checkpoint = Checkpoint::read_any_with(path, |state| v1::parse(state, Limits::SHOWN))?;
    Ok(Snapshot {
        state: checkpoint.state,
        config: checkpoint.config,
    })
}

/// The state and positions of the checkpoint at `path` made for `config` and the logs
/// `patterns`; `None` when there is none (a first start).
#[cfg(any(test, feature = "serve"))]
pub(crate) fn restore(
    path: &Path,
    config: &AggregateConfig,
    patterns: &[String],
) -> Result<Option<(EdgeState, Vec<FilePosition>)>, CheckpointError> {
    let limits = Limits::of(config);
    let Some(checkpoint) = Checkpoint::read_with(path, &fingerprint(config, patterns), |state| {
        v1::parse(state, limits)
    })?
    else {
        return Ok(None);
    };
    let state = checkpoint.state;
    if state.aggregate.group_by() != config.group_by {
        return Err(CheckpointError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "its state is grouped by {:?}, its configuration says {:?}",
                state.aggregate.group_by(),
                config.group_by
            ),
        });
    }
    Ok(Some((state, checkpoint.files)))
}

/// The persisted form of the state, in the version this build writes.
#[cfg(any(test, feature = "serve"))]
pub(crate) type Persisted<'a> = v1::State<'a>;

/// The checkpoint of the live state, borrowing it (the histograms are not copied).
#[cfg(any(test, feature = "serve"))]
pub(crate) fn checkpoint<'a>(
    config: String,
    files: Vec<FilePosition>,
    aggregate: &'a Aggregate,
    health: &'a Health,
    sequence: u64,
) -> Checkpoint<Persisted<'a>> {
    Checkpoint {
        config,
        files,
        state: v1::State::of(aggregate, health, sequence),
    }
}

mod v1;

#[cfg(test)]
pub(crate) mod tests;
