//! The `tracestate` header value: up to 32 `key=value` list-members, each vendor's own data.

use std::fmt;
use std::str::FromStr;

use http::HeaderValue;

/// The `tracestate` of a trace: an ordered list of at most 32 `key=value` members, one per
/// tracing system, the most recent first.
///
/// Parsing follows the Trace Context Level 2 grammar:
///
/// - a key is 1 to 256 characters: a lowercase letter or a digit, then any of
///   `a-z 0-9 _ - * / @`. Every Level 1 key (`vendor`, `tenant@system`) is one, and so are
///   forms Level 1 refused (`foo@`, `a@b@c`, a tenant of 242 characters);
/// - a value is 1 to 256 printable ASCII characters other than `,` and `=`, not ending in a
///   space; spaces at its start belong to it;
/// - spaces and tabs around members, and empty members, are allowed and dropped; empty members
///   do not count toward the 32;
/// - a key that appears again is a broken promise of the sender, not a broken list: the first
///   (left-most, most recent) member with that key is kept and the later ones are dropped, as
///   Level 2 lets a vendor discard duplicate keys it did not generate.
///
/// Any other broken rule, or more than 32 members, makes the whole value invalid, and the
/// caller drops it (keeping the `traceparent`), as the specification allows.
///
/// The list is kept in its canonical form (members joined by single commas, each key once), in
/// the order received. A header that already has that form is kept as it came, without a copy.
/// [`insert`](Self::insert) puts a new or updated member at the front, as a vendor adding its
/// own entry must. See the [module docs](super) for an example.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    /// The canonical list; `None` when there are no members.
    value: Option<HeaderValue>,
}

impl TraceState {
    /// The most list-members a `tracestate` may have.
    pub const MAX_MEMBERS: usize = 32;

    /// The longest `tracestate` that [`header_value`](Self::header_value) (and so
    /// [`TraceContext::inject`](super::TraceContext::inject)) sends on, in bytes: the 512
    /// characters the specification asks every vendor to propagate at least.
    pub const MAX_PROPAGATED_LEN: usize = 512;

    /// Members longer than this are the first to go when a list is truncated.
    const LONG_MEMBER_LEN: usize = 128;

