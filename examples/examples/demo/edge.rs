//! The edge half of the demo: `edge-parser report` on the bundled sample Traefik access log.

use std::io::Cursor;

use vantage_edge::export::{ReportMeta, ReportOptions, table};
use vantage_edge::format::Format;
use vantage_edge::report::{Report, ReportConfig, ReportError};

/// Ten minutes of a Traefik `common` access log in front of a small shop (made with
/// `edge-parser generate -n 30000 --rps 50 --malformed-rate 0.001 --seed 42 | gzip`).
const SAMPLE: &[u8] = include_bytes!("../../../edge-parser/data/traefik-sample.log.gz");
/// Where the sample lives in the repository, for the command to run it yourself.
pub(crate) const SAMPLE_PATH: &str = "edge-parser/data/traefik-sample.log.gz";

/// The report table of the sample, its eight busiest routers.
pub(crate) fn report() -> Result<String, ReportError> {
    let mut config = ReportConfig::new(Vec::<String>::new());
    config.format = Some(Format::TraefikCommon);
    let report = Report::from_reader(config, SAMPLE_PATH, Box::new(Cursor::new(SAMPLE)))?;
    let meta = ReportMeta {
        format: report.format().name().to_owned(),
        inputs: report.inputs().to_vec(),
    };
    let aggregate = report.run(&Default::default())?;
    let options = ReportOptions {
        top: Some(8),
        ..ReportOptions::default()
    };
    Ok(table::to_table(&aggregate, &meta, options))
}
