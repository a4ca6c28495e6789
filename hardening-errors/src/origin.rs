//! Origins as browsers write them in `Origin` (`https://app.example.com[:port]`), for the
//! lists of origins a service trusts: CORS and the CSRF check parse theirs here, at build
//! time, so that neither keeps an origin that would never match.
//!
//! ```
//! use hardening_errors::origin::parse_origin;
//!
//! assert_eq!(parse_origin("HTTPS://App.Example.com").unwrap(), "https://app.example.com");
//! let err = parse_origin("https://app.example.com:443").unwrap_err();
//! assert_eq!(err.value, "https://app.example.com:443");
//! assert!(err.why.contains("drop :443"), "{err}");
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use http::HeaderValue;

/// A configured origin that no browser would send: `why` says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin {value:?}: {why}")]
pub struct InvalidOrigin {
    /// The value given.
    pub value: String,
    /// What is wrong with it, and the fix.
    pub why: String,
}

/// `https://app.example.com[:port]`: a scheme, a host, maybe a port, nothing else, written
/// as browsers write it in `Origin` (anything else would be accepted and then never match).
/// The value returned has the scheme and host in lower case, as browsers send them.
pub fn parse_origin(origin: &str) -> Result<HeaderValue, InvalidOrigin> {
    let bad = |why: &str| InvalidOrigin {
        value: origin.to_owned(),
        why: why.to_owned(),
    };
    // Browsers write the scheme and host in lower case.
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host, such as https://app.example.com"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if rest.contains('*') {
        return Err(bad(
            "wildcards are not supported; list each origin, such as https://app.example.com",
        ));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad(
            "an origin has no path, query or user info; drop everything after the host and port",
        ));
    }
    // A DNS name, a dotted IPv4 address or a bracketed IPv6 address, then maybe `:` and a port.
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            let Ok(parsed) = address.parse::<Ipv6Addr>() else {
                return Err(bad("not an IPv6 address between [ and ]"));
            };
            let written = ipv6_as_browsers_write_it(parsed);
            if address != written {
                return Err(bad(&format!(
                    "browsers write this address as [{written}]; write it so"
                )));
            }
            match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None if after.is_empty() => (None, None),
                None => return Err(bad("only :port may follow the host")),
            }
        }
        None => match rest.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(rest), None),
        },
    };
    if let Some(host) = host {
        if !host.is_ascii() {
            return Err(bad(
                "write an internationalized domain name in its ASCII (xn--) form, as browsers send it",
            ));
        }
        // A name whose last label is a number is an IPv4 address to a browser (WHATWG URL).
        let last = host.rsplit('.').next().unwrap_or(host);
        let numeric = (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
            || last
                .strip_prefix("0x")
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if numeric && host.parse::<Ipv4Addr>().is_err() {
            return Err(bad(
                "browsers write an IPv4 address as four numbers from 0 to 255 without leading \
                 zeros, such as 127.0.0.1",
            ));
        }
        if !crate::is_dns_name(host) {
            return Err(bad(
                "the host must be a DNS name such as app.example.com or a bracketed IPv6 address",
            ));
        }
    }
    if let Some(port) = port {
        let number = port
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse::<u16>().ok())
            .flatten()
            .filter(|p| *p > 0 && !port.starts_with('0'));
        let Some(number) = number else {
            return Err(bad(
                "the port must be a number from 1 to 65535 without leading zeros",
            ));
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        if number == default_port {
            // Browsers leave the scheme's own port out of `Origin`: this would never match.
            return Err(bad(&format!(
                "browsers send an origin without its default port; drop :{default_port}"
            )));
        }
    }
    HeaderValue::from_str(&lower).map_err(|_| bad("not a valid header value"))
}

/// An IPv6 address as the WHATWG URL standard writes it: lower-case hex pieces, the first
/// longest run of two or more zero pieces as `::`, never a dotted IPv4 tail.
///
/// ```
/// use hardening_errors::origin::ipv6_as_browsers_write_it;
///
/// let address = "0:0:0:0:0:ffff:1.2.3.4".parse().unwrap();
/// assert_eq!(ipv6_as_browsers_write_it(address), "::ffff:102:304");
/// ```
pub fn ipv6_as_browsers_write_it(address: Ipv6Addr) -> String {
    // The standard library writes RFC 5952's form, the same but for a mapped IPv4 address,
    // which it ends in dotted decimal.
    match address.to_ipv4_mapped() {
        Some(v4) => {
            let [a, b, c, d] = v4.octets();
            format!(
                "::ffff:{:x}:{:x}",
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d])
            )
        }
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_written_as_browsers_write_it() {
        for (address, written) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            // One zero piece stays; of two equal runs the first is compressed.
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            // The longest run wins, wherever it is.
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("::ffff:1.2.3.4", "::ffff:102:304"),
        ] {
            let parsed = address.parse::<Ipv6Addr>().unwrap();
            assert_eq!(ipv6_as_browsers_write_it(parsed), written, "{address}");
        }
    }

    #[test]
    fn the_error_keeps_the_value_as_given() {
        let err = parse_origin("HTTPS://App.Example.com/").unwrap_err();
        assert_eq!(err.value, "HTTPS://App.Example.com/");
        assert!(
            err.to_string()
                .starts_with("invalid origin \"HTTPS://App.Example.com/\": an origin has no path"),
            "{err}"
        );
        assert_eq!(
            parse_origin("http://[::1]:8080").unwrap(),
            "http://[::1]:8080"
        );
    }

    /// Names are checked as requests' `Host` names are (`is_dns_name`).
    #[test]
    fn hosts_are_dns_names() {
        let long_label = format!("https://{}.example", "a".repeat(64));
        for bad in [
            "https://-app.example.com",
            "https://app-.example.com",
            &long_label,
        ] {
            let err = parse_origin(bad).unwrap_err();
            assert!(err.why.contains("must be a DNS name"), "{bad}: {err}");
        }
        assert!(parse_origin(&format!("https://{}.example", "a".repeat(63))).is_ok());
    }
}
