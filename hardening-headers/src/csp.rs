//! Content-Security-Policy: a builder, build-time validation, and the compiled header.

use http::HeaderValue;

use crate::{ConfigError, CspNonce};

/// Keywords that must be written in single quotes.
const KEYWORDS: &[&str] = &[
    "self",
    "none",
    "unsafe-inline",
    "unsafe-eval",
    "unsafe-hashes",
    "strict-dynamic",
    "report-sample",
    "wasm-unsafe-eval",
    "inline-speculation-rules",
];

/// A Content-Security-Policy.
///
/// [`Csp::api`] suits JSON APIs (nothing may load); [`Csp::html`] suits server-rendered
/// pages (scripts only with this response's nonce, `'strict-dynamic'`). Directives can be set
/// or removed; the policy is validated when the header set is built, as helmet does:
/// unquoted keywords and a missing `default-src` are errors.
///
/// ```
/// use hardening_headers::Csp;
///
/// let csp = Csp::html()
///     .directive("img-src", ["'self'", "https://images.example.com"])
///     .report_uri("/csp-report");
/// # let _ = csp;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Csp {
    directives: Vec<(String, Vec<String>)>,
    nonce: bool,
    report_only: bool,
    upgrade_insecure_requests: bool,
}

impl Csp {
    /// `default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`.
    pub fn api() -> Self {
        Self {
            directives: vec![
                d("default-src", &["'none'"]),
                d("frame-ancestors", &["'none'"]),
                d("base-uri", &["'none'"]),
                d("form-action", &["'self'"]),
            ],
            nonce: false,
            report_only: false,
            upgrade_insecure_requests: false,
        }
    }

    /// `default-src 'self'; script-src 'nonce-…' 'strict-dynamic'; object-src 'none';
    /// base-uri 'none'; frame-ancestors 'none'; form-action 'self'`, plus
    /// `upgrade-insecure-requests` on HTTPS responses.
    pub fn html() -> Self {
        Self {
            directives: vec![
                d("default-src", &["'self'"]),
                d("script-src", &["'strict-dynamic'"]),
                d("object-src", &["'none'"]),
                d("base-uri", &["'none'"]),
                d("frame-ancestors", &["'none'"]),
                d("form-action", &["'self'"]),
            ],
            nonce: true,
            report_only: false,
            upgrade_insecure_requests: true,
        }
    }

    /// Sets a directive's sources, replacing what it had.
    pub fn directive<I>(mut self, name: &str, sources: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let sources: Vec<String> = sources.into_iter().map(Into::into).collect();
        match self.directives.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s = sources,
            None => self.directives.push((name.to_owned(), sources)),
        }
        self
    }

    /// Removes a directive.
    pub fn remove_directive(mut self, name: &str) -> Self {
        self.directives.retain(|(n, _)| n != name);
        self
    }

    /// Sends violation reports to this URI (`report-uri`, which every browser supports).
    pub fn report_uri(self, uri: impl Into<String>) -> Self {
        self.directive("report-uri", [uri.into()])
    }

    /// Reports violations without blocking (`Content-Security-Policy-Report-Only`), to try a
    /// policy before enforcing it.
    pub fn report_only(mut self) -> Self {
        self.report_only = true;
        self
    }

    /// Validates and compiles the policy.
    pub(crate) fn compile(&self) -> Result<CompiledCsp, ConfigError> {
        if !self.directives.iter().any(|(n, _)| n == "default-src") {
            return Err(ConfigError::MissingDefaultSrc);
        }
        for (name, sources) in &self.directives {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                return Err(invalid(
                    name,
                    "a directive name is lower-case letters and '-'",
                ));
            }
            for source in sources {
                if KEYWORDS.contains(&source.as_str()) {
                    return Err(ConfigError::UnquotedKeyword {
                        directive: name.clone(),
                        keyword: source.clone(),
                    });
                }
                if source.is_empty()
                    || source.contains([';', ',', ' ', '\r', '\n'])
                    || !source.is_ascii()
                {
                    return Err(invalid(
                        name,
                        &format!("{source:?} is not a single source expression"),
                    ));
                }
                if source.starts_with("'nonce-") {
                    return Err(invalid(
                        name,
                        "nonces are added per response; do not write one into the policy",
                    ));
                }
            }
        }
        let render = |nonce: Option<&str>, tls: bool| {
            let mut out = String::new();
            for (name, sources) in &self.directives {
                if !out.is_empty() {
                    out.push_str("; ");
                }
                out.push_str(name);
                if let (Some(n), "script-src") = (nonce, name.as_str()) {
                    out.push_str(" 'nonce-");
                    out.push_str(n);
                    out.push('\'');
                }
                for s in sources {
                    out.push(' ');
                    out.push_str(s);
                }
            }
            if tls && self.upgrade_insecure_requests {
                out.push_str("; upgrade-insecure-requests");
            }
            out
        };
        let header = if self.report_only {
            http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY
        } else {
            http::header::CONTENT_SECURITY_POLICY
        };
        let nonce = self.nonce && self.directives.iter().any(|(n, _)| n == "script-src");
        let value = |tls| {
            hardening_errors::static_header_value(render(None, tls))
                .map_err(|_| invalid("*", "not a valid header value"))
        };
        Ok(CompiledCsp {
            header,
            plain: value(false)?,
            tls: value(true)?,
            // Split at the placeholder so a response only joins three strings.
            nonce_template: nonce.then(|| {
                let marker = "\u{0}";
                let (plain, tls) = (render(Some(marker), false), render(Some(marker), true));
                let split = |s: String| {
                    let (a, b) = s
                        .split_once(marker)
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .unwrap_or_default();
                    (a, b)
                };
                [split(plain), split(tls)]
            }),
        })
    }
}

