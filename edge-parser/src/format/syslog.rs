//! Syslog headers in front of a message, as files written by rsyslog / syslog-ng and syslog
//! listeners show them.
//!
//! Accepted (nom parsers):
//!
//! - RFC 3164: `[<PRI>][TIMESTAMP ][HOSTNAME ]TAG[PID]: MSG`, where TIMESTAMP is
//!   `Mmm dd hh:mm:ss` (day space-padded) or RFC 3339 (rsyslog's high-precision file format).
//!   `haproxy[14389]: MSG` alone is accepted (HAProxy's manual shows it); when a priority or a
//!   timestamp is present the tag may be missing and the program is empty.
//! - RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`; the program is the
//!   APP-NAME (`-` is empty).

use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_till1, take_while_m_n, take_while1};
use nom::character::complete::char;
use nom::combinator::{opt, recognize, verify};
use nom::sequence::{delimited, terminated};
use nom::{IResult, Parser};

use super::time::{month_from_abbr, parse_iso8601};
use super::{ErrorKind, ParseError};

/// A parsed syslog header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// The tag or APP-NAME, without the pid (`haproxy`); empty when absent.
    pub(crate) program: &'a [u8],
    /// Offset of the message in the line.
    pub(crate) message: usize,
}

type Res<'a, T> = IResult<&'a [u8], T>;

fn is_space(b: u8) -> bool {
    b == b' '
}

fn pri(i: &[u8]) -> Res<'_, &[u8]> {
    delimited(
        char('<'),
        take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()),
        char('>'),
    )
    .parse(i)
}

/// `Mmm dd hh:mm:ss`, day space-padded (`Feb  6`).
fn bsd_timestamp(i: &[u8]) -> Res<'_, &[u8]> {
    let two_digits = || take_while_m_n(2, 2, |b: u8| b.is_ascii_digit());
    recognize((
        verify(take(3usize), |m: &[u8]| {
            <[u8; 3]>::try_from(m)
                .ok()
                .and_then(month_from_abbr)
                .is_some()
        }),
        char(' '),
        alt((
            two_digits(),
            recognize((char(' '), take_while_m_n(1, 1, |b: u8| b.is_ascii_digit()))),
        )),
        char(' '),
        two_digits(),
        char(':'),
        two_digits(),
        char(':'),
        two_digits(),
    ))
    .parse(i)
}

fn iso_timestamp(i: &[u8]) -> Res<'_, &[u8]> {
    verify(take_till1(is_space), |t: &[u8]| parse_iso8601(t).is_some()).parse(i)
}

/// `name[pid]: ` or `name: `; returns the name.
fn tag_field(i: &[u8]) -> Res<'_, &[u8]> {
    terminated(
        take_while1(|b: u8| b != b' ' && b != b'[' && b != b':'),
        (
            opt(delimited(
                char('['),
                take_till1(|b| b == b']' || b == b' '),
                char(']'),
            )),
            char(':'),
            alt((tag(&b" "[..]), nom::combinator::eof)),
        ),
    )
    .parse(i)
}

fn hostname(i: &[u8]) -> Res<'_, &[u8]> {
    terminated(take_till1(is_space), char(' ')).parse(i)
}

/// Hostname and tag, or tag only.
fn host_and_tag(i: &[u8]) -> Res<'_, &[u8]> {
    alt(((hostname, tag_field).map(|(_, program)| program), tag_field)).parse(i)
}

fn rfc3164(i: &[u8]) -> Res<'_, &[u8]> {
    let (i, pri) = opt(pri).parse(i)?;
    let (i, timestamp) =
        opt(terminated(alt((bsd_timestamp, iso_timestamp)), char(' '))).parse(i)?;
    if pri.is_none() && timestamp.is_none() {
        return tag_field(i);
    }
    alt((host_and_tag, opt(hostname).map(|_| &b""[..]))).parse(i)
}

fn fail(at: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(at, nom::error::ErrorKind::Verify))
}

