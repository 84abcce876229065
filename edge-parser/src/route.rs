//! Routes: from a logged request target to a bounded route name.
//!
//! Traefik logs name the router; other proxies only log the path, and grouping by raw path is
//! useless and unbounded. [`RouteRules`] maps a target to a route name:
//!
//! - with templates (axum syntax: `/api/users/{id}` matches one segment, `/static/{*file}` the
//!   rest), a matching target becomes its template and anything else `(other)`;
//! - without templates, paths are normalised: numeric, UUID and hex-hash segments (12 or more hex
//!   digits, at least one of them a digit) become `{id}`.
//!
//! Either way the query string and fragment are cut, an absolute-form target
//! (`http://host/path`) is reduced to its path, and a missing or malformed target (not starting
//! with `/`) is `(other)`. The number of distinct routes is bounded by the aggregate's group cap.
//!
//! ```
//! use vantage_edge::route::RouteRules;
//!
//! let rules = RouteRules::new(["/api/users/{id}", "/static/{*file}"])?;
//! let mut route = Vec::new();
//! rules.route_into(Some(b"/api/users/42?tab=2"), &mut route);
//! assert_eq!(route, b"/api/users/{id}");
//! rules.route_into(Some(b"/elsewhere"), &mut route);
//! assert_eq!(route, b"(other)");
//!
//! let auto = RouteRules::auto();
//! auto.route_into(Some(b"http://shop/orders/9f86d081884c7d65/items/7"), &mut route);
//! assert_eq!(route, b"/orders/{id}/items/{id}");
//! # Ok::<(), vantage_edge::route::RouteError>(())
//! ```

use vantage_instrument::names::UNMATCHED_ROUTE;

/// The name every segment that looks like an identifier is replaced with.
pub const ID_SEGMENT: &[u8] = b"{id}";

/// A route template that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The template does not start with `/`.
    #[error("route template {template:?} must start with '/'")]
    NotAbsolute {
        /// The template.
        template: String,
    },
    /// The template is malformed or conflicts with an earlier one.
    #[error("route template {template:?}: {reason}")]
    Invalid {
        /// The template.
        template: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Maps request targets to route names; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    /// The given templates, then the learned ones (from [`given`](Self::given) on).
    templates: Vec<Box<str>>,
    given: usize,
    router: Option<matchit::Router<usize>>,
    /// Cut from the front of every path before it is matched.
    strip_prefix: Option<Box<str>>,
}

impl RouteRules {
    /// Automatic normalisation, no templates.
    pub fn auto() -> Self {
        Self::default()
    }

    /// Rules from templates, tried by specificity (static segments before parameters, as axum).
    ///
    /// # Errors
    ///
    /// A template that does not start with `/`, is malformed, or conflicts with another.
    pub fn new<I, T>(templates: I) -> Result<Self, RouteError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut rules = Self::default();
        let mut router = matchit::Router::new();
        for template in templates {
            let template = template.as_ref().trim();
            if !template.starts_with('/') {
                return Err(RouteError::NotAbsolute {
                    template: template.to_owned(),
                });
            }
            router
                .insert(template, rules.templates.len())
                .map_err(|error| RouteError::Invalid {
                    template: template.to_owned(),
                    reason: error.to_string(),
                })?;
            rules.templates.push(template.into());
        }
        rules.given = rules.templates.len();
        if !rules.templates.is_empty() {
            rules.router = Some(router);
        }
        Ok(rules)
    }

    /// These rules with `learned` templates added after the given ones (the `http_route` values
    /// a service exports: see [`reconcile`](crate::reconcile)), replacing those learned before.
    /// A learned template that is malformed, conflicts with another, or repeats one is left out;
    /// the reasons are returned.
    pub fn with_learned<I, T>(&self, learned: I) -> (Self, Vec<RouteError>)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut rules = Self {
            templates: self.templates[..self.given].to_vec(),
            given: self.given,
            router: None,
            strip_prefix: self.strip_prefix.clone(),
        };
        let mut router = matchit::Router::new();
        for (index, template) in rules.templates.iter().enumerate() {
            // Inserted before: they cannot fail again.
            let _ = router.insert(&**template, index);
        }
        let mut refused = Vec::new();
        for template in learned {
            let template = template.as_ref().trim();
            if rules.templates.iter().any(|known| **known == *template) {
                continue;
            }
            if !template.starts_with('/') {
                refused.push(RouteError::NotAbsolute {
                    template: template.to_owned(),
                });
                continue;
            }
            match router.insert(template, rules.templates.len()) {
                Ok(()) => rules.templates.push(template.into()),
                Err(error) => refused.push(RouteError::Invalid {
                    template: template.to_owned(),
                    reason: error.to_string(),
                }),
            }
        }
        if !rules.templates.is_empty() {
            rules.router = Some(router);
        }
        (rules, refused)
    }

    /// These rules cutting `prefix` from the front of every path before matching it (a proxy
    /// that strips `/api` before passing `/api/users/7` on as `/users/7`); a path that does
    /// not start with it is matched as it is.
    #[must_use]
    pub fn with_strip_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        self.strip_prefix = (!prefix.is_empty()).then(|| prefix.into());
        self
    }

    /// The prefix cut from paths, if any.
    pub fn strip_prefix(&self) -> Option<&str> {
        self.strip_prefix.as_deref()
    }

    /// Rules from a routes file: one template per line; blank lines and `#` comments ignored.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), naming the offending template.
    pub fn from_file_text(text: &str) -> Result<Self, RouteError> {
        Self::new(
            text.lines()
                .map(|line| line.split('#').next().unwrap_or("").trim())
                .filter(|line| !line.is_empty()),
        )
    }

    /// The given templates, in the order given (the learned ones are not part of what a
    /// checkpoint was made with: they follow the services).
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.templates[..self.given].iter().map(AsRef::as_ref)
    }

    /// The learned templates, in the order learned.
    pub fn learned(&self) -> impl Iterator<Item = &str> {
        self.templates[self.given..].iter().map(AsRef::as_ref)
    }

    /// Writes the route of `target` into `route` (replacing its content).
    pub fn route_into(&self, target: Option<&[u8]>, route: &mut Vec<u8>) {
        route.clear();
        let Some(mut path) = target.and_then(path_of) else {
            route.extend_from_slice(UNMATCHED_ROUTE.as_bytes());
            return;
        };
        if let Some(prefix) = &self.strip_prefix
            && let Some(rest) = path.strip_prefix(prefix.as_bytes())
        {
            match rest.first() {
                None => path = b"/",
                Some(b'/') => path = rest,
                // `/apiary` does not start with the prefix `/api`.
                Some(_) => {}
            }
        }
        match &self.router {
            Some(router) => {
                let template = std::str::from_utf8(path)
                    .ok()
                    .and_then(|path| router.at(path).ok())
                    .map(|matched| &*self.templates[*matched.value]);
                route.extend_from_slice(template.unwrap_or(UNMATCHED_ROUTE).as_bytes());
            }
            None => normalise_into(path, route),
        }
    }
}

