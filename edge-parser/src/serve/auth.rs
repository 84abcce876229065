//! Who may download data (DESIGN.md, "Exposure and guarding").
//!
//! `/metrics`, `/health`, `/ready`, `/api/summary` and `/api/stream` are open: scrapers, probes
//! and dashboards read them. Guarded endpoints (the snapshot: every counter, the raw malformed
//! lines, the file paths; and any later control or debug endpoint) need
//! `Authorization: Bearer TOKEN` with a token of the `--auth-token-file` when one is set.
//! Without one they are served only on a loopback listen address, and refused (`403`) on any
//! other: the default `0.0.0.0` never hands data to whoever can reach the port. Every request
//! to a guarded endpoint, served or refused, is logged as one audit line (target
//! `edge_parser::audit`: when, from where, which token id, what, the answer).
//!
//! The token file is read again when it changes (a Kubernetes Secret rotated in place); a file
//! that is missing or unreadable closes the guarded endpoints (`401`) until it is fixed, and
//! says so in the log, so a sidecar never fails to start, nor opens up, over its token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode, header};

/// Tokens shorter than this are refused: guessable.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The bearer tokens that open the guarded endpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthTokens {
    /// The token file, read again when it changes.
    path: Option<PathBuf>,
    /// (id, token): the id names the token in audit lines, never the token itself.
    tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for AuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.tokens.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("AuthTokens").field("ids", &ids).finish()
    }
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthTokensError {
    /// The file cannot be read.
    #[error("cannot read the token file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file holds no token.
    #[error("the token file {path} holds no token")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A token is too short, or not a valid header value.
    #[error("the token file {path}, line {line}: {reason}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong (the token itself is not repeated).
        reason: String,
    },
}

impl AuthTokens {
    /// Reads tokens from `path`: one per line, `ID:TOKEN` or just `TOKEN` (then named
    /// `token-LINE`); blank lines and `#` comments are skipped. A Kubernetes Secret mounted as
    /// a file with a single token fits as it is.
    ///
    /// # Errors
    ///
    /// The file cannot be read, holds no token, or a token is shorter than
    /// [`MIN_TOKEN_BYTES`] or holds characters a header cannot carry.
    pub fn from_file(path: &Path) -> Result<Self, AuthTokensError> {
        let text = std::fs::read_to_string(path).map_err(|error| AuthTokensError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut tokens = Self::parse(&text)
            .map_err(|(line, reason)| AuthTokensError::Bad {
                path: path.to_owned(),
                line,
                reason,
            })?
            .ok_or_else(|| AuthTokensError::Empty {
                path: path.to_owned(),
            })?;
        tokens.path = Some(path.to_owned());
        Ok(tokens)
    }

    /// Like [`from_file`](Self::from_file), but a file that cannot be used yet (missing,
    /// empty, malformed: a Secret not created yet) gives a set that opens nothing until the
    /// file is fixed: it is read again when it changes. The error says why, for the log.
    pub fn from_file_or_closed(path: &Path) -> (Self, Option<AuthTokensError>) {
        match Self::from_file(path) {
            Ok(tokens) => (tokens, None),
            Err(error) => (
                Self {
                    path: Some(path.to_owned()),
                    tokens: Vec::new(),
                },
                Some(error),
            ),
        }
    }

    /// Tokens from the text of a token file; `Err((line, reason))` for a bad one.
    fn parse(text: &str) -> Result<Option<Self>, (usize, String)> {
        let mut tokens = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let (id, token) = match line.split_once(':') {
                Some((id, token)) if !id.is_empty() && !id.contains(char::is_whitespace) => {
                    (id.to_owned(), token.trim())
                }
                _ => (format!("token-{number}"), line),
            };
            if token.len() < MIN_TOKEN_BYTES {
                return Err((
                    number,
                    format!("token {id:?} is shorter than {MIN_TOKEN_BYTES} bytes"),
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err((
                    number,
                    format!("token {id:?} holds a space or non-ASCII byte"),
                ));
            }
            tokens.push((id, token.to_owned()));
        }
        Ok((!tokens.is_empty()).then_some(Self { path: None, tokens }))
    }

    /// The id of the token the request carries, if it carries one of these.
    fn matching(&self, headers: &HeaderMap) -> Option<&str> {
        let value = headers.get(header::AUTHORIZATION)?.as_bytes();
        let given = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))?;
        self.tokens
            .iter()
            .find(|(_, token)| constant_time_eq(token.as_bytes(), given))
            .map(|(id, _)| id.as_str())
    }
}

/// Compares without stopping at the first difference (the length is not hidden).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The guard in front of the guarded endpoints.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The tokens, and the modification time of their file when they were read.
    tokens: Option<Mutex<(AuthTokens, Option<SystemTime>)>>,
    /// Whether the listen address is loopback: without tokens, only then is data served.
    loopback: bool,
}

/// Why a guarded request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: &'static str,
}

impl Guard {
    pub(crate) fn new(tokens: Option<AuthTokens>, listen: SocketAddr) -> Self {
        Self {
            tokens: tokens.map(|tokens| {
                let modified = tokens.path.as_deref().and_then(modified);
                Mutex::new((tokens, modified))
            }),
            loopback: listen.ip().is_loopback(),
        }
    }

    /// The token id a request carries, reading the token file again if it changed.
    fn token_of(
        tokens: &Mutex<(AuthTokens, Option<SystemTime>)>,
        headers: &HeaderMap,
    ) -> Option<String> {
        let mut tokens = tokens.lock().unwrap_or_else(|e| e.into_inner());
        let (current, read_at) = &mut *tokens;
        if let Some(path) = current.path.clone() {
            let now = modified(&path);
            if now != *read_at {
                let (fresh, error) = AuthTokens::from_file_or_closed(&path);
                match error {
                    Some(error) => tracing::error!(%error, "guarded endpoints closed"),
                    None => tracing::info!(path = %path.display(), "token file read again"),
                }
                *current = fresh;
                *read_at = now;
            }
        }
        current.matching(headers).map(str::to_owned)
    }

