//! Host allowlist, like Django's `ALLOWED_HOSTS`.

use http::request::Parts;

use crate::ConfigError;

/// The hosts a service answers for. `example.com` matches exactly; `.example.com` matches
/// `example.com` and every subdomain. Ports are ignored; matching ignores case.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub(crate) fn new<I>(hosts: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let hosts = hosts
            .into_iter()
            .map(|h| {
                let h = h.as_ref();
                pattern(h).ok_or_else(|| ConfigError::InvalidHost {
                    value: h.to_owned(),
                    why: "expected a host name such as example.com or .example.com, or a \
                          bracketed IPv6 address such as [::1], without scheme, port or path"
                        .to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err(ConfigError::InvalidHost {
                value: String::new(),
                why: "an empty allowlist would refuse every request; list the hosts this \
                      service answers to, or do not set one to accept any host"
                    .to_owned(),
            });
        }
        Ok(Self(hosts))
    }

    /// Whether the request's host ([`request_host`]) is allowed.
    pub(crate) fn allows(&self, parts: &Parts) -> bool {
        request_host(parts).is_some_and(|host| self.matches(host))
    }

    fn matches(&self, host: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_prefix('.') {
                Some(domain) => {
                    host.eq_ignore_ascii_case(domain)
                        || host.len() > domain.len()
                            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
                }
                None => host.eq_ignore_ascii_case(pattern),
            })
    }
}

/// A host pattern as [`AllowedHosts::matches`] compares it: lower case (an IPv6 address in
/// its canonical form), without the one
/// trailing dot a fully qualified name may end with (requests' hosts lose theirs too, so a
/// pattern keeping it would match nothing). `None` for what no request's host can match: an
/// empty label, a label over 63 bytes or with `-` at an end, a character outside DNS
/// names, a bracketed text that is not an IPv6 address, or a leading dot before one.
fn pattern(h: &str) -> Option<String> {
    if let Some(inside) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // In RFC 5952's form, as browsers write it in `Host` (`[0:0::1]` is `[::1]`).
        let address = inside.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{address}]"));
    }
    let (dot, name) = match h.strip_prefix('.') {
        Some(name) => (".", name),
        None => ("", h),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    // The check requests' hosts pass in `host_without_port`: a pattern must pass it too.
    hardening_errors::is_dns_name(name).then(|| format!("{dot}{}", name.to_ascii_lowercase()))
}

/// The one host a request names, without its port and one trailing dot: its one `Host`
/// header and, when the request target carries an authority (absolute form in HTTP/1.1,
/// which a server takes over `Host`, RFC 9112 §3.2.2; `:authority` in HTTP/2), that too,
/// naming the same host (RFC 9113 §8.3.1), so that no part of the stack routes, caches or
/// builds links by one a check did not look at. `None` for two `Host` headers (RFC 9112
/// §3.2: a bad request), neither, two that disagree, or a value that is not a plain host
/// name or bracketed IPv6 literal with an optional port (userinfo, a path, a query).
pub(crate) fn request_host(parts: &Parts) -> Option<&str> {
    let mut headers = parts.headers.get_all(http::header::HOST).iter();
    let header = headers.next().map(|h| h.as_bytes());
    if headers.next().is_some() {
        return None;
    }
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    match (header, authority) {
        (Some(header), Some(authority)) => {
            let host = host_name(header)?;
            host_name(authority)?
                .eq_ignore_ascii_case(host)
                .then_some(host)
        }
        (Some(one), None) | (None, Some(one)) => host_name(one),
        (None, None) => None,
    }
}

