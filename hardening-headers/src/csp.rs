//! Content-Security-Policy: a builder, build-time validation, and the compiled header.

use http::HeaderValue;

use crate::{ConfigError, CspNonce, warn_loosened};

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

/// The directives browsers act on, as the header spells them. Content Security Policy
/// Level 3 §6 (w3c.github.io/webappsec-csp): the fetch directives, `webrtc`, the document
/// (`base-uri`, `sandbox`), navigation and reporting directives, and the ones it lists as
/// defined elsewhere: `upgrade-insecure-requests`, `block-all-mixed-content` (obsolete in
/// Mixed Content Level 2, as browsers now block mixed content themselves; taken, as it is
/// harmless and still read) and Trusted Types' two. Plus `fenced-frame-src` (the Fenced
/// Frame spec, shipped in Chromium). Browsers ignore a directive they do not know, so any
/// other name is refused; [`Csp::dangerous_unlisted_directive`] sets one newer than this list.
pub(crate) const DIRECTIVES: &[&str] = &[
    // Fetch directives.
    "child-src",
    "connect-src",
    "default-src",
    "fenced-frame-src",
    "font-src",
    "frame-src",
    "img-src",
    "manifest-src",
    "media-src",
    "object-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "worker-src",
    // Other directives.
    "webrtc",
    // Document directives.
    "base-uri",
    "sandbox",
    // Navigation directives.
    "form-action",
    "frame-ancestors",
    // Reporting directives.
    "report-uri",
    "report-to",
    // Directives defined in other documents.
    "upgrade-insecure-requests",
    "block-all-mixed-content",
    "require-trusted-types-for",
    "trusted-types",
];

/// Directives where a source that allows any host lets an attacker's scripts run (the
/// script directives, their fallbacks `default-src` and `child-src`, `object-src`), or undoes
/// what the preset's value is for (`base-uri`, `form-action`, `frame-ancestors`).
const ANY_HOST_LOOSENS: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "object-src",
    "worker-src",
    "child-src",
    "base-uri",
    "form-action",
    "frame-ancestors",
];

/// The presets' directives whose removal loosens the policy, each with why.
const GUARDS: &[(&str, &str)] = &[
    (
        "script-src",
        "without it scripts fall back to default-src, and no nonce is required",
    ),
    ("object-src", "without it plugins fall back to default-src"),
    (
        "base-uri",
        "it has no fallback: without it an injected <base> moves every relative URL",
    ),
    (
        "frame-ancestors",
        "it has no fallback: without it any site may frame these pages (clickjacking)",
    ),
    (
        "form-action",
        "it has no fallback: without it forms may post anywhere",
    ),
];

