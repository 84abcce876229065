use std::io::{self, Read};

use proptest::prelude::*;

use super::*;

/// What a reader hands out, in input order: `Ok(line)` or `Err((offset, prefix))`.
type Items = Vec<Result<String, (u64, Vec<u8>)>>;

/// A source that returns at most `step` bytes per read, as pipes and growing files do.
struct Trickle<'a> {
    data: &'a [u8],
    steps: Vec<usize>,
    next: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = self.steps[self.next % self.steps.len()].max(1);
        self.next += 1;
        let n = buf.len().min(step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads `data` to its end in fills of `target` bytes, checking each fill's offsets.
fn read_all(data: &[u8], target: usize, max_line: usize, steps: Vec<usize>) -> (Items, u64) {
    let mut source = Trickle {
        data,
        steps,
        next: 0,
    };
    let mut reader = LineReader::new(max_line, 0);
    let mut out = LineBuffer::default();
    let mut items = Vec::new();
    loop {
        let mut too_long = Vec::new();
        let start = reader.offset();
        let end = reader
            .fill(&mut source, &mut out, target, AtEnd::Finish, &mut too_long)
            .expect("in memory");
        let skipped: u64 = too_long
            .iter()
            .map(|line| line_len(data, line.offset))
            .sum();
        assert_eq!(reader.offset() - start, skipped + out.len() as u64);
        for line in too_long {
            items.push(Err((line.offset, line.prefix)));
        }
        for line in lines(out.as_slice()) {
            items.push(Ok(String::from_utf8_lossy(line).into_owned()));
        }
        if end {
            return (items, reader.offset());
        }
    }
}

/// The length of the line at `offset`, with its newline.
fn line_len(data: &[u8], offset: u64) -> u64 {
    let rest = &data[offset as usize..];
    memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1) as u64
}

/// What a correct reader hands out.
fn expected(data: &[u8], max_line: usize) -> Items {
    let mut items = Vec::new();
    let mut offset = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if text.len() > max_line {
            items.push(Err((
                offset,
                text[..text.len().min(TOO_LONG_PREFIX)].to_vec(),
            )));
        } else {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            items.push(Ok(String::from_utf8_lossy(text).into_owned()));
        }
        offset += line.len() as u64;
    }
    items
}

#[test]
fn fills_end_on_line_boundaries_whatever_their_size() {
    let data = b"alpha\nbeta\r\ngamma\n\ndelta";
    for target in [1, 3, 7, 64] {
        let (got, end) = read_all(data, target, 1024, vec![5]);
        assert_eq!(
            got,
            ["alpha", "beta", "gamma", "", "delta"].map(|l| Ok(l.to_owned())),
            "fills of {target}"
        );
        assert_eq!(end, data.len() as u64);
    }
}

#[test]
fn over_long_lines_are_reported_and_skipped() {
    let long = "x".repeat(5000);
    let data = format!("short\n{long}\nafter\n{long}");
    let (got, _) = read_all(data.as_bytes(), 64, 100, vec![usize::MAX]);
    assert_eq!(
        got,
        [
            Ok("short".to_owned()),
            Err((6, vec![b'x'; 256])),
            Ok("after".to_owned()),
            Err((5013, vec![b'x'; 256])),
        ]
    );
}

#[test]
fn over_long_lines_come_before_the_lines_of_their_fill_and_are_numbered_in_order() {
    let data = b"a\nbbbbbbbbbbbb\nc\nd\n";
    let mut reader = LineReader::new(4, 0);
    let mut source = &data[..];
    let mut out = LineBuffer::default();
    let mut numbered = Vec::new();
    let mut next = 1;
    loop {
        let mut too_long = Vec::new();
        let end = reader
            .fill(&mut source, &mut out, 1 << 10, AtEnd::Finish, &mut too_long)
            .expect("in memory");
        next += for_each_line(out.as_slice(), &too_long, next, |n, line| {
            numbered.push(match line {
                Line::Whole(text) => (n, String::from_utf8_lossy(text).into_owned()),
                Line::TooLong(prefix) => (n, format!("too long: {}", prefix.len())),
            });
        });
        if end {
            break;
        }
    }
    assert_eq!(
        numbered,
        [
            (1, "a".to_owned()),
            (2, "too long: 12".to_owned()),
            (3, "c".to_owned()),
            (4, "d".to_owned()),
        ]
    );
}

#[test]
fn a_followed_input_keeps_its_unfinished_line_until_the_newline_comes() {
    let mut reader = LineReader::new(10, 0);
    let mut out = LineBuffer::default();
    let mut too_long = Vec::new();
    let end = reader
        .fill(
            &mut &b"one\ntw"[..],
            &mut out,
            100,
            AtEnd::Wait,
            &mut too_long,
        )
        .expect("in memory");
    assert!(end);
    assert_eq!(
        (out.as_slice(), reader.offset(), reader.read_offset()),
        (&b"one\n"[..], 4, 6)
    );
    reader
        .fill(
            &mut &b"o\nthree-is-long"[..],
            &mut out,
            100,
            AtEnd::Wait,
            &mut too_long,
        )
        .expect("in memory");
    assert_eq!((out.as_slice(), reader.offset()), (&b"two\n"[..], 8));
    assert!(too_long.is_empty(), "still growing");
    reader
        .fill(
            &mut &b"er\nfour\n"[..],
            &mut out,
            100,
            AtEnd::Wait,
            &mut too_long,
        )
        .expect("in memory");
    assert_eq!(out.as_slice(), b"four\n");
    assert_eq!(
        too_long,
        [TooLong {
            offset: 8,
            prefix: b"three-is-longer".to_vec()
        }]
    );
    assert_eq!(reader.offset(), 8 + 16 + 5);
}

#[test]
fn a_buffer_is_zeroed_once_not_at_every_fill() {
    let mut out = LineBuffer::for_fills(16);
    out.extend(b"abc");
    out.clear();
    assert_eq!(out.spare(4), [b'a', b'b', b'c', 0]);
    assert_eq!(LineBuffer::from_vec(b"xy".to_vec()).into_vec(), b"xy");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the lines, fill size, line limit and read sizes: every line once, in order,
    /// the over-long ones reported with their offset and first bytes.
    #[test]
    fn every_line_is_handed_out_once_in_order(
        lines in prop::collection::vec(
            prop_oneof![
                3 => "[a-z\r]{0,12}",
                1 => "[x]{0,40}",
                1 => "[y]{200,600}",
            ],
            0..40,
        ),
        last_newline in any::<bool>(),
        target in 1usize..200,
        max_line in 1usize..64,
        steps in prop::collection::vec(1usize..100, 1..5),
    ) {
        let mut data = lines.join("\n");
        if last_newline && !data.is_empty() {
            data.push('\n');
        }
        let (got, end) = read_all(data.as_bytes(), target, max_line, steps);
        prop_assert_eq!(got, expected(data.as_bytes(), max_line));
        prop_assert_eq!(end, data.len() as u64);
    }
}

#[test]
fn splits_on_newlines_and_keeps_a_last_partial_line() {
    assert_eq!(lines(b"").count(), 0);
    assert_eq!(lines(b"a\n").collect::<Vec<_>>(), [b"a"]);
    assert_eq!(lines(b"\n").collect::<Vec<_>>(), [b""]);
    assert_eq!(
        lines(b"a\n\nbc").collect::<Vec<_>>(),
        [&b"a"[..], b"", b"bc"]
    );
    assert_eq!(lines(b"a\r\nb\r").collect::<Vec<_>>(), [b"a", b"b"]);
}
