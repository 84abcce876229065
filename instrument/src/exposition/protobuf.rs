//! The Prometheus protobuf exposition (`io.prometheus.client.MetricFamily`, length-delimited):
//! what a Prometheus with native histograms enabled asks for first. It is the text exposition
//! read back family by family, each histogram with its native buckets ([`NativeHistogram`])
//! beside its classic ones and its exemplars on the classic buckets, from [`Extras`].

use prost::Message;

use super::native::NativeHistogram;
use super::series::{Part, SeriesCursor};
use super::text::{Sample, samples};
use super::{Exemplar, Extras, SeriesExtras};

#[derive(Clone, PartialEq, Message)]
struct LabelPair {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
    #[prost(message, optional, tag = "3")]
    exemplar: Option<ExemplarMessage>,
}

#[derive(Clone, PartialEq, Message)]
struct ExemplarMessage {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(double, optional, tag = "2")]
    value: Option<f64>,
    #[prost(message, optional, tag = "3")]
    timestamp: Option<Timestamp>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

impl From<&Exemplar> for ExemplarMessage {
    fn from(exemplar: &Exemplar) -> Self {
        let seconds = exemplar.timestamp.floor();
        Self {
            label: vec![LabelPair {
                name: Some("trace_id".to_owned()),
                value: Some(exemplar.trace_id.to_string()),
            }],
            value: Some(exemplar.value),
            timestamp: Some(Timestamp {
                seconds: seconds as i64,
                nanos: ((exemplar.timestamp - seconds) * 1e9) as i32,
            }),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    zero_count: Option<u64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Value>,
    #[prost(message, optional, tag = "5")]
    untyped: Option<Value>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    kind: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

/// `MetricType` of metrics.proto.
fn kind_of(text: &str) -> i32 {
    match text {
        "counter" => 0,
        "gauge" => 1,
        "histogram" => 4,
        _ => 3,
    }
}

/// `text` (a text exposition: each family's `# HELP` and `# TYPE`, then its samples) as
/// length-delimited `MetricFamily` messages, each histogram with the native buckets and
/// exemplars `extras` has for its labels.
pub fn encode(text: &str, extras: &Extras) -> Vec<u8> {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut help: Option<String> = None;
    let mut cursor = SeriesCursor::default();
    let mut series: Option<&SeriesExtras> = None;
    for line in super::lines(text) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').map(|(_, text)| text.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            families.push(MetricFamily {
                name: Some(name.to_owned()),
                help: help.take(),
                kind: Some(kind_of(kind)),
                metric: Vec::new(),
            });
            cursor.reset();
        } else if !line.starts_with('#') {
            let Some(family) = families.last_mut() else {
                continue;
            };
            if family.kind == Some(HISTOGRAM) {
                add_histogram_line(family, line, &mut cursor, extras, &mut series);
            } else if let Some(Ok(sample)) = samples(line).next() {
                add_sample(family, &sample);
            }
        }
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    for family in &families {
        encode_family(family, &mut out);
    }
    out
}

/// One family, length-delimited: what `encode_length_delimited` writes, with each metric
/// encoded once (prost sizes a nested message at every level above it: a histogram's buckets
/// were sized four times).
fn encode_family(family: &MetricFamily, out: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let head = MetricFamily {
        name: family.name.clone(),
        help: family.help.clone(),
        kind: family.kind,
        metric: Vec::new(),
    };
    let mut body = head.encode_to_vec();
    let mut metric_bytes = Vec::new();
    for metric in &family.metric {
        metric_bytes.clear();
        // Writing into a Vec cannot fail.
        let _ = metric.encode(&mut metric_bytes);
        encode_key(4, WireType::LengthDelimited, &mut body);
        encode_varint(metric_bytes.len() as u64, &mut body);
        body.extend_from_slice(&metric_bytes);
    }
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(&body);
}

/// `MetricType::HISTOGRAM`.
const HISTOGRAM: i32 = 4;