/// A Content-Security-Policy.
///
/// [`Csp::api`] suits JSON APIs (nothing may load); [`Csp::html`] suits server-rendered
/// pages (scripts and inline styles only with this response's nonce, `'strict-dynamic'`);
/// [`Csp::static_site`]
/// suits a front end served as files (scripts and styles from this origin's files, nothing
/// inline). Directives can be set
/// or removed; the policy is validated when the header set is built, as helmet does:
/// unquoted keywords and a missing `default-src` are errors, and so is loosening what the
/// presets guard without a `dangerous_*` method (see [`directive`](Csp::directive) and
/// [`remove_directive`](Csp::remove_directive)).
///
/// A directive is named as the header spells it (`script-src`), in any case, as browsers
/// read it, or in helmet's camelCase (`scriptSrc`); it goes out lower-case and dashed. A name
/// browsers do not know (`scirpt-src`, `img_src`) is a [`ConfigError::UnknownCspDirective`]
/// naming the method and the directive it is closest to: browsers would ignore it.
///
/// ```
/// use hardening_headers::{Csp, HeaderPolicy};
///
/// let csp = Csp::html()
///     .directive("img-src", ["'self'", "https://images.example.com"])
///     .report_uri("/csp-report");
/// assert!(HeaderPolicy::html().csp(csp).build().is_ok());
///
/// let inline = Csp::html().directive("script-src", ["'strict-dynamic'", "'unsafe-inline'"]);
/// let err = HeaderPolicy::html().csp(inline).build().unwrap_err();
/// assert!(err.to_string().contains("dangerous_directive"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Csp {
    directives: Vec<(String, Vec<String>)>,
    /// The response's nonce goes into `script-src`.
    script_nonce: bool,
    /// The response's nonce goes into `style-src` ([`Csp::without_style_nonce`]).
    style_nonce: bool,
    report_only: bool,
    upgrade_insecure_requests: bool,
    /// Directives last set with [`Csp::dangerous_directive`]: their sources are not checked
    /// for loosening.
    loosened: Vec<String>,
    /// [`GUARDS`] taken out with [`Csp::remove_directive`]: refused when compiled, unless set
    /// again.
    removed: Vec<String>,
    /// The first name a method could not take (an unknown directive): refused when compiled.
    misnamed: Option<ConfigError>,
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
            script_nonce: false,
            style_nonce: false,
            report_only: false,
            upgrade_insecure_requests: false,
            loosened: Vec::new(),
            removed: Vec::new(),
            misnamed: None,
        }
    }

    /// `default-src 'self'; script-src 'nonce-…' 'strict-dynamic'; style-src 'nonce-…'
    /// 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action
    /// 'self'`, plus `upgrade-insecure-requests` on HTTPS responses.
    ///
    /// Each response gets a new nonce ([`CspNonce`]): a `<script nonce="…">` or
    /// `<style nonce="…">` carrying it runs or applies; one without it, which the browser
    /// cannot tell from one an attacker injected, does not. Scripts it loads run
    /// (`'strict-dynamic'`); style sheets load from this origin (`'self'`: a host added to
    /// `default-src` does not reach them, list it in `style-src`). The nonce goes into
    /// `script-src` and `style-src` whatever sources [`directive`](Self::directive) gives
    /// them, and into no other directive (`script-src-elem`, `style-src-elem`);
    /// [`without_style_nonce`](Self::without_style_nonce) keeps it out of `style-src`.
    ///
    /// A `style="…"` attribute cannot carry a nonce, so none applies, nor does a
    /// `setAttribute("style", …)`; a class in a nonce `<style>` or a style sheet does the
    /// same, and so does a script setting `element.style.color` (CSSOM, which CSP does not
    /// restrict). Allowing attributes takes `'unsafe-hashes'` and each attribute's hash
    /// (`dangerous_directive("style-src-attr", ["'unsafe-hashes'", "'sha256-…'"])`), or
    /// `'unsafe-inline'`, which lets injected markup restyle the page (to overlay a fake
    /// login form, or read attributes through CSS selectors).
    ///
    /// ```
    /// use hardening_headers::{Csp, CspNonce, HeaderPolicy, RequestFacts};
    ///
    /// let headers = HeaderPolicy::html().csp(Csp::html()).build()?;
    /// let nonce = CspNonce::generate();
    /// let facts = RequestFacts { nonce: Some(nonce), ..RequestFacts::default() };
    /// let mut response = http::HeaderMap::new();
    /// headers.apply(&facts, &mut response);
    /// let csp = response["content-security-policy"].to_str().unwrap();
    /// assert!(csp.contains(&format!("script-src 'nonce-{nonce}' 'strict-dynamic';")), "{csp}");
    /// assert!(csp.contains(&format!("style-src 'nonce-{nonce}' 'self';")), "{csp}");
    /// # Ok::<(), hardening_headers::ConfigError>(())
    /// ```
    pub fn html() -> Self {
        Self {
            directives: vec![
                d("default-src", &["'self'"]),
                d("script-src", &["'strict-dynamic'"]),
                d("style-src", &["'self'"]),
                d("object-src", &["'none'"]),
                d("base-uri", &["'none'"]),
                d("frame-ancestors", &["'none'"]),
                d("form-action", &["'self'"]),
            ],
            script_nonce: true,
            style_nonce: true,
            report_only: false,
            upgrade_insecure_requests: true,
            loosened: Vec::new(),
            removed: Vec::new(),
            misnamed: None,
        }
    }

    /// For a front end built ahead of time and served as files (a Vite, webpack or Parcel
    /// bundle behind tower-http's `ServeDir`), whose `index.html` loads its scripts and
    /// styles with `<script src>` and `<link rel=stylesheet>` and cannot carry a per-response
    /// nonce:
    ///
    /// `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;
    /// font-src 'self' data:; connect-src 'self'; manifest-src 'self'; object-src 'none';
    /// base-uri 'none'; form-action 'self'; frame-ancestors 'none'`, plus
    /// `upgrade-insecure-requests` on HTTPS responses.
    ///
    /// Scripts, styles, fonts, the web app manifest and `fetch` (or WebSocket) calls reach
    /// this origin only; anything else (frames, media, another host) loads nothing. Inline
    /// `<script>`, event-handler attributes, `javascript:` URLs, `eval`, inline `<style>` and
    /// `style` attributes are refused: an injected one does not run, and neither does one of
    /// the page's own (move it into a file, or list its hash, `'sha256-…'`, with
    /// [`directive`](Self::directive)). `data:` images and fonts are allowed, as bundlers
    /// inline small assets that way (Vite below 4 KiB) and neither can run a script. Against
    /// helmet's default policy: no `https:` (any host) for fonts and styles and no
    /// `'unsafe-inline'` for styles, `default-src`, `base-uri` and `frame-ancestors` are
    /// `'none'` rather than `'self'`. No nonce: the policy is the same for every response,
    /// so pages and assets under it stay cacheable (the nonce pages' `Cache-Control` rule
    /// does not apply). Add a CDN or an API on another host with
    /// [`directive`](Self::directive) (`"connect-src", ["'self'", "https://api.example.com"]`).
    /// A page that renders inline scripts of its own wants [`Csp::html`] and its nonces.
    ///
    /// ```
    /// use hardening_headers::{Csp, HeaderPolicy, RequestFacts};
    ///
    /// let headers = HeaderPolicy::html().csp(Csp::static_site()).build()?;
    /// assert!(!headers.wants_nonce());
    /// let mut response = http::HeaderMap::new();
    /// headers.apply(&RequestFacts::default(), &mut response);
    /// let csp = response["content-security-policy"].to_str().unwrap();
    /// assert!(csp.contains("script-src 'self';"), "{csp}");
    /// assert!(!csp.contains("unsafe-inline"), "{csp}");
    /// # Ok::<(), hardening_headers::ConfigError>(())
    /// ```
    pub fn static_site() -> Self {
        Self {
            directives: vec![
                d("default-src", &["'none'"]),
                d("script-src", &["'self'"]),
                d("style-src", &["'self'"]),
                d("img-src", &["'self'", "data:"]),
                d("font-src", &["'self'", "data:"]),
                d("connect-src", &["'self'"]),
                d("manifest-src", &["'self'"]),
                d("object-src", &["'none'"]),
                d("base-uri", &["'none'"]),
                d("form-action", &["'self'"]),
                d("frame-ancestors", &["'none'"]),
            ],
            script_nonce: false,
            style_nonce: false,
            report_only: false,
            upgrade_insecure_requests: true,
            loosened: Vec::new(),
            removed: Vec::new(),
            misnamed: None,
        }
    }

    /// Keeps the response's nonce out of `style-src` ([`Csp::html`] puts it there): inline
    /// `<style>` elements no longer apply, nonce or not, and style sheets load as
    /// `style-src` says. Not a loosening: it allows less. It is what lets `'unsafe-inline'`
    /// in `style-src` work, which browsers ignore beside a nonce (CSP Level 2), so a
    /// policy with both is refused, naming this method.
    ///
    /// ```
    /// use hardening_headers::{Csp, CspNonce, HeaderPolicy, RequestFacts};
    ///
    /// let headers = HeaderPolicy::html().csp(Csp::html().without_style_nonce()).build()?;
    /// let facts = RequestFacts { nonce: Some(CspNonce::generate()), ..RequestFacts::default() };
    /// let mut response = http::HeaderMap::new();
    /// headers.apply(&facts, &mut response);
    /// let csp = response["content-security-policy"].to_str().unwrap();
    /// assert!(csp.contains("; style-src 'self';"), "{csp}");
    /// assert!(csp.contains("script-src 'nonce-"), "scripts keep theirs: {csp}");
    /// # Ok::<(), hardening_headers::ConfigError>(())
    /// ```
    pub fn without_style_nonce(mut self) -> Self {
        self.style_nonce = false;
        self
    }

    /// Sets a directive's sources, replacing what it had.
    ///
    /// Sources that loosen what the presets guard are refused when the policy is built, with a
    /// [`ConfigError::Loosening`] naming [`dangerous_directive`](Self::dangerous_directive):
    /// - an `'unsafe-…'` keyword (`'unsafe-inline'`, `'unsafe-eval'`, `'unsafe-hashes'`,
    ///   `'wasm-unsafe-eval'`), in any directive;
    /// - a source that allows any host: `*`, a host of `*` (`https://*`), a wildcard over a
    ///   top-level domain (`*.com`), or a scheme alone
    ///   (`https:`, `data:`, `blob:`, …), in `default-src`, the script directives
    ///   (`script-src`, `script-src-elem`, `script-src-attr`, `worker-src`, `child-src`,
    ///   `object-src`), `base-uri`, `form-action` or `frame-ancestors`;
    /// - anything but `'none'` in `frame-ancestors` (framing, as `X-Frame-Options: DENY`
    ///   forbids).
    ///
    /// `blob:` in `worker-src` is taken: only a script already running in the page can make
    /// a `blob:` URL, and many libraries start their workers from one.
    ///
    /// Listing hosts (`https://images.example.com`, `https://*.example.com`, `'self'`) is
    /// configuration, not loosening. Each source is one expression: whitespace (a tab too),
    /// `;` or `,` inside one is a [`ConfigError::InvalidCsp`], here and in
    /// [`dangerous_directive`](Self::dangerous_directive).
    pub fn directive<I>(mut self, name: &str, sources: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let Some(name) = self.known(name, "directive") else {
            return self;
        };
        self.loosened.retain(|n| n != name);
        self.set(name, sources);
        self
    }

    /// Sets a directive's sources, replacing what it had, with none of the checks for
    /// loosening of [`directive`](Self::directive) (the syntax is still checked). Logs a
    /// warning when a source is one `directive` refuses.
    ///
    /// ```
    /// use hardening_headers::{Csp, HeaderPolicy};
    ///
    /// // Browsers ignore 'unsafe-inline' beside a nonce, so it goes without the style nonce.
    /// let csp = Csp::html()
    ///     .without_style_nonce()
    ///     .dangerous_directive("style-src", ["'self'", "'unsafe-inline'"]);
    /// assert!(HeaderPolicy::html().csp(csp).build().is_ok());
    /// ```
    pub fn dangerous_directive<I>(mut self, name: &str, sources: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let Some(name) = self.known(name, "dangerous_directive") else {
            return self;
        };
        self.set(name, sources);
        if let Some((_, sources)) = self.directives.iter().find(|(n, _)| n == name)
            && sources.iter().any(|source| loosens(name, source).is_some())
        {
            warn_loosened(
                "Csp::dangerous_directive",
                &format!("Content-Security-Policy {name} {}", sources.join(" ")),
            );
        }
        if !self.loosened.iter().any(|n| n == name) {
            self.loosened.push(name.to_owned());
        }
        self
    }

    /// Sets a directive newer than those this crate knows (see [`Csp::directive`]), with no
    /// check of its sources, as [`dangerous_directive`](Self::dangerous_directive) sets one
    /// it knows; set it again with this method to change it. Logs a warning, as a misspelled
    /// name here goes out, and browsers ignore it. The name is letters, digits and `-`, and
    /// goes out lower-case; one the crate knows is an error naming `directive`.
    ///
    /// ```
    /// use hardening_headers::{Csp, HeaderPolicy};
    ///
    /// let csp = Csp::html().dangerous_unlisted_directive("example-src", ["'self'"]);
    /// assert!(HeaderPolicy::html().csp(csp).build().is_ok());
    /// ```
    pub fn dangerous_unlisted_directive<I>(mut self, name: &str, sources: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        if known_directive(name).is_some() {
            return self.refuse(invalid(
                name,
                "a directive this crate knows: set it with Csp::directive (or \
                 Csp::dangerous_directive)",
            ));
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return self.refuse(invalid(name, "a directive name is letters, digits and '-'"));
        }
        let name = name.to_ascii_lowercase();
        let sources: Vec<String> = sources.into_iter().map(Into::into).collect();
        warn_loosened(
            "Csp::dangerous_unlisted_directive",
            &format!(
                "Content-Security-Policy {name} {}: a directive this crate does not know, its \
                 name and sources unchecked",
                sources.join(" ")
            ),
        );
        self.set(&name, sources);
        if !self.loosened.contains(&name) {
            self.loosened.push(name);
        }
        self
    }

    /// Keeps `err`, unless an earlier one was kept, to be returned when compiled.
    fn refuse(mut self, err: ConfigError) -> Self {
        self.misnamed.get_or_insert(err);
        self
    }

    /// The directive `name` means (see [`known_directive`]); else `None`, and the policy is
    /// refused when compiled, with an error naming `method`.
    fn known(&mut self, name: &str, method: &'static str) -> Option<&'static str> {
        let known = known_directive(name);
        if known.is_none() {
            self.misnamed
                .get_or_insert_with(|| ConfigError::UnknownCspDirective {
                    name: name.to_owned(),
                    method,
                    suggestion: hardening_errors::closest_name(name, DIRECTIVES),
                });
        }
        known
    }

    fn set<I>(&mut self, name: &str, sources: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let sources: Vec<String> = sources.into_iter().map(Into::into).collect();
        match self.directives.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s = sources,
            None => self.directives.push((name.to_owned(), sources)),
        }
    }

    /// Removes a directive.
    ///
    /// Removing one the presets set to guard the page (`script-src`, `object-src`,
    /// `base-uri`, `frame-ancestors`, `form-action`) is refused when the policy is built
    /// (unless the directive is set again), with a [`ConfigError::Loosening`] naming
    /// [`dangerous_remove_directive`](Self::dangerous_remove_directive); removing
    /// `default-src` is refused as well ([`ConfigError::MissingDefaultSrc`]).
    pub fn remove_directive(mut self, name: &str) -> Self {
        let Some(name) = self.known(name, "remove_directive") else {
            return self;
        };
        if self.has(name)
            && GUARDS.iter().any(|(n, _)| *n == name)
            && !self.removed.iter().any(|n| n == name)
        {
            self.removed.push(name.to_owned());
        }
        self.directives.retain(|(n, _)| n != name);
        self
    }

    /// Removes a directive, including one [`remove_directive`](Self::remove_directive)
    /// refuses, for which it logs a warning. (`default-src` is still required.)
    pub fn dangerous_remove_directive(mut self, name: &str) -> Self {
        let Some(name) = self.known(name, "dangerous_remove_directive") else {
            return self;
        };
        // Also when `remove_directive` took it out first (it is then only in `removed`,
        // where the build would refuse it): this is what lets it go.
        let there = self.has(name) || self.removed.iter().any(|n| n == name);
        if there && let Some((_, why)) = GUARDS.iter().find(|(n, _)| *n == name) {
            warn_loosened(
                "Csp::dangerous_remove_directive",
                &format!("Content-Security-Policy without {name}: {why}"),
            );
        }
        self.removed.retain(|n| n != name);
        self.directives.retain(|(n, _)| n != name);
        self
    }

    fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// Sends violation reports to this URI (`report-uri`, which every browser supports).
    pub fn report_uri(self, uri: impl Into<String>) -> Self {
        self.directive("report-uri", [uri.into()])
    }

    /// Reports violations without blocking anything (`Content-Security-Policy-Report-Only`),
    /// to try a policy before enforcing it. Logs a warning: while it is on, the policy
    /// protects nothing (a route's own enforcing `Content-Security-Policy` still does).
    pub fn dangerous_report_only(mut self) -> Self {
        warn_loosened(
            "Csp::dangerous_report_only",
            "the Content-Security-Policy only reports violations; nothing is blocked",
        );
        self.report_only = true;
        self
    }

    /// Validates and compiles the policy.
    pub(crate) fn compile(&self) -> Result<CompiledCsp, ConfigError> {
        if let Some(err) = &self.misnamed {
            return Err(err.clone());
        }
        if !self.directives.iter().any(|(n, _)| n == "default-src") {
            return Err(ConfigError::MissingDefaultSrc);
        }
        for (name, sources) in &self.directives {
            for source in sources {
                // Browsers read a keyword without quotes, in any case, as a host name.
                if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(source)) {
                    return Err(ConfigError::UnquotedKeyword {
                        directive: name.clone(),
                        keyword: source.clone(),
                    });
                }
                // Browsers split a source list at any ASCII whitespace, a tab too: a source
                // with one inside is two, the second unchecked.
                if source.is_empty()
                    || !source.is_ascii()
                    || source
                        .bytes()
                        .any(|b| b == b' ' || b.is_ascii_control() || matches!(b, b';' | b','))
                {
                    return Err(invalid(
                        name,
                        &format!("{source:?} is not a single source expression"),
                    ));
                }
                // Browsers read the `'nonce-` prefix in any case.
                if source
                    .get(..7)
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case("'nonce-"))
                {
                    return Err(invalid(
                        name,
                        "nonces are added per response; do not write one into the policy",
                    ));
                }
                if let Some(why) = loosens(name, source)
                    && !self.loosened.contains(name)
                {
                    return Err(ConfigError::Loosening {
                        what: format!("CSP directive `{name}` with {source}"),
                        instead: format!(
                            "{why}; to allow it anyway, use Csp::dangerous_directive({name:?}, …), \
                             which logs a warning at start-up"
                        ),
                    });
                }
            }
        }
        if let Some((name, why)) = GUARDS
            .iter()
            .find(|(n, _)| self.removed.iter().any(|r| r == n) && !self.has(n))
        {
            return Err(ConfigError::Loosening {
                what: format!("Csp::remove_directive({name:?})"),
                instead: format!(
                    "{why}; to remove it anyway, use Csp::dangerous_remove_directive({name:?}), \
                     which logs a warning at start-up"
                ),
            });
        }
        let nonced = |name: &str| {
            name == "script-src" && self.script_nonce || name == "style-src" && self.style_nonce
        };
        // CSP Level 2: a nonce (or hash) in a directive makes browsers ignore its
        // 'unsafe-inline', so `style="…"` attributes it was set for would not apply.
        if let Some((name, _)) = self.directives.iter().find(|(name, sources)| {
            name == "style-src"
                && nonced(name)
                && sources
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case("'unsafe-inline'"))
        }) {
            return Err(invalid(
                name,
                "browsers ignore 'unsafe-inline' beside the response's nonce, which Csp::html \
                 puts in style-src: drop 'unsafe-inline' (style elements with the nonce \
                 apply), or call Csp::without_style_nonce() to allow every inline style",
            ));
        }
        let render = |nonce: Option<&str>, tls: bool| {
            let mut out = String::new();
            for (name, sources) in &self.directives {
                if !out.is_empty() {
                    out.push_str("; ");
                }
                out.push_str(name);
                if let Some(n) = nonce
                    && nonced(name)
                {
                    out.push_str(" 'nonce-");
                    out.push_str(n);
                    out.push('\'');
                }
                for s in sources {
                    out.push(' ');
                    out.push_str(s);
                }
            }
            if tls && self.upgrade_insecure_requests && !self.has("upgrade-insecure-requests") {
                out.push_str("; upgrade-insecure-requests");
            }
            out
        };
        let header = if self.report_only {
            http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY
        } else {
            http::header::CONTENT_SECURITY_POLICY
        };
        let nonce = self.directives.iter().any(|(n, _)| nonced(n));
        let value = |tls| {
            hardening_errors::static_header_value(render(None, tls))
                .map_err(|_| invalid("*", "not a valid header value"))
        };
        Ok(CompiledCsp {
            header,
            plain: value(false)?,
            tls: value(true)?,
            // Split at the placeholder (NUL, which no source holds) so a response only joins
            // the pieces and its nonce.
            nonce_template: nonce.then(|| {
                let marker = "\u{0}";
                [false, true].map(|tls| NonceTemplate::new(&render(Some(marker), tls), marker))
            }),
        })
    }
}

