//! The checkpoint file: file positions and the consumer's state, written together and
//! atomically, in a versioned JSON format.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fingerprint::{FileIdentity, FileKey};
use super::types::{TailEvent, TailMessage};

/// What the `magic` field of every checkpoint holds.
pub const CHECKPOINT_MAGIC: &str = "vantage-edge-checkpoint";
/// The format version this build writes and reads.
pub const CHECKPOINT_VERSION: u64 = 1;

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
    files: HashMap<FileKey, FilePosition>,
}

impl Positions {
    /// Starts from the positions of the checkpoint the tailer was resumed from (empty for a
    /// first start), so that a checkpoint written before the tailer's first poll keeps them.
    pub fn new(restored: Vec<FilePosition>) -> Self {
        Self {
            files: restored
                .into_iter()
                .map(|position| (position.identity.key(), position))
                .collect(),
        }
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
        self.files.insert(position.identity.key(), position);
    }

    /// The positions to checkpoint, ordered by path.
    pub fn files(&self) -> Vec<FilePosition> {
        let mut files: Vec<FilePosition> = self.files.values().cloned().collect();
        files.sort_by(|a, b| (&a.path, a.identity.ino).cmp(&(&b.path, b.identity.ino)));
        files
    }
}

/// A checkpoint: the positions of the files and the state they produced.
///
/// On disk it is one JSON object:
///
/// ```json
/// {"magic":"vantage-edge-checkpoint","version":1,"config":"traefik-json /var/log/traefik/*.log",
///  "files":[{"path":"/var/log/traefik/access.log",
///            "identity":{"dev":2049,"ino":1835041,"fingerprint":{"len":256,"hash":"3f9c0d4e11a2b7c5"}},
///            "offset":18234}],
///  "state":{"requests":1234}}
/// ```
///
/// The version is a plain field, read before the rest, rather than a serde internally tagged
/// enum: such an enum buffers the whole document first, and the buffered form cannot give
/// back the integer map keys that [`Aggregate`](crate::aggregate::Aggregate) uses.
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
    /// The file is not valid JSON, or its fields do not have the expected types.
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
    #[error("checkpoint {} has format version {version}, this build reads version {CHECKPOINT_VERSION}", path.display())]
    UnsupportedVersion {
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

/// Written form, borrowing everything.
#[derive(Serialize)]
struct Written<'a, S> {
    magic: &'static str,
    version: u64,
    config: &'a str,
    files: &'a [FilePosition],
    state: &'a S,
}

/// What is read first: enough to refuse a foreign or newer file with a clear reason.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    magic: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct V1<S> {
    config: String,
    files: Vec<FilePosition>,
    state: S,
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
        serde_json::to_vec(&Written {
            magic: CHECKPOINT_MAGIC,
            version: CHECKPOINT_VERSION,
            config: &self.config,
            files: &self.files,
            state: &self.state,
        })
    }

    /// Writes the checkpoint to `path` atomically: into a temporary file in the same
    /// directory, flushed to disk, renamed over `path`, then the directory flushed. A reader
    /// (or a crash) sees the old checkpoint or the new one, never a mix.
    ///
    /// # Errors
    ///
    /// The state cannot be serialised, or the file or its directory cannot be written.
    pub fn write_atomic(&self, path: &Path) -> Result<(), CheckpointError> {
        let document = self
            .to_json()
            .map_err(|source| CheckpointError::Serialize {
                path: path.to_owned(),
                source,
            })?;
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
            file.write_all(&document)?;
            file.sync_all()?;
            fs::rename(&temp, path)
        })();
        if let Err(error) = written {
            // Best effort: the error that matters is the one returned.
            let _ = fs::remove_file(&temp);
            return Err(write_error(error));
        }
        File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(write_error)
    }
}

impl<S: DeserializeOwned> Checkpoint<S> {
    /// Reads the checkpoint at `path`, made with the configuration fingerprint `config`.
    /// `Ok(None)` when there is no file: a first start.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, is truncated or corrupt, is not a checkpoint, has another
    /// format version or was made for another configuration. It is never ignored: the caller
    /// decides whether to start over (`--reset-checkpoint`).
    pub fn read(path: &Path, config: &str) -> Result<Option<Self>, CheckpointError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let checkpoint = Self::parse(path, &bytes)?;
        if checkpoint.config != config {
            return Err(CheckpointError::ConfigMismatch {
                path: path.to_owned(),
                expected: config.to_owned(),
                found: checkpoint.config,
            });
        }
        Ok(Some(checkpoint))
    }

    /// Reads the checkpoint or snapshot at `path` whatever configuration it was made with
    /// (its [`config`](Self::config) tells which), to show it rather than to resume from it.
    ///
    /// # Errors
    ///
    /// A file that is missing or cannot be read, is truncated or corrupt, is not a checkpoint
    /// or has another format version.
    pub fn read_any(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses a checkpoint document read from `path`.
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, CheckpointError> {
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
            Some(CHECKPOINT_VERSION) => {}
            Some(version) => {
                return Err(CheckpointError::UnsupportedVersion {
                    path: path_buf(),
                    version,
                });
            }
            None => {
                return Err(CheckpointError::Corrupt {
                    path: path_buf(),
                    reason: match header.version {
                        Some(version) => format!("its version is {version}, not a number"),
                        None => "it has no version field".to_owned(),
                    },
                });
            }
        }
        let v1: V1<S> =
            serde_json::from_slice(bytes).map_err(|error| CheckpointError::Corrupt {
                path: path_buf(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            config: v1.config,
            files: v1.files,
            state: v1.state,
        })
    }
}

mod lossy_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PathBuf, D::Error> {
        String::deserialize(deserializer).map(PathBuf::from)
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
