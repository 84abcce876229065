//! Hand-written timestamp parsers for the layouts access logs use.
//!
//! Each parser takes exactly the bytes of one timestamp and validates every digit and the
//! calendar date, then computes the epoch with integer arithmetic (no allocation, no table, no
//! time-zone database). Offsets are applied; timestamps without a zone are taken as UTC.

use super::Timestamp;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i64;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub(crate) const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `Jan` … `Dec` to 1 … 12 (case-sensitive, as every proxy writes them).
pub(crate) const fn month_from_abbr(abbr: [u8; 3]) -> Option<u32> {
    Some(match &abbr {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

#[inline]
const fn digit(b: u8) -> Option<u32> {
    let d = b.wrapping_sub(b'0');
    if d < 10 { Some(d as u32) } else { None }
}

#[inline]
fn two(a: u8, b: u8) -> Option<u32> {
    Some(digit(a)? * 10 + digit(b)?)
}

#[inline]
fn four(a: u8, b: u8, c: u8, d: u8) -> Option<u32> {
    Some(two(a, b)? * 100 + two(c, d)?)
}

/// Validated civil time to a timestamp; `offset_secs` is the zone's offset east of UTC.
fn make(
    (year, month, day): (u32, u32, u32),
    (hour, minute, second): (u32, u32, u32),
    nanos: u32,
    offset_secs: i64,
) -> Option<Timestamp> {
    let year = i64::from(year);
    // Second 60 is a leap second, which some clocks print.
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    let nanos = secs
        .checked_mul(NANOS_PER_SEC)?
        .checked_add(i64::from(nanos))?;
    Some(Timestamp::from_unix_nanos(nanos))
}

/// `±hhmm` as seconds east of UTC.
fn offset_hhmm(sign: u8, h: u32, m: u32) -> Option<i64> {
    if h > 23 || m > 59 {
        return None;
    }
    let secs = i64::from(h * 3600 + m * 60);
    match sign {
        b'+' => Some(secs),
        b'-' => Some(-secs),
        _ => None,
    }
}

/// `(year, month, day)` or `(hour, minute, second)`.
type Triple = (u32, u32, u32);

/// The date and time of CLF without the zone: `10/Oct/2000:13:55:36` (exactly 20 bytes).
fn clf_date_time(text: &[u8]) -> Option<(Triple, Triple)> {
    let &[
        d0,
        d1,
        b'/',
        m0,
        m1,
        m2,
        b'/',
        y0,
        y1,
        y2,
        y3,
        b':',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
    ] = text
    else {
        return None;
    };
    Some((
        (
            four(y0, y1, y2, y3)?,
            month_from_abbr([m0, m1, m2])?,
            two(d0, d1)?,
        ),
        (two(h0, h1)?, two(i0, i1)?, two(s0, s1)?),
    ))
}

/// The length of a CLF timestamp.
const CLF_LEN: usize = 26;

/// The last CLF timestamp parsed on this thread and what it was: consecutive lines of a log
/// mostly share their second, and comparing 26 bytes costs less than parsing them.
#[derive(Clone, Copy)]
struct LastClf {
    text: [u8; CLF_LEN],
    parsed: Option<Timestamp>,
}

thread_local! {
    static LAST_CLF: std::cell::Cell<Option<LastClf>> = const { std::cell::Cell::new(None) };
}

/// CLF: `10/Oct/2000:13:55:36 -0700` (exactly 26 bytes).
pub(crate) fn parse_clf(text: &[u8]) -> Option<Timestamp> {
    let Ok(key) = <[u8; CLF_LEN]>::try_from(text) else {
        return parse_clf_text(text);
    };
    if let Some(last) = LAST_CLF.get()
        && last.text == key
    {
        return last.parsed;
    }
    let parsed = parse_clf_text(text);
    LAST_CLF.set(Some(LastClf { text: key, parsed }));
    parsed
}

fn parse_clf_text(text: &[u8]) -> Option<Timestamp> {
    let &[ref date @ .., b' ', sign, z0, z1, z2, z3] = text else {
        return None;
    };
    let (day, time) = clf_date_time(date)?;
    let offset = offset_hhmm(sign, two(z0, z1)?, two(z2, z3)?)?;
    make(day, time, 0, offset)
}

/// HAProxy `%tr`: `06/Feb/2009:12:14:14.655` (local time, no zone: taken as UTC). The
/// milliseconds are optional, as in HAProxy's older `%t`.
pub(crate) fn parse_clf_millis(text: &[u8]) -> Option<Timestamp> {
    let (date, millis) = match text {
        [date @ .., b'.', a, b, c] => (date, digit(*a)? * 100 + two(*b, *c)?),
        date => (date, 0),
    };
    let (day, time) = clf_date_time(date)?;
    make(day, time, millis * 1_000_000, 0)
}

/// ISO 8601 / RFC 3339 and their relatives: `2024-12-29T11:42:41.965891254Z`,
/// `2025-03-09T12:00:00+01:00`, `2025-03-09T12:00:00.000+0100`, `2006/01/02 15:04:05.000`.
///
/// The date separator is `-` or `/`, the time separator `T` or a space; the fraction has 1 to 9
/// digits (further digits are ignored); the zone is `Z`, `±hh:mm`, `±hhmm`, or absent (UTC).
pub(crate) fn parse_iso8601(text: &[u8]) -> Option<Timestamp> {
    let [
        y0,
        y1,
        y2,
        y3,
        ds0,
        mo0,
        mo1,
        ds1,
        d0,
        d1,
        sep,
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
        rest @ ..,
    ] = text
    else {
        return None;
    };
    if ds0 != ds1 || !matches!(ds0, b'-' | b'/') || !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (nanos, zone) = match rest {
        [b'.', frac @ ..] => {
            let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let mut nanos = 0;
            for (i, b) in frac.iter().take(9).enumerate() {
                if i < digits {
                    nanos = nanos * 10 + u32::from(b - b'0');
                }
            }
            for _ in digits..9 {
                nanos *= 10;
            }
            (nanos, &frac[digits..])
        }
        zone => (0, zone),
    };
    let offset = match *zone {
        [] | [b'Z' | b'z'] => 0,
        [sign, a, b, b':', c, d] | [sign, a, b, c, d] => offset_hhmm(sign, two(a, b)?, two(c, d)?)?,
        _ => return None,
    };
    make(
        (four(*y0, *y1, *y2, *y3)?, two(*mo0, *mo1)?, two(*d0, *d1)?),
        (two(*h0, *h1)?, two(*i0, *i1)?, two(*s0, *s1)?),
        nanos,
        offset,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(ts: Option<Timestamp>) -> Option<i64> {
        ts.map(Timestamp::unix_nanos)
    }

    #[test]
    fn day_count_round_trips_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2025, 3, 9), 20_156);
    }

    #[test]
    fn clf_applies_the_offset() {
        assert_eq!(
            nanos(parse_clf(b"09/Mar/2025:12:00:00 +0000")),
            Some(1_741_521_600_000_000_000)
        );
        // 14:00 at -09:00 is 23:00 UTC.
        assert_eq!(
            parse_clf(b"10/Nov/2009:14:00:00 -0900"),
            parse_clf(b"10/Nov/2009:23:00:00 +0000")
        );
        assert_eq!(
            nanos(parse_clf(b"10/Oct/2000:13:55:36 -0700")),
            Some(971_211_336_000_000_000)
        );
    }

    #[test]
    fn clf_rejects_impossible_dates_and_bad_shapes() {
        for bad in [
            &b"30/Feb/2025:12:00:00 +0000"[..],
            b"29/Feb/2025:12:00:00 +0000",
            b"09/Mrz/2025:12:00:00 +0000",
            b"09/Mar/2025:24:00:00 +0000",
            b"09/Mar/2025:12:00:00 +2400",
            b"09/Mar/2025:12:00:00 *0000",
            b"09/Mar/2025:12:00:00",
            b"9/Mar/2025:12:00:00 +0000 ",
            b"",
        ] {
            assert_eq!(parse_clf(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_clf(b"29/Feb/2024:12:00:00 +0000").is_some());
    }

    #[test]
    fn haproxy_time_has_optional_millis() {
        assert_eq!(
            nanos(parse_clf_millis(b"06/Feb/2009:12:14:14.655")),
            Some(1_233_922_454_655_000_000)
        );
        assert_eq!(
            nanos(parse_clf_millis(b"06/Feb/2009:12:14:14")),
            Some(1_233_922_454_000_000_000)
        );
        assert_eq!(parse_clf_millis(b"06/Feb/2009:12:14:14.65"), None);
    }

    #[test]
    fn iso8601_variants() {
        let base = 1_735_472_561_000_000_000;
        assert_eq!(
            nanos(parse_iso8601(b"2024-12-29T11:42:41.965891254Z")),
            Some(base + 965_891_254)
        );
        assert_eq!(
            nanos(parse_iso8601(b"2024-12-29T12:42:41.965891254+01:00")),
            Some(base + 965_891_254)
        );
        assert_eq!(
            nanos(parse_iso8601(b"2024-12-29T12:42:41.9+0100")),
            Some(base + 900_000_000)
        );
        assert_eq!(nanos(parse_iso8601(b"2024-12-29T11:42:41Z")), Some(base));
        assert_eq!(nanos(parse_iso8601(b"2024/12/29 11:42:41")), Some(base));
        assert_eq!(
            nanos(parse_iso8601(b"2024-12-29T11:42:41.1234567891Z")),
            Some(base + 123_456_789)
        );
        for bad in [
            &b"2024-12-29T11:42:41."[..],
            b"2024-12-29T11:42:41.Z",
            b"2024-12/29T11:42:41Z",
            b"2024-13-29T11:42:41Z",
            b"2024-12-29T11:42:41+01",
            b"2024-12-29X11:42:41Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn out_of_range_years_are_rejected_not_wrapped() {
        assert_eq!(parse_iso8601(b"9999-12-31T23:59:59Z"), None);
        assert!(parse_iso8601(b"2200-01-01T00:00:00Z").is_some());
    }
}