/// The directive `name` means, as the header spells it: browsers read a name in any case
/// (CSP3, "parse a serialized CSP"), and helmet reads camelCase (`scriptSrc`) as dashed.
/// `None` for a name browsers do not know.
fn known_directive(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let mut dashed = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            dashed.push('-');
        }
        dashed.push(c.to_ascii_lowercase());
    }
    DIRECTIVES
        .iter()
        .copied()
        .find(|d| *d == lower || *d == dashed)
}

/// Why `source` in `directive` loosens what the presets guard, if it does (the rules of
/// [`Csp::directive`]).
fn loosens(directive: &str, source: &str) -> Option<&'static str> {
    let source = source.to_ascii_lowercase();
    if source.starts_with("'unsafe-") || source == "'wasm-unsafe-eval'" {
        return Some("an 'unsafe-…' keyword lets injected inline code, eval or event handlers run");
    }
    if directive == "frame-ancestors" && source != "'none'" {
        return Some(
            "frame-ancestors other than 'none' lets pages frame these responses, as \
             X-Frame-Options: DENY forbids (clickjacking)",
        );
    }
    // A `blob:` URL is made by a script already running in this page (from its own origin),
    // so it lets no injected script run that could not already; map, editor and PDF
    // libraries start their workers from one. `data:` stays refused: a URL an attacker
    // passes to `new Worker(…)` could carry its own code.
    if directive == "worker-src" && source == "blob:" {
        return None;
    }
    if ANY_HOST_LOOSENS.contains(&directive) && allows_any_host(&source) {
        return Some("a wildcard or a scheme without a host allows every host, an attacker's too");
    }
    None
}

