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
                let name = h.strip_prefix('.').unwrap_or(h);
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                    || name.starts_with('[') && name.ends_with(']');
                if ok {
                    Ok(h.to_ascii_lowercase())
                } else {
                    Err(ConfigError::InvalidHost {
                        value: h.to_owned(),
                        why: "expected a host name such as example.com or .example.com, \
                              without scheme, port or path"
                            .to_owned(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(hosts))
    }

    /// Whether the request's `Host` (or, in HTTP/2, its authority) is allowed.
    pub(crate) fn allows(&self, parts: &Parts) -> bool {
        let host = match parts.headers.get(http::header::HOST) {
            Some(h) => h.to_str().ok(),
            None => parts.uri.authority().map(|a| a.as_str()),
        };
        let Some(host) = host.map(strip_port) else {
            return false;
        };
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

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
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

    #[test]
    fn matching() {
        let hosts = AllowedHosts::new(["api.example.com", ".example.org", "[::1]"]).unwrap();
        for ok in [
            "api.example.com",
            "API.example.com:8443",
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
        ] {
            assert!(!hosts.allows(&parts(bad)), "{bad}");
        }
        let no_host = http::Request::get("/").body(()).unwrap().into_parts().0;
        assert!(!hosts.allows(&no_host));
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
