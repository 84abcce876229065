//! The checkpoint file: file positions and the consumer's state, written together and
//! atomically, in a versioned JSON format with a checksum of its content.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::fingerprint::{FINGERPRINT_BYTES, FileIdentity, FileKey};
use super::types::{TailEvent, TailMessage};
use crate::bounded;

/// What the `magic` field of every checkpoint holds.
pub const CHECKPOINT_MAGIC: &str = "vantage-edge-checkpoint";
/// The format version this build writes and resumes from. It also reads version 1 (no
/// checksum) to show it ([`Checkpoint::read_any`]), not to resume from it.
pub const CHECKPOINT_VERSION: u64 = 2;
/// The largest checkpoint read or written, in bytes: a larger file is refused before it is
/// read, and a larger state is not written (the checkpoint would not be read back).
pub const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;
/// File positions in one checkpoint at most.
const MAX_FILES: usize = 1 << 16;
/// Bytes of the configuration fingerprint at most.
const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Bytes of a file's path at most (Linux's `PATH_MAX`: no longer path can be opened).
const MAX_PATH_BYTES: usize = 4096;
/// The checksum's algorithm, as the `checksum` field names it.
const CHECKSUM_PREFIX: &str = "crc32:";

/// How far one file was read: where to resume it after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Where the file was last seen (written lossily when not UTF-8: it is only where to look
    /// first, the identity is what counts).
    #[serde(with = "lossy_path")]
    pub path: PathBuf,
    /// Which file.
    pub identity: FileIdentity,
    /// The offset just past the last line the checkpointed state includes.
    pub offset: u64,
}

/// The consumer's side of the exactly-once protocol: the position of every followed file as
/// of the messages it has taken into its state. See the [module docs](super).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    /// Each file's position, and when it was first observed.
    files: HashMap<FileKey, (u64, FilePosition)>,
    observed: u64,
}

impl Positions {
    /// Starts from the positions of the checkpoint the tailer was resumed from (empty for a
    /// first start), so that a checkpoint written before the tailer's first poll keeps them.
    pub fn new(restored: Vec<FilePosition>) -> Self {
        let mut positions = Self::default();
        for position in restored {
            positions.set(position);
        }
        positions
    }

    /// Takes one message into account. Call it when the message's effect is in the state that
    /// the next checkpoint will hold: a batch once its lines are aggregated, events in their
    /// order among the batches.
    pub fn observe(&mut self, message: &TailMessage) {
        match message {
            TailMessage::Lines(batch) => self.set(FilePosition {
                path: batch.path.to_path_buf(),
                identity: batch.identity,
                offset: batch.end_offset,
            }),
            TailMessage::Event(TailEvent::Opened {
                path,
                identity,
                offset,
            }) => self.set(FilePosition {
                path: path.to_path_buf(),
                identity: *identity,
                offset: *offset,
            }),
            TailMessage::Event(
                TailEvent::Closed { identity, .. } | TailEvent::Missing { identity, .. },
            ) => {
                self.files.remove(&identity.key());
            }
            TailMessage::Event(_) => {}
        }
    }

    fn set(&mut self, position: FilePosition) {
        match self.files.get_mut(&position.identity.key()) {
            Some((_, known)) => *known = position,
            None => {
                self.observed += 1;
                let key = position.identity.key();
                self.files.insert(key, (self.observed, position));
            }
        }
    }

    /// The positions to checkpoint, ordered by path, then by when each file was first
    /// observed: files that were at the same path in turn are resumed in that order, so that
    /// a restart names a rotation at that path by the file that left it last.
    pub fn files(&self) -> Vec<FilePosition> {
        let mut files: Vec<&(u64, FilePosition)> = self.files.values().collect();
        files.sort_by(|(a_seen, a), (b_seen, b)| (&a.path, a_seen).cmp(&(&b.path, b_seen)));
        files
            .into_iter()
            .map(|(_, position)| position.clone())
            .collect()
    }
}

