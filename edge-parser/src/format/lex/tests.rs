use super::*;

fn ns(text: &str, scale: i32) -> Option<Option<u64>> {
    parse_duration(text.as_bytes(), scale)
}

#[test]
fn decimals_scale_exactly() {
    assert_eq!(ns("0.003550188", 9), Some(Some(3_550_188)));
    assert_eq!(ns("0.123", 9), Some(Some(123_000_000)));
    assert_eq!(ns("12.345", 9), Some(Some(12_345_000_000)));
    assert_eq!(ns("6.0123e-05", 9), Some(Some(60_123)));
    assert_eq!(ns("2E-5", 9), Some(Some(20_000)));
    assert_eq!(ns("1e+2", 0), Some(Some(100)));
    assert_eq!(ns("30", 9), Some(Some(30_000_000_000)));
    assert_eq!(ns("8764859", 0), Some(Some(8_764_859)));
    assert_eq!(ns("1.5", 6), Some(Some(1_500_000)));
    // Rounded half up past nanoseconds.
    assert_eq!(ns("0.0000000015", 9), Some(Some(2)));
    assert_eq!(ns("0.0000000014", 9), Some(Some(1)));
    assert_eq!(
        ns("1726651920.3685553", 9),
        Some(Some(1_726_651_920_368_555_300))
    );
}

#[test]
fn negative_and_dash_durations_are_missing() {
    assert_eq!(ns("-1", 6), Some(None));
    assert_eq!(ns("-", 9), Some(None));
    assert_eq!(ns("-0", 9), Some(Some(0)));
    assert_eq!(ns("0", 9), Some(Some(0)));
}

#[test]
fn malformed_decimals_are_rejected() {
    for bad in [
        "", ".5", "5.", "1e", "1e+", "--1", "1.2.3", "0x10", "1 ", "+1", "NaN",
    ] {
        assert_eq!(ns(bad, 9), None, "{bad}");
    }
    assert_eq!(ns("1e30", 9), None);
    assert_eq!(ns("1e-30", 9), Some(Some(0)));
    assert_eq!(ns("99999999999999999999999", 0), None);
}

#[test]
fn integers_and_statuses() {
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(b"18446744073709551616"), None);
    assert_eq!(parse_u64(b""), None);
    assert_eq!(parse_u64(b"1a"), None);
    assert_eq!(parse_status(b"200"), Some(Status::new(200)));
    assert_eq!(parse_status(b"-1"), Some(Status::new(-1)));
    assert_eq!(parse_status(b"0"), Some(Status::new(0)));
    assert_eq!(parse_status(b"40000"), None);
    assert_eq!(parse_status(b"-"), None);
    assert_eq!(dash_or(b"-", parse_status), Some(None));
}

#[test]
fn lenient_request_lines() {
    let r = split_request_lenient(b"GET /a b HTTP/1.1").unwrap();
    assert_eq!(r.method, Some(&b"GET"[..]));
    assert_eq!(r.target, Some(&b"/a b"[..]));
    assert_eq!(r.protocol, Some(&b"HTTP/1.1"[..]));
    let r = split_request_lenient(b"GET /").unwrap();
    assert_eq!((r.target, r.protocol), (Some(&b"/"[..]), None));
    assert_eq!(split_request_lenient(b"-"), Some(RequestLine::default()));
    assert_eq!(split_request_lenient(b"\\x16\\x03\\x01"), None);
    assert_eq!(split_request_lenient(b"G\"T /"), None);
}

#[test]
fn strict_request_lines() {
    let r = split_request_strict(b"- - -").unwrap();
    assert_eq!(r, RequestLine::default());
    assert!(split_request_strict(b"GET /a b HTTP/1.1").is_none());
    assert!(split_request_strict(b"GET /a").is_none());
    let r = split_request_strict(b"GET /foo http").unwrap();
    assert_eq!(r.protocol, Some(&b"http"[..]));
}

#[test]
fn unescapers_borrow_unless_needed() {
    assert!(matches!(unescape_nginx(b"plain"), Cow::Borrowed(_)));
    assert_eq!(
        &*unescape_nginx(br"a \x22q\x22 \x5Cy \xZZ \x4"),
        &b"a \"q\" \\y \\xZZ \\x4"[..]
    );
    assert_eq!(&*unescape_haproxy(b"/a#20b#2"), &b"/a b#2"[..]);
    assert_eq!(&*unescape_quote(br#"foo \" bar\"#), &b"foo \" bar\\"[..]);
    assert_eq!(
        unescape_json(br#"a\"b\\c\/\u00e9\ud83d\ude00\n"#).as_deref(),
        Ok("a\"b\\c/é😀\n".as_bytes())
    );
    assert_eq!(unescape_json(br"\q"), Err(0));
    assert_eq!(unescape_json(br"ab\ud800x"), Err(8));
    assert_eq!(unescape_json(br"\u12"), Err(0));
    assert_eq!(unescape_json(b"\\"), Err(0));
}

#[test]
fn find_byte_scans_inline_then_with_memchr() {
    for len in 0..40 {
        for at in 0..len {
            let mut bytes = vec![b'a'; len];
            bytes[at] = b' ';
            assert_eq!(find_byte(&bytes, b' '), Some(at));
        }
        assert_eq!(find_byte(&vec![b'a'; len], b' '), None);
    }
}

#[test]
fn cursor_reports_truncation_and_syntax() {
    let mut c = Cursor::new(b"ab");
    assert_eq!(
        c.tag(b"abc", "x"),
        Err(ParseError::new(ErrorKind::Truncated, 2))
    );
    let mut c = Cursor::new(b"ax");
    assert_eq!(
        c.tag(b"ab", "'b'"),
        Err(ParseError::new(ErrorKind::Syntax { expected: "'b'" }, 1))
    );
    let mut c = Cursor::new(b"abc def");
    assert_eq!(c.token(), b"abc");
    assert_eq!(c.until(b'f'), Ok(&b" de"[..]));
    assert_eq!(c.until(b'z'), Err(ParseError::new(ErrorKind::Truncated, 7)));
}