    /// Parses and combines the `tracestate` header fields of one message, in order, as
    /// RFC 7230 combines repeated fields (as if joined by commas). No field gives an empty state.
    ///
    /// # Errors
    ///
    /// Returns the [`TraceStateError`] that names the first broken rule; the whole `tracestate`
    /// is then invalid and should be dropped.
    pub fn from_header_values<'a, I>(values: I) -> Result<Self, TraceStateError>
    where
        I: IntoIterator<Item = &'a HeaderValue>,
    {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return Ok(Self::default());
        };
        let Some(second) = values.next() else {
            let shape = validate(first.as_bytes())?;
            return Ok(if shape.members == 0 {
                Self::default()
            } else if shape.canonical {
                Self {
                    value: Some(first.clone()),
                }
            } else {
                Self::canonical(first.as_bytes())
            });
        };
        let mut combined = first.as_bytes().to_vec();
        for value in std::iter::once(second).chain(values) {
            combined.push(b',');
            combined.extend_from_slice(value.as_bytes());
        }
        validate(&combined)?;
        Ok(Self::canonical(&combined))
    }

    /// The value of the member with this key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .find_map(|(k, value)| (k == key).then_some(value))
    }

    /// The members as `(key, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.as_str()
            .split(',')
            .filter_map(|member| member.split_once('='))
    }

    /// How many members there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no members (a `tracestate` that is not sent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
    }

    /// The canonical list: members joined by single commas; empty when there are none.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.value.as_ref().map_or("", |value| {
            // The value was built from validated ASCII, so this never falls back.
            std::str::from_utf8(value.as_bytes()).unwrap_or_default()
        })
    }

    /// Adds a member at the front, or moves an existing member with this key to the front with
    /// its new value, as a vendor does with its own entry. When that makes 33 members, the last
    /// one is removed.
    ///
    /// # Errors
    ///
    /// [`TraceStateError::InvalidKey`] or [`TraceStateError::InvalidValue`] (with index 0) when
    /// the key or value breaks the grammar; the state is then unchanged.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceStateError> {
        if !valid_key(key.as_bytes()) {
            return Err(TraceStateError::InvalidKey { index: 0 });
        }
        if !valid_value(value.as_bytes()) {
            return Err(TraceStateError::InvalidValue { index: 0 });
        }
        let old = self.as_str();
        let mut list = String::with_capacity(key.len() + value.len() + old.len() + 2);
        list.push_str(key);
        list.push('=');
        list.push_str(value);
        let others = old
            .split(',')
            .filter(|member| member.split_once('=').is_some_and(|(k, _)| k != key))
            .take(Self::MAX_MEMBERS - 1);
        for member in others {
            list.push(',');
            list.push_str(member);
        }
        self.value = Some(header_value(list));
        Ok(())
    }

    /// Removes the member with this key; returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let old = self.as_str();
        let list = old
            .split(',')
            .filter(|member| member.split_once('=').is_some_and(|(k, _)| k != key))
            .collect::<Vec<_>>()
            .join(",");
        if list.len() == old.len() {
            return false;
        }
        self.value = (!list.is_empty()).then(|| header_value(list));
        true
    }

    /// Shortens the list to at most `max_len` bytes the way the specification asks: whole
    /// members only, those longer than 128 characters first (from the end), then members from
    /// the end. Does nothing to a list that already fits.
    pub fn truncate(&mut self, max_len: usize) {
        let list = self.as_str();
        if list.len() <= max_len {
            return;
        }
        let members: Vec<&str> = list.split(',').collect();
        let mut keep = vec![true; members.len()];
        let mut len = list.len();
        let long = (0..members.len())
            .rev()
            .filter(|&i| members[i].len() > Self::LONG_MEMBER_LEN);
        let any = (0..members.len()).rev();
        for i in long.chain(any) {
            if len <= max_len {
                break;
            }
            if keep[i] {
                keep[i] = false;
                // The member and one comma; the last one left has no comma.
                len = len.saturating_sub(members[i].len() + 1);
            }
        }
        let kept: Vec<&str> = members
            .iter()
            .zip(&keep)
            .filter_map(|(member, keep)| keep.then_some(*member))
            .collect();
        self.value = (!kept.is_empty()).then(|| header_value(kept.join(",")));
    }

    /// The `tracestate` header value to send, `None` when there are no members: the list as it
    /// is, or truncated to [`MAX_PROPAGATED_LEN`](Self::MAX_PROPAGATED_LEN) bytes when longer.
    #[must_use]
    pub fn header_value(&self) -> Option<HeaderValue> {
        let value = self.value.as_ref()?;
        if value.len() <= Self::MAX_PROPAGATED_LEN {
            return Some(value.clone());
        }
        let mut truncated = self.clone();
        truncated.truncate(Self::MAX_PROPAGATED_LEN);
        truncated.value
    }

    /// The canonical form of a list that [`validate`] accepted: the first member of each key,
    /// in order.
    fn canonical(list: &[u8]) -> Self {
        let mut canonical = Vec::with_capacity(list.len());
        let mut keys: [&[u8]; Self::MAX_MEMBERS] = [&[]; Self::MAX_MEMBERS];
        let mut kept = 0;
        for member in members(list) {
            let key = key_of(member);
            if keys[..kept].contains(&key) {
                continue;
            }
            // `validate` allowed at most `MAX_MEMBERS` members, so there is room.
            if let Some(slot) = keys.get_mut(kept) {
                *slot = key;
                kept += 1;
            }
            if !canonical.is_empty() {
                canonical.push(b',');
            }
            canonical.extend_from_slice(member);
        }
        Self {
            value: (!canonical.is_empty()).then(|| header_value(canonical)),
        }
    }
}

impl FromStr for TraceState {
    type Err = TraceStateError;

    /// Parses one `tracestate` value; see [`TraceState`] for the rules.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let shape = validate(list.as_bytes())?;
        Ok(if shape.members == 0 {
            Self::default()
        } else if shape.canonical {
            Self {
                value: Some(header_value(list)),
            }
        } else {
            Self::canonical(list.as_bytes())
        })
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceState").field(&self.as_str()).finish()
    }
}

/// Why a `tracestate` value is invalid. `index` counts non-empty list-members from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceStateError {
    /// There are more than 32 list-members.
    #[error("tracestate has more than 32 list-members")]
    TooManyMembers,
    /// A list-member has no `=`.
    #[error("tracestate list-member {index} has no '='")]
    MissingEquals {
        /// Which list-member.
        index: usize,
    },
    /// A key breaks the key grammar.
    #[error("tracestate list-member {index} has an invalid key")]
    InvalidKey {
        /// Which list-member.
        index: usize,
    },
    /// A value breaks the value grammar.
    #[error("tracestate list-member {index} has an invalid value")]
    InvalidValue {
        /// Which list-member.
        index: usize,
    },
}

