//! File identity: device and inode, plus a fingerprint of the first bytes.
//!
//! The inode alone is not enough: once a file is deleted and its last handle closed, the
//! file system may give the same inode number to the next file created (ext4 usually does, at
//! once). The fingerprint tells the two apart. It hashes the first [`FINGERPRINT_BYTES`] bytes,
//! or fewer while the file is shorter, and remembers how many it hashed, so that a file still
//! growing keeps matching its earlier fingerprint.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many bytes from the start of a file its fingerprint covers at most.
pub const FINGERPRINT_BYTES: usize = 256;

/// Device and inode: which file system object a path names right now.
pub(crate) type FileKey = (u64, u64);

/// A hash of the first bytes of a file, and how many bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many bytes were hashed: the file's length when that was below
    /// [`FINGERPRINT_BYTES`].
    pub len: u32,
    /// The FNV-1a hash of those bytes, written as 16 hexadecimal digits in checkpoints.
    #[serde(with = "hex_u64")]
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `head`, the first bytes of a file (at most [`FINGERPRINT_BYTES`] are
    /// used).
    pub fn of(head: &[u8]) -> Self {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        Self {
            len: head.len() as u32,
            hash: fnv1a(head),
        }
    }

    /// Whether this fingerprint covers as many bytes as it ever will.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= FINGERPRINT_BYTES
    }

    /// Whether `head` (the first bytes of a file, possibly more than this fingerprint covers)
    /// starts with the bytes this fingerprint was taken from.
    pub fn matches(&self, head: &[u8]) -> bool {
        let len = self.len as usize;
        head.len() >= len && fnv1a(&head[..len]) == self.hash
    }
}

/// Which file a position belongs to: see the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The device holding the file.
    pub dev: u64,
    /// Its inode number on that device.
    pub ino: u64,
    /// A fingerprint of its first bytes.
    pub fingerprint: Fingerprint,
}

impl FileIdentity {
    pub(crate) fn key(&self) -> FileKey {
        (self.dev, self.ino)
    }
}

pub(crate) fn key_of(metadata: &std::fs::Metadata) -> FileKey {
    (metadata.dev(), metadata.ino())
}

/// Reads up to [`FINGERPRINT_BYTES`] from the start of `file` into `head` (cleared first).
pub(crate) fn read_head(file: &File, head: &mut Vec<u8>) -> io::Result<()> {
    head.clear();
    head.resize(FINGERPRINT_BYTES, 0);
    let mut filled = 0;
    while filled < FINGERPRINT_BYTES {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                head.clear();
                return Err(error);
            }
        }
    }
    head.truncate(filled);
    Ok(())
}

/// Whether the byte just before `offset` is a newline (or `offset` is 0): offsets this module
/// hands out always sit at the start of a line, so anything else means the file was rewritten.
pub(crate) fn at_line_start(file: &File, offset: u64) -> io::Result<bool> {
    if offset == 0 {
        return Ok(true);
    }
    let mut byte = [0u8];
    loop {
        match file.read_at(&mut byte, offset - 1) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(byte[0] == b'\n'),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// 64-bit FNV-1a: stable across builds and platforms, which a checkpoint needs (the standard
/// library's hashers promise neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16)
            .map_err(|_| D::Error::custom(format!("bad fingerprint hash {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_growing_file_keeps_matching_its_earlier_fingerprint() {
        let early = Fingerprint::of(b"first line\n");
        assert_eq!(early.len, 11);
        assert!(!early.is_complete());
        assert!(early.matches(b"first line\nsecond line\n"));
        assert!(!early.matches(b"first"), "shorter than what was hashed");
        assert!(!early.matches(b"other line\nsecond line\n"));
        let long = vec![b'x'; 1000];
        let full = Fingerprint::of(&long);
        assert_eq!(full.len as usize, FINGERPRINT_BYTES);
        assert!(full.is_complete());
        assert!(full.matches(&long));
    }

    #[test]
    fn the_hash_is_written_as_hex_and_read_back() {
        let fingerprint = Fingerprint::of(b"a");
        let json = serde_json::to_string(&fingerprint).expect("serialises");
        assert_eq!(json, r#"{"len":1,"hash":"af63dc4c8601ec8c"}"#);
        let back: Fingerprint = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, fingerprint);
        let bad = serde_json::from_str::<Fingerprint>(r#"{"len":1,"hash":"xyz"}"#);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("bad fingerprint hash \"xyz\"")
        );
    }
}
