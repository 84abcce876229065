//! `edge-parser report`: read access logs once and aggregate them.
//!
//! A [`Report`] settles what to read ([`ReportConfig::inputs`]: files, quoted globs, `-` for
//! standard input; `.gz` decompressed), the format (given, or detected from the first
//! non-blank lines of the inputs, in reading order, past empty files and over-long lines) and
//! the order (several files are read as one stream in the order of their
//! first timestamp, so `access.log.2.gz access.log access.log.1` reads in time order), then
//! [`run`](Report::run)s the pipeline (a reader thread, parser threads, a merge in reading
//! order: results do not depend on the thread count) and returns the finished
//! [`Aggregate`]. The views of it (table, JSON document) are in [`crate::export`].
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::Format;
//! use vantage_edge::report::{Report, ReportConfig};
//!
//! # let dir = std::env::temp_dir().join(format!("vantage-report-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let log = dir.join("access.log");
//! std::fs::write(&log, "10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"-\" 1 \"a@docker\" \"http://10.0.0.7:80\" 3ms\n")?;
//! let report = Report::new(ReportConfig::new([log.display().to_string()]))?;
//! assert_eq!(report.format(), &Format::TraefikCommon);
//! let aggregate = report.run(&Default::default())?;
//! assert_eq!(aggregate.lines().parsed, 1);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::aggregate::{
    Aggregate, AggregateConfig, DEFAULT_MAX_GROUPS, Dimension, default_dimension,
};
use crate::export::terminal_safe;
use crate::format::{DetectError, Format, Parsed};
use crate::pipeline::Pipeline;
pub use crate::pipeline::Progress;
use crate::read::{Input, InputError, InputSpec, Sample, Source, expand, lines};
use crate::route::RouteRules;

/// How much of each file is searched for its first timestamp.
const ORDER_BYTES: usize = 256 << 10;

/// What to read and how to group it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportConfig {
    /// Files, glob patterns or `-`; standard input when empty.
    pub inputs: Vec<String>,
    /// The format, or `None` to detect it from the inputs' first lines.
    pub format: Option<Format>,
    /// The grouping; empty for the default (router for formats that log one, route otherwise).
    pub group_by: Vec<Dimension>,
    /// How request targets become routes.
    pub routes: RouteRules,
    /// Cap on the number of groups.
    pub max_groups: usize,
    /// Parser threads; `None` for one per core.
    pub threads: Option<usize>,
}