/// A checkpoint: the positions of the files and the state they produced.
///
/// On disk it is one JSON object:
///
/// ```json
/// {"magic":"vantage-edge-checkpoint","version":2,"config":"traefik-json /var/log/traefik/*.log",
///  "files":[{"path":"/var/log/traefik/access.log",
///            "identity":{"dev":2049,"ino":1835041,"fingerprint":{"len":256,"hash":"3f9c0d4e11a2b7c5"}},
///            "offset":18234}],
///  "state":{"requests":1234},
///  "checksum":"crc32:5d1f30aa"}
/// ```
///
/// The checksum is the CRC-32 of the `config`, `files` and `state` values exactly as written,
/// each preceded by its length in bytes (8, little-endian): a file damaged or edited by hand,
/// even into valid JSON, is refused as a checksum mismatch before its content is read. It is
/// no protection against someone who recomputes it: what is read is validated all the same
/// (the consumer validates its state), and the file is at most [`MAX_CHECKPOINT_BYTES`].
///
/// The version is a plain field, read before the rest, rather than a serde internally tagged
/// enum: such an enum buffers the whole document first, and the buffered form cannot give
/// back the integer map keys that [`Aggregate`](crate::aggregate::Aggregate) uses. Version 1
/// (no checksum) is shown but not resumed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint<S> {
    /// What the consumer passes as its configuration fingerprint (log patterns, format,
    /// grouping…): a checkpoint made for another configuration is refused.
    pub config: String,
    /// The file positions.
    pub files: Vec<FilePosition>,
    /// The consumer's state as of those positions.
    pub state: S,
}

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file exists but cannot be read.
    #[error("cannot read checkpoint {}: {source}", path.display())]
    Read {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file or its directory cannot be written.
    #[error("cannot write checkpoint {}: {source}", path.display())]
    Write {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The state cannot be serialised.
    #[error("cannot serialise checkpoint {}: {source}", path.display())]
    Serialize {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The file ends before the document does.
    #[error("checkpoint {} is truncated: {reason}", path.display())]
    Truncated {
        /// The checkpoint.
        path: PathBuf,
        /// Where.
        reason: String,
    },
    /// The file, or the checkpoint to write, is larger than [`MAX_CHECKPOINT_BYTES`].
    #[error("checkpoint {} is {size} bytes, more than the {MAX_CHECKPOINT_BYTES} a checkpoint may have", path.display())]
    TooLarge {
        /// The checkpoint.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not valid JSON, its fields do not have the expected types, its checksum
    /// does not match its content, or its content is not a state the consumer could have
    /// written.
    #[error("checkpoint {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is JSON but not a checkpoint of this program.
    #[error("{} is not a vantage-edge checkpoint: {reason}", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is a checkpoint of a format version this build does not read.
    #[error("checkpoint {} has format version {version}, this build reads versions 1 to {CHECKPOINT_VERSION}", path.display())]
    UnsupportedVersion {
        /// The checkpoint.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
    /// The file is a checkpoint of version 1, from before checksums: it can be shown, not
    /// resumed from.
    #[error("checkpoint {} has format version {version}, from before checksums: it can be shown but not resumed from (this build writes version {CHECKPOINT_VERSION})", path.display())]
    NotResumable {
        /// The checkpoint.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
    /// The checkpoint was made with another configuration (other log patterns or format).
    #[error(
        "checkpoint {} was made for another configuration: it has {found:?}, this run has {expected:?}",
        path.display()
    )]
    ConfigMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// This run's configuration fingerprint.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
}

/// What is read first: enough to refuse a foreign or newer file with a clear reason.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    magic: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// The parts of a document, as written: the checksum is checked on them before they are read.
#[derive(Deserialize)]
struct Parts<'a> {
    #[serde(borrow)]
    config: &'a RawValue,
    #[serde(borrow)]
    files: &'a RawValue,
    #[serde(borrow)]
    state: &'a RawValue,
    #[serde(default, borrow)]
    checksum: Option<Cow<'a, str>>,
}

/// The CRC-32 of the parts, each preceded by its length.
fn checksum(parts: [&[u8]; 3]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize()
}

/// Makes temporary names unique within the process too.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl<S: Serialize> Checkpoint<S> {
    /// The document [`write_atomic`](Self::write_atomic) writes, for a snapshot download.
    ///
    /// # Errors
    ///
    /// The state cannot be serialised.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        self.to_json_in(Vec::new())
    }

    /// [`to_json`](Self::to_json) into `buffer` (cleared first), to reuse its memory.
    pub(crate) fn to_json_in(&self, buffer: Vec<u8>) -> Result<Vec<u8>, serde_json::Error> {
        let mut document = start_document(buffer);
        // Each part is written in place and its bytes hashed there: the state is not copied.
        let config = write_part(&mut document, "config", &self.config)?;
        let files = write_part(&mut document, "files", &self.files)?;
        let state = write_part(&mut document, "state", &self.state)?;
        end_document(&mut document, [config, files, state]);
        Ok(document)
    }

    /// Writes the checkpoint to `path` atomically: into a temporary file in the same
    /// directory, flushed to disk, renamed over `path`, then the directory flushed. A reader
    /// (or a crash) sees the old checkpoint or the new one, never a mix.
    ///
    /// # Errors
    ///
    /// The state cannot be serialised, is larger than [`MAX_CHECKPOINT_BYTES`], or the file
    /// or its directory cannot be written.
    pub fn write_atomic(&self, path: &Path) -> Result<(), CheckpointError> {
        let document = self
            .to_json()
            .map_err(|source| CheckpointError::Serialize {
                path: path.to_owned(),
                source,
            })?;
        write_document_atomic(path, &document, Flush::ToDisk)
    }
}

