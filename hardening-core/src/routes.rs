//! Route patterns in axum's syntax, matched against the request's path as axum's router
//! matches it: the routes given a larger body limit ([`Hardening::allow_larger_body`]) and
//! those left out of the rate limit ([`Hardening::allow_route_without_rate_limit`]).
//!
//! A pattern is whole segments: literal ones, `{name}` (one segment) and a trailing
//! `{*name}` (the rest of the path). A path matches byte for byte, as axum's router
//! (matchit) compares it: no percent-decoding, no merging of slashes, no trailing slash
//! ignored, case counts. So `//upload`, `/upload/`, `/Upload` and `/upl%6Fad`, which axum
//! does not route to `/upload`, are not `/upload`'s: they keep the default. A parameter
//! matches a non-empty segment and a catch-all a non-empty rest, never more than axum routes
//! to them (its catch-all takes no empty rest, nor its parameter an empty last segment), so a
//! route's setting never reaches a path its route does not serve. axum does route an empty
//! segment in the middle (`/docs//file` to `/docs/{id}/file`): that path keeps the default
//! here, the stricter side.
//!
//! [`Hardening::allow_larger_body`]: crate::Hardening::allow_larger_body
//! [`Hardening::allow_route_without_rate_limit`]: crate::Hardening::allow_route_without_rate_limit

use std::cmp::Ordering;

use crate::ConfigError;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// A route pattern such as `/docs/{id}/file` or `/files/{*path}`.
#[derive(Debug, Clone)]
pub(crate) struct RoutePattern {
    /// As given, for messages.
    text: Box<str>,
    /// The segments after the leading `/` (split at each `/`), the catch-all left out.
    segments: Box<[Segment]>,
    /// Ends with `{*name}`: one or more bytes of path after the segments and their `/`.
    catch_all: bool,
    /// Only literal segments: a path matches when it is `text`.
    literal: bool,
}

impl RoutePattern {
    /// Parses `text`, given to the builder method `setting` (which errors name).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRoute`] for a pattern that cannot match a request's path (not
    /// starting with `/`, a character no path has, a parameter not a whole segment, a
    /// catch-all not at the end) or one this matcher does not take (`{{`).
    pub(crate) fn parse(text: &str, setting: &'static str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| ConfigError::InvalidRoute {
            setting,
            value: text.to_owned(),
            why: why.to_owned(),
        };
        let Some(after_slash) = text.strip_prefix('/') else {
            return Err(invalid(
                "a route starts with `/`, as axum's do (such as /upload)",
            ));
        };
        let mut segments = Vec::new();
        let mut catch_all = false;
        let mut parts = after_slash.split('/').peekable();
        while let Some(part) = parts.next() {
            if part.contains("{{") || part.contains("}}") {
                return Err(invalid(
                    "literal braces (`{{`, `}}` in axum's routes) are not taken here",
                ));
            }
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if let Some(name) = name.strip_prefix('*') {
                    if parts.peek().is_some() {
                        return Err(invalid(
                            "a catch-all `{*name}` can only be the last segment",
                        ));
                    }
                    check_param_name(name).map_err(invalid)?;
                    catch_all = true;
                } else {
                    check_param_name(name).map_err(invalid)?;
                    segments.push(Segment::Param);
                }
            } else if part.contains(['{', '}']) {
                return Err(invalid(
                    "a parameter is a whole segment, `{name}` or a last `{*name}`",
                ));
            } else {
                check_literal(part).map_err(invalid)?;
                segments.push(Segment::Literal(part.into()));
            }
        }
        let literal = !catch_all && segments.iter().all(|s| matches!(s, Segment::Literal(_)));
        Ok(Self {
            text: text.into(),
            segments: segments.into(),
            catch_all,
            literal,
        })
    }

    /// The pattern as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (a request's, as the router sees it) is this route's.
    fn matches(&self, path: &str) -> bool {
        if self.literal {
            return path == &*self.text;
        }
        let Some(mut rest) = path.strip_prefix('/') else {
            return false;
        };
        let last = self.segments.len().checked_sub(1);
        for (i, segment) in self.segments.iter().enumerate() {
            let (head, tail) = match rest.bytes().position(|b| b == b'/') {
                Some(slash) => (&rest[..slash], Some(&rest[slash + 1..])),
                None => (rest, None),
            };
            let matched = match segment {
                Segment::Literal(literal) => head == &**literal,
                Segment::Param => !head.is_empty(),
            };
            if !matched {
                return false;
            }
            match tail {
                Some(tail) => rest = tail,
                // The path ends here: so must the pattern.
                None => return Some(i) == last && !self.catch_all,
            }
        }
        // Every segment matched and the path goes on (or, with no segments, is what
        // follows its first `/`): only a catch-all takes the rest, if there is any.
        self.catch_all && !rest.is_empty()
    }

    /// Which of two patterns a path both match is routed to: the one whose first segment
    /// that differs in kind is the more specific (literal, then parameter, then catch-all),
    /// as axum's router prefers them. `Equal` for two that match the same paths.
    fn specificity(&self, other: &Self) -> Ordering {
        self.kinds().cmp(other.kinds())
    }

    /// Each segment's kind, most specific lowest: 0 literal, 1 parameter, 2 catch-all.
    fn kinds(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Param => 1,
            })
            .chain(self.catch_all.then_some(2))
    }

    /// Whether the two match exactly the same paths (they differ at most in parameter names).
    fn same_paths(&self, other: &Self) -> bool {
        self.segments == other.segments && self.catch_all == other.catch_all
    }
}