fn d(name: &str, sources: &[&str]) -> (String, Vec<String>) {
    (
        name.to_owned(),
        sources.iter().map(|s| (*s).to_owned()).collect(),
    )
}

fn invalid(directive: &str, why: &str) -> ConfigError {
    ConfigError::InvalidCsp {
        directive: directive.to_owned(),
        why: why.to_owned(),
    }
}

/// The policy as header values, computed once.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCsp {
    pub(crate) header: http::HeaderName,
    plain: HeaderValue,
    tls: HeaderValue,
    /// `[(before, after) for plain HTTP, (before, after) for HTTPS]` around the nonce.
    nonce_template: Option<[(String, String); 2]>,
}

impl CompiledCsp {
    pub(crate) fn wants_nonce(&self) -> bool {
        self.nonce_template.is_some()
    }

    pub(crate) fn value(&self, tls: bool, nonce: Option<&CspNonce>) -> HeaderValue {
        match (&self.nonce_template, nonce) {
            (Some(templates), Some(nonce)) => {
                let (before, after) = &templates[usize::from(tls)];
                let mut s = String::with_capacity(before.len() + 24 + after.len());
                s.push_str(before);
                s.push_str(nonce.as_str());
                s.push_str(after);
                HeaderValue::from_str(&s).unwrap_or_else(|_| self.value(tls, None))
            }
            _ if tls => self.tls.clone(),
            _ => self.plain.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_policy() {
        let c = Csp::api().compile().unwrap();
        assert_eq!(
            c.value(true, None),
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        assert!(!c.wants_nonce());
    }

    #[test]
    fn html_policy_carries_the_nonce_and_upgrades_on_tls() {
        let c = Csp::html().compile().unwrap();
        let nonce = CspNonce::generate();
        let v = c.value(false, Some(&nonce));
        let v = v.to_str().unwrap();
        assert!(
            v.contains(&format!("script-src 'nonce-{nonce}' 'strict-dynamic'")),
            "{v}"
        );
        assert!(!v.contains("upgrade-insecure-requests"));
        let tls = c.value(true, Some(&nonce));
        assert!(
            tls.to_str()
                .unwrap()
                .ends_with("; upgrade-insecure-requests")
        );
    }

    #[test]
    fn validation() {
        assert_eq!(
            Csp::api()
                .directive("script-src", ["self"])
                .compile()
                .unwrap_err(),
            ConfigError::UnquotedKeyword {
                directive: "script-src".into(),
                keyword: "self".into()
            }
        );
        assert_eq!(
            Csp::api()
                .remove_directive("default-src")
                .compile()
                .unwrap_err(),
            ConfigError::MissingDefaultSrc
        );
        assert!(
            Csp::api()
                .directive("img-src", ["a; script-src *"])
                .compile()
                .is_err()
        );
        assert!(
            Csp::api()
                .directive("Img_Src", ["'self'"])
                .compile()
                .is_err()
        );
        assert!(
            Csp::api()
                .directive("script-src", ["'nonce-abc'"])
                .compile()
                .is_err()
        );
        let ro = Csp::api().report_only().compile().unwrap();
        assert_eq!(ro.header, http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY);
    }
}
