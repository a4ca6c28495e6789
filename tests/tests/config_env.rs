//! `.env.example` documents every variable `HardeningConfig::from_env` reads, and parses.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_core::{
    Cors, DEFAULT_BODY_LIMIT, DEFAULT_QUERY_PARAM_LIMIT, DEFAULT_TIMEOUT, ENV_VARS, Hardening,
    HardeningConfig,
};
use hardening_tests::Captured;

/// The `NAME=value` lines of `.env.example`, in order.
fn env_example() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once('=').unwrap())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn env_example_lists_every_variable_and_builds() {
    let vars = env_example();
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    let known: Vec<&str> = ENV_VARS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, known, ".env.example and ENV_VARS disagree");
    let _hardening = HardeningConfig::from_vars(vars).unwrap().build().unwrap();
}

/// Every value `.env.example` gives is the default it documents: copying the file as it is
/// changes nothing.
#[test]
fn env_example_values_are_the_defaults() {
    let mut defaults = HardeningConfig::default();
    defaults.body_limit = Some(DEFAULT_BODY_LIMIT);
    defaults.query_param_limit = Some(DEFAULT_QUERY_PARAM_LIMIT);
    defaults.timeout_secs = Some(DEFAULT_TIMEOUT.as_secs());
    defaults.rate_limit_per_minute = Some(100);
    defaults.rate_limit_burst = Some(50);
    defaults.cors_credentials = Some(false);
    defaults.behind_tls = Some(false);
    defaults.https_redirect = Some(false);
    defaults.log_request_headers = Some(false);
    let example = HardeningConfig::from_vars(env_example()).unwrap();
    assert_eq!(
        example, defaults,
        ".env.example gives a value that is not the default"
    );
}

/// What building the layer `vars` configure and applying it to a route logs at WARN and
/// above, on this thread.
fn start_up_warnings(vars: &[(&str, &str)]) -> Captured {
    start_up_warnings_of(HardeningConfig::from_vars(vars.iter().copied()).unwrap())
}

/// What building the layer `config` configures and applying it to a route logs at WARN and
/// above, on this thread.
fn start_up_warnings_of(config: HardeningConfig) -> Captured {
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let hardening = config.build().unwrap();
    let _app: axum::Router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hi" }))
        .layer(hardening);
    drop(guard);
    captured
}

/// An HTTPS redirect that would loop behind a TLS proxy, or never fire, is said at start-up.
#[test]
fn an_https_redirect_that_loops_or_never_fires_is_warned_of() {
    let warnings = |vars: &[(&str, &str)]| start_up_warnings(vars).text();
    let alone = warnings(&[("HARDENING_HTTPS_REDIRECT", "true")]);
    assert!(alone.contains("redirected again and again"), "{alone}");
    let behind = warnings(&[
        ("HARDENING_HTTPS_REDIRECT", "true"),
        ("HARDENING_BEHIND_TLS", "true"),
    ]);
    assert!(behind.contains("never redirects"), "{behind}");
    // Hosts listed too: a redirect to any host is warned of in the variable's name.
    let with_proxy = warnings(&[
        ("HARDENING_HTTPS_REDIRECT", "true"),
        ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("HARDENING_ALLOWED_HOSTS", "example.com"),
    ]);
    assert!(!with_proxy.contains("HTTPS_REDIRECT"), "{with_proxy}");
}

/// An HTTPS redirect set from the environment goes to whatever host a client's `Host` names
/// unless HARDENING_ALLOWED_HOSTS lists the service's hosts. Applying the layer warned with
/// the builder's `allowed_hosts(..)` only, not the variable such a deployment sets.
#[test]
fn an_https_redirect_to_any_host_is_warned_of_with_its_variable() {
    let warned = |vars: &[(&str, &str)]| start_up_warnings(vars).setting_warnings("https_redirect");
    let redirect = ("HARDENING_HTTPS_REDIRECT", "true");
    let any_host = warned(&[redirect]);
    assert_eq!(any_host.len(), 1, "{any_host:?}");
    assert!(
        any_host[0].contains("HARDENING_ALLOWED_HOSTS"),
        "the variable to set is not named: {any_host:?}"
    );
    let listed = warned(&[redirect, ("HARDENING_ALLOWED_HOSTS", "example.com")]);
    assert_eq!(listed, Vec::<String>::new());
}