/// `*`, a scheme alone (`https:`, `data:`), a host of `*` (`https://*`, `*:443`), or a
/// wildcard over a top-level domain (`*.com`, `https://*.io:443`): every host under it is
/// anyone's to register. (A wildcard under a longer public suffix, `*.co.uk`, is not
/// recognised: that needs the public-suffix list.) `source` is lower-case.
fn allows_any_host(source: &str) -> bool {
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    };
    if source.strip_suffix(':').is_some_and(is_scheme) {
        return true;
    }
    let rest = source.split_once("://").map_or(source, |(_, rest)| rest);
    let host = rest.split([':', '/']).next().unwrap_or(rest);
    host == "*"
        || host
            .strip_prefix("*.")
            .is_some_and(|domain| !domain.trim_end_matches('.').contains('.'))
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
    /// `[for plain HTTP, for HTTPS]`: the policy around its nonces.
    nonce_template: Option<[NonceTemplate; 2]>,
}

/// A nonce policy cut where each nonce goes (`script-src 'nonce-` | `' 'strict-dynamic';
/// style-src 'nonce-` | `' 'self'; …`): a response's value is the pieces joined by its nonce.
#[derive(Debug, Clone)]
struct NonceTemplate {
    pieces: Box<[Box<str>]>,
    /// The pieces' length together.
    len: usize,
}