/// What [`validate`] learnt about a valid list.
struct Shape {
    /// Non-empty list-members.
    members: usize,
    /// Whether the list is already canonical: no empty member, no whitespace around members, no
    /// repeated key.
    canonical: bool,
}

fn validate(list: &[u8]) -> Result<Shape, TraceStateError> {
    let mut keys: [&[u8]; TraceState::MAX_MEMBERS] = [&[]; TraceState::MAX_MEMBERS];
    let mut members = 0;
    let mut canonical = true;
    for raw in list.split(|&byte| byte == b',') {
        let member = trim_ows(raw);
        canonical &= !member.is_empty() && member.len() == raw.len();
        if member.is_empty() {
            continue;
        }
        let index = members;
        if index == TraceState::MAX_MEMBERS {
            return Err(TraceStateError::TooManyMembers);
        }
        let Some(equals) = member.iter().position(|&byte| byte == b'=') else {
            return Err(TraceStateError::MissingEquals { index });
        };
        let (key, value) = (&member[..equals], &member[equals + 1..]);
        if !valid_key(key) {
            return Err(TraceStateError::InvalidKey { index });
        }
        if !valid_value(value) {
            return Err(TraceStateError::InvalidValue { index });
        }
        // A repeated key still counts toward the 32 (the list as sent has that many members);
        // `TraceState::canonical` drops it.
        canonical &= !keys[..index].contains(&key);
        keys[index] = key;
        members += 1;
    }
    Ok(Shape { members, canonical })
}

/// The non-empty list-members, without the spaces and tabs around them.
fn members(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&byte| byte == b',')
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

/// `bytes` without leading and trailing optional whitespace (spaces and horizontal tabs).
pub(super) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |end| end + 1);
    &bytes[start..end]
}

/// The key of a list-member: what comes before its first `=`.
fn key_of(member: &[u8]) -> &[u8] {
    member
        .split(|&byte| byte == b'=')
        .next()
        .unwrap_or_default()
}

/// Level 2: `key = ( lcalpha / DIGIT ) 0*255( keychar )`, where
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn valid_key(key: &[u8]) -> bool {
    let [first, rest @ ..] = key else {
        return false;
    };
    key.len() <= 256
        && matches!(first, b'a'..=b'z' | b'0'..=b'9')
        && rest.iter().all(
            |&byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'),
        )
}

/// `value = 0*255(chr) nblk-chr`, where `chr` is printable ASCII but `,` and `=`, and `nblk-chr`
/// is a `chr` other than space.
fn valid_value(value: &[u8]) -> bool {
    value.len() <= 256
        && value.last().is_some_and(|&last| last != b' ')
        && value
            .iter()
            .all(|&byte| matches!(byte, 0x20..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e))
}