/// The any-host redirect warning named the builder's `allowed_hosts(..)` and the variable
/// whatever the config came from: it names the settings as the config's user wrote them,
/// the variables or a file's fields, and only those.
#[test]
fn an_https_redirect_to_any_host_is_warned_of_in_the_configs_names() {
    let from_file: HardeningConfig =
        serde_json::from_value(serde_json::json!({ "https_redirect": true })).unwrap();
    let from_env = HardeningConfig::from_vars([("HARDENING_HTTPS_REDIRECT", "true")]).unwrap();
    for (config, names, other_names) in [
        (from_file, "allowed_hosts", "HARDENING_"),
        (from_env, "HARDENING_ALLOWED_HOSTS", "allowed_hosts"),
    ] {
        let any_host = start_up_warnings_of(config).setting_warnings("https_redirect");
        assert_eq!(any_host.len(), 1, "{any_host:?}");
        let warning = &any_host[0];
        assert!(
            warning.contains(names) && !warning.contains(other_names),
            "not in {names}'s names, or in {other_names}'s too: {warning}"
        );
        // Not the builder's, which the config cannot call.
        assert!(!warning.contains("(..)"), "{warning}");
    }
}

/// HARDENING_HTTPS_REDIRECT exempted `/healthz` and `/readyz` whatever the health endpoints
/// were: with them off or on other paths, an app's own routes there were served over plain
/// HTTP while every other route redirected, and so, with them on, were the methods probes do
/// not answer. Probes are answered before the redirect; no app route is exempt.
#[tokio::test]
async fn the_https_redirect_exempts_no_route_of_the_app() {
    use axum::routing::get;
    use hardening_core::Health;
    use hardening_tests::{request, serve};

    let app = || {
        let route = || get(|| async { "the app's" }).post(|| async { "the app's" });
        axum::Router::new()
            .route("/healthz", route())
            .route("/readyz", route())
    };
    let config = || {
        HardeningConfig::from_vars([("HARDENING_HTTPS_REDIRECT", "true")])
            .unwrap()
            .build()
            .unwrap()
    };
    let moved = Health::new().paths("/-/live", "/-/ready").unwrap();
    for (name, hardening, cases) in [
        (
            "health off",
            config().without_health(),
            &[
                ("GET", "/healthz", 301),
                ("GET", "/readyz", 301),
                ("POST", "/readyz", 308),
            ][..],
        ),
        (
            "health moved",
            config().health(moved),
            &[
                ("GET", "/readyz", 301),
                ("POST", "/healthz", 308),
                ("GET", "/-/ready", 200),
            ],
        ),
        (
            "health on",
            config(),
            &[
                ("GET", "/readyz", 200),
                ("HEAD", "/healthz", 200),
                ("POST", "/readyz", 308),
            ],
        ),
    ] {
        let addr = serve(app().layer(hardening)).await;
        for &(method, path, status) in cases {
            let reply = request(addr, method, path, &[]).await;
            let case = format!("{name}: {method} {path}");
            assert_eq!(reply.status, status, "{case}: {reply:?}");
            assert!(!reply.body.contains("the app's"), "{case}: {reply:?}");
            if status == 200 {
                // The probe's own answer, over plain HTTP.
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/json"),
                    "{case}"
                );
            } else {
                let location = format!("https://localhost{path}");
                assert_eq!(reply.header("location"), Some(location.as_str()), "{case}");
            }
        }
    }
}

