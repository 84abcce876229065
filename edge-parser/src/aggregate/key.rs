//! Group keys: which [`Dimension`]s group the records, and the key of one group.
//!
//! A [`GroupKey`] holds one value per dimension, in the order of the aggregate's
//! [`group_by`](super::Aggregate::group_by), encoded as length-prefixed UTF-8 in one boxed
//! slice: the hot path builds a key into a reused buffer and looks it up by bytes, without
//! allocating. Values are read back by dimension ([`Group::value`](super::Group::value)), never
//! by position.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vantage_instrument::names::OVERFLOW_ROUTE;

/// The value of a dimension the record does not have.
pub const ABSENT: &str = "-";

/// A dimension of the group key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// The proxy's router (Traefik router, ingress-nginx upstream, HAProxy backend).
    Router,
    /// The route template of the request target; see [`RouteRules`](crate::route::RouteRules).
    Route,
    /// The service the proxy sent the request to.
    Service,
    /// The requested host.
    Host,
    /// The request method.
    Method,
    /// The status code.
    Status,
}

impl Dimension {
    /// Every dimension, in the order of the `--by` help.
    pub const ALL: [Self; 6] = [
        Self::Router,
        Self::Route,
        Self::Service,
        Self::Host,
        Self::Method,
        Self::Status,
    ];

    /// The name used on the command line and in JSON keys.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Router => "router",
            Self::Route => "route",
            Self::Service => "service",
            Self::Host => "host",
            Self::Method => "method",
            Self::Status => "status",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dimension name that is not one of [`Dimension::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown group dimension {0:?} (known: router, route, service, host, method, status)")]
pub struct UnknownDimension(pub String);

impl FromStr for Dimension {
    type Err = UnknownDimension;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|dimension| dimension.name() == name)
            .ok_or_else(|| UnknownDimension(name.to_owned()))
    }
}

/// The key of one group: a value per dimension of the aggregate's grouping, in its order.
///
/// ```
/// use vantage_edge::aggregate::GroupKey;
///
/// let key = GroupKey::new(["users@docker", "users-svc@docker"]);
/// assert_eq!(key.values().collect::<Vec<_>>(), ["users@docker", "users-svc@docker"]);
/// assert!(GroupKey::overflow(2).is_overflow());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GroupKey(Box<[u8]>);

impl GroupKey {
    /// The key of these values (each cut to 64 KiB).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut encoded = Vec::new();
        for value in values {
            push_value(&mut encoded, value.as_ref().as_bytes());
        }
        Self(encoded.into_boxed_slice())
    }

    /// The one key every group past the cap is folded into: `(overflow)` in each of
    /// `dimensions` values.
    pub fn overflow(dimensions: usize) -> Self {
        Self::new(std::iter::repeat_n(OVERFLOW_ROUTE, dimensions))
    }

    /// Whether this is the [`overflow`](Self::overflow) key.
    pub fn is_overflow(&self) -> bool {
        self.values().all(|value| value == OVERFLOW_ROUTE) && !self.0.is_empty()
    }

    /// The values, in the order of the grouping dimensions.
    pub fn values(&self) -> impl Iterator<Item = &str> + '_ {
        encoded_values(&self.0).map(|value| {
            // Keys are built from UTF-8 only (`push_value` replaces anything else).
            std::str::from_utf8(value).unwrap_or(ABSENT)
        })
    }

    /// The key of only the values at `indices` (in that order): a group of a coarser grouping.
    #[cfg(feature = "serve")]
    pub(crate) fn project(&self, indices: &[usize]) -> Self {
        Self::new(indices.iter().filter_map(|&index| self.value(index)))
    }

    /// The `index`th value.
    pub(crate) fn value(&self, index: usize) -> Option<&str> {
        self.values().nth(index)
    }

    /// A key from its encoded bytes (as built by [`KeyBuilder`]).
    pub(crate) fn from_encoded(encoded: &[u8]) -> Self {
        Self(encoded.into())
    }
}

impl Borrow<[u8]> for GroupKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// Keys order by their values, as the lists of strings they are.
impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.values().cmp(other.values())
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

/// The values joined by spaces, as the report table shows them.
impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, value) in self.values().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            f.write_str(value)?;
        }
        Ok(())
    }
}

