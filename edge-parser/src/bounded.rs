//! Serde helpers for reading files that may have been edited or damaged: each refuses input
//! past its limit before allocating for it (the checkpoint and the persisted state use them).
//!
//! A sequence stops at its limit without reading the next element, a map refuses a repeated
//! key instead of keeping the last one, and a string is measured before it is copied.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A sequence of at most `max` elements; `what` names them in the error.
pub(crate) fn seq<'de, D, T>(
    deserializer: D,
    max: usize,
    what: &'static str,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_seq(SeqVisitor {
        max,
        what,
        marker: PhantomData,
    })
}

struct SeqVisitor<T> {
    max: usize,
    what: &'static str,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} {}", self.max, self.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        loop {
            if items.len() == self.max {
                // The next element, if any, is only skipped: it is not built to be refused.
                return match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(de::Error::custom(format!(
                        "more than {} {}",
                        self.max, self.what
                    ))),
                    None => Ok(items),
                };
            }
            match seq.next_element()? {
                Some(item) => items.push(item),
                None => return Ok(items),
            }
        }
    }
}

/// A map of at most `max` entries in which no key appears twice.
pub(crate) fn map<'de, D, K, V>(
    deserializer: D,
    max: usize,
    what: &'static str,
) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
{
    deserializer.deserialize_map(MapVisitor {
        max,
        what,
        marker: PhantomData,
    })
}

struct MapVisitor<K, V> {
    max: usize,
    what: &'static str,
    marker: PhantomData<(K, V)>,
}

impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
where
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map of at most {} {}", self.max, self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<K>()? {
            if entries.len() == self.max {
                return Err(de::Error::custom(format!(
                    "more than {} {}",
                    self.max, self.what
                )));
            }
            if entries.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{key:?} appears twice in the {}",
                    self.what
                )));
            }
            let value = map.next_value()?;
            entries.insert(key, value);
        }
        Ok(entries)
    }
}

/// A string of at most `max` bytes.
pub(crate) fn text<'de, D: Deserializer<'de>>(
    deserializer: D,
    max: usize,
    what: &'static str,
) -> Result<String, D::Error> {
    deserializer.deserialize_str(TextVisitor { max, what })
}

struct TextVisitor {
    max: usize,
    what: &'static str,
}

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of at most {} bytes", self.what, self.max)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        if text.len() > self.max {
            return Err(E::custom(format!(
                "{} of {} bytes, more than {}",
                self.what,
                text.len(),
                self.max
            )));
        }
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Limited {
        #[serde(deserialize_with = "three")]
        items: Vec<u8>,
        #[serde(default, deserialize_with = "two_entries")]
        map: BTreeMap<String, u64>,
        #[serde(default, deserialize_with = "short")]
        name: String,
    }

    fn three<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        seq(deserializer, 3, "items")
    }

    fn two_entries<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, u64>, D::Error> {
        map(deserializer, 2, "entries")
    }

    fn short<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        text(deserializer, 4, "a name")
    }

    fn error(json: &str) -> String {
        serde_json::from_str::<Limited>(json)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn each_limit_is_refused_naming_it_and_what_is_within_is_kept() {
        let within: Limited =
            serde_json::from_str(r#"{"items":[1,2,3],"map":{"a":1,"b":2},"name":"four"}"#)
                .expect("within the limits");
        assert_eq!(within.items, [1, 2, 3]);
        assert_eq!(within.map.len(), 2);
        assert_eq!(within.name, "four");
        assert_eq!(
            error(r#"{"items":[1,2,3,4]}"#),
            "more than 3 items at line 1 column 18"
        );
        // The element past the limit is skipped, not parsed: a wrong type there is not what
        // is reported.
        assert!(error(r#"{"items":[1,2,3,"x"]}"#).starts_with("more than 3 items"));
        assert_eq!(
            error(r#"{"items":[],"map":{"a":1,"a":2}}"#),
            "\"a\" appears twice in the entries at line 1 column 28"
        );
        assert_eq!(
            error(r#"{"items":[],"map":{"a":1,"b":2,"c":3}}"#),
            "more than 2 entries at line 1 column 34"
        );
        assert_eq!(
            error(r#"{"items":[],"name":"fives"}"#),
            "a name of 5 bytes, more than 4 at line 1 column 26"
        );
    }
}