/// `HARDENING_RATE_LIMIT_PER_MINUTE` below the default burst, burst unset: the burst is the
/// count a minute, so 10 a minute does not admit 50 at once.
#[tokio::test]
async fn a_rate_limit_per_minute_alone_admits_no_more_than_it_says() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    for (per_minute, burst) in [("10", None), ("10", Some("20")), ("500", None)] {
        let mut vars = vec![("HARDENING_RATE_LIMIT_PER_MINUTE", per_minute)];
        vars.extend(burst.map(|b| ("HARDENING_RATE_LIMIT_BURST", b)));
        let hardening = HardeningConfig::from_vars(vars).unwrap().build().unwrap();
        let app = axum::Router::new()
            .route("/", get(|| async { "hi" }))
            .layer(hardening);
        let peer: std::net::SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let mut admitted = 0;
        for _ in 0..60 {
            let mut req = Request::get("/").body(Body::empty()).unwrap();
            req.extensions_mut().insert(ConnectInfo(peer));
            if app.clone().oneshot(req).await.unwrap().status() == StatusCode::OK {
                admitted += 1;
            }
        }
        let expected = match (per_minute, burst) {
            ("10", None) => 10,
            (_, Some(b)) => b.parse().unwrap(),
            _ => 50,
        };
        assert_eq!(admitted, expected, "{per_minute} a minute, burst {burst:?}");
    }
}

/// What `then` logs at WARN and above on this thread, given the layer `vars` configure.
fn warnings_after_build(
    vars: &[(&str, &str)],
    then: impl FnOnce(Hardening) -> Hardening,
) -> Captured {
    let hardening = HardeningConfig::from_vars(vars.iter().copied())
        .unwrap()
        .build()
        .unwrap();
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    drop(then(hardening));
    drop(guard);
    captured
}

