//! A mixed load over real TCP: fast routes, a slow route, 4xx, 5xx, a panic, streams, random
//! unknown paths and clients that hang up before the response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What the load sent, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) requests: u64,
    pub(crate) hung_up: u64,
    pub(crate) failed: u64,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, other: Self) {
        self.requests += other.requests;
        self.hung_up += other.hung_up;
        self.failed += other.failed;
    }
}

/// Drives `workers` concurrent clients at `addr` for `duration`.
pub(crate) async fn run(addr: SocketAddr, workers: usize, duration: Duration) -> Sent {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut sent = Sent::default();
                while Instant::now() < deadline {
                    sent += one(&client, addr).await;
                }
                sent
            })
        })
        .collect();
    let mut total = Sent::default();
    for task in tasks {
        total += task.await.unwrap_or_default();
    }
    total
}

async fn one(client: &Client<HttpConnector, Full<Bytes>>, addr: SocketAddr) -> Sent {
    let roll = fastrand::u32(0..1000);
    let (method, path, body) = match roll {
        0..450 => ("GET", format!("/users/{}", fastrand::u32(1..1100)), ""),
        450..520 => ("GET", format!("/users/{}", random_word()), ""),
        520..600 => (
            "POST",
            "/users".to_owned(),
            if roll < 585 { "{\"name\":\"ada\"}" } else { "" },
        ),
        600..730 => ("GET", format!("/orders/{}", fastrand::u32(1..100_000)), ""),
        730..790 => ("GET", "/slow".to_owned(), ""),
        790..830 => ("GET", "/fail".to_owned(), ""),
        830..835 => ("GET", "/panic".to_owned(), ""),
        835..875 => ("GET", "/stream".to_owned(), ""),
        875..955 => ("GET", format!("/{}/{}", random_word(), random_word()), ""),
        955..980 => ("GET", "/health".to_owned(), ""),
        _ => return hang_up(addr).await,
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::from(body))
        .expect("valid request");
    let outcome = async {
        let response = client.request(request).await.ok()?;
        response.into_body().collect().await.ok()
    };
    let failed = u64::from(outcome.await.is_none());
    Sent {
        requests: 1,
        hung_up: 0,
        failed,
    }
}

/// A client that asks for `/slow` and goes away before the answer: the service records 499.
async fn hang_up(addr: SocketAddr) -> Sent {
    if let Ok(mut stream) = TcpStream::connect(addr).await {
        let _ = stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: demo\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    Sent {
        requests: 1,
        hung_up: 1,
        failed: 0,
    }
}

fn random_word() -> String {
    (0..fastrand::usize(4..10))
        .map(|_| fastrand::alphanumeric())
        .collect()
}
