//! Low-level writers shared by the formats: formatted text, decimals, dates, JSON strings.

use std::fmt;

use crate::format::civil_from_days;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Writes formatted text into a byte buffer.
pub(in crate::synth) fn put(out: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_fmt(out, args);
}

/// `value / 10^scale` in decimal, with trailing fraction zeros (and a bare `.`) removed.
pub(in crate::synth) fn decimal(out: &mut Vec<u8>, value: u64, scale: u32) {
    let divisor = 10u64.pow(scale);
    let (whole, frac) = (value / divisor, value % divisor);
    put(out, format_args!("{whole}"));
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = scale as usize);
        put(out, format_args!(".{}", digits.trim_end_matches('0')));
    }
}

/// A UTC date and time of day.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

/// The UTC date and time of day of `secs` since the Unix epoch.
fn civil(secs: i64) -> Civil {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let day_secs = secs.rem_euclid(86_400);
    Civil {
        year,
        month,
        day,
        hour: day_secs / 3600,
        minute: day_secs / 60 % 60,
        second: day_secs % 60,
    }
}

/// `09/Mar/2025:12:00:00` (CLF without the zone).
pub(super) fn clf_date(out: &mut Vec<u8>, secs: i64) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02}",
            c.day,
            MONTHS[(c.month as usize + 11) % 12],
            c.year,
            c.hour,
            c.minute,
            c.second
        ),
    );
}

/// `2025-03-09T12:00:00`.
pub(super) fn iso_date(out: &mut Vec<u8>, secs: i64) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
    );
}

/// `Mar  9 12:00:00` (RFC 3164: the day padded with a space).
pub(super) fn syslog_date(out: &mut Vec<u8>, secs: i64) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[(c.month as usize + 11) % 12],
            c.day,
            c.hour,
            c.minute,
            c.second
        ),
    );
}

/// A JSON string; `html` escapes `<`, `>` and `&` as Go's encoder does by default.
pub(super) fn json_string(out: &mut Vec<u8>, value: &str, html: bool) {
    out.push(b'"');
    for b in value.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'<' | b'>' | b'&' if html => put(out, format_args!("\\u{b:04x}")),
            0..0x20 => put(out, format_args!("\\u{b:04x}")),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