/// The host of a `Host` value or authority, without its port and one trailing dot, if it is
/// a plain DNS name or bracketed IPv6 literal (see [`hardening_errors::host_without_port`]).
fn host_name(value: &[u8]) -> Option<&str> {
    let host = hardening_errors::host_without_port(std::str::from_utf8(value).ok()?)?;
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty() && !host.ends_with('.')).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: &str) -> Parts {
        http::Request::get("/")
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// An IPv6 pattern was compared as written: `[0:0::1]` passed the build and matched no
    /// request, whose `Host` holds the canonical `[::1]`.
    #[test]
    fn an_ipv6_pattern_matches_its_canonical_form() {
        let hosts = AllowedHosts::new(["[0:0::1]", "[2001:DB8:0:0::A]"]).unwrap();
        for ok in ["[::1]", "[::1]:8080", "[2001:db8::a]"] {
            assert!(hosts.allows(&parts(ok)), "{ok}");
        }
        assert!(!hosts.allows(&parts("[::2]")));
    }

    #[test]
    fn matching() {
        let hosts = AllowedHosts::new(["api.example.com", ".example.org", "[::1]"]).unwrap();
        for ok in [
            "api.example.com",
            "API.example.com:8443",
            "API.EXAMPLE.COM.",
            "example.org",
            "a.b.example.org",
            "[::1]:3000",
        ] {
            assert!(hosts.allows(&parts(ok)), "{ok}");
        }
        for bad in [
            "example.com",
            "evilexample.org",
            "api.example.com.evil",
            "",
            "[::2]",
            // Only a whole host name with an optional numeric port counts: what follows
            // the allowed part must not smuggle in another host.
            "api.example.com:@evil.com",
            "api.example.com:80@evil.com",
            "evil.com/.example.org",
            "evil.com?.example.org",
            "evil.com#.example.org",
            "evil.com\\.example.org",
            "api.example.com:",
            "api.example.com:123456",
            "api.example.com:80:80",
            "api.example.com..",
            "[::1]x",
            "[]",
            ".",
            "api%2eexample.com",
            "example.org.evil",
            "api.example.com\tx",
        ] {
            assert!(!hosts.allows(&parts(bad)), "{bad}");
        }
        let mut not_utf8 = parts("api.example.com");
        not_utf8.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_bytes(b"api.example.com\xff").unwrap(),
        );
        assert!(!hosts.allows(&not_utf8));
        let no_host = http::Request::get("/").body(()).unwrap().into_parts().0;
        assert!(!hosts.allows(&no_host));
    }

    #[test]
    fn host_and_authority_must_name_the_same_host() {
        let hosts = AllowedHosts::new([".example.com"]).unwrap();
        let request = |uri: &str, host: &str| {
            http::Request::get(uri)
                .header("host", host)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert!(hosts.allows(&request("https://a.example.com/", "a.example.com")));
        assert!(hosts.allows(&request("https://a.example.com/", "A.example.com:443")));
        assert!(!hosts.allows(&request("https://a.example.com/", "b.example.com")));
        assert!(!hosts.allows(&request("https://b.example.com/", "a.example.com")));
    }

    #[test]
    fn patterns_no_host_can_match_fail_at_start_up() {
        for bad in [
            "[not an address]",
            "[example.com]",
            ".[::1]",
            "[]",
            "a..example.com",
            ".",
            "..example.com",
            "example.com..",
            "api.example.com:8443",
            "https://example.com",
            "ex ample.com",
            // Labels no request's `Host` may carry (see `host_without_port`).
            "-api.example.com",
            "api-.example.com",
            ".-example.com",
            &format!("{}.example.com", "a".repeat(64)),
        ] {
            assert!(AllowedHosts::new([bad]).is_err(), "{bad:?} accepted");
        }
        // No host at all would refuse every request: a mistake, not a policy.
        let empty = AllowedHosts::new(Vec::<String>::new()).unwrap_err();
        assert!(empty.to_string().contains("empty allowlist"), "{empty}");
        let longest_label = format!("{}.example.com", "a".repeat(63));
        assert!(
            AllowedHosts::new([&longest_label])
                .unwrap()
                .allows(&parts(&longest_label))
        );
        // A fully qualified name's trailing dot is dropped, as it is from requests' hosts.
        let hosts = AllowedHosts::new(["API.example.com.", ".example.org.", "[::1]"]).unwrap();
        for ok in [
            "api.example.com",
            "api.example.com.",
            "a.example.org.",
            "[::1]",
        ] {
            assert!(hosts.allows(&parts(ok)), "{ok}");
        }
    }

    #[test]
    fn a_trailing_dot_is_the_same_host() {
        let hosts = AllowedHosts::new(["api.example.com", ".example.org"]).unwrap();
        for ok in ["api.example.com.", "api.example.com.:443", "a.example.org."] {
            assert!(hosts.allows(&parts(ok)), "{ok}");
        }
    }

    #[test]
    fn two_host_headers_are_refused() {
        let hosts = AllowedHosts::new(["api.example.com"]).unwrap();
        let twice = http::Request::get("/")
            .header("host", "api.example.com")
            .header("host", "api.example.com")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(!hosts.allows(&twice));
    }

    #[test]
    fn the_request_targets_authority_is_checked_too() {
        let hosts = AllowedHosts::new(["api.example.com"]).unwrap();
        let with_target = |target: &str, host: Option<&str>| {
            let mut req = http::Request::get(target);
            if let Some(host) = host {
                req = req.header("host", host);
            }
            hosts.allows(&req.body(()).unwrap().into_parts().0)
        };
        // HTTP/1.1 absolute form: the target's authority is the host (RFC 9112 §3.2.2).
        assert!(!with_target("http://evil.com/", Some("api.example.com")));
        assert!(!with_target("http://api.example.com/", Some("evil.com")));
        assert!(with_target(
            "http://api.example.com/",
            Some("api.example.com")
        ));
        // HTTP/2 carries `:authority` alone.
        assert!(with_target("https://api.example.com:8443/", None));
        assert!(!with_target("https://user@api.example.com/", None));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "https://example.com",
            "example.com/path",
            "",
            ".",
            "exa mple.com",
        ] {
            assert!(AllowedHosts::new([bad]).is_err(), "{bad}");
        }
    }
}
