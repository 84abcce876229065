//! nginx's `$upstream_*` lists: `, ` between attempts within one upstream group (retries,
//! `proxy_next_upstream`), ` : ` between groups after an internal redirect (`X-Accel-Redirect`,
//! `error_page`), an element `-` for an attempt that got no response.
//!
//! The lists contain spaces, so their extent is found by this grammar, not by splitting on
//! spaces. A duration list is read as the **sum** of its numeric elements (all the time spent
//! waiting on upstreams), a status list as its **last numeric** element (the response that was
//! used); see [`ingress_nginx`](crate::format::ingress_nginx) for the format that logs them all.

use crate::format::Status;
use crate::format::lex::{parse_duration, parse_status};

/// Length of the `, ` / ` : `-separated list at the start of `rest`: elements are runs of
/// bytes other than space and comma.
pub(crate) fn list_extent(rest: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        pos += rest[pos..]
            .iter()
            .position(|&b| b == b' ' || b == b',')
            .unwrap_or(rest.len() - pos);
        let tail = &rest[pos..];
        if tail.starts_with(b", ") {
            pos += 2;
        } else if tail.starts_with(b" : ") {
            pos += 3;
        } else {
            return pos;
        }
    }
}

/// The elements of a list; `None` for an empty element.
fn elements(list: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        let current = rest?;
        let end = current
            .iter()
            .position(|&b| b == b' ' || b == b',')
            .unwrap_or(current.len());
        let (element, tail) = current.split_at(end);
        rest = tail
            .strip_prefix(b", ")
            .or_else(|| tail.strip_prefix(b" : "));
        // Anything else after an element is not a list.
        let valid = !element.is_empty() && (rest.is_some() || tail.is_empty());
        Some(valid.then_some(element))
    })
}

/// Sum of the numeric elements of a seconds list, as nanoseconds: `Some(None)` when none is
/// numeric, `None` when an element is neither a number nor `-`.
pub(crate) fn sum_seconds(list: &[u8]) -> Option<Option<u64>> {
    let mut sum: Option<u64> = None;
    for element in elements(list) {
        if let Some(ns) = parse_duration(element?, 9)? {
            sum = Some(sum.unwrap_or(0).checked_add(ns)?);
        }
    }
    Some(sum)
}

/// The last numeric element of a status list: `Some(None)` when none is numeric, `None` when
/// an element is neither a status nor `-`.
pub(crate) fn last_status(list: &[u8]) -> Option<Option<Status>> {
    let mut last = None;
    for element in elements(list) {
        let element = element?;
        if element != b"-" {
            last = Some(parse_status(element)?);
        }
    }
    Some(last)
}

/// How many attempts a status list names, one per element; `None` when an element is neither
/// a status nor `-`.
pub(crate) fn attempts(list: &[u8]) -> Option<u16> {
    let mut count: u16 = 0;
    for element in elements(list) {
        let element = element?;
        if element != b"-" {
            parse_status(element)?;
        }
        count = count.saturating_add(1);
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_extent_stops_at_the_next_field() {
        assert_eq!(list_extent(b"10.0.0.1:80, 10.0.0.2:80 61, - x"), 24);
        assert_eq!(list_extent(b"0.518 : 0.009 500 : 404"), 13);
        assert_eq!(list_extent(b"- 1"), 1);
        assert_eq!(list_extent(b"0.1"), 3);
        assert_eq!(list_extent(b"0.1,0.2 x"), 3);
    }

    #[test]
    fn upstream_times_are_summed_and_statuses_taken_last() {
        assert_eq!(sum_seconds(b"0.100, -"), Some(Some(100_000_000)));
        assert_eq!(sum_seconds(b"0.518 : 0.009"), Some(Some(527_000_000)));
        assert_eq!(sum_seconds(b"0.002, 0.004 : 0.010"), Some(Some(16_000_000)));
        assert_eq!(sum_seconds(b"-"), Some(None));
        assert_eq!(sum_seconds(b"-, -"), Some(None));
        assert_eq!(sum_seconds(b"0.1, x"), None);
        assert_eq!(sum_seconds(b"0.1,, 0.2"), None);
        assert_eq!(last_status(b"502, 200"), Some(Some(Status::new(200))));
        assert_eq!(last_status(b"200, -"), Some(Some(Status::new(200))));
        assert_eq!(last_status(b"500 : 404"), Some(Some(Status::new(404))));
        assert_eq!(last_status(b"-"), Some(None));
        assert_eq!(last_status(b"2OO"), None);
    }
}
