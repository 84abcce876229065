//! The ground truth: the [`Record`] a correct parser returns for a generated request's line in
//! each format.

use std::borrow::Cow;

use super::NANOS_PER_MILLI;
use super::names::{haproxy_backend, ingress_upstream};
use super::request::Request;
use super::write::{HEADER_BYTES, answered, decoded_path, end_ns, ms};
use crate::format::{Format, LogFormat, Record, RecordField, Status, Timestamp};

fn text(value: &str) -> Option<Cow<'_, [u8]>> {
    Some(Cow::Borrowed(value.as_bytes()))
}

fn millis_ns(ns: u64) -> u64 {
    ms(ns) * NANOS_PER_MILLI
}

impl Request {
    /// The record a correct parser of `format` returns for this request's line: the fields
    /// the format logs, at its resolution (whole seconds or milliseconds for timestamps and
    /// durations where it truncates) and in its vocabulary (see the [module docs](crate::synth)).
    #[must_use]
    pub fn expected(&self, format: &Format) -> Record<'_> {
        let base = Record {
            method: text(self.method),
            target: text(&self.target),
            protocol: text(self.version.as_str()),
            status: Some(Status::new(self.status)),
            bytes_sent: Some(self.bytes_sent),
            ..Record::default()
        };
        let start = self.start;
        let end = Timestamp::from_unix_nanos(i64::try_from(end_ns(self)).unwrap_or(i64::MAX));
        let millis = |t: Timestamp| {
            Timestamp::from_unix_nanos(t.unix_nanos() - i64::from(t.subsec_nanos() % 1_000_000))
        };
        match format {
            Format::TraefikCommon => Record {
                timestamp: Some(Timestamp::from_unix_secs(start.unix_secs())),
                duration_ns: Some(millis_ns(self.duration_ns)),
                router: self.router.as_deref().and_then(text),
                ..base
            },
            Format::TraefikJson => Record {
                timestamp: Some(start),
                duration_ns: Some(self.duration_ns),
                upstream_duration_ns: (!self.attempts.is_empty())
                    .then(|| self.attempts.iter().map(|a| a.duration_ns).sum()),
                upstream_status: self.attempts.last().and_then(|a| a.status).map(Status::new),
                upstream_attempts: Some(u16::try_from(self.attempts.len()).unwrap_or(u16::MAX)),
                router: self.router.as_deref().and_then(text),
                service: self
                    .service
                    .as_deref()
                    .filter(|_| !self.attempts.is_empty())
                    .and_then(text),
                host: text(&self.host),
                ..base
            },
            Format::Envoy => Record {
                timestamp: Some(millis(start)),
                protocol: text(self.version.as_envoy_str()),
                status: Some(Status::new(if self.status == 499 {
                    0
                } else {
                    self.status
                })),
                duration_ns: Some(millis_ns(self.duration_ns)),
                upstream_duration_ns: answered(self).map(|a| millis_ns(a.duration_ns)),
                host: text(&self.host),
                ..base
            },
            Format::Haproxy | Format::HaproxySyslog => Record {
                timestamp: Some(millis(start)),
                status: Some(Status::new(if self.status == 499 {
                    -1
                } else {
                    self.status
                })),
                duration_ns: Some(millis_ns(self.duration_ns)),
                upstream_duration_ns: answered(self).map(|a| millis_ns(a.duration_ns)),
                router: Some(Cow::Owned(haproxy_backend(self).into_bytes())),
                ..base
            },
            Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis => Record {
                timestamp: Some(end),
                duration_ns: Some(self.duration_ns),
                host: text(&self.host),
                ..base
            },
            other => match other.log_format() {
                Some(log_format) => self.expected_nginx(log_format, base, end),
                None => base,
            },
        }
    }

    fn expected_nginx<'a>(
        &'a self,
        format: &LogFormat,
        base: Record<'a>,
        end: Timestamp,
    ) -> Record<'a> {
        let by = |field| format.filled_by(field);
        let upstream_ns: u64 = self.attempts.iter().map(|a| millis_ns(a.duration_ns)).sum();
        Record {
            timestamp: by(RecordField::Timestamp).map(|var| match var {
                "msec" => Timestamp::from_unix_nanos(
                    end.unix_nanos() - i64::from(end.subsec_nanos() % 1_000_000),
                ),
                _ => Timestamp::from_unix_secs(end.unix_secs()),
            }),
            method: by(RecordField::Method).and(base.method),
            target: by(RecordField::Target).and_then(|var| match var {
                "uri" | "document_uri" => Some(Cow::Owned(decoded_path(&self.target))),
                _ => base.target,
            }),
            protocol: by(RecordField::Protocol).and(base.protocol),
            status: by(RecordField::Status).and(base.status),
            bytes_sent: by(RecordField::BytesSent).map(|var| match var {
                "bytes_sent" => self.bytes_sent + HEADER_BYTES,
                _ => self.bytes_sent,
            }),
            duration_ns: by(RecordField::Duration).map(|_| millis_ns(self.duration_ns)),
            upstream_duration_ns: by(RecordField::UpstreamDuration)
                .filter(|_| !self.attempts.is_empty())
                .map(|_| upstream_ns),
            upstream_attempts: by(RecordField::UpstreamStatus).map(|_| {
                let attempts = u16::try_from(self.attempts.len()).unwrap_or(u16::MAX);
                // A lone attempt without a response is written `-`, as no attempt is: only an
                // upstream time tells them apart.
                let unanswered = self.attempts.len() == 1 && self.attempts[0].status.is_none();
                if unanswered && by(RecordField::UpstreamDuration).is_none() {
                    0
                } else {
                    attempts
                }
            }),
            upstream_status: by(RecordField::UpstreamStatus)
                .and_then(|_| self.attempts.iter().rev().find_map(|a| a.status))
                .map(Status::new),
            router: by(RecordField::Router)
                .map(|_| Cow::Owned(ingress_upstream(self).into_bytes())),
            service: None,
            host: by(RecordField::Host).and_then(|_| text(&self.host)),
            trace_id: None,
        }
    }
}