/// How far a checkpoint write goes before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Renamed into place: a process that dies (kill -9, OOM, a container restart) and starts
    /// again reads it, since the page cache outlives the process. No `fsync`, so a busy disk
    /// cannot hold it up.
    ToPageCache,
    /// Also flushed to disk, file and directory: it outlives a crash of the machine.
    ToDisk,
}

/// Writes a document made by [`Checkpoint::to_json`] to `path` as
/// [`Checkpoint::write_atomic`] does, as far as `flush` says: for a writer on another thread
/// than the state's.
///
/// # Errors
///
/// The document is larger than [`MAX_CHECKPOINT_BYTES`], or the file or its directory cannot
/// be written.
pub(crate) fn write_document_atomic(
    path: &Path,
    document: &[u8],
    flush: Flush,
) -> Result<(), CheckpointError> {
    if document.len() as u64 > MAX_CHECKPOINT_BYTES {
        return Err(CheckpointError::TooLarge {
            path: path.to_owned(),
            size: document.len() as u64,
        });
    }
    let write_error = |source| CheckpointError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        write_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = directory.join(temp_name);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(document)?;
        if flush == Flush::ToDisk {
            file.sync_all()?;
        }
        fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&temp);
        return Err(write_error(error));
    }
    if flush == Flush::ToPageCache {
        return Ok(());
    }
    // The rename is durable once the directory is.
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(write_error)
}