/// The path of a request target: absolute-form reduced, query and fragment cut; `None` when the
/// target is not a path (`*`, garbage).
fn path_of(target: &[u8]) -> Option<&[u8]> {
    let target = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => &target[..end],
        None => target,
    };
    if target.first() == Some(&b'/') {
        return Some(target);
    }
    let rest = strip_scheme(target)?;
    match rest.iter().position(|&b| b == b'/') {
        Some(start) => Some(&rest[start..]),
        None => Some(b"/"),
    }
}

fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    (!scheme.is_empty() && scheme.iter().all(u8::is_ascii_alphabetic))
        .then(|| &target[scheme_end + 3..])
}

fn normalise_into(path: &[u8], route: &mut Vec<u8>) {
    for (n, segment) in path.split(|&b| b == b'/').enumerate() {
        if n > 0 {
            route.push(b'/');
        }
        if looks_like_id(segment) {
            route.extend_from_slice(ID_SEGMENT);
        } else {
            route.extend_from_slice(segment);
        }
    }
}

/// Numeric, a UUID, or a hex hash of 12 or more digits with at least one decimal digit (so that
/// words such as `deadbeefcafe` keep their name).
fn looks_like_id(segment: &[u8]) -> bool {
    if segment.is_empty() {
        return false;
    }
    if segment.iter().all(u8::is_ascii_digit) {
        return true;
    }
    is_uuid(segment)
        || (segment.len() >= 12
            && segment.iter().all(u8::is_ascii_hexdigit)
            && segment.iter().any(u8::is_ascii_digit))
}