/// RFC 5424 structured data: `-` or one or more `[id k="v" ...]` (`\"`, `\]`, `\\` escaped).
fn structured_data(i: &[u8]) -> Res<'_, ()> {
    if let [b'-', rest @ ..] = i {
        return Ok((rest, ()));
    }
    let mut pos = 0;
    while i.get(pos) == Some(&b'[') {
        pos += 1;
        let mut quoted = false;
        loop {
            match i.get(pos) {
                None => return Err(fail(&i[i.len()..])),
                Some(b'\\') if quoted => pos += 2,
                Some(b'"') => {
                    quoted = !quoted;
                    pos += 1;
                }
                Some(b']') if !quoted => {
                    pos += 1;
                    break;
                }
                Some(_) => pos += 1,
            }
        }
    }
    if pos == 0 {
        return Err(fail(i));
    }
    Ok((i.get(pos..).unwrap_or_default(), ()))
}

fn rfc5424(i: &[u8]) -> Res<'_, &[u8]> {
    let field = || terminated(take_till1(is_space), char(' '));
    let (i, (_, _, _, _, app, _, _)) = (
        pri,
        tag(&b"1 "[..]),
        field(),
        field(),
        field(),
        field(),
        field(),
    )
        .parse(i)?;
    let (i, ()) = structured_data(i)?;
    let (i, _) = alt((tag(&b" "[..]), nom::combinator::eof)).parse(i)?;
    Ok((i, if app == b"-" { &b""[..] } else { app }))
}

/// Splits the syslog header off `line`.
pub(crate) fn parse_header(line: &[u8]) -> Result<Header<'_>, ParseError> {
    match alt((rfc5424, rfc3164)).parse(line) {
        Ok((rest, program)) => Ok(Header {
            program,
            message: line.len() - rest.len(),
        }),
        Err(_) => Err(ParseError::new(
            if line.len() < 16 {
                ErrorKind::Truncated
            } else {
                ErrorKind::Syntax {
                    expected: "a syslog header",
                }
            },
            0,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<(&str, &str), ParseError> {
        let header = parse_header(line.as_bytes())?;
        Ok((
            std::str::from_utf8(header.program).unwrap(),
            &line[header.message..],
        ))
    }

    #[test]
    fn rfc3164_forms() {
        assert_eq!(
            split("Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb"),
            Ok(("haproxy", "10.0.1.2:33317 [06/Feb"))
        );
        assert_eq!(
            split("Mar 19 12:00:00 lb1 haproxy: msg"),
            Ok(("haproxy", "msg"))
        );
        assert_eq!(
            split("haproxy[14389]: 10.0.1.2:1 [x"),
            Ok(("haproxy", "10.0.1.2:1 [x"))
        );
        assert_eq!(
            split("<134>Feb  6 12:14:14 haproxy[1]: m"),
            Ok(("haproxy", "m"))
        );
        assert_eq!(
            split("2025-03-09T12:00:00.123456+00:00 lb1 systemd[1]: Started x."),
            Ok(("systemd", "Started x."))
        );
        assert_eq!(
            split("Mar  9 12:00:00 lb1 no tag here"),
            Ok(("", "no tag here"))
        );
    }

    #[test]
    fn rfc5424_form() {
        assert_eq!(
            split(
                "<134>1 2024-06-20T11:47:56.817934+02:00 - haproxy 266980 - - 127.0.0.1:50516 [20/Jun"
            ),
            Ok(("haproxy", "127.0.0.1:50516 [20/Jun"))
        );
        assert_eq!(
            split(r#"<134>1 2024-06-20T11:47:56Z h app 1 ID [ex@1 a="x\"]y"][b@2] msg"#),
            Ok(("app", "msg"))
        );
        assert_eq!(split("<134>1 - - - - - -"), Ok(("", "")));
    }

    #[test]
    fn lines_without_a_header_are_refused() {
        for line in [
            "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200",
            "[WARNING] 067/120000 (8) : Server be_orders/orders2 is DOWN",
            "Fob  6 12:14:14 localhost haproxy[1]: x",
            "",
        ] {
            assert!(parse_header(line.as_bytes()).is_err(), "{line}");
        }
    }
}