/// `from_env()?.build()?.cors(..)` dropped `HARDENING_CORS_ORIGINS` without a word, and so
/// did every setter after `build()` the setting a variable had set: each one that replaces
/// such a setting says so once, naming itself and the variables, the same value included
/// (the variable no longer governs the setting: changing it would change nothing).
#[test]
fn a_setter_after_build_that_replaces_a_variable_says_so() {
    let cors = || Cors::allow_origins(["https://other.example.com"]).unwrap();
    /// The variables, the setter called after the build, the variables it must name, and
    /// the call.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static [&'static str],
        fn(Hardening) -> Hardening,
    );
    let cases: &[Case] = &[
        (
            &[
                ("HARDENING_CORS_ORIGINS", "https://app.example.com"),
                ("HARDENING_CORS_CREDENTIALS", "true"),
            ],
            "cors",
            &["HARDENING_CORS_ORIGINS", "HARDENING_CORS_CREDENTIALS"],
            |h| h.cors(Cors::allow_origins(["https://other.example.com"]).unwrap()),
        ),
        (
            &[("HARDENING_BODY_LIMIT", "2048")],
            "body_limit",
            &["HARDENING_BODY_LIMIT"],
            |h| h.body_limit(2048).unwrap(),
        ),
        (
            &[("HARDENING_QUERY_PARAM_LIMIT", "10")],
            "dangerous_disable_query_param_limit",
            &["HARDENING_QUERY_PARAM_LIMIT"],
            Hardening::dangerous_disable_query_param_limit,
        ),
        (
            &[("HARDENING_TIMEOUT_SECS", "10")],
            "timeout",
            &["HARDENING_TIMEOUT_SECS"],
            |h| h.timeout(std::time::Duration::from_secs(5)).unwrap(),
        ),
        (
            &[("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8")],
            "trusted_proxies",
            &["HARDENING_TRUSTED_PROXIES"],
            |h| h.trusted_proxies(["192.168.0.0/16"]).unwrap(),
        ),
        (
            &[
                ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8"),
                ("HARDENING_FORWARDED_HEADER", "forwarded"),
            ],
            "forwarded_header",
            &["HARDENING_FORWARDED_HEADER"],
            |h| h.forwarded_header(hardening_core::ForwardedHeader::XForwardedFor),
        ),
        (
            &[("HARDENING_ALLOWED_HOSTS", "example.com")],
            "allowed_hosts",
            &["HARDENING_ALLOWED_HOSTS"],
            |h| h.allowed_hosts(["example.org"]).unwrap(),
        ),
        (
            &[("HARDENING_BEHIND_TLS", "true")],
            "behind_tls",
            &["HARDENING_BEHIND_TLS"],
            Hardening::behind_tls,
        ),
        (
            &[("HARDENING_LOG_REQUEST_HEADERS", "true")],
            "log_request_headers",
            &["HARDENING_LOG_REQUEST_HEADERS"],
            Hardening::log_request_headers,
        ),
        (
            &[
                ("HARDENING_HTTPS_REDIRECT", "true"),
                ("HARDENING_ALLOWED_HOSTS", "example.com"),
            ],
            "https_redirect",
            &["HARDENING_HTTPS_REDIRECT"],
            |h| h.https_redirect(hardening_core::headers::HttpsRedirect::new()),
        ),
        (
            &[
                ("HARDENING_RATE_LIMIT_PER_MINUTE", "600"),
                ("HARDENING_RATE_LIMIT_BURST", "20"),
            ],
            "dangerous_without_rate_limit",
            &[
                "HARDENING_RATE_LIMIT_PER_MINUTE",
                "HARDENING_RATE_LIMIT_BURST",
            ],
            Hardening::dangerous_without_rate_limit,
        ),
    ];
    for (vars, setter, variables, call) in cases {
        let warned = warnings_after_build(vars, call).setting_warnings(setter);
        let overrides: Vec<&String> = warned.iter().filter(|w| w.contains("drop")).collect();
        assert_eq!(
            overrides.len(),
            1,
            "{setter} after {vars:?}: no one warning that it overrides them: {warned:?}"
        );
        for variable in *variables {
            assert!(overrides[0].contains(variable), "{variable}: {warned:?}");
        }
    }
    // Said once: the second call replaces what the first set, not the variable.
    let vars = [("HARDENING_CORS_ORIGINS", "https://app.example.com")];
    let twice = warnings_after_build(&vars, |h| h.cors(cors()).cors(cors()));
    assert_eq!(twice.setting_warnings("cors").len(), 1, "{}", twice.text());
    // The same value too.
    let same = warnings_after_build(&vars, |h| {
        h.cors(Cors::allow_origins(["https://app.example.com"]).unwrap())
    });
    assert_eq!(same.setting_warnings("cors").len(), 1, "{}", same.text());
}

/// A setter on a setting no variable set, or one that adds to what a variable set, says
/// nothing; a config from a file is named by its fields.
#[test]
fn a_setter_after_build_on_a_setting_no_variable_set_says_nothing() {
    let vars = [
        ("HARDENING_TIMEOUT_SECS", "10"),
        ("HARDENING_SENSITIVE_QUERY_PARAMS", "sig"),
        // Given, but the default: it sets nothing a setter could replace.
        ("HARDENING_CORS_ORIGINS", ""),
    ];
    let quiet = warnings_after_build(&vars, |h| {
        h.cors(Cors::allow_origins(["https://app.example.com"]).unwrap())
            .body_limit(2048)
            .unwrap()
            .allowed_hosts(["example.com"])
            .unwrap()
            .sensitive_query_params(["x-honeycomb-team"])
    });
    assert_eq!(quiet.warnings(), Vec::<serde_json::Value>::new());

    let config: HardeningConfig =
        serde_json::from_value(serde_json::json!({ "allowed_hosts": ["example.com"] })).unwrap();
    let hardening = config.build().unwrap();
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    drop(hardening.allowed_hosts(["example.org"]).unwrap());
    drop(guard);
    let warned = captured.setting_warnings("allowed_hosts");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("drop allowed_hosts") && !warned[0].contains("HARDENING_"),
        "{warned:?}"
    );
}