fn is_uuid(segment: &[u8]) -> bool {
    segment.len() == 36
        && segment.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route_of(rules: &RouteRules, target: &str) -> String {
        let mut route = Vec::new();
        rules.route_into(Some(target.as_bytes()), &mut route);
        String::from_utf8(route).unwrap()
    }

    #[test]
    fn learned_templates_come_after_the_given_ones_and_replace_those_learned_before() {
        let given = RouteRules::new(["/users/me"]).unwrap();
        let (rules, refused) = given.with_learned([
            "/users/{id}",
            "/users/me",
            "orders",
            "/users/{name}",
            "/files/{*path}",
        ]);
        assert_eq!(rules.templates().collect::<Vec<_>>(), ["/users/me"]);
        assert_eq!(
            rules.learned().collect::<Vec<_>>(),
            ["/users/{id}", "/files/{*path}"]
        );
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            matches!(&refused[0], RouteError::NotAbsolute { template } if template == "orders")
        );
        assert!(
            matches!(&refused[1], RouteError::Invalid { template, .. } if template == "/users/{name}")
        );
        assert_eq!(route_of(&rules, "/users/me"), "/users/me");
        assert_eq!(route_of(&rules, "/users/42?x=1"), "/users/{id}");
        assert_eq!(route_of(&rules, "/files/a/b.txt"), "/files/{*path}");
        assert_eq!(route_of(&rules, "/orders/1"), UNMATCHED_ROUTE);

        let (relearned, _) = rules.with_learned(["/orders/{id}"]);
        assert_eq!(relearned.learned().collect::<Vec<_>>(), ["/orders/{id}"]);
        assert_eq!(route_of(&relearned, "/users/42"), UNMATCHED_ROUTE);
        assert_eq!(route_of(&relearned, "/orders/1"), "/orders/{id}");
    }

    #[test]
    fn the_stripped_prefix_is_cut_only_at_a_segment_boundary() {
        let (rules, _) = RouteRules::auto()
            .with_strip_prefix("/api/")
            .with_learned(["/users/{id}", "/"]);
        assert_eq!(rules.strip_prefix(), Some("/api"));
        assert_eq!(route_of(&rules, "/api/users/7"), "/users/{id}");
        assert_eq!(route_of(&rules, "http://shop/api/users/7?q"), "/users/{id}");
        assert_eq!(route_of(&rules, "/api"), "/");
        assert_eq!(route_of(&rules, "/apiary/users/7"), UNMATCHED_ROUTE);
        assert_eq!(route_of(&rules, "/users/7"), "/users/{id}");
        let auto = RouteRules::auto().with_strip_prefix("/api");
        assert_eq!(route_of(&auto, "/api/orders/12"), "/orders/{id}");
    }

    fn route(rules: &RouteRules, target: &[u8]) -> String {
        let mut out = Vec::new();
        rules.route_into(Some(target), &mut out);
        String::from_utf8(out).expect("utf-8 in tests")
    }

    #[test]
    fn templates_match_one_segment_or_the_rest() {
        let rules = RouteRules::new(["/api/users/{id}", "/api/users/me", "/static/{*file}"])
            .expect("valid templates");
        assert_eq!(route(&rules, b"/api/users/42"), "/api/users/{id}");
        assert_eq!(route(&rules, b"/api/users/me"), "/api/users/me");
        assert_eq!(route(&rules, b"/api/users/42/orders"), "(other)");
        assert_eq!(route(&rules, b"/static/css/site.css"), "/static/{*file}");
        assert_eq!(route(&rules, b"/api/users/7?x=1#top"), "/api/users/{id}");
        assert_eq!(
            route(&rules, b"https://h:8443/api/users/7"),
            "/api/users/{id}"
        );
        assert_eq!(route(&rules, b"/api/users/\xff"), "(other)");
        assert_eq!(route(&rules, b"*"), "(other)");
        let mut out = b"stale".to_vec();
        rules.route_into(None, &mut out);
        assert_eq!(out, b"(other)");
    }

    #[test]
    fn bad_templates_are_refused_by_name() {
        assert_eq!(
            RouteRules::new(["users/{id}"]).unwrap_err().to_string(),
            "route template \"users/{id}\" must start with '/'"
        );
        let conflict = RouteRules::new(["/u/{id}", "/u/{name}"]).unwrap_err();
        assert!(
            matches!(conflict, RouteError::Invalid { ref template, .. } if template == "/u/{name}")
        );
    }

    #[test]
    fn a_routes_file_skips_comments_and_blank_lines() {
        let rules = RouteRules::from_file_text("# routes\n/a/{id}\n\n/b  # the b route\n")
            .expect("valid file");
        assert_eq!(rules.templates().collect::<Vec<_>>(), ["/a/{id}", "/b"]);
    }

    #[test]
    fn automatic_normalisation_replaces_ids() {
        let auto = RouteRules::auto();
        assert_eq!(route(&auto, b"/users/42"), "/users/{id}");
        assert_eq!(
            route(&auto, b"/orders/123e4567-e89b-12d3-a456-426614174000/items"),
            "/orders/{id}/items"
        );
        assert_eq!(
            route(&auto, b"/blobs/9f86d081884c7d659a2feaa0c55ad015"),
            "/blobs/{id}"
        );
        assert_eq!(route(&auto, b"/deadbeefcafe"), "/deadbeefcafe");
        assert_eq!(route(&auto, b"/v2/abc"), "/v2/abc");
        assert_eq!(route(&auto, b"/"), "/");
        assert_eq!(route(&auto, b"/a//b/"), "/a//b/");
        assert_eq!(route(&auto, b"/search?q=42"), "/search");
        assert_eq!(route(&auto, b"http://example.com"), "/");
        assert_eq!(route(&auto, b"garbage"), "(other)");
    }

    proptest! {
        #[test]
        fn routing_never_panics(target in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut out = Vec::new();
            RouteRules::auto().route_into(Some(&target), &mut out);
            let rules = RouteRules::new(["/a/{id}", "/s/{*rest}"]).expect("valid");
            rules.route_into(Some(&target), &mut out);
        }
    }
}
