//! Writing a line in a format, the inverse of parsing: for the synthetic generator and tests.

use super::{Escape, LogFormat};

impl LogFormat {
    /// Writes one line in this format. For each variable, `value` writes the variable's
    /// unescaped value into the buffer it is given (writing nothing means "not set"); `render`
    /// escapes it per the format's [`Escape`] mode, and writes an unset value as nginx does.
    /// Used by the [synthetic generator](crate::synth) and tests.
    pub fn render(&self, out: &mut Vec<u8>, mut value: impl FnMut(&str, &mut Vec<u8>)) {
        let inner = &*self.inner;
        let mut scratch = Vec::new();
        out.extend_from_slice(&inner.leading);
        for field in &inner.fields {
            scratch.clear();
            value(&field.name, &mut scratch);
            if !scratch.is_empty() {
                escape_into(out, &scratch, inner.escape);
            } else if inner.escape != Escape::Json {
                out.push(b'-');
            }
            out.extend_from_slice(&field.then);
        }
    }
}

fn escape_into(out: &mut Vec<u8>, value: &[u8], escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    match escape {
        Escape::None => out.extend_from_slice(value),
        Escape::Default => {
            for &b in value {
                if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                    out.extend_from_slice(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
                } else {
                    out.push(b);
                }
            }
        }
        Escape::Json => {
            for &b in value {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0..0x20 => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]),
                    _ => out.push(b),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::nginx::COMBINED_REQUEST_TIME;
    use crate::format::test_helpers::text;

    #[test]
    fn render_then_parse_gives_the_values_back() {
        let format = LogFormat::compile(COMBINED_REQUEST_TIME).unwrap();
        let mut line = Vec::new();
        format.render(&mut line, |name, out| {
            let value: &[u8] = match name {
                "remote_addr" => b"10.0.0.1",
                "time_local" => b"09/Mar/2025:12:00:00 +0000",
                "request" => b"GET /\"\\ HTTP/1.1",
                "status" => b"200",
                "body_bytes_sent" => b"5",
                "http_user_agent" => "caf\u{e9}".as_bytes(),
                "request_time" => b"1.250",
                _ => b"",
            };
            out.extend_from_slice(value);
        });
        assert_eq!(
            String::from_utf8_lossy(&line),
            r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /\x22\x5C HTTP/1.1" 200 5 "-" "caf\xC3\xA9" 1.250"#
        );
        let r = format.parse(&line).unwrap();
        assert_eq!(text(&r.target), Some("/\"\\"));
        assert_eq!(r.duration_ns, Some(1_250_000_000));
    }
}
