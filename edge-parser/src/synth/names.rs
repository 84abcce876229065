//! Names derived from a router name (`users-api@kubernetescrd`): its base, a safe spelling
//! of it, the HAProxy backend and the ingress-nginx upstream it is logged as.

use super::Request;

/// The part of a router name before `@`.
pub(super) fn base_name(router: &str) -> &str {
    router.split('@').next().unwrap_or(router)
}

/// Lower-case alphanumerics, other characters replaced by `replacement`.
pub(super) fn sanitize(name: &str, replacement: char) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                replacement
            }
        })
        .collect()
}

/// The HAProxy backend: `be_users_api`, `be_default` when no router matched.
pub(super) fn haproxy_backend(request: &Request) -> String {
    format!(
        "be_{}",
        sanitize(request.router.as_deref().map_or("default", base_name), '_')
    )
}

/// The ingress-nginx upstream: `default-users-api-80`, `upstream-default-backend` when no
/// router matched.
pub(super) fn ingress_upstream(request: &Request) -> String {
    request.router.as_deref().map_or_else(
        || "upstream-default-backend".to_owned(),
        |router| format!("default-{}-80", sanitize(base_name(router), '-')),
    )
}