/// A parameter's name: not empty, no `*`, `{` or `}` (axum refuses those too).
fn check_param_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.contains(['*', '{', '}']) {
        return Err(
            "a parameter's name is not empty and has no `*`, `{` or `}`, as in {id} or {*path}",
        );
    }
    Ok(())
}

/// A literal segment holds only what a request's path can: what `http` accepts in one,
/// without a `?` or `#` (which end the path) or a space.
fn check_literal(segment: &str) -> Result<(), &'static str> {
    let ends_path = segment.contains(['?', '#']);
    let parsed = http::uri::PathAndQuery::try_from(format!("/{segment}"));
    if ends_path || parsed.is_err() {
        return Err(
            "it has a character no request path has (a path ends at `?` or `#`; write a \
             space or a control character percent-encoded, as clients send it: %20)",
        );
    }
    Ok(())
}

/// Routes, each with its setting (`T`), the most specific pattern first: the first that
/// matches a path is the route axum sends it to, of these.
#[derive(Debug, Clone)]
pub(crate) struct Routes<T> {
    routes: Vec<(RoutePattern, T)>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> Routes<T> {
    /// Adds `pattern` with its `value`, for the builder method `setting`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRoute`] when a pattern given before matches the same paths
    /// (axum refuses such routes too).
    pub(crate) fn add(
        &mut self,
        pattern: RoutePattern,
        value: T,
        setting: &'static str,
    ) -> Result<(), ConfigError> {
        if let Some((given, _)) = self.routes.iter().find(|(p, _)| p.same_paths(&pattern)) {
            return Err(ConfigError::InvalidRoute {
                setting,
                value: pattern.as_str().to_owned(),
                why: format!(
                    "it matches the same paths as {:?}, given before: give each route once",
                    given.as_str()
                ),
            });
        }
        let at = self
            .routes
            .partition_point(|(p, _)| p.specificity(&pattern) != Ordering::Greater);
        self.routes.insert(at, (pattern, value));
        Ok(())
    }

    /// Each pattern and its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&RoutePattern, &T)> {
        self.routes.iter().map(|(p, value)| (p, value))
    }

    /// Whether no route is listed: the check a request pays when none is.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The value of the first pattern `path` matches. Out of line: only a layer with routes
    /// listed asks.
    #[inline(never)]
    pub(crate) fn matching(&self, path: &str) -> Option<&T> {
        self.routes
            .iter()
            .find(|(pattern, _)| pattern.matches(path))
            .map(|(_, value)| value)
    }
}

/// The larger body limits ([`Hardening::allow_larger_body`](crate::Hardening::allow_larger_body)).
pub(crate) type RouteBodyLimits = Routes<usize>;