fn label_pairs(sample: &Sample<'_>) -> Vec<LabelPair> {
    sample
        .labels
        .iter()
        .filter(|(label, _)| *label != "le")
        .map(|(label, value)| LabelPair {
            name: Some((*label).to_owned()),
            value: Some(value.to_string()),
        })
        .collect()
}

/// A counter, gauge or untyped sample: a metric of its own.
fn add_sample(family: &mut MetricFamily, sample: &Sample<'_>) {
    let value = Some(Value {
        value: Some(sample.value),
    });
    let mut metric = Metric {
        label: label_pairs(sample),
        ..Metric::default()
    };
    match family.kind {
        Some(0) => metric.counter = value,
        Some(1) => metric.gauge = value,
        _ => metric.untyped = value,
    }
    family.metric.push(metric);
}

/// A histogram's samples come as each series' buckets, then its sum and count: a new series
/// starts where the labels (but `le`) change, and takes its extras.
fn add_histogram_line<'e>(
    family: &mut MetricFamily,
    line: &str,
    cursor: &mut SeriesCursor,
    extras: &'e Extras,
    series: &mut Option<&'e SeriesExtras>,
) {
    let name = family.name.as_deref().unwrap_or("");
    let Some(read) = cursor.read(name, line) else {
        return;
    };
    if let Some(sample) = &read.new_series {
        let label = label_pairs(sample);
        let mut histogram = Histogram {
            bucket: Vec::with_capacity(16),
            ..Histogram::default()
        };
        *series = if extras.is_empty() {
            None
        } else {
            let labels = sample
                .labels
                .iter()
                .map(|(name, value)| (*name, value.as_ref()));
            extras.get(&(name.to_owned(), super::sorted_labels(labels)))
        };
        if let Some(native) = series.and_then(|series| series.native.as_ref()) {
            add_native(&mut histogram, native);
        }
        family.metric.push(Metric {
            label,
            histogram: Some(histogram),
            ..Metric::default()
        });
    }
    let Some(histogram) = family.metric.last_mut().and_then(|m| m.histogram.as_mut()) else {
        return;
    };
    match read.part {
        Part::Bucket(bound) => {
            let exemplar = series
                .and_then(|series| bucket_exemplar(series, bound))
                .map(ExemplarMessage::from);
            // The `+Inf` bucket is the count, and is written only to carry an exemplar.
            if bound.is_finite() || exemplar.is_some() {
                histogram.bucket.push(Bucket {
                    cumulative_count: Some(read.value as u64),
                    upper_bound: Some(bound),
                    exemplar,
                });
            }
        }
        Part::Sum => histogram.sample_sum = Some(read.value),
        Part::Count => histogram.sample_count = Some(read.value as u64),
        Part::Other => {}
    }
}

/// The exemplar the bucket of upper bound `le` carries. A histogram with native buckets carries
/// only its newest: Prometheus 2.42 takes one exemplar per native histogram and scrape, the
/// first it finds, which would otherwise be the lowest bucket's forever.
fn bucket_exemplar(series: &SeriesExtras, le: f64) -> Option<&Exemplar> {
    let exemplar = series.exemplar(le)?;
    let newest = series
        .exemplars
        .iter()
        .map(|(_, exemplar)| exemplar)
        .max_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    match (&series.native, newest) {
        (Some(_), Some(newest)) if !std::ptr::eq(newest, exemplar) => None,
        _ => Some(exemplar),
    }
}

fn add_native(histogram: &mut Histogram, native: &NativeHistogram) {
    histogram.schema = Some(native.schema);
    histogram.zero_threshold = Some(native.zero_threshold);
    histogram.zero_count = Some(native.zero_count);
    histogram.positive_span = native
        .spans
        .iter()
        .map(|&(offset, length)| BucketSpan {
            offset: Some(offset),
            length: Some(length),
        })
        .collect();
    histogram.positive_delta = native.deltas.clone();
}

#[cfg(test)]
mod tests;