/// Flushes the checkpoint at `path` as it is now, and its directory entry, to disk (after
/// writes that went [`Flush::ToPageCache`]).
///
/// # Errors
///
/// The file or its directory cannot be opened or flushed.
#[cfg(feature = "serve")]
pub(crate) fn sync_to_disk(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

/// The magic and the version, in an open object.
fn start_document(mut document: Vec<u8>) -> Vec<u8> {
    document.clear();
    document.extend_from_slice(b"{\"magic\":\"");
    document.extend_from_slice(CHECKPOINT_MAGIC.as_bytes());
    document.extend_from_slice(format!("\",\"version\":{CHECKPOINT_VERSION}").as_bytes());
    document
}

/// Appends `,"name":value` to `document`; returns where the value is.
fn write_part<T: Serialize + ?Sized>(
    document: &mut Vec<u8>,
    name: &str,
    value: &T,
) -> Result<Range<usize>, serde_json::Error> {
    document.extend_from_slice(format!(",\"{name}\":").as_bytes());
    let start = document.len();
    serde_json::to_writer(&mut *document, value)?;
    Ok(start..document.len())
}

/// Appends the checksum of the parts at `parts` and closes the object.
fn end_document(document: &mut Vec<u8>, parts: [Range<usize>; 3]) {
    let sum = checksum(parts.map(|part| &document[part]));
    document
        .extend_from_slice(format!(",\"checksum\":\"{CHECKSUM_PREFIX}{sum:08x}\"}}").as_bytes());
}

/// `document` (a checkpoint) with a checksum that matches its parts again: what a hand edit
/// that fixes the checksum looks like.
#[cfg(test)]
pub(crate) fn reseal(document: &str) -> Vec<u8> {
    let parts: Parts<'_> = serde_json::from_str(document).expect("a checkpoint");
    seal(parts.config.get(), parts.files.get(), parts.state.get())
}

/// A document of this version made of the JSON texts `config`, `files` and `state` as they
/// are, with their checksum.
#[cfg(test)]
pub(crate) fn seal(config: &str, files: &str, state: &str) -> Vec<u8> {
    let mut document = start_document(Vec::new());
    let mut parts = [0..0, 0..0, 0..0];
    for (part, (name, json)) in
        parts
            .iter_mut()
            .zip([("config", config), ("files", files), ("state", state)])
    {
        document.extend_from_slice(format!(",\"{name}\":").as_bytes());
        let start = document.len();
        document.extend_from_slice(json.as_bytes());
        *part = start..document.len();
    }
    end_document(&mut document, parts);
    document
}

impl<S: DeserializeOwned> Checkpoint<S> {
    /// Reads the checkpoint at `path`, made with the configuration fingerprint `config`.
    /// `Ok(None)` when there is no file: a first start.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, is larger than [`MAX_CHECKPOINT_BYTES`], truncated or
    /// corrupt (its checksum included), is not a checkpoint, has another format version or
    /// was made for another configuration. It is never ignored: the caller decides whether to
    /// start over (`--reset-checkpoint`).
    pub fn read(path: &Path, config: &str) -> Result<Option<Self>, CheckpointError> {
        Self::read_with(path, config, |state| {
            serde_json::from_str(state).map_err(|error| error.to_string())
        })
    }

    /// Reads the checkpoint or snapshot at `path` whatever configuration it was made with
    /// (its [`config`](Self::config) tells which), to show it rather than to resume from it.
    ///
    /// # Errors
    ///
    /// A file that is missing or cannot be read, is too large, truncated or corrupt, is not a
    /// checkpoint or has another format version.
    pub fn read_any(path: &Path) -> Result<Self, CheckpointError> {
        Self::read_any_with(path, |state| {
            serde_json::from_str(state).map_err(|error| error.to_string())
        })
    }
}

impl<S> Checkpoint<S> {
    /// As [`read`](Self::read), the state read from its JSON text by `state`, which says why
    /// it refuses it (the error names the file).
    pub(crate) fn read_with(
        path: &Path,
        config: &str,
        state: impl FnOnce(&str) -> Result<S, String>,
    ) -> Result<Option<Self>, CheckpointError> {
        let Some(bytes) = read_limited(path)? else {
            return Ok(None);
        };
        parse(path, &bytes, Some(config), state).map(Some)
    }

    /// As [`read_any`](Self::read_any), the state read by `state`.
    pub(crate) fn read_any_with(
        path: &Path,
        state: impl FnOnce(&str) -> Result<S, String>,
    ) -> Result<Self, CheckpointError> {
        match read_limited(path)? {
            Some(bytes) => parse(path, &bytes, None, state),
            None => Err(CheckpointError::Read {
                path: path.to_owned(),
                source: io::Error::from(io::ErrorKind::NotFound),
            }),
        }
    }
}

/// The bytes of the file at `path`, refused past [`MAX_CHECKPOINT_BYTES`] before they are
/// read; `None` when there is no file.
fn read_limited(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    let read_error = |source| CheckpointError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let size = file.metadata().map_err(read_error)?.len();
    let too_large = |size| CheckpointError::TooLarge {
        path: path.to_owned(),
        size,
    };
    if size > MAX_CHECKPOINT_BYTES {
        return Err(too_large(size));
    }
    // The file may grow after its size was taken: one byte past the limit tells.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_CHECKPOINT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CHECKPOINT_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Parses a checkpoint document read from `path`: the envelope, then (checksum checked, the
/// configuration `expected` if given) the positions, then the state through `state`.
fn parse<S>(
    path: &Path,
    bytes: &[u8],
    expected: Option<&str>,
    state: impl FnOnce(&str) -> Result<S, String>,
) -> Result<Checkpoint<S>, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let version = parse_header(path, bytes)?;
    let json_error = |error: serde_json::Error| {
        if error.is_eof() {
            CheckpointError::Truncated {
                path: path.to_owned(),
                reason: error.to_string(),
            }
        } else {
            corrupt(error.to_string())
        }
    };
    if version < CHECKPOINT_VERSION && expected.is_some() {
        return Err(CheckpointError::NotResumable {
            path: path.to_owned(),
            version,
        });
    }
    let parts: Parts<'_> = serde_json::from_slice(bytes).map_err(json_error)?;
    if version >= 2 {
        check_sum(&parts).map_err(corrupt)?;
    }
    let config = read_config(parts.config.get()).map_err(|error| corrupt(error.to_string()))?;
    if let Some(expected) = expected.filter(|expected| *expected != config) {
        return Err(CheckpointError::ConfigMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            found: config,
        });
    }
    let files = read_files(parts.files.get()).map_err(corrupt)?;
    let state = state(parts.state.get()).map_err(corrupt)?;
    Ok(Checkpoint {
        config,
        files,
        state,
    })
}