/// The header value of a list this module built from validated members.
fn header_value(list: impl Into<Vec<u8>>) -> HeaderValue {
    HeaderValue::try_from(list.into()).expect("validated tracestate bytes are visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(list: &str) -> Result<TraceState, TraceStateError> {
        list.parse()
    }

    fn members(count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("bar{i:02}={i:02}")).collect()
    }

    /// Every character the key grammar allows, and every character a value may hold.
    const ALL_KEY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    fn all_value_chars() -> String {
        (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect()
    }

    #[test]
    fn valid_lists_give_their_canonical_form() {
        let long_key = "z".repeat(256);
        let long_tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let long_value = "v".repeat(256);
        let all_values = all_value_chars();
        let with_vendor = format!("{ALL_KEY_CHARS}@a-z0-9_-*/");
        let cases: Vec<(String, String)> = vec![
            // The spec's examples.
            (
                "rojo=00f067aa0ba902b7".into(),
                "rojo=00f067aa0ba902b7".into(),
            ),
            (
                "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
                "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
            ),
            (
                "vendorname1=opaqueValue1,vendorname2=opaqueValue2".into(),
                "vendorname1=opaqueValue1,vendorname2=opaqueValue2".into(),
            ),
            ("fw529a3039@dt=value".into(), "fw529a3039@dt=value".into()),
            // Empty and whitespace-only lists and members.
            (String::new(), String::new()),
            (" \t ".into(), String::new()),
            (",, ,\t,".into(), String::new()),
            ("foo=1,,bar=2".into(), "foo=1,bar=2".into()),
            (",foo=1,".into(), "foo=1".into()),
            // Spaces and tabs around members.
            (
                "foo=1 \t , \t bar=2, \t baz=3".into(),
                "foo=1,bar=2,baz=3".into(),
            ),
            (
                "foo=1\t \t,\t \tbar=2,\t \tbaz=3".into(),
                "foo=1,bar=2,baz=3".into(),
            ),
            (" foo=1".into(), "foo=1".into()),
            ("\tfoo=1".into(), "foo=1".into()),
            ("foo=1 ".into(), "foo=1".into()),
            ("foo=1\t".into(), "foo=1".into()),
            ("\t foo=1 \t".into(), "foo=1".into()),
            // Spaces inside a value, and at its start, belong to it.
            ("foo= 1".into(), "foo= 1".into()),
            ("foo=a b  c".into(), "foo=a b  c".into()),
            // All allowed characters, and every length limit at its maximum.
            (
                format!("{ALL_KEY_CHARS}={all_values}"),
                format!("{ALL_KEY_CHARS}={all_values}"),
            ),
            (
                format!("{with_vendor}={all_values}"),
                format!("{with_vendor}={all_values}"),
            ),
            (format!("{long_key}=1"), format!("{long_key}=1")),
            (format!("{long_tenant}=1"), format!("{long_tenant}=1")),
            (format!("a={long_value}"), format!("a={long_value}")),
            // Level 2 keys: a digit may start any key, '@' may stand anywhere after the first
            // character, any number of times, with no separate tenant or system limit.
            ("1tenant@sys=x".into(), "1tenant@sys=x".into()),
            ("1foo=1".into(), "1foo=1".into()),
            ("t@s=x,s=y".into(), "t@s=x,s=y".into()),
            ("t@1v=1".into(), "t@1v=1".into()),
            ("foo@=1,bar=2".into(), "foo@=1,bar=2".into()),
            ("foo@@bar=1,bar=2".into(), "foo@@bar=1,bar=2".into()),
            ("foo@bar@baz=1,bar=2".into(), "foo@bar@baz=1,bar=2".into()),
            (
                format!("{}@v=1", "t".repeat(242)),
                format!("{}@v=1", "t".repeat(242)),
            ),
            (
                format!("t@{}=1", "v".repeat(15)),
                format!("t@{}=1", "v".repeat(15)),
            ),
            (
                format!("{}@=1", "t".repeat(255)),
                format!("{}@=1", "t".repeat(255)),
            ),
            // A repeated key: its first (left-most) member is kept, the list too.
            ("foo=1,foo=1".into(), "foo=1".into()),
            ("foo=1,foo=2".into(), "foo=1".into()),
            ("a=1,t@s=1,b=2,t@s=3".into(), "a=1,t@s=1,b=2".into()),
            (" foo=1 , bar=2,foo=3,bar=4".into(), "foo=1,bar=2".into()),
            // 32 members, and empty members that do not count toward the limit.
            (members(32).join(","), members(32).join(",")),
            (
                format!("{},,", members(32).join(", ,")),
                members(32).join(","),
            ),
        ];
        for (list, canonical) in cases {
            let state = parse(&list).unwrap_or_else(|e| panic!("{list:?}: {e}"));
            assert_eq!(state.as_str(), canonical, "{list:?}");
            assert_eq!(state.to_string(), canonical, "{list:?}");
            assert_eq!(state.is_empty(), canonical.is_empty(), "{list:?}");
        }
    }

    #[test]
    fn invalid_lists_give_the_exact_error() {
        use TraceStateError::*;
        let cases: Vec<(String, TraceStateError)> = vec![
            // Keys.
            ("foo =1".into(), InvalidKey { index: 0 }),
            ("FOO=1".into(), InvalidKey { index: 0 }),
            ("foo.bar=1".into(), InvalidKey { index: 0 }),
            ("=1".into(), InvalidKey { index: 0 }),
            ("_foo=1".into(), InvalidKey { index: 0 }),
            ("@foo=1,bar=2".into(), InvalidKey { index: 0 }),
            ("@=1".into(), InvalidKey { index: 0 }),
            ("_t@v=1".into(), InvalidKey { index: 0 }),
            ("t@V=1".into(), InvalidKey { index: 0 }),
            ("bar=2,fOo=1".into(), InvalidKey { index: 1 }),
            (format!("{}=1", "z".repeat(257)), InvalidKey { index: 0 }),
            (
                format!("foo=1,{}@v=1", "t".repeat(255)),
                InvalidKey { index: 1 },
            ),
            // Values.
            ("foo=bar=baz".into(), InvalidValue { index: 0 }),
            ("foo=,bar=3".into(), InvalidValue { index: 0 }),
            ("foo= ".into(), InvalidValue { index: 0 }),
            ("foo=a\tb".into(), InvalidValue { index: 0 }),
            ("foo=a\u{7f}".into(), InvalidValue { index: 0 }),
            ("foo=caf\u{e9}".into(), InvalidValue { index: 0 }),
            (
                format!("a=1,b={}", "v".repeat(257)),
                InvalidValue { index: 1 },
            ),
            // Members without '='.
            ("foo".into(), MissingEquals { index: 0 }),
            ("foo=1, bar".into(), MissingEquals { index: 1 }),
            // More than 32 members, a repeated key among them or not.
            (members(33).join(","), TooManyMembers),
            (
                format!("{},bar01=again", members(32).join(",")),
                TooManyMembers,
            ),
        ];
        for (list, expected) in cases {
            assert_eq!(parse(&list), Err(expected), "{list:?}");
        }
    }

    #[test]
    fn repeated_header_fields_are_combined_in_order() {
        let values = |fields: &[&str]| -> Vec<HeaderValue> {
            fields
                .iter()
                .map(|field| HeaderValue::from_str(field).unwrap())
                .collect()
        };
        let combined =
            TraceState::from_header_values(&values(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]));
        assert_eq!(
            combined.as_ref().map(TraceState::as_str),
            Ok("foo=1,bar=2,rojo=1,congo=2,baz=3")
        );
        for fields in [&["foo=1", ""][..], &["", "foo=1"], &["", " foo=1 ", ""]] {
            let state = TraceState::from_header_values(&values(fields));
            assert_eq!(
                state.as_ref().map(TraceState::as_str),
                Ok("foo=1"),
                "{fields:?}"
            );
        }
        for fields in [&["foo=1", "foo=2"][..], &["foo=1", "foo=1"]] {
            let state = TraceState::from_header_values(&values(fields));
            assert_eq!(
                state.as_ref().map(TraceState::as_str),
                Ok("foo=1"),
                "{fields:?}"
            );
        }
        let thirty_two = members(32);
        let split = values(&[&thirty_two[..10].join(","), &thirty_two[10..].join(",")]);
        assert_eq!(
            TraceState::from_header_values(&split).map(|s| s.len()),
            Ok(32)
        );
        let thirty_three = members(33);
        let split = values(&[&thirty_three[..10].join(","), &thirty_three[10..].join(",")]);
        assert_eq!(
            TraceState::from_header_values(&split),
            Err(TraceStateError::TooManyMembers)
        );
        assert_eq!(
            TraceState::from_header_values(&values(&[])),
            Ok(TraceState::default())
        );
        assert_eq!(
            TraceState::from_header_values(&values(&[""])),
            Ok(TraceState::default())
        );
    }

    #[test]
    fn single_header_fields_are_validated_and_made_canonical() {
        let field = HeaderValue::from_static("foo=1 , bar=2");
        assert_eq!(
            TraceState::from_header_values([&field]).map(|s| s.to_string()),
            Ok("foo=1,bar=2".to_owned())
        );
        let field = HeaderValue::from_static("foo=1,bar=2");
        let state = TraceState::from_header_values([&field]).unwrap();
        assert_eq!(state.header_value(), Some(field));
        let field = HeaderValue::from_bytes(b"foo=\xff").unwrap();
        assert_eq!(
            TraceState::from_header_values([&field]),
            Err(TraceStateError::InvalidValue { index: 0 })
        );
    }

    #[test]
    fn members_are_read_in_order() {
        let state = parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,t@s= x").unwrap();
        assert_eq!(
            state.iter().collect::<Vec<_>>(),
            [
                ("rojo", "00f067aa0ba902b7"),
                ("congo", "t61rcWkgMzE"),
                ("t@s", " x")
            ]
        );
        assert_eq!(state.len(), 3);
        assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(state.get("t@s"), Some(" x"));
        assert_eq!(state.get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(state.get("missing"), None);
        assert_eq!(TraceState::default().len(), 0);
        assert_eq!(TraceState::default().iter().count(), 0);
        assert_eq!(
            format!("{state:?}"),
            r#"TraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,t@s= x")"#
        );
    }

    #[test]
    fn inserting_puts_our_entry_first_as_in_the_spec_examples() {
        let mut state = parse("congo=t61rcWkgMzE").unwrap();
        state.insert("rojo", "00f067aa0ba902b7").unwrap();
        assert_eq!(state.as_str(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        state.insert("congo", "ucfJifl5GOE").unwrap();
        assert_eq!(state.as_str(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
        let mut empty = TraceState::default();
        empty.insert("vantage", "1").unwrap();
        assert_eq!(empty.as_str(), "vantage=1");
    }

    #[test]
    fn inserting_into_a_full_list_drops_the_last_member() {
        let mut full = parse(&members(32).join(",")).unwrap();
        full.insert("vantage", "1").unwrap();
        let mut expected = vec!["vantage=1".to_owned()];
        expected.extend(members(31));
        assert_eq!(full.as_str(), expected.join(","));
        assert_eq!(full.len(), 32);

        let mut full = parse(&members(32).join(",")).unwrap();
        full.insert("bar32", "new").unwrap();
        let mut expected = vec!["bar32=new".to_owned()];
        expected.extend(members(31));
        assert_eq!(full.as_str(), expected.join(","));
    }

    #[test]
    fn inserting_an_invalid_member_changes_nothing() {
        let mut state = parse("foo=1").unwrap();
        assert_eq!(
            state.insert("Vantage", "1"),
            Err(TraceStateError::InvalidKey { index: 0 })
        );
        assert_eq!(
            state.insert("vantage", "a,b"),
            Err(TraceStateError::InvalidValue { index: 0 })
        );
        assert_eq!(
            state.insert("vantage", "trailing "),
            Err(TraceStateError::InvalidValue { index: 0 })
        );
        assert_eq!(state.as_str(), "foo=1");
    }

    #[test]
    fn removing_keeps_the_order_of_the_others() {
        let mut state = parse("a=1,b=2,c=3").unwrap();
        assert!(state.remove("b"));
        assert_eq!(state.as_str(), "a=1,c=3");
        assert!(!state.remove("b"));
        assert!(state.remove("a"));
        assert!(state.remove("c"));
        assert!(state.is_empty());
        assert_eq!(state, TraceState::default());
    }

    #[test]
    fn truncation_drops_long_members_first_then_from_the_end() {
        let long = |key: &str| format!("{key}={}", "x".repeat(139));
        let short = |key: &str| format!("{key}={}", "y".repeat(40));
        // 3 long (142) + 4 short (42) + 6 commas = 600 characters.
        let list = [
            short("a"),
            long("l1"),
            short("b"),
            long("l2"),
            short("c"),
            long("l3"),
            short("d"),
        ]
        .join(",");
        assert_eq!(list.len(), 600);
        let mut state = parse(&list).unwrap();
        state.truncate(512);
        // Dropping the last long member (142 and its comma) is enough: 457.
        let expected = [
            short("a"),
            long("l1"),
            short("b"),
            long("l2"),
            short("c"),
            short("d"),
        ];
        assert_eq!(state.as_str(), expected.join(","));

        let mut state = parse(&list).unwrap();
        state.truncate(200);
        // All long members go first, then short ones from the end: a,b,c,d is 171.
        assert_eq!(
            state.as_str(),
            [short("a"), short("b"), short("c"), short("d")].join(",")
        );

        let mut state = parse(&list).unwrap();
        state.truncate(100);
        assert_eq!(state.as_str(), [short("a"), short("b")].join(","));

        let mut state = parse(&list).unwrap();
        state.truncate(10);
        assert!(state.is_empty());

        let mut state = parse(&list).unwrap();
        state.truncate(600);
        assert_eq!(state.as_str(), list);
    }

    #[test]
    fn header_values_over_512_characters_are_truncated() {
        let fits = members(32).join(",");
        assert!(fits.len() <= TraceState::MAX_PROPAGATED_LEN);
        assert_eq!(
            parse(&fits).unwrap().header_value(),
            Some(HeaderValue::from_str(&fits).unwrap())
        );
        // Three members of 200 characters: only the first fits in 512.
        let big = |key: char| format!("{key}={}", "v".repeat(198));
        let list = [big('a'), big('b'), big('c')].join(",");
        let state = parse(&list).unwrap();
        assert_eq!(
            state.header_value(),
            Some(HeaderValue::from_str(&format!("{},{}", big('a'), big('b'))).unwrap())
        );
        // The state itself is not changed.
        assert_eq!(state.as_str(), list);
        assert_eq!(TraceState::default().header_value(), None);
    }

    #[test]
    fn errors_read_as_lowercase_sentences() {
        assert_eq!(
            TraceStateError::InvalidKey { index: 1 }.to_string(),
            "tracestate list-member 1 has an invalid key"
        );
        assert_eq!(
            TraceStateError::TooManyMembers.to_string(),
            "tracestate has more than 32 list-members"
        );
    }

    #[test]
    fn ows_is_spaces_and_tabs_only() {
        assert_eq!(trim_ows(b" \t a b \t "), b"a b");
        assert_eq!(trim_ows(b"\n a"), b"\n a");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b""), b"");
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z][a-z0-9_*/-]{0,20}", "[a-z0-9][a-z0-9_*/@-]{0,20}",]
    }

    fn value() -> impl Strategy<Value = String> {
        "[\\x20-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{0,30}[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]"
    }

    /// Up to 32 members with distinct keys.
    fn unique_members() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec((key(), value()), 0..=40).prop_map(|pairs| {
            let mut seen = std::collections::HashSet::new();
            pairs
                .into_iter()
                .filter(|(key, _)| seen.insert(key.clone()))
                .take(TraceState::MAX_MEMBERS)
                .map(|(key, value)| format!("{key}={value}"))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_parses_back_to_itself(list in ".{0,300}") {
            if let Ok(state) = parse(&list) {
                prop_assert!(state.len() <= TraceState::MAX_MEMBERS);
                prop_assert_eq!(parse(&state.to_string()), Ok(state));
            }
        }

        #[test]
        fn near_valid_text_never_panics(list in "[a-zA-Z0-9@=, \t_*/-]{0,120}") {
            if let Ok(state) = parse(&list) {
                prop_assert_eq!(parse(state.as_str()), Ok(state.clone()));
                for (key, value) in state.iter() {
                    prop_assert_eq!(state.get(key), Some(value));
                }
            }
        }

        #[test]
        fn arbitrary_header_bytes_never_panic(
            fields in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..4)
        ) {
            let values: Vec<HeaderValue> = fields
                .iter()
                .filter_map(|field| HeaderValue::from_bytes(field).ok())
                .collect();
            let _ = TraceState::from_header_values(&values);
        }

        #[test]
        fn generated_lists_format_back(members in unique_members()) {
            let list = members.join(",");
            let state = parse(&list).unwrap();
            prop_assert_eq!(state.to_string(), list);
            prop_assert_eq!(state.len(), members.len());
        }

        #[test]
        fn generated_lists_with_repeated_keys_keep_the_first_member_of_each(
            members in unique_members(),
            repeats in proptest::collection::vec(any::<proptest::sample::Index>(), 1..4),
        ) {
            prop_assume!(!members.is_empty());
            let members = &members[..members.len().min(TraceState::MAX_MEMBERS - repeats.len())];
            let mut list = members.to_vec();
            for index in &repeats {
                let key = key_of(index.get(members).as_bytes());
                list.push(format!("{}=again", String::from_utf8_lossy(key)));
            }
            let state = parse(&list.join(",")).unwrap();
            prop_assert_eq!(state.to_string(), members.join(","));
        }

        #[test]
        fn generated_lists_with_whitespace_and_empty_members_give_the_canonical_form(
            members in unique_members(),
            padding in proptest::collection::vec(("[ \t]{0,2}", "[ \t]{0,2}", any::<bool>()), 40),
        ) {
            let padded: Vec<String> = members
                .iter()
                .zip(&padding)
                .map(|(member, (before, after, empty))| {
                    let extra = if *empty { ", \t" } else { "" };
                    format!("{before}{member}{after}{extra}")
                })
                .collect();
            let state = parse(&padded.join(",")).unwrap();
            prop_assert_eq!(state.to_string(), members.join(","));
        }
    }
}