impl NonceTemplate {
    /// `policy` cut at each `marker`.
    fn new(policy: &str, marker: &str) -> Self {
        let pieces: Box<[Box<str>]> = policy.split(marker).map(Box::from).collect();
        let len = pieces.iter().map(|piece| piece.len()).sum();
        Self { pieces, len }
    }

    /// The policy with `nonce` in each place: written once into a buffer of its exact
    /// length, which the value then owns (one allocation, no copy).
    fn with(&self, nonce: &[u8]) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
        let mut value = Vec::with_capacity(self.len + nonce.len() * (self.pieces.len() - 1));
        let mut pieces = self.pieces.iter();
        if let Some(first) = pieces.next() {
            value.extend_from_slice(first.as_bytes());
        }
        for piece in pieces {
            value.extend_from_slice(nonce);
            value.extend_from_slice(piece.as_bytes());
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(value))
    }
}

impl CompiledCsp {
    pub(crate) fn wants_nonce(&self) -> bool {
        self.nonce_template.is_some()
    }

    pub(crate) fn value(&self, tls: bool, nonce: Option<&CspNonce>) -> HeaderValue {
        match (&self.nonce_template, nonce) {
            (Some(templates), Some(nonce)) => templates[usize::from(tls)]
                .with(nonce.as_bytes())
                .unwrap_or_else(|_| self.value(tls, None)),
            _ if tls => self.tls.clone(),
            _ => self.plain.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
    /// `Debug`, which was `MissingDefaultSrc`: not what to add.
    #[test]
    fn debug_says_what_to_change_as_main_prints_it() {
        let err = Csp::api()
            .remove_directive("default-src")
            .compile()
            .unwrap_err();
        let printed = format!("{:?}", Box::<dyn std::error::Error>::from(err));
        assert!(
            printed.contains("add default-src 'none'"),
            "main would print: Error: {printed}"
        );
    }

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
        assert!(
            v.contains(&format!("style-src 'nonce-{nonce}' 'self'")),
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

    /// The nonce went into `script-src` only: a page's `<style nonce>` was blocked (styles
    /// fell back to `default-src 'self'`), and only `'unsafe-inline'` let it apply, which
    /// lets injected styles apply too. Now `style-src` carries the response's nonce beside
    /// `'self'` (style sheets from this origin still load), on plain HTTP and HTTPS alike,
    /// and the whole value is the nonce-less one with the nonce in its two places.
    #[test]
    fn html_policy_nonces_styles_too() {
        let c = Csp::html().compile().unwrap();
        let nonce = CspNonce::generate();
        for tls in [false, true] {
            let sent = c.value(tls, Some(&nonce));
            let sent = sent.to_str().unwrap();
            let without = c.value(tls, None);
            let expected = without
                .to_str()
                .unwrap()
                .replace("script-src ", &format!("script-src 'nonce-{nonce}' "))
                .replace("style-src ", &format!("style-src 'nonce-{nonce}' "));
            assert_eq!(sent, expected, "tls {tls}");
            assert!(
                sent.starts_with(&format!(
                    "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; \
                     style-src 'nonce-{nonce}' 'self'; object-src 'none'"
                )),
                "{sent}"
            );
        }
        // Without a nonce (no script runs, no inline style applies): as before.
        let plain = c.value(false, None);
        assert!(
            plain.to_str().unwrap().contains("; style-src 'self'; ")
                && !plain.to_str().unwrap().contains("'nonce-"),
            "{plain:?}"
        );
    }

    /// The user's own `style-src` sources keep the nonce, as `script-src`'s do; with
    /// `without_style_nonce` only scripts carry it; and a policy whose only nonce is the
    /// style one (scripts' taken out) still asks for one per response.
    #[test]
    fn the_style_nonce_follows_style_src() {
        let nonce = CspNonce::generate();
        let sent = |csp: Csp| {
            let value = csp.compile().unwrap().value(true, Some(&nonce));
            value.to_str().unwrap().to_owned()
        };
        let cdn = sent(Csp::html().directive("style-src", ["'self'", "https://cdn.example"]));
        assert!(
            cdn.contains(&format!(
                "; style-src 'nonce-{nonce}' 'self' https://cdn.example;"
            )),
            "{cdn}"
        );
        let without = Csp::html().without_style_nonce();
        assert!(without.compile().unwrap().wants_nonce());
        let without = sent(without);
        assert!(without.contains("; style-src 'self';"), "{without}");
        assert!(
            without.contains(&format!("script-src 'nonce-{nonce}'")),
            "{without}"
        );
        assert_eq!(without.matches("'nonce-").count(), 1, "{without}");

        let styles_only = Csp::html().dangerous_remove_directive("script-src");
        assert!(styles_only.compile().unwrap().wants_nonce());
        let styles_only = sent(styles_only);
        assert!(
            styles_only.contains(&format!("style-src 'nonce-{nonce}' 'self'"))
                && !styles_only.contains("script-src"),
            "{styles_only}"
        );
        let neither = Csp::html()
            .without_style_nonce()
            .dangerous_remove_directive("script-src");
        assert!(!neither.compile().unwrap().wants_nonce());
        // Another directive's sources (`style-src-elem`) take no nonce, as `script-src-elem`'s
        // do not.
        let elem = sent(Csp::html().directive("style-src-elem", ["'self'"]));
        assert!(elem.contains("; style-src-elem 'self'"), "{elem}");
    }

    /// Browsers ignore `'unsafe-inline'` in a directive that has a nonce (CSP Level 2): set
    /// beside the style nonce, it would not let the `style` attributes it was set for apply,
    /// with no word. Refused, naming both ways out; without the style nonce it goes through
    /// `dangerous_directive` as before.
    #[test]
    fn unsafe_inline_beside_the_style_nonce_is_refused() {
        for source in ["'unsafe-inline'", "'UNSAFE-INLINE'"] {
            let csp = Csp::html().dangerous_directive("style-src", ["'self'", source]);
            match csp.compile() {
                Err(ConfigError::InvalidCsp { directive, why }) => {
                    assert_eq!(directive, "style-src");
                    assert!(
                        why.contains("Csp::without_style_nonce()")
                            && why.contains("drop 'unsafe-inline'"),
                        "{why}"
                    );
                }
                other => panic!("{source}: {other:?}"),
            }
            let csp = csp.without_style_nonce().compile().unwrap();
            let sent = csp.value(true, Some(&CspNonce::generate()));
            assert!(
                sent.to_str()
                    .unwrap()
                    .contains(&format!("; style-src 'self' {source};")),
                "{sent:?}"
            );
        }
        // Beside the script nonce it is the usual fallback for browsers older than CSP
        // Level 2, and stays as it was (through `dangerous_directive`).
        let scripts =
            Csp::html().dangerous_directive("script-src", ["'strict-dynamic'", "'unsafe-inline'"]);
        assert!(scripts.compile().is_ok());
    }

    /// A bundle's `index.html` loads its own files: `'self'` for scripts and styles, nothing
    /// inline, and no nonce (which a file cannot carry), the same policy for every response.
    #[test]
    fn static_site_policy_allows_this_origins_files_and_no_nonce() {
        let c = Csp::static_site().compile().unwrap();
        assert!(!c.wants_nonce());
        let nonce = CspNonce::generate();
        let plain = "default-src 'none'; script-src 'self'; style-src 'self'; \
                     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                     manifest-src 'self'; object-src 'none'; base-uri 'none'; \
                     form-action 'self'; frame-ancestors 'none'";
        assert_eq!(c.value(false, Some(&nonce)), plain);
        assert_eq!(
            c.value(true, None),
            format!("{plain}; upgrade-insecure-requests").as_str()
        );
        // What the presets guard is guarded here too.
        for name in [
            "script-src",
            "object-src",
            "base-uri",
            "frame-ancestors",
            "form-action",
        ] {
            let err = Csp::static_site()
                .remove_directive(name)
                .compile()
                .unwrap_err();
            assert!(
                err.to_string().contains("dangerous_remove_directive"),
                "{name}: {err}"
            );
        }
        let err = Csp::static_site()
            .directive("script-src", ["'self'", "'unsafe-inline'"])
            .compile()
            .unwrap_err();
        assert!(err.to_string().contains("dangerous_directive"), "{err}");
        // A hash of an inline script, and another host, are configuration.
        let hashed = Csp::static_site().directive(
            "script-src",
            [
                "'self'",
                "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
            ],
        );
        assert!(hashed.compile().is_ok());
        let api =
            Csp::static_site().directive("connect-src", ["'self'", "https://api.example.com"]);
        assert!(api.compile().is_ok());
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
        let ro = Csp::api().dangerous_report_only().compile().unwrap();
        assert_eq!(ro.header, http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY);
    }
}

#[cfg(test)]
mod loosening_tests {
    use super::*;

    fn loosening(csp: Csp) -> String {
        match csp.compile() {
            Ok(_) => panic!("compiled: {csp:?}"),
            Err(err @ ConfigError::Loosening { .. }) => err.to_string(),
            Err(err) => panic!("another error: {err:?}"),
        }
    }

    /// `worker-src blob:` (how map, editor and PDF libraries start workers) needed
    /// `dangerous_directive`; it is taken by `directive` now. `data:` there, and `blob:` in
    /// the other script directives, are still refused.
    #[test]
    fn directive_takes_blob_workers() {
        let csp = Csp::html().directive("worker-src", ["'self'", "blob:"]);
        let compiled = csp.compile().expect("worker-src blob: is configuration");
        assert!(
            format!("{compiled:?}").contains("worker-src 'self' blob:"),
            "{compiled:?}"
        );
        for (directive, source) in [
            ("worker-src", "data:"),
            ("script-src", "blob:"),
            ("child-src", "blob:"),
        ] {
            loosening(Csp::html().directive(directive, ["'self'", source]));
        }
    }

    /// Sources that let injected scripts run, or any site frame the page, were accepted by
    /// `directive`. Now refused when compiled, naming `dangerous_directive`, which takes them.
    #[test]
    fn directive_takes_sources_that_let_injected_scripts_run() {
        for (directive, source) in [
            ("script-src", "'unsafe-inline'"),
            ("script-src", "'UNSAFE-EVAL'"),
            ("script-src", "'unsafe-hashes'"),
            ("script-src", "'wasm-unsafe-eval'"),
            ("script-src", "*"),
            ("script-src", "data:"),
            ("script-src", "https:"),
            ("script-src", "https://*"),
            ("script-src", "*:443"),
            ("script-src-elem", "blob:"),
            ("default-src", "https:"),
            ("object-src", "*"),
            ("worker-src", "data:"),
            ("base-uri", "*"),
            ("form-action", "https:"),
            ("frame-ancestors", "*"),
            ("frame-ancestors", "'self'"),
            ("frame-ancestors", "https://partner.example"),
            ("style-src", "'unsafe-inline'"),
        ] {
            // After a source that is fine there ('none' where the directive takes only that).
            let fine = if directive == "frame-ancestors" {
                "'none'"
            } else {
                "'self'"
            };
            let err = loosening(Csp::html().directive(directive, [fine, source]));
            assert!(
                err.contains("dangerous_directive")
                    && err.contains(directive)
                    && err.contains(source),
                "{directive} {source}: {err}"
            );
            // Without the style nonce, beside which browsers ignore 'unsafe-inline'.
            let loosened = Csp::html()
                .without_style_nonce()
                .dangerous_directive(directive, [fine, source]);
            let compiled = loosened.compile().unwrap();
            let value = compiled.value(true, None);
            assert!(value.to_str().unwrap().contains(source), "{value:?}");
            // A plain `directive` afterwards is checked again.
            assert!(loosened.directive(directive, [source]).compile().is_err());
        }
    }

    /// Listing hosts is configuration, not loosening.
    #[test]
    fn directive_takes_listed_hosts() {
        for (directive, sources) in [
            ("img-src", &["'self'", "data:", "https:", "*"][..]),
            ("style-src", &["'self'", "https://cdn.example"]),
            (
                "script-src",
                &["'strict-dynamic'", "https://cdn.example", "'sha256-abc='"],
            ),
            ("default-src", &["'self'", "https://*.example.com"]),
            ("form-action", &["'self'", "https://pay.example"]),
            ("frame-ancestors", &["'none'"]),
            ("frame-ancestors", &[]),
        ] {
            let csp = Csp::html().directive(directive, sources.iter().copied());
            assert!(csp.compile().is_ok(), "{directive} {sources:?}");
        }
    }

    /// `remove_directive` dropped the preset's guards (`frame-ancestors`: clickjacking).
    /// Now refused when compiled, naming `dangerous_remove_directive`, which removes them.
    #[test]
    fn remove_directive_drops_the_presets_guards() {
        for directive in [
            "frame-ancestors",
            "base-uri",
            "form-action",
            "script-src",
            "object-src",
        ] {
            let err = loosening(Csp::html().remove_directive(directive));
            assert!(
                err.contains("dangerous_remove_directive") && err.contains(directive),
                "{directive}: {err}"
            );
            let removed = Csp::html().dangerous_remove_directive(directive);
            let value = removed.compile().unwrap().value(true, None);
            assert!(!value.to_str().unwrap().contains(directive), "{value:?}");
            // Set again after a removal: nothing is missing.
            let again = Csp::html()
                .remove_directive(directive)
                .directive(directive, ["'none'"]);
            assert!(again.compile().is_ok(), "{directive}");
        }
        // Other directives, and one the policy does not have, come out freely.
        let csp = Csp::html().report_uri("/r").remove_directive("report-uri");
        assert!(csp.compile().is_ok());
        assert!(Csp::api().remove_directive("script-src").compile().is_ok());
    }

    /// A tab inside one source is two sources to a browser (CSP splits source lists on any
    /// ASCII whitespace), so `'self'<TAB>*` passed the checks as one harmless-looking source
    /// and went out as `*`, with no `dangerous_` name and no warning. Now refused as
    /// malformed, by `dangerous_directive` too.
    #[test]
    fn a_tab_inside_a_source_hides_a_second_source() {
        for (directive, source) in [
            ("default-src", "'self'\t*"),
            ("script-src", "'strict-dynamic'\thttps:"),
            ("script-src", "'self'\t'unsafe-inline'"),
            ("style-src", "'self'\t'unsafe-inline'"),
            ("frame-ancestors", "'none'\t*"),
            ("img-src", "\t'self'"),
        ] {
            for csp in [
                Csp::html().directive(directive, [source]),
                Csp::html().dangerous_directive(directive, [source]),
            ] {
                match csp.compile() {
                    Err(ConfigError::InvalidCsp { directive: d, why }) => {
                        assert_eq!(d, directive);
                        assert!(why.contains("single source expression"), "{why}");
                    }
                    other => panic!("{directive} {source:?}: {other:?}"),
                }
            }
        }
    }

    /// `*.com` is a wildcard over a whole top-level domain: every host under it, an
    /// attacker's too, as much as `*` is. It went through `directive` in the script
    /// directives; a wildcard under a domain someone owns (`*.example.com`) still does.
    #[test]
    fn a_wildcard_over_a_top_level_domain_allows_every_host_under_it() {
        for source in [
            "*.com",
            "https://*.com",
            "*.io:443",
            "wss://*.net/path",
            "*.COM.",
        ] {
            for directive in ["script-src", "default-src", "object-src", "form-action"] {
                let err = loosening(Csp::html().directive(directive, ["'self'", source]));
                assert!(
                    err.contains("dangerous_directive") && err.contains(source),
                    "{directive} {source}: {err}"
                );
                assert!(
                    Csp::html()
                        .dangerous_directive(directive, ["'self'", source])
                        .compile()
                        .is_ok()
                );
            }
            // Where any host is fine, so is this.
            assert!(Csp::html().directive("img-src", [source]).compile().is_ok());
        }
        for source in [
            "*.example.com",
            "https://*.example.com",
            "https://*.cdn.example:443",
        ] {
            let csp = Csp::html().directive("script-src", ["'strict-dynamic'", source]);
            assert!(csp.compile().is_ok(), "{source}");
        }
    }

    /// A keyword without its quotes is a host name to a browser (`SELF` allows a host
    /// called "self"), in any case: the check for it went by the lower-case spelling only.
    #[test]
    fn an_unquoted_keyword_in_another_case_is_refused() {
        for keyword in ["SELF", "None", "Strict-Dynamic", "UNSAFE-INLINE"] {
            assert_eq!(
                Csp::html()
                    .directive("img-src", [keyword])
                    .compile()
                    .unwrap_err(),
                ConfigError::UnquotedKeyword {
                    directive: "img-src".into(),
                    keyword: keyword.into()
                }
            );
        }
    }

    /// `upgrade-insecure-requests` set as a directive went out twice on HTTPS responses of
    /// the HTML preset (which adds it there itself); browsers ignore the repeat and say so in
    /// the console.
    #[test]
    fn upgrade_insecure_requests_set_as_a_directive_is_sent_once() {
        let none: [&str; 0] = [];
        for csp in [Csp::html(), Csp::api()] {
            let compiled = csp
                .directive("upgrade-insecure-requests", none)
                .compile()
                .unwrap();
            let nonce = CspNonce::generate();
            for (tls, nonce) in [(true, None), (false, None), (true, Some(&nonce))] {
                let value = compiled.value(tls, nonce);
                let value = value.to_str().unwrap();
                assert_eq!(
                    value.matches("upgrade-insecure-requests").count(),
                    1,
                    "{value}"
                );
            }
        }
    }

    /// A nonce written into the policy is one an attacker can read and put on an injected
    /// script. Browsers read `'NONCE-…'` as a nonce too; only the lower-case spelling was
    /// refused.
    #[test]
    fn a_nonce_in_another_case_is_refused() {
        for (directive, source) in [
            ("script-src", "'NONCE-abc'"),
            ("script-src", "'Nonce-abc'"),
            ("style-src", "'nOnCe-abc'"),
        ] {
            for csp in [
                Csp::html().directive(directive, ["'self'", source]),
                Csp::html().dangerous_directive(directive, ["'self'", source]),
            ] {
                match csp.compile() {
                    Err(ConfigError::InvalidCsp { directive: d, why }) => {
                        assert_eq!(d, directive);
                        assert!(why.contains("nonces are added per response"), "{why}");
                    }
                    other => panic!("{directive} {source}: {other:?}"),
                }
            }
        }
        // A host that merely starts alike is a host.
        assert!(
            Csp::html()
                .directive("img-src", ["'nonc"])
                .compile()
                .is_ok()
        );
    }

    /// Report-only mode blocks nothing: only `dangerous_report_only` sets it.
    #[test]
    fn report_only_is_dangerous() {
        let c = Csp::html().dangerous_report_only().compile().unwrap();
        assert_eq!(c.header, http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY);
        assert_eq!(
            Csp::html().compile().unwrap().header,
            http::header::CONTENT_SECURITY_POLICY
        );
    }
}

#[cfg(test)]
mod directive_name_tests {
    use super::*;

    /// The error compiling `csp` gives, as a user reads it.
    fn refused(csp: &Csp) -> String {
        match csp.compile() {
            Ok(_) => panic!("compiled: {csp:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// The policy `csp` sends on HTTPS with a nonce.
    fn sent(csp: &Csp) -> String {
        let compiled = csp.compile().unwrap_or_else(|err| panic!("{err}: {csp:?}"));
        let value = compiled.value(true, Some(&CspNonce::generate()));
        value.to_str().unwrap().to_owned()
    }

    /// A misspelled directive name was sent as it was, and browsers ignore a directive they
    /// do not know: `scirpt-src` restricted nothing, `remove_directive("img_src")` removed
    /// nothing, all without a word. Now refused when compiled, naming the method and the
    /// directive meant.
    #[test]
    fn a_misspelled_directive_name_is_refused_naming_the_closest_one() {
        for (csp, given, method, meant) in [
            (
                Csp::html().directive("scirpt-src", ["'self'"]),
                "scirpt-src",
                "directive",
                "script-src",
            ),
            (
                Csp::html().directive("report-url", ["/csp-report"]),
                "report-url",
                "directive",
                "report-uri",
            ),
            (
                Csp::api().directive("Img_Src", ["'self'"]),
                "Img_Src",
                "directive",
                "img-src",
            ),
            (
                Csp::html().dangerous_directive("styel-src", ["'unsafe-inline'"]),
                "styel-src",
                "dangerous_directive",
                "style-src",
            ),
            (
                Csp::html().remove_directive("img_src"),
                "img_src",
                "remove_directive",
                "img-src",
            ),
            (
                Csp::html().dangerous_remove_directive("frame-ancestor"),
                "frame-ancestor",
                "dangerous_remove_directive",
                "frame-ancestors",
            ),
        ] {
            assert_eq!(
                refused(&csp),
                format!(
                    "unknown CSP directive `{given}` in Csp::{method}; did you mean `{meant}`?"
                ),
            );
        }
        // Close to no directive: the message says what to write instead.
        let err = refused(&Csp::html().directive("nonsense", ["'self'"]));
        assert!(
            err.starts_with("unknown CSP directive `nonsense` in Csp::directive; ")
                && err.contains("img-src")
                && err.contains("Csp::dangerous_unlisted_directive"),
            "{err}"
        );
    }

    /// Browsers read directive names in any case (CSP3, "parse a serialized CSP"), so
    /// `FRAME-ANCESTORS *` allows framing as much as `frame-ancestors *` does. A name in
    /// another case now goes through the same checks, under its own name, and replaces the
    /// preset's directive rather than adding a second one (which browsers would ignore).
    #[test]
    fn a_directive_name_in_another_case_is_that_directive() {
        for (csp, what) in [
            (
                Csp::html().directive("FRAME-ANCESTORS", ["*"]),
                "CSP directive `frame-ancestors` with *",
            ),
            (
                Csp::html().directive("Script-Src", ["'strict-dynamic'", "'unsafe-inline'"]),
                "CSP directive `script-src` with 'unsafe-inline'",
            ),
            (
                Csp::api().directive("Default-SRC", ["https:"]),
                "CSP directive `default-src` with https:",
            ),
            (
                Csp::html().remove_directive("Frame-Ancestors"),
                "Csp::remove_directive(\"frame-ancestors\")",
            ),
            (
                Csp::html()
                    .dangerous_directive("Style-Src", ["'unsafe-inline'"])
                    .directive("STYLE-SRC", ["'unsafe-inline'"]),
                "CSP directive `style-src` with 'unsafe-inline'",
            ),
        ] {
            match csp.compile() {
                Err(err @ ConfigError::Loosening { .. }) => {
                    let err = err.to_string();
                    assert!(
                        err.starts_with(what) && err.contains("Csp::dangerous_"),
                        "{err}"
                    );
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let script =
            sent(&Csp::html().directive("Script-Src", ["'strict-dynamic'", "https://cdn.example"]));
        assert_eq!(script.matches("script-src").count(), 1, "{script}");
        assert!(script.contains("; script-src 'nonce-"), "{script}");
        assert!(
            script.contains("'strict-dynamic' https://cdn.example;"),
            "{script}"
        );
        let images = sent(
            &Csp::html()
                .directive("IMG-SRC", ["https://a.example"])
                .directive("img-src", ["https://b.example"]),
        );
        assert_eq!(images.matches("img-src").count(), 1, "{images}");
        assert!(images.contains("img-src https://b.example"), "{images}");
        let style = sent(
            &Csp::html()
                .without_style_nonce()
                .dangerous_directive("Style-Src", ["'unsafe-inline'"]),
        );
        assert!(style.contains("; style-src 'unsafe-inline'"), "{style}");
        let framed = sent(&Csp::html().dangerous_remove_directive("FRAME-ANCESTORS"));
        assert!(!framed.contains("frame-ancestors"), "{framed}");
    }

    /// helmet takes its directive names in camelCase (`scriptSrc`) as well as dashed: the
    /// same names here mean the same directives, and go out dashed.
    #[test]
    fn helmets_camel_case_names_are_the_dashed_directives() {
        let sent = sent(
            &Csp::html()
                .directive("scriptSrc", ["'strict-dynamic'", "https://cdn.example"])
                .directive("imgSrc", ["'self'", "data:"])
                .directive("upgradeInsecureRequests", Vec::<String>::new()),
        );
        assert!(sent.contains("; script-src 'nonce-"), "{sent}");
        assert!(sent.contains("; img-src 'self' data:"), "{sent}");
        assert_eq!(
            sent.matches("upgrade-insecure-requests").count(),
            1,
            "{sent}"
        );
        assert_eq!(sent.matches("script-src").count(), 1, "{sent}");
        let err = refused(&Csp::html().directive("frameAncestors", ["*"]));
        assert!(
            err.starts_with("CSP directive `frame-ancestors` with *"),
            "{err}"
        );
    }

    /// Every directive of the list is taken, in any case, and goes out under its own name.
    #[test]
    fn every_listed_directive_is_taken() {
        let none: [&str; 0] = [];
        for name in DIRECTIVES {
            for given in [name.to_string(), name.to_ascii_uppercase()] {
                let sent = sent(&Csp::api().directive(&given, none));
                assert_eq!(
                    sent.split("; ")
                        .filter(|d| d.split(' ').next() == Some(name))
                        .count(),
                    1,
                    "{given}: {sent}"
                );
            }
        }
    }

    /// A directive newer than the list goes out through `dangerous_unlisted_directive`, which
    /// logs a warning. It takes no listed name (`directive` checks those) and no malformed
    /// one.
    #[test]
    fn dangerous_unlisted_directive_sets_a_newer_directive_and_logs() {
        let mut csp = None;
        let logged = crate::test_log::Warnings::during(crate::LOG_TARGET, || {
            csp = Some(Csp::html().dangerous_unlisted_directive("Example-Src", ["'self'", "*"]));
        });
        assert!(
            logged.len() == 1
                && logged[0].contains("setting=\"Csp::dangerous_unlisted_directive\"")
                && logged[0].contains("Content-Security-Policy example-src 'self' *"),
            "{logged:?}"
        );
        let csp = csp.expect("set");
        assert!(sent(&csp).contains("; example-src 'self' *"), "{csp:?}");
        // Set again, it is replaced; `directive` does not know it.
        let again = sent(
            &csp.clone()
                .dangerous_unlisted_directive("example-src", ["'none'"]),
        );
        assert_eq!(again.matches("example-src").count(), 1, "{again}");
        assert!(again.contains("; example-src 'none'"), "{again}");
        assert!(refused(&csp.directive("example-src", ["'none'"])).starts_with("unknown CSP"));
        for (name, source, why) in [
            ("script-src", "*", "set it with Csp::directive"),
            ("scriptSrc", "*", "set it with Csp::directive"),
            ("example_src", "'self'", "letters, digits and '-'"),
            ("", "'self'", "letters, digits and '-'"),
            ("example-src", "'self' *", "not a single source expression"),
        ] {
            match Csp::html()
                .dangerous_unlisted_directive(name, [source])
                .compile()
            {
                Err(ConfigError::InvalidCsp { directive, why: w }) => {
                    assert!(directive == name && w.contains(why), "{name}: {w}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