/// Checks the magic and the version; returns the version.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<u64, CheckpointError> {
    let path_buf = || path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CheckpointError::Truncated {
            path: path_buf(),
            reason: "the file is empty".to_owned(),
        });
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(CheckpointError::Foreign {
            path: path_buf(),
            reason: "it is not a JSON object".to_owned(),
        });
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|error| {
        if error.is_eof() {
            CheckpointError::Truncated {
                path: path_buf(),
                reason: error.to_string(),
            }
        } else {
            CheckpointError::Corrupt {
                path: path_buf(),
                reason: error.to_string(),
            }
        }
    })?;
    match header.magic {
        Some(serde_json::Value::String(magic)) if magic == CHECKPOINT_MAGIC => {}
        Some(other) => {
            return Err(CheckpointError::Foreign {
                path: path_buf(),
                reason: format!("its magic is {other}, not {CHECKPOINT_MAGIC:?}"),
            });
        }
        None => {
            return Err(CheckpointError::Foreign {
                path: path_buf(),
                reason: "it has no magic field".to_owned(),
            });
        }
    }
    match header.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(version @ 1..=CHECKPOINT_VERSION) => Ok(version),
        Some(version) => Err(CheckpointError::UnsupportedVersion {
            path: path_buf(),
            version,
        }),
        None => Err(CheckpointError::Corrupt {
            path: path_buf(),
            reason: match header.version {
                Some(version) => format!("its version is {version}, not a number"),
                None => "it has no version field".to_owned(),
            },
        }),
    }
}

/// Checks the `checksum` field against the parts.
fn check_sum(parts: &Parts<'_>) -> Result<(), String> {
    let Some(written) = parts.checksum.as_deref() else {
        return Err("it has no checksum field".to_owned());
    };
    let expected = written
        .strip_prefix(CHECKSUM_PREFIX)
        .filter(|hex| hex.len() == 8)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            format!("its checksum {written:?} is not {CHECKSUM_PREFIX} and 8 hexadecimal digits")
        })?;
    let actual = checksum([
        parts.config.get().as_bytes(),
        parts.files.get().as_bytes(),
        parts.state.get().as_bytes(),
    ]);
    if actual != expected {
        return Err(format!(
            "checksum mismatch: the file says {CHECKSUM_PREFIX}{expected:08x}, its content has {CHECKSUM_PREFIX}{actual:08x} (it was edited or damaged)"
        ));
    }
    Ok(())
}

fn read_config(json: &str) -> Result<String, serde_json::Error> {
    bounded::text(
        &mut serde_json::Deserializer::from_str(json),
        MAX_CONFIG_BYTES,
        "a configuration",
    )
}

/// The positions, at most [`MAX_FILES`], each file once.
fn read_files(json: &str) -> Result<Vec<FilePosition>, String> {
    let files: Vec<FilePosition> = bounded::seq(
        &mut serde_json::Deserializer::from_str(json),
        MAX_FILES,
        "files",
    )
    .map_err(|error| format!("its files: {error}"))?;
    let mut seen: HashSet<FileKey> = HashSet::with_capacity(files.len());
    for file in &files {
        let identity = file.identity;
        if identity.fingerprint.len as usize > FINGERPRINT_BYTES {
            return Err(format!(
                "file {}: its fingerprint covers {} bytes, more than {FINGERPRINT_BYTES}",
                file.path.display(),
                identity.fingerprint.len
            ));
        }
        if !seen.insert(identity.key()) {
            return Err(format!(
                "file {}: device {} inode {} appears twice",
                file.path.display(),
                identity.dev,
                identity.ino
            ));
        }
    }
    Ok(files)
}

mod lossy_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PathBuf, D::Error> {
        crate::bounded::text(deserializer, super::MAX_PATH_BYTES, "a path").map(PathBuf::from)
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
