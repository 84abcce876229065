//! What is generated: a request with every field, its upstream attempts, and the truth of
//! each line (a request, a malformed line, a filtered line).

use std::fmt;

use crate::format::Timestamp;

/// HTTP version of a request; each format spells it its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// HTTP/3.
    Http3,
}

impl HttpVersion {
    /// `HTTP/1.1`, `HTTP/2.0`, `HTTP/3.0` (Go, nginx, HAProxy, Caddy).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2.0",
            Self::Http3 => "HTTP/3.0",
        }
    }

    /// `HTTP/1.1`, `HTTP/2`, `HTTP/3` (Envoy).
    #[must_use]
    pub const fn as_envoy_str(self) -> &'static str {
        match self {
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
            Self::Http3 => "HTTP/3",
        }
    }
}

/// One upstream attempt of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The server, `ip:port`.
    pub addr: String,
    /// Index of the server among the router's servers.
    pub server: usize,
    /// Time spent on this attempt.
    pub duration_ns: u64,
    /// The status the server answered; `None` when it did not (timeout, client gone).
    pub status: Option<i16>,
    /// Response bytes from the server.
    pub bytes: u64,
    /// This attempt follows an internal redirect (a new group in nginx's lists).
    pub after_redirect: bool,
}

/// A generated request: the ground truth behind a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// When the request arrived.
    pub start: Timestamp,
    /// Total duration.
    pub duration_ns: u64,
    /// The method.
    pub method: &'static str,
    /// The target as sent: path with ids filled in, and query.
    pub target: String,
    /// The route template the target was made from (`/users/{id}`); empty for a scanner
    /// probe.
    pub route: String,
    /// The HTTP version.
    pub version: HttpVersion,
    /// The status sent to the client.
    pub status: i16,
    /// Response body bytes.
    pub bytes_sent: u64,
    /// The router (`users-api@kubernetescrd`); `None` when no router matched.
    pub router: Option<String>,
    /// The service (`users-api-svc@kubernetescrd`); `None` when the proxy answered itself.
    pub service: Option<String>,
    /// The requested host.
    pub host: String,
    /// Upstream attempts in order; empty when no upstream was contacted.
    pub attempts: Vec<Attempt>,
    /// The client as the proxy logs it: an address, or an `X-Forwarded-For` list.
    pub client: String,
    /// The client's port.
    pub client_port: u16,
    /// The basic-auth user.
    pub user: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Referer` header.
    pub referer: Option<&'static str>,
    /// Traefik's per-process request counter.
    pub request_count: u64,
    /// Request id (`X-Request-ID`, `$req_id`).
    pub request_id: u128,
    /// Request body bytes.
    pub bytes_received: u64,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// Whether the line uses unusual but valid spellings (v2 `ServiceURL` object, header
    /// captures).
    pub odd: bool,
}

/// What a generated line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    /// A request line.
    Request(Box<Request>),
    /// A malformed line.
    Malformed(MalformedKind),
    /// A line the format's parser filters out.
    Filtered,
}

/// How a malformed line was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedKind {
    /// A request line cut short (15–65 % of it kept).
    Truncated,
    /// Random printable and high bytes.
    Binary,
    /// A line from another log stream (the proxy's own log, an error log).
    Foreign,
    /// The start of one line (30–70 %) glued to a whole other line.
    Interleaved,
}

impl MalformedKind {
    /// `truncated`, `binary`, `foreign`, `interleaved`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Binary => "binary",
            Self::Foreign => "foreign",
            Self::Interleaved => "interleaved",
        }
    }
}

impl fmt::Display for MalformedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One generated line (without its `\n`) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthLine {
    /// The line's bytes.
    pub text: Vec<u8>,
    /// What the line is.
    pub truth: Truth,
}
