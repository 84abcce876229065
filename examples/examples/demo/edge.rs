//! The edge half of the demo: `edge-parser report` on the bundled sample Traefik access log.

use std::io::Cursor;
use std::sync::Arc;

use vantage_edge::aggregate::AggregateConfig;
use vantage_edge::format::Format;
use vantage_edge::input::{Input, InputError, Source};
use vantage_edge::pipeline::{Pipeline, Progress};
use vantage_edge::report::{self, ReportMeta, ReportOptions};

/// Ten minutes of a Traefik `common` access log in front of a small shop (made with
/// `edge-parser generate -n 30000 --rps 50 --malformed-rate 0.001 --seed 42 | gzip`).
const SAMPLE: &[u8] = include_bytes!("../../../edge-parser/data/traefik-sample.log.gz");
/// Where the sample lives in the repository, for the command to run it yourself.
pub(crate) const SAMPLE_PATH: &str = "edge-parser/data/traefik-sample.log.gz";

/// The report table of the sample, its eight busiest routers.
pub(crate) fn report() -> Result<String, InputError> {
    let input = Input::from_reader(
        SAMPLE_PATH.to_owned(),
        Some(SAMPLE.len() as u64),
        Box::new(Cursor::new(SAMPLE)),
        Arc::default(),
    )?;
    let config = AggregateConfig::new(Format::TraefikCommon);
    let aggregate =
        Pipeline::default().run(vec![Source::Open(input)], &config, &Progress::default())?;
    let meta = ReportMeta {
        format: Format::TraefikCommon.name().to_owned(),
        inputs: vec![SAMPLE_PATH.to_owned()],
    };
    let options = ReportOptions {
        top: Some(8),
        ..ReportOptions::default()
    };
    Ok(report::to_table(&aggregate, &meta, options))
}