impl RouteBodyLimits {
    /// The body limit of a request to `path`: its route's, if one is listed and larger,
    /// else `default`. With none listed, one comparison.
    #[inline]
    pub(crate) fn limit_for(&self, path: &str, default: usize) -> usize {
        if self.is_empty() {
            return default;
        }
        self.matching(path)
            .map_or(default, |limit| (*limit).max(default))
    }
}

#[cfg(feature = "ratelimit")]
/// The routes left out of `Hardening`'s rate limit
/// ([`Hardening::allow_route_without_rate_limit`](crate::Hardening::allow_route_without_rate_limit)).
pub(crate) type RateLimitExempt = Routes<()>;

#[cfg(feature = "ratelimit")]
impl RateLimitExempt {
    /// Whether a request to `path` is left out of the rate limit. With none listed, one
    /// comparison.
    #[inline]
    pub(crate) fn exempts(&self, path: &str) -> bool {
        !self.is_empty() && self.matching(path).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn pattern(text: &str) -> RoutePattern {
        RoutePattern::parse(text, "allow_larger_body").unwrap()
    }

    #[test]
    fn a_literal_route_matches_its_path_only_as_axum_routes_it() {
        let upload = pattern("/upload");
        assert!(upload.matches("/upload"));
        // Spellings axum routes elsewhere (a 404, or another route).
        for path in [
            "//upload",
            "/upload/",
            "/upload//",
            "/Upload",
            "/UPLOAD",
            "/upl%6Fad",
            "/upl%6fad",
            "/%2Fupload",
            "/./upload",
            "/x/../upload",
            "/upload/x",
            "/uploads",
            "/uploa",
            "upload",
            "",
            "/",
            "*",
        ] {
            assert!(!upload.matches(path), "{path:?}");
        }
        let root = pattern("/");
        assert!(root.matches("/"));
        assert!(!root.matches("//"));
        assert!(!root.matches("/a"));
        let slash = pattern("/upload/");
        assert!(slash.matches("/upload/"));
        assert!(!slash.matches("/upload"));
        assert!(!slash.matches("/upload//"));
    }

    #[test]
    fn a_parameter_matches_one_non_empty_segment() {
        let file = pattern("/docs/{id}/file");
        for path in ["/docs/7/file", "/docs/a%2Fb/file", "/docs/..%2F/file"] {
            assert!(file.matches(path), "{path:?}");
        }
        for path in [
            // axum routes this one to the pattern (an empty `id`): it keeps the default.
            "/docs//file",
            "/docs/7/file/",
            "/docs/7/8/file",
            "/docs/7",
            "/docs/7/",
            "/docs/7/File",
            "/docs/file",
            "//docs/7/file",
        ] {
            assert!(!file.matches(path), "{path:?}");
        }
        let last = pattern("/docs/{id}");
        assert!(last.matches("/docs/7"));
        assert!(!last.matches("/docs/"));
        assert!(!last.matches("/docs"));
        assert!(!last.matches("/docs/7/"));
    }

    #[test]
    fn a_catch_all_matches_a_non_empty_rest() {
        let files = pattern("/files/{*path}");
        for path in [
            "/files/a",
            "/files/a/b",
            "/files/a/",
            "/files//a",
            "/files/%2F",
        ] {
            assert!(files.matches(path), "{path:?}");
        }
        for path in ["/files", "/files/", "//files/a", "/filesa", "/Files/a"] {
            assert!(!files.matches(path), "{path:?}");
        }
        let everything = pattern("/{*path}");
        assert!(everything.matches("/a"));
        assert!(everything.matches("//"));
        assert!(!everything.matches("/"));
        let under_param = pattern("/users/{id}/files/{*path}");
        assert!(under_param.matches("/users/7/files/a/b"));
        assert!(!under_param.matches("/users/7/files/"));
        assert!(!under_param.matches("/users//files/a"));
    }

    #[test]
    fn patterns_that_cannot_match_are_refused_with_what_to_change() {
        for (text, why) in [
            ("", "starts with `/`"),
            ("upload", "starts with `/`"),
            ("*", "starts with `/`"),
            ("/up load", "no request path has"),
            ("/upload?x=1", "no request path has"),
            ("/upload#top", "no request path has"),
            ("/up\tload", "no request path has"),
            ("/files/{*path}/x", "last segment"),
            ("/files/{*path}/", "last segment"),
            ("/docs/{}", "parameter's name"),
            ("/docs/{*}", "parameter's name"),
            ("/docs/{a*b}", "parameter's name"),
            ("/docs/{**a}", "parameter's name"),
            ("/docs/{id}.pdf", "whole segment"),
            ("/docs/x{id}", "whole segment"),
            ("/docs/{{id}}", "literal braces"),
            ("/docs/a}}b", "literal braces"),
            ("/docs/a}b", "whole segment"),
            ("/docs/{id", "whole segment"),
        ] {
            let err = RoutePattern::parse(text, "allow_larger_body").unwrap_err();
            let message = err.to_string();
            assert!(message.contains(why), "{text:?}: {message}");
            assert!(
                message.contains(&format!("{text:?}")),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn the_most_specific_pattern_wins_as_in_axum() {
        let mut limits = RouteBodyLimits::default();
        // Given least specific first: the order given does not matter.
        limits
            .add(pattern("/files/{*path}"), 100, "allow_larger_body")
            .unwrap();
        limits
            .add(pattern("/files/{id}/raw"), 200, "allow_larger_body")
            .unwrap();
        limits
            .add(pattern("/files/big/raw"), 300, "allow_larger_body")
            .unwrap();
        limits
            .add(pattern("/files/{id}"), 400, "allow_larger_body")
            .unwrap();
        assert_eq!(limits.limit_for("/files/big/raw", 10), 300);
        assert_eq!(limits.limit_for("/files/7/raw", 10), 200);
        assert_eq!(limits.limit_for("/files/7", 10), 400);
        assert_eq!(limits.limit_for("/files/7/raw/x", 10), 100);
        assert_eq!(limits.limit_for("/files/big/raw/", 10), 100);
        assert_eq!(limits.limit_for("/other", 10), 10);
        // Never below the default.
        assert_eq!(limits.limit_for("/files/7", 1000), 1000);
        assert_eq!(RouteBodyLimits::default().limit_for("/files/7", 10), 10);
    }

    /// With none listed, nothing is exempt (and nothing is matched); with some, a path
    /// matching any of them, and only such a path.
    #[cfg(feature = "ratelimit")]
    #[test]
    fn exempt_routes_are_the_paths_their_patterns_match() {
        let setting = "allow_route_without_rate_limit";
        let mut exempt = RateLimitExempt::default();
        assert!(!exempt.exempts("/webhooks/stripe"));
        for route in ["/webhooks/stripe", "/hooks/{provider}", "/files/{*path}"] {
            let pattern = RoutePattern::parse(route, setting).unwrap();
            exempt.add(pattern, (), setting).unwrap();
        }
        for path in ["/webhooks/stripe", "/hooks/github", "/files/a/b"] {
            assert!(exempt.exempts(path), "{path:?}");
        }
        for path in [
            "//webhooks/stripe",
            "/webhooks/stripe/",
            "/webhooks/strip%65",
            "/Webhooks/stripe",
            "/hooks/",
            "/hooks/github/",
            "/files/",
            "/other",
        ] {
            assert!(!exempt.exempts(path), "{path:?}");
        }
    }

    #[test]
    fn a_route_given_twice_is_refused() {
        let mut limits = RouteBodyLimits::default();
        limits
            .add(pattern("/docs/{id}/file"), 100, "allow_larger_body")
            .unwrap();
        let err = limits
            .add(pattern("/docs/{name}/file"), 200, "allow_larger_body")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("same paths as \"/docs/{id}/file\""),
            "{err}"
        );
        limits
            .add(pattern("/docs/{id}/file/"), 200, "allow_larger_body")
            .unwrap();
        limits
            .add(pattern("/docs/{id}/{*rest}"), 200, "allow_larger_body")
            .unwrap();
    }
}