impl ReportConfig {
    /// The defaults for `inputs`: detected format, default grouping, automatic routes.
    pub fn new<I, S>(inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            inputs: inputs.into_iter().map(Into::into).collect(),
            format: None,
            group_by: Vec::new(),
            routes: RouteRules::auto(),
            max_groups: DEFAULT_MAX_GROUPS,
            threads: None,
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// An input cannot be found, opened or read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The format could not be detected.
    #[error(transparent)]
    Detect(#[from] DetectError),
}

/// A report ready to run: inputs found, format settled; see the [module docs](self).
#[derive(Debug)]
pub struct Report {
    sources: Vec<Source>,
    names: Vec<String>,
    config: AggregateConfig,
    pipeline: Pipeline,
}

impl Report {
    /// Finds the inputs, detects the format if none is given, orders the files by time.
    ///
    /// # Errors
    ///
    /// A malformed glob or one matching nothing, an input that cannot be opened or read, a
    /// format that cannot be detected.
    pub fn new(config: ReportConfig) -> Result<Self, ReportError> {
        let mut sources = Vec::new();
        for spec in expand(&config.inputs)? {
            let once = match &spec {
                InputSpec::Stdin => true,
                InputSpec::Path(path) => std::fs::metadata(path).is_ok_and(|m| !m.is_file()),
            };
            // Standard input, a pipe or a device can be read only once: opened now, so that
            // its first bytes can be looked at and are still read.
            sources.push(if once {
                Source::Open(Input::open(&spec, Default::default())?)
            } else {
                Source::Spec(spec)
            });
        }
        Self::from_sources(config, sources)
    }

    /// A report of one input already open, such as a log held in memory or a socket, named
    /// `name` (`config.inputs` is not looked at).
    ///
    /// # Errors
    ///
    /// The input cannot be read, or its format cannot be detected.
    pub fn from_reader(
        config: ReportConfig,
        name: &str,
        reader: Box<dyn std::io::Read + Send>,
    ) -> Result<Self, ReportError> {
        let input = Input::from_reader(name.to_owned(), None, reader, Default::default())?;
        Self::from_sources(config, vec![Source::Open(input)])
    }

    fn from_sources(config: ReportConfig, mut sources: Vec<Source>) -> Result<Self, ReportError> {
        let mut pipeline = Pipeline::default();
        if let Some(threads) = config.threads {
            pipeline.threads = threads.max(1);
        }
        let format = match config.format {
            Some(format) => format,
            None => detect_format(&mut sources, pipeline.max_line_bytes)?,
        };
        let sources = order_by_time(sources, &format)?;
        let mut aggregate = AggregateConfig::new(format);
        if !config.group_by.is_empty() {
            aggregate.group_by = config.group_by;
        }
        aggregate.routes = config.routes;
        aggregate.max_groups = config.max_groups.max(1);
        Ok(Self {
            names: sources.iter().map(Source::name).collect(),
            sources,
            config: aggregate,
            pipeline,
        })
    }

    /// The format the lines are read as.
    pub fn format(&self) -> &Format {
        &self.config.format
    }

    /// The inputs, in reading order.
    pub fn inputs(&self) -> &[String] {
        &self.names
    }

    /// The total size of the input files, 0 when unknown (for progress).
    pub fn total_bytes(&self) -> u64 {
        self.sources.iter().map(Source::size).sum()
    }

    /// Reads every input; `progress` advances as it goes.
    ///
    /// # Errors
    ///
    /// An input that cannot be opened or read, named in the error.
    pub fn run(self, progress: &Progress) -> Result<Aggregate, InputError> {
        self.pipeline.run(self.sources, &self.config, progress)
    }
}

/// Router for the formats that name one, route for the others: the grouping of a report
/// without `--by`.
pub fn default_group_by(format: &Format) -> Vec<Dimension> {
    vec![default_dimension(format)]
}

/// Detects the format from the inputs' first non-blank lines (see [`Sample`]).
fn detect_format(sources: &mut [Source], max_line: usize) -> Result<Format, ReportError> {
    let sample = Sample::take(sources, max_line)?;
    let detection = sample.detect()?;
    tracing::info!("{detection} (from {})", terminal_safe(&sample.inputs()));
    Ok(detection.format)
}

/// Puts file inputs in the order of the first timestamp each holds. Inputs read only once and
/// files without a readable timestamp keep their place at the end.
fn order_by_time(sources: Vec<Source>, format: &Format) -> Result<Vec<Source>, InputError> {
    if sources.len() < 2 {
        return Ok(sources);
    }
    let mut keyed = Vec::with_capacity(sources.len());
    for source in sources {
        let first = match &source {
            Source::Spec(InputSpec::Path(path)) if !path.as_os_str().is_empty() => {
                first_timestamp(&Input::head(path, ORDER_BYTES)?, format)
            }
            _ => None,
        };
        keyed.push((first.unwrap_or(i64::MAX), source));
    }
    keyed.sort_by_key(|(first, _)| *first);
    Ok(keyed.into_iter().map(|(_, source)| source).collect())
}

fn first_timestamp(head: &[u8], format: &Format) -> Option<i64> {
    lines(head).find_map(|line| match format.parse(line) {
        Ok(Parsed::Record(record)) => record.timestamp.map(|t| t.unix_nanos()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    fn traefik_line(second: u32) -> String {
        format!(
            "10.0.0.1 - - [09/Mar/2025:12:00:{second:02} +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"-\" 1 \"a\" \"http://10.0.0.7:80\" 1ms\n"
        )
    }

    #[test]
    fn files_are_read_in_the_order_of_their_first_timestamp() {
        let dir = TempDir::new("report-order");
        let late = dir.write("access.log", traefik_line(30));
        let early = dir.write("access.log.1", traefik_line(10));
        let empty = dir.write("empty.log", "");
        let ordered = order_by_time(
            [&empty, &late, &early]
                .map(|path| Source::Spec(InputSpec::Path(path.clone())))
                .into(),
            &Format::TraefikCommon,
        )
        .expect("reads");
        let names: Vec<String> = ordered.iter().map(Source::name).collect();
        assert_eq!(
            names,
            [&early, &late, &empty].map(|p| p.display().to_string())
        );
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let mut config = ReportConfig::new(["/nonexistent/access.log"]);
        config.format = Some(Format::TraefikCommon);
        let error = Report::new(config)
            .and_then(|report| Ok(report.run(&Progress::default())?))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot open /nonexistent/access.log: ")
        );
    }
}