/// Builds the encoded key of a record into a reused buffer: no allocation once it has grown.
#[derive(Debug, Default)]
pub(crate) struct KeyBuilder {
    encoded: Vec<u8>,
}

impl KeyBuilder {
    pub(crate) fn clear(&mut self) {
        self.encoded.clear();
    }

    /// Appends one value, as logged: see [`make_text`](Self::make_text).
    #[inline]
    pub(crate) fn push(&mut self, value: &[u8]) {
        push_value(&mut self.encoded, value);
    }

    /// Replaces what is not UTF-8 in the values (label values must be text). Keys of known
    /// groups are text already, so this is only needed before a new group is made.
    #[cold]
    pub(crate) fn make_text(&mut self) {
        if encoded_values(&self.encoded).all(|value| std::str::from_utf8(value).is_ok()) {
            return;
        }
        let raw = std::mem::take(&mut self.encoded);
        for value in encoded_values(&raw) {
            push_value(&mut self.encoded, String::from_utf8_lossy(value).as_bytes());
        }
    }

    /// Makes the key the overflow key of `dimensions` values.
    pub(crate) fn overflow(&mut self, dimensions: usize) {
        self.clear();
        for _ in 0..dimensions {
            push_value(&mut self.encoded, OVERFLOW_ROUTE.as_bytes());
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

/// Appends one value, length-prefixed (values longer than 64 KiB are cut on a character
/// boundary).
fn push_value(key: &mut Vec<u8>, value: &[u8]) {
    let mut len = value.len().min(usize::from(u16::MAX));
    while len < value.len() && !is_char_boundary(value, len) {
        len -= 1;
    }
    key.extend_from_slice(&(len as u16).to_le_bytes());
    key.extend_from_slice(&value[..len]);
}

fn is_char_boundary(text: &[u8], at: usize) -> bool {
    // A UTF-8 continuation byte is 0b10xx_xxxx.
    text.get(at).is_none_or(|byte| byte & 0xC0 != 0x80)
}

/// The values of an encoded key, borrowed.
fn encoded_values(mut key: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [low, high, rest @ ..] = key else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*low, *high])).min(rest.len());
        let (value, after) = rest.split_at(len);
        key = after;
        Some(value)
    })
}

/// The `index`th value of an encoded key, for the hot path of `serve` (no decoding).
#[cfg(feature = "serve")]
pub(crate) fn encoded_value(key: &[u8], index: usize) -> Option<&str> {
    encoded_values(key)
        .nth(index)
        .and_then(|value| std::str::from_utf8(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_any_bytes() {
        let mut builder = KeyBuilder::default();
        builder.push(b"a\x00b");
        builder.push(b"");
        builder.push("é".as_bytes());
        builder.push(b"bad\xff");
        builder.make_text();
        let key = GroupKey::from_encoded(builder.as_bytes());
        assert_eq!(
            key.values().collect::<Vec<_>>(),
            ["a\u{0}b", "", "é", "bad\u{fffd}"]
        );
        assert_eq!(key, GroupKey::new(["a\u{0}b", "", "é", "bad\u{fffd}"]));
    }

    #[test]
    fn keys_order_by_their_values_and_one_overflow_key() {
        let mut keys = vec![
            GroupKey::new(["b"]),
            GroupKey::new(["aa", "z"]),
            GroupKey::new(["a", "zz"]),
        ];
        keys.sort();
        assert_eq!(format!("{keys:?}"), r#"[["a", "zz"], ["aa", "z"], ["b"]]"#);
        let mut builder = KeyBuilder::default();
        builder.overflow(2);
        assert_eq!(
            GroupKey::from_encoded(builder.as_bytes()),
            GroupKey::overflow(2)
        );
        assert!(!GroupKey::new(["(overflow)", "x"]).is_overflow());
        assert_eq!(GroupKey::new(["a", "b"]).to_string(), "a b");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(40_000);
        let key = GroupKey::new([long.as_str()]);
        let value = key.values().next().expect("one value");
        assert_eq!(value.len(), 65_534);
        assert!(long.starts_with(value));
    }

    #[test]
    fn dimensions_parse_by_name() {
        assert_eq!("route".parse::<Dimension>(), Ok(Dimension::Route));
        assert_eq!(
            "path".parse::<Dimension>().unwrap_err().to_string(),
            "unknown group dimension \"path\" (known: router, route, service, host, method, status)"
        );
    }
}
