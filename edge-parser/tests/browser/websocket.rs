//! The least of a WebSocket client (RFC 6455) that the DevTools protocol needs: one loopback
//! connection, text messages out (masked, as a client must), text messages in (fragmented or
//! not), pings answered. No extension, no TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Frame opcodes.
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A client connection.
#[derive(Debug)]
pub(crate) struct WebSocket {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl WebSocket {
    /// Opens `ws://host:port/path`; every read then waits at most `timeout`.
    pub(crate) fn connect(url: &str, timeout: Duration) -> std::io::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| invalid(format!("not a ws:// URL: {url}")))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let writer = TcpStream::connect(host)?;
        writer.set_read_timeout(Some(timeout))?;
        let mut socket = Self {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        };
        // The key proves nothing here (the answer's accept value is not checked): the peer is
        // the browser this test started.
        write!(
            socket.writer,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut status = String::new();
        socket.reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(invalid(format!("no upgrade: {status}")));
        }
        loop {
            let mut header = String::new();
            socket.reader.read_line(&mut header)?;
            if header == "\r\n" || header.is_empty() {
                return Ok(socket);
            }
        }
    }

    /// Sends `text` as one text message.
    pub(crate) fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.frame(TEXT, text.as_bytes())
    }

    /// The next text message.
    pub(crate) fn receive(&mut self) -> std::io::Result<String> {
        let mut message = Vec::new();
        loop {
            let (fin, opcode, payload) = self.read_frame()?;
            match opcode {
                TEXT | CONTINUATION => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).map_err(invalid);
                    }
                }
                PING => self.frame(PONG, &payload)?,
                CLOSE => return Err(std::io::ErrorKind::ConnectionAborted.into()),
                _ => {}
            }
        }
    }

    fn frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        const MASK: [u8; 4] = [0x5a, 0xc3, 0x1e, 0x77];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            len @ 0..126 => frame.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
        self.writer.write_all(&frame)
    }

    /// One frame from the server (never masked): whether it is final, its opcode, its payload.
    fn read_frame(&mut self) -> std::io::Result<(bool, u8, Vec<u8>)> {
        let mut head = [0; 2];
        self.reader.read_exact(&mut head)?;
        let length = match head[1] & 0x7f {
            126 => {
                let mut length = [0; 2];
                self.reader.read_exact(&mut length)?;
                u64::from(u16::from_be_bytes(length))
            }
            127 => {
                let mut length = [0; 8];
                self.reader.read_exact(&mut length)?;
                u64::from_be_bytes(length)
            }
            short => u64::from(short),
        };
        let mut payload = vec![0; usize::try_from(length).map_err(invalid)?];
        self.reader.read_exact(&mut payload)?;
        Ok((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
    }
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error)
}
