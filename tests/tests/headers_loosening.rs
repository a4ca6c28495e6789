//! Loosening a strict header default goes through a `dangerous_*` method that logs one
//! warning at start-up (DESIGN §3), and only through one: the plain settings refuse the same
//! values (their errors are unit-tested in hardening-headers).

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_core::headers::{CookiePolicy, Csp, HeaderPolicy, HttpsRedirect, SameSite};
use hardening_tests::{Captured, get as http_get, serve};

/// The `setting` of every loosening warning of the headers crate logged while `setup` runs
/// on this thread, and what `setup` returned.
fn loosening_warnings<T>(setup: impl FnOnce() -> T) -> (Vec<String>, T) {
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let out = setup();
    drop(guard);
    let settings = captured
        .text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON log line"))
        .filter(|e| {
            e["target"] == hardening_core::headers::LOG_TARGET
                && e["level"] == "WARN"
                && e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("security headers loosened"))
        })
        .map(|e| e["fields"]["setting"].as_str().unwrap_or("").to_owned())
        .collect();
    (settings, out)
}

/// Each `dangerous_*` setting of the headers crate, given a weaker value, logs one warning
/// naming itself; the same values through the plain settings are errors and log nothing.
#[test]
fn each_dangerous_header_setting_logs_one_warning() {
    type Setup = Box<dyn FnOnce() -> Result<HeaderPolicy, hardening_core::headers::ConfigError>>;
    let year = Duration::from_secs(365 * 24 * 3600);
    let cases: Vec<(&str, Setup, Setup)> = vec![
        (
            "dangerous_header",
            Box::new(|| HeaderPolicy::api().header("X-DNS-Prefetch-Control", "on")),
            Box::new(|| HeaderPolicy::api().dangerous_header("X-DNS-Prefetch-Control", "on")),
        ),
        (
            "dangerous_header",
            Box::new(|| HeaderPolicy::api().header("Permissions-Policy", "camera=*")),
            Box::new(|| HeaderPolicy::api().dangerous_header("Permissions-Policy", "camera=*")),
        ),
        (
            "dangerous_referrer_policy",
            Box::new(|| HeaderPolicy::api().referrer_policy("unsafe-url")),
            Box::new(|| HeaderPolicy::api().dangerous_referrer_policy("unsafe-url")),
        ),
        (
            "dangerous_frame_options",
            Box::new(|| HeaderPolicy::api().frame_options("SAMEORIGIN")),
            Box::new(|| HeaderPolicy::api().dangerous_frame_options("SAMEORIGIN")),
        ),
        (
            "dangerous_cross_origin_opener_policy",
            Box::new(|| HeaderPolicy::api().cross_origin_opener_policy("unsafe-none")),
            Box::new(|| HeaderPolicy::api().dangerous_cross_origin_opener_policy("unsafe-none")),
        ),
        (
            "dangerous_cross_origin_resource_policy",
            Box::new(|| HeaderPolicy::api().cross_origin_resource_policy("cross-origin")),
            Box::new(|| HeaderPolicy::api().dangerous_cross_origin_resource_policy("cross-origin")),
        ),
        (
            "dangerous_hsts",
            Box::new(move || HeaderPolicy::api().hsts(year, false, false)),
            Box::new(move || HeaderPolicy::api().dangerous_hsts(year, false, false)),
        ),
        (
            "Csp::dangerous_directive",
            Box::new(|| {
                let csp =
                    Csp::html().directive("script-src", ["'strict-dynamic'", "'unsafe-inline'"]);
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
            Box::new(|| {
                let csp = Csp::html()
                    .dangerous_directive("script-src", ["'strict-dynamic'", "'unsafe-inline'"]);
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
        ),
        (
            "Csp::dangerous_remove_directive",
            Box::new(|| {
                let csp = Csp::html().remove_directive("frame-ancestors");
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
            Box::new(|| {
                let csp = Csp::html().dangerous_remove_directive("frame-ancestors");
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
        ),
        (
            "Csp::dangerous_unlisted_directive",
            Box::new(|| {
                let csp = Csp::html().directive("example-src", ["'self'"]);
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
            Box::new(|| {
                let csp = Csp::html().dangerous_unlisted_directive("example-src", ["'self'"]);
                HeaderPolicy::html()
                    .csp(csp)
                    .build()
                    .map(|_| HeaderPolicy::html())
            }),
        ),
        (
            "CookiePolicy::dangerous_same_site_none",
            Box::new(|| {
                let cookies = CookiePolicy::default().same_site("embed", SameSite::None)?;
                Ok(HeaderPolicy::api().cookies(cookies))
            }),
            Box::new(|| {
                let cookies = CookiePolicy::default().dangerous_same_site_none("embed");
                Ok(HeaderPolicy::api().cookies(cookies))
            }),
        ),
        (
            "CookiePolicy::dangerous_max_age",
            Box::new(move || {
                let cookies = CookiePolicy::default().max_age(year)?;
                Ok(HeaderPolicy::api().cookies(cookies))
            }),
            Box::new(move || {
                let cookies = CookiePolicy::default().dangerous_max_age(year);
                Ok(HeaderPolicy::api().cookies(cookies))
            }),
        ),
    ];
    for (setting, plain, dangerous) in cases {
        let (warnings, result) = loosening_warnings(plain);
        let err = result.expect_err(setting).to_string();
        assert!(
            err.contains(setting.rsplit("::").next().unwrap()),
            "{setting}: {err}"
        );
        assert!(warnings.is_empty(), "{setting}: {warnings:?}");
        let (warnings, result) = loosening_warnings(dangerous);
        let policy = result.unwrap_or_else(|err| panic!("{setting}: {err}"));
        assert!(policy.build().is_ok(), "{setting}");
        assert_eq!(warnings, [setting], "{setting}");
    }
}

/// The settings with nothing to take (report-only mode, a script-readable cookie) exist only
/// as `dangerous_*` methods, each logging one warning; the preset and values at least as
/// strict log none.
#[test]
fn report_only_and_script_readable_log_one_warning_each() {
    let (warnings, set) = loosening_warnings(|| {
        HeaderPolicy::html()
            .csp(
                Csp::html()
                    .report_uri("/csp-report")
                    .dangerous_report_only(),
            )
            .cookies(CookiePolicy::default().dangerous_script_readable("theme"))
            .build()
    });
    assert!(set.is_ok());
    assert_eq!(
        warnings,
        [
            "Csp::dangerous_report_only",
            "CookiePolicy::dangerous_script_readable"
        ]
    );
    let (warnings, set) = loosening_warnings(|| {
        HeaderPolicy::html()
            .csp(Csp::html().directive("img-src", ["'self'", "https://images.example.com"]))
            .header("X-Content-Type-Options", "nosniff")?
            .dangerous_referrer_policy("no-referrer")?
            .build()
    });
    assert!(set.is_ok());
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// `remove_directive` (refused at build for a guarded directive) then
/// `dangerous_remove_directive` removed `script-src` without the warning: the first had taken
/// it out already, and the warning looked only at what was left.
#[test]
fn a_guarded_directive_removed_twice_still_logs_its_warning() {
    let (warnings, set) = loosening_warnings(|| {
        HeaderPolicy::html()
            .csp(
                Csp::html()
                    .remove_directive("script-src")
                    .dangerous_remove_directive("script-src"),
            )
            .build()
    });
    let set = set.expect("the dangerous removal lets the build through");
    let mut headers = http::HeaderMap::new();
    set.apply(&Default::default(), &mut headers);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(warnings, ["Csp::dangerous_remove_directive"]);
}

/// End to end: a loosened policy in `Hardening` is logged once at start-up, not per request,
/// and its responses carry the loosened value.
#[tokio::test]
async fn a_loosened_policy_is_logged_once_at_start_up() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let policy = HeaderPolicy::api()
        .dangerous_header("X-DNS-Prefetch-Control", "on")
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(Hardening::strict().security_headers(policy).unwrap());
    let addr = serve(app).await;
    for _ in 0..3 {
        let reply = http_get(addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-dns-prefetch-control"), Some("on"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("security headers loosened"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("dangerous_header"), "{}", warnings[0]);
}

/// End to end: a handler's own `SameSite=None` cookie is sent as `Lax` under the strict
/// preset (cross-site sending is a loosening the policy must name), with one warning naming
/// the setting that keeps it, however many responses carry it.
#[tokio::test]
async fn a_handlers_same_site_none_is_sent_as_lax_with_one_warning() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/",
            get(|| async { ([("set-cookie", "embed=1; SameSite=None; Secure")], "hi") }),
        )
        .layer(Hardening::strict());
    let addr = serve(app).await;
    for _ in 0..3 {
        let reply = http_get(addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
        let cookie = reply.header("set-cookie").unwrap();
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("SameSite=None"), "{cookie}");
    }
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("dangerous_same_site_none"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
}

/// The `dangerous_*` settings with no plain twin (they loosen by leaving something out) each
/// log one warning naming themselves when they take effect.
#[test]
fn each_setting_that_leaves_something_out_logs_one_warning() {
    type Setup = Box<dyn FnOnce() -> Result<HeaderPolicy, hardening_core::headers::ConfigError>>;
    let cases: Vec<(&str, Setup)> = vec![
        (
            "dangerous_without_csp",
            Box::new(|| Ok(HeaderPolicy::api().dangerous_without_csp())),
        ),
        (
            "dangerous_without_hsts",
            Box::new(|| Ok(HeaderPolicy::api().dangerous_without_hsts())),
        ),
        (
            "dangerous_remove_header",
            Box::new(|| HeaderPolicy::api().dangerous_remove_header("X-Frame-Options")),
        ),
        (
            "dangerous_allow_caching_with_credentials",
            Box::new(|| Ok(HeaderPolicy::api().dangerous_allow_caching_with_credentials())),
        ),
        (
            "CookiePolicy::dangerous_allow_insecure",
            Box::new(|| {
                let cookies = CookiePolicy::default().dangerous_allow_insecure("legacy");
                Ok(HeaderPolicy::api().cookies(cookies))
            }),
        ),
    ];
    for (setting, setup) in cases {
        let (warnings, result) = loosening_warnings(setup);
        let policy = result.unwrap_or_else(|err| panic!("{setting}: {err}"));
        assert!(policy.build().is_ok(), "{setting}");
        assert_eq!(warnings, [setting], "{setting}");
    }
}

/// A tab inside one CSP source is two sources to a browser: `'self'<TAB>*` is refused as
/// malformed (it went out as `default-src 'self' *`, with no warning), and logs nothing.
#[test]
fn a_tab_inside_a_csp_source_is_refused_at_start_up() {
    let (warnings, set) = loosening_warnings(|| {
        HeaderPolicy::html()
            .csp(Csp::html().directive("default-src", ["'self'\t*"]))
            .build()
    });
    let err = set.expect_err("a source with a tab inside").to_string();
    assert!(err.contains("default-src"), "{err}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// `HttpsRedirect::exempt` leaves a path on plain HTTP, a loosening that was taken without a
/// word: it is logged once per path, naming it; a path refused as one no request can have
/// logs nothing.
#[test]
fn an_https_redirect_exemption_is_logged_as_a_loosening() {
    let (settings, exempted) = loosening_warnings(|| HttpsRedirect::new().exempt("/healthz"));
    assert!(exempted.is_ok());
    assert_eq!(settings, ["HttpsRedirect::exempt"]);
    let (settings, refused) = loosening_warnings(|| HttpsRedirect::new().exempt("healthz"));
    assert!(refused.is_err());
    assert!(settings.is_empty(), "{settings:?}");
}