/// A boolean variable set to `false` is set: it governs its setting as much as `true` does,
/// so a setter after `build()` that replaces it says so, naming it. It read as if unset, so
/// `HARDENING_BEHIND_TLS=false` then `.behind_tls()` turned TLS on without a word, and the
/// operator's `false` did nothing. A file's `false` is set as the variable's is; an empty
/// variable, or a field left out, is unset, and a setter after it says nothing.
#[test]
fn a_boolean_variable_set_to_false_is_replaced_like_any_other() {
    /// The variable, its field, the setter that replaces it and the call.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        fn(Hardening) -> Hardening,
    );
    let cases: &[Case] = &[
        (
            "HARDENING_BEHIND_TLS",
            "behind_tls",
            "behind_tls",
            Hardening::behind_tls,
        ),
        (
            "HARDENING_LOG_REQUEST_HEADERS",
            "log_request_headers",
            "log_request_headers",
            Hardening::log_request_headers,
        ),
        (
            "HARDENING_HTTPS_REDIRECT",
            "https_redirect",
            "https_redirect",
            |h| h.https_redirect(hardening_core::headers::HttpsRedirect::new()),
        ),
        (
            "HARDENING_CORS_CREDENTIALS",
            "cors_credentials",
            "cors",
            |h| h.cors(Cors::allow_origins(["https://app.example.com"]).unwrap()),
        ),
    ];
    let overrides = |captured: &Captured, setter: &str| -> Vec<String> {
        captured
            .setting_warnings(setter)
            .into_iter()
            .filter(|w| w.contains("drop"))
            .collect()
    };
    for (variable, field, setter, call) in cases {
        for value in ["false", "0", "no"] {
            let warned = overrides(&warnings_after_build(&[(variable, value)], call), setter);
            assert!(
                warned.len() == 1 && warned[0].contains(variable),
                "{setter} after {variable}={value}: no warning that it overrides it: {warned:?}"
            );
        }
        let unset = overrides(&warnings_after_build(&[(variable, "")], call), setter);
        assert_eq!(unset, Vec::<String>::new(), "{variable} empty is unset");

        let from_file = |json: serde_json::Value| {
            let config: HardeningConfig = serde_json::from_value(json).unwrap();
            let hardening = config.build().unwrap();
            let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
            drop(call(hardening));
            drop(guard);
            overrides(&captured, setter)
        };
        let warned = from_file(serde_json::json!({ *field: false }));
        assert!(
            warned.len() == 1 && warned[0].contains(&format!("drop {field}")),
            "{setter} after the field {field}: false: no warning that it overrides it: {warned:?}"
        );
        let left_out = from_file(serde_json::json!({}));
        assert_eq!(left_out, Vec::<String>::new(), "{field} left out is unset");
    }
}