    /// Lets a request to a guarded endpoint through, or says why not; logs the audit line.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        what: &str,
    ) -> Result<(), Refusal> {
        let token = self
            .tokens
            .as_ref()
            .and_then(|t| Self::token_of(t, headers));
        let (token_id, verdict) = match &self.tokens {
            Some(_) => match token.as_deref() {
                Some(id) => (id, Ok(())),
                None => (
                    "-",
                    Err(Refusal {
                        status: StatusCode::UNAUTHORIZED,
                        message: "a bearer token of --auth-token-file is needed\n",
                    }),
                ),
            },
            None if self.loopback => ("-", Ok(())),
            None => (
                "-",
                Err(Refusal {
                    status: StatusCode::FORBIDDEN,
                    message: "off: on a non-loopback listen address, set --auth-token-file\n",
                }),
            ),
        };
        let status = verdict.map_or_else(|refusal| refusal.status, |()| StatusCode::OK);
        tracing::info!(
            target: "edge_parser::audit",
            at = %now(),
            %peer,
            token = token_id,
            what,
            status = status.as_u16(),
            "audit"
        );
        verdict
    }
}

/// When a file was last modified; `None` when it cannot be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Now, RFC 3339 UTC to the millisecond.
fn now() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 1_000_000) * 1_000_000
        });
    let text = crate::format::Timestamp::from_unix_nanos(nanos).to_string();
    // Nanoseconds are zero past the milliseconds: keep three digits.
    match text.split_once('.') {
        Some((seconds, fraction)) => format!("{seconds}.{}Z", &fraction[..3]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("valid"),
        );
        headers
    }

    const PEER: &str = "127.0.0.1:5000";

    #[test]
    fn token_files_name_their_tokens_and_refuse_short_ones() {
        let tokens = AuthTokens::parse("# ops\nops:0123456789abcdef0123\n\nfedcba9876543210fedc\n")
            .expect("valid")
            .expect("tokens");
        assert_eq!(
            tokens.tokens,
            vec![
                ("ops".to_owned(), "0123456789abcdef0123".to_owned()),
                ("token-4".to_owned(), "fedcba9876543210fedc".to_owned()),
            ]
        );
        assert_eq!(
            AuthTokens::parse("a:short\n"),
            Err((1, "token \"a\" is shorter than 16 bytes".to_owned()))
        );
        assert_eq!(AuthTokens::parse("# nothing\n\n"), Ok(None));
        assert!(!format!("{tokens:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn with_tokens_only_a_listed_bearer_token_opens() {
        let tokens = AuthTokens::parse("ops:0123456789abcdef0123\n")
            .expect("valid")
            .expect("tokens");
        let guard = Guard::new(Some(tokens), "0.0.0.0:9898".parse().expect("addr"));
        let peer = PEER.parse().expect("addr");
        assert_eq!(
            guard.check(&headers("Bearer 0123456789abcdef0123"), peer, "snapshot"),
            Ok(())
        );
        for wrong in ["Bearer 0123456789abcdef012", "Bearer x", "Basic abc"] {
            assert_eq!(
                guard
                    .check(&headers(wrong), peer, "snapshot")
                    .map_err(|r| r.status),
                Err(StatusCode::UNAUTHORIZED),
                "{wrong}"
            );
        }
        assert_eq!(
            guard
                .check(&HeaderMap::new(), peer, "snapshot")
                .map_err(|r| r.status),
            Err(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn the_token_file_is_read_again_when_it_changes_and_closes_when_missing() {
        let dir = crate::test_support::TempDir::new("auth-reload");
        let path = dir.join("tokens");
        let (tokens, error) = AuthTokens::from_file_or_closed(&path);
        assert!(matches!(error, Some(AuthTokensError::Read { .. })));
        let guard = Guard::new(Some(tokens), "0.0.0.0:9898".parse().expect("addr"));
        let peer = PEER.parse().expect("addr");
        let status = |authorization: &str| {
            guard
                .check(&headers(authorization), peer, "snapshot")
                .map_err(|r| r.status)
        };
        assert_eq!(
            status("Bearer 0123456789abcdef0123"),
            Err(StatusCode::UNAUTHORIZED)
        );
        dir.write("tokens", "0123456789abcdef0123\n");
        assert_eq!(status("Bearer 0123456789abcdef0123"), Ok(()));
        // Rotated in place, as a Secret is: the old token stops working.
        std::thread::sleep(std::time::Duration::from_millis(20));
        dir.write("tokens", "ops:fedcba9876543210fedc\n");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(1))
            .expect("touch");
        assert_eq!(
            status("Bearer 0123456789abcdef0123"),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status("Bearer fedcba9876543210fedc"), Ok(()));
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(
            status("Bearer fedcba9876543210fedc"),
            Err(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn without_tokens_data_is_served_on_loopback_only() {
        let peer = PEER.parse().expect("addr");
        let loopback = Guard::new(None, "127.0.0.1:9898".parse().expect("addr"));
        assert_eq!(loopback.check(&HeaderMap::new(), peer, "snapshot"), Ok(()));
        let open = Guard::new(None, "0.0.0.0:9898".parse().expect("addr"));
        assert_eq!(
            open.check(&HeaderMap::new(), peer, "snapshot")
                .map_err(|r| r.status),
            Err(StatusCode::FORBIDDEN)
        );
    }
}
