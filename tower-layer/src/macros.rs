//! Code every middleware service of this crate shares.

/// `get_ref`, `get_mut` and `into_inner` for a service whose inner service is its `inner`
/// field (tower-http's convention).
macro_rules! define_inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub(crate) use define_inner_service_accessors;

/// The route template axum matched the request to (`/users/{id}`), if any.
#[cfg(feature = "axum")]
pub(crate) fn matched_path(extensions: &http::Extensions) -> Option<&str> {
    extensions
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
}

/// Without the `axum` feature no route is known from the request itself.
#[cfg(not(feature = "axum"))]
pub(crate) fn matched_path(_extensions: &http::Extensions) -> Option<&str> {
    None
}