/// `HARDENING_ROUTES_WITHOUT_RATE_LIMIT` leaves its routes out of the limit, and only them:
/// past the burst, a webhook and the assets are still answered, with no `RateLimit-Policy`
/// (nothing counted them), while another route is refused.
#[tokio::test]
async fn routes_without_rate_limit_from_the_environment_are_not_limited() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::routing::{get, post};
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    let hardening = HardeningConfig::from_vars([
        ("HARDENING_RATE_LIMIT_PER_MINUTE", "3"),
        (
            "HARDENING_ROUTES_WITHOUT_RATE_LIMIT",
            "/webhooks/stripe, /assets/{*path}",
        ),
    ])
    .unwrap()
    .build()
    .unwrap();
    let app = axum::Router::new()
        .route("/webhooks/stripe", post(|| async { "received" }))
        .route("/assets/{*path}", get(|| async { "file" }))
        .route("/notes", get(|| async { "notes" }))
        .layer(hardening);
    let peer: std::net::SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let send = |method: &str, path: &str| {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    };
    for _ in 0..3 {
        let res = send("GET", "/notes").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().contains_key("ratelimit-policy"), "{res:?}");
    }
    assert_eq!(
        send("GET", "/notes").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for (method, path) in [("POST", "/webhooks/stripe"), ("GET", "/assets/app.js")] {
        for i in 0..6 {
            let res = send(method, path).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}, request {i}");
            assert!(
                !res.headers().contains_key("ratelimit-policy")
                    && !res.headers().contains_key("ratelimit"),
                "{path}: {res:?}"
            );
        }
    }
    // Another spelling of the path is another path, limited.
    assert_eq!(
        send("POST", "//webhooks/stripe").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// `HARDENING_ROUTE_BODY_LIMITS` gives its route a larger body limit, and only it: a body
/// over 1 MiB is taken there and refused elsewhere, and the route's own limit holds.
#[tokio::test]
async fn a_route_body_limit_from_the_environment_takes_a_larger_body_on_its_route() {
    use axum::body::{Body, Bytes};
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    const UPLOAD: usize = 4 * 1024 * 1024;
    let hardening = HardeningConfig::from_vars([(
        "HARDENING_ROUTE_BODY_LIMITS",
        &*format!("/docs/{{id}}/file={UPLOAD}"),
    )])
    .unwrap()
    .build()
    .unwrap();
    let length = || post(|body: Bytes| async move { body.len().to_string() });
    let app = axum::Router::new()
        .route(
            "/docs/{id}/file",
            length().layer(DefaultBodyLimit::max(UPLOAD)),
        )
        .route("/notes", length())
        .layer(hardening);
    let send = |path: &str, size: usize| {
        let req = Request::post(path)
            .body(Body::from(vec![b'x'; size]))
            .unwrap();
        app.clone().oneshot(req)
    };
    let over_a_mebibyte = DEFAULT_BODY_LIMIT + 1;
    let res = send("/docs/7/file", over_a_mebibyte).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
    assert_eq!(body, over_a_mebibyte.to_string());
    assert_eq!(
        send("/docs/7/file", UPLOAD).await.unwrap().status(),
        StatusCode::OK
    );
    for (path, size) in [
        ("/notes", over_a_mebibyte),
        ("/docs/7/file", UPLOAD + 1),
        ("/docs/7/file/", over_a_mebibyte),
    ] {
        let res = send(path, size).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}, {size}"
        );
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

/// `allow_larger_body` and `allow_route_without_rate_limit` called on the built layer add
/// to the routes the variables list: each logs its own loosening, none warns that it
/// replaces a variable (nothing is replaced), and a route the variable gave is refused as
/// given twice.
#[test]
fn route_setters_after_build_add_to_the_variables_routes() {
    let vars = [
        ("HARDENING_ROUTE_BODY_LIMITS", "/docs/{id}/file=4194304"),
        ("HARDENING_ROUTES_WITHOUT_RATE_LIMIT", "/webhooks/stripe"),
    ];
    let added = warnings_after_build(&vars, |h| {
        h.allow_larger_body("/avatars/{id}", 2 * 1024 * 1024)
            .unwrap()
            .allow_route_without_rate_limit("/webhooks/github")
            .unwrap()
    });
    let text = added.text();
    assert!(!text.contains("replaces what"), "{text}");
    for (setting, says) in [
        ("allow_larger_body", "on route /avatars/{id}"),
        ("allow_route_without_rate_limit", "route /webhooks/github"),
    ] {
        let warned = added.setting_warnings(setting);
        assert!(
            warned.len() == 1 && warned[0].contains(says),
            "{setting}: {warned:?}"
        );
    }
    let hardening = HardeningConfig::from_vars(vars).unwrap().build().unwrap();
    let twice = hardening
        .clone()
        .allow_larger_body("/docs/{doc}/file", 8 * 1024 * 1024)
        .map(drop)
        .unwrap_err();
    assert!(twice.to_string().contains("given before"), "{twice}");
    let twice = hardening
        .allow_route_without_rate_limit("/webhooks/stripe")
        .map(drop)
        .unwrap_err();
    assert!(twice.to_string().contains("given before"), "{twice}");
}
