//! nginx access logs: any `log_format`, compiled once into a parser.
//!
//! A `log_format` string is a sequence of literal text and variables (`$status`,
//! `${request_time}`). [`LogFormat::compile`] turns it into a list of fields, each with the
//! literal that follows it; parsing a line walks that list once, finding where each value ends
//! either from the variable's own shape (the 26 bytes of `$time_local`, the digits of
//! `$status`, the `, `/` : `-separated lists of `$upstream_*`) or by searching for the literal
//! that follows it. Two variables with nothing between them are refused at compile time unless
//! the first one has a fixed width (`$time_local`, `$time_iso8601`).
//!
//! Variables that fill [`Record`](super::Record) fields (when a format has several for one field, the one
//! listed first here wins):
//!
//! | field | variables |
//! |---|---|
//! | `timestamp` | `$time_local`, `$time_iso8601`, `$msec` |
//! | `method`, `target`, `protocol` | `$request` (split leniently: it is whatever the client sent), `$request_method`, `$request_uri`, `$uri`, `$document_uri`, `$server_protocol` |
//! | `status` | `$status` |
//! | `bytes_sent` | `$body_bytes_sent`, `$bytes_sent` |
//! | `duration_ns` | `$request_time` (seconds, ms resolution) |
//! | `upstream_duration_ns` | `$upstream_response_time`: the **sum** of the numeric elements of the list |
//! | `upstream_status` | `$upstream_status`: the **last numeric** element of the list |
//! | `host` | `$host`, `$http_host`, `$server_name` |
//! | `router` | `$proxy_upstream_name` (ingress-nginx) |
//!
//! Any other variable is matched and skipped. [`LogFormat::filled_by`] tells which variable
//! fills a field in a given format. A value of `-` (nginx's "not set") or an empty value (what
//! `escape=json` writes) leaves the field empty. Text values are unescaped per the
//! format's [`Escape`] mode: `\xHH` for `default`, JSON escapes for `json`.
//!
//! A `$request` that is not a request line (a TLS handshake sent to a plain-HTTP port logs as
//! `"\x16\x03\x01..."`) still yields a record, with its status, and no method or target.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, LogFormat, Parsed};
//!
//! let format = LogFormat::compile(
//!     r#"$remote_addr [$time_iso8601] "$request" $status $request_time "$host""#,
//! )?;
//! let line = br#"10.0.0.1 [2025-03-09T12:00:00+00:00] "GET /users/7 HTTP/1.1" 200 0.012 "api.example.com""#;
//! let Ok(Parsed::Record(record)) = Format::Nginx(format).parse(line) else {
//!     panic!("not a record");
//! };
//! assert_eq!(record.duration_ns, Some(12_000_000));
//! assert_eq!(record.host.as_deref(), Some(&b"api.example.com"[..]));
//! # Ok::<(), vantage_edge::format::LogFormatError>(())
//! ```

mod compile;
mod conf;
mod parse;
mod render;
mod upstream;

use std::fmt;
use std::sync::{Arc, LazyLock};

use compile::Compiled;

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// `combined` followed by ` $request_time`, the usual way to get latency into it.
pub const COMBINED_REQUEST_TIME: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;

pub(crate) static COMBINED_FORMAT: LazyLock<LogFormat> = LazyLock::new(|| preset(COMBINED));
pub(crate) static COMBINED_REQUEST_TIME_FORMAT: LazyLock<LogFormat> =
    LazyLock::new(|| preset(COMBINED_REQUEST_TIME));

/// Compiles a format string this crate ships; they are tested to compile.
pub(crate) fn preset(source: &str) -> LogFormat {
    match LogFormat::compile(source) {
        Ok(format) => format,
        Err(err) => unreachable!("preset log_format does not compile: {err}"),
    }
}

/// How a `log_format` escapes variable values (`log_format name escape=... ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Escape {
    /// `escape=default`: `"`, `\`, bytes below 0x20 and from 0x7F as `\xHH`; unset as `-`.
    #[default]
    Default,
    /// `escape=json`: JSON string escapes; unset as an empty value.
    Json,
    /// `escape=none`: values written as they are; unset as `-`.
    None,
}

impl Escape {
    /// The `escape=` parameter value for this mode.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Json => "json",
            Self::None => "none",
        }
    }
}

/// A `log_format` that could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogFormatError {
    /// The format has no variable at all, so a line carries no data.
    #[error("log_format has no variables")]
    NoVariables,
    /// A `$` not followed by a variable name, or an unclosed `${`.
    #[error("invalid variable name at byte {offset} of the log_format")]
    InvalidVariable {
        /// Byte offset of the `$` in the format string.
        offset: usize,
    },
    /// Two variables with no text between them, where the first does not have a fixed width
    /// (only `$time_local` and `$time_iso8601` have one).
    #[error(
        "${first} is followed directly by ${second}, so where ${first} ends cannot be found; put text between them"
    )]
    AdjacentVariables {
        /// The first variable.
        first: String,
        /// The variable right after it.
        second: String,
    },
    /// An `escape=` parameter other than `default`, `json` or `none`.
    #[error("unknown log_format escape mode {value:?} (expected default, json or none)")]
    UnknownEscape {
        /// The value given.
        value: String,
    },
    /// No `log_format` of that name in the configuration text.
    #[error("no log_format named {name:?} in the nginx configuration")]
    NotFound {
        /// The name looked for.
        name: String,
    },
    /// The configuration text does not tokenize (an unclosed quote).
    #[error("nginx configuration: {message} at line {line}")]
    Config {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: &'static str,
    },
}

/// A compiled nginx `log_format`: a parser for the lines it writes.
///
/// Cheap to clone (the compiled form is shared). See the [module docs](self) for the variables
/// it understands.
#[derive(Clone)]
pub struct LogFormat {
    inner: Arc<Compiled>,
}

impl LogFormat {
    /// Reads the `log_format` called `name` from the text of an nginx configuration (its
    /// `escape=` parameter included). `combined` is nginx's predefined format unless the text
    /// redefines it.
    ///
    /// # Errors
    ///
    /// [`LogFormatError::NotFound`] when there is no such `log_format`,
    /// [`LogFormatError::Config`] when the text does not tokenize, and the errors of
    /// [`compile`](Self::compile).
    pub fn from_nginx_conf(conf: &str, name: &str) -> Result<Self, LogFormatError> {
        match conf::find_log_format(conf, name)? {
            Some((escape, source)) => Self::compile_with_escape(&source, escape),
            None if name == "combined" => Self::compile(COMBINED),
            None => Err(LogFormatError::NotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// The format string as given.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The escape mode.
    #[must_use]
    pub fn escape(&self) -> Escape {
        self.inner.escape
    }

    /// The variable names, in order, without `$`.
    pub fn variables(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.fields.iter().map(|f| f.name.as_str())
    }
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFormat")
            .field("source", &self.inner.source)
            .field("escape", &self.inner.escape)
            .finish()
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "escape={} '{}'",
            self.inner.escape.as_str(),
            self.inner.source
        )
    }
}

impl PartialEq for LogFormat {
    fn eq(&self, other: &Self) -> bool {
        self.inner.escape == other.inner.escape && self.inner.source == other.inner.source
    }
}

impl Eq for LogFormat {}
