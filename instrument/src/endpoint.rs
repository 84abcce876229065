//! Read-only HTTP endpoints: a tower service that answers every request with a rendered body.
//!
//! `/metrics` and `/debug/slow` have the same shape: whatever the request, render the current
//! state into a `String`, and answer it with a status and a fixed content type. A
//! [`RenderService`] is that shape once; what differs is the [`RenderBody`] it holds (any
//! `Fn() -> (StatusCode, String)` is one). It never fails (`Error = Infallible`), is always
//! ready, and mounts in axum with `route_service` or under a plain hyper server.
//!
//! # Example
//!
//! ```
//! use http::{Request, StatusCode, header};
//! use tower_service::Service;
//! use vantage_instrument::endpoint::RenderService;
//!
//! let mut health = RenderService::new("text/plain; charset=utf-8", || {
//!     (StatusCode::OK, "ok\n".to_owned())
//! });
//! // The future is always ready: nothing is awaited.
//! let response = health.call(Request::new(())).into_inner().unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
//! assert_eq!(response.body(), "ok\n");
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header};

/// What a [`RenderService`] answers with: a status and a body, rendered for each request.
///
/// Implemented for every `Fn() -> (StatusCode, String)`. See the [module docs](self) for an
/// example.
pub trait RenderBody {
    /// The status and the body of the response to the current request.
    fn render_body(&self) -> (StatusCode, String);
}

impl<F> RenderBody for F
where
    F: Fn() -> (StatusCode, String),
{
    fn render_body(&self) -> (StatusCode, String) {
        self()
    }
}

/// Tower service answering every request, whatever its method, path or body, with what its
/// [`RenderBody`] renders, under one content type.
///
/// Cheap to clone when the renderer is. See the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct RenderService<R> {
    render: R,
    content_type: HeaderValue,
}

impl<R> RenderService<R> {
    /// A service answering with `render`'s output and a `Content-Type: content_type` header.
    ///
    /// # Panics
    ///
    /// If `content_type` is not a valid header value (a control character other than tab).
    /// It is checked here, once, not per request.
    pub fn new(content_type: &'static str, render: R) -> Self {
        Self {
            render,
            content_type: HeaderValue::from_static(content_type),
        }
    }
}

impl<R: RenderBody, B> tower_service::Service<Request<B>> for RenderService<R> {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        let (status, body) = self.render.render_body();
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type.clone());
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_request_gets_the_rendered_status_body_and_content_type() {
        let service = RenderService::new("application/json", || {
            (StatusCode::SERVICE_UNAVAILABLE, "{}".to_owned())
        });
        let request = Request::post("/anything").body("ignored").unwrap();
        let response = service.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.body(), "{}");
    }

    #[tokio::test]
    async fn the_body_is_rendered_anew_for_each_request() {
        let renders = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&renders);
        let service = RenderService::new("text/plain", move || {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            (StatusCode::OK, n.to_string())
        });
        for expected in ["1", "2"] {
            let response = service
                .clone()
                .oneshot(Request::new(()))
                .await
                .expect("infallible");
            assert_eq!(response.body(), expected);
        }
        assert_eq!(renders.load(Ordering::Relaxed), 2);
    }
}
