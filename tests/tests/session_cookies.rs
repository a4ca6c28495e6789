//! Session cookies over TCP on 127.0.0.1, as a server-rendered app uses them: a stale
//! session cookie (expired, revoked, signed with an old secret, claims of another shape)
//! reads as logged out on the pages that take `Option<Authenticated>` (the home page, the
//! login page), while a bad bearer token stays a 401 there and `Authenticated` refuses both,
//! its 401 clearing the dead session cookie; and `SessionIssuer`'s round trip: log in, use
//! the cookie, log out, the cookie is dead.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use hardening_auth::{
    AuthLayer, Authenticated, CurrentSession, Denylist, DenylistFuture, LoggedOut, MemoryDenylist,
    SessionError, SessionIssuer, TokenRef,
};
use hardening_core::Hardening;
use hardening_tests::jwt::{hs256_token, hs256_verifier, unix_now};
use hardening_tests::notes::TempNotes;
use hardening_tests::{Captured, Reply, send};
use serde_json::{Value, json};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-sessions";
const OLD_SECRET: &[u8] = b"Vb3nM8qL1wE6rT9yU2iO5pA7sD4fG0hJ-sessions";
const COOKIE: &str = "__Host-session";

/// Claims of a shape the `/typed` page asks for.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Typed {
    tenant: u64,
}

/// A denylist whose store is down.
#[derive(Debug)]
struct DownStore;

impl Denylist for DownStore {
    fn is_revoked<'a>(&'a self, _: TokenRef<'a>) -> DenylistFuture<'a, bool> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn revoke<'a>(&'a self, _: TokenRef<'a>, _: SystemTime) -> DenylistFuture<'a, ()> {
        Box::pin(async { Err("connection refused".into()) })
    }
}

/// The home page: anyone may see it, and a user is greeted.
async fn home(user: Option<Authenticated>) -> String {
    user.map_or("anonymous".to_owned(), |u| {
        format!("hello {}", u.principal.subject)
    })
}

/// The account page: a user's only.
async fn account(user: Authenticated) -> String {
    user.principal.subject
}

/// The home page (`Option<Authenticated>`), an account page (`Authenticated`) and a page
/// whose claims type wants a `tenant` (`Option<Authenticated<Typed>>`), behind `Hardening`.
async fn app(denylist: Arc<dyn Denylist>) -> SocketAddr {
    app_behind(denylist, TempNotes::hardening("100000").build().unwrap()).await
}

/// [`app`] behind this `Hardening`.
async fn app_behind(denylist: Arc<dyn Denylist>, hardening: Hardening) -> SocketAddr {
    let auth = AuthLayer::new(hs256_verifier(SECRET))
        .session_cookie(COOKIE)
        .unwrap()
        .denylist(denylist);
    let app = Router::new()
        .route("/", get(home))
        .route("/account", get(account))
        .route(
            "/typed",
            get(|user: Option<Authenticated<Typed>>| async move {
                user.map_or("anonymous".to_owned(), |u| {
                    format!("hello {}", u.principal.subject)
                })
            }),
        )
        .layer(auth)
        .layer(hardening);
    hardening_tests::serve(app).await
}

async fn revoked_list() -> Arc<MemoryDenylist> {
    let list = Arc::new(MemoryDenylist::new(10));
    let until = SystemTime::now() + Duration::from_secs(600);
    list.revoke(TokenRef::new("logged-out", "user-1", None), until)
        .await
        .unwrap();
    list
}

/// The stale credentials of a user whose session ended, each with the reason logged.
fn stale_tokens() -> Vec<(&'static str, String)> {
    let live = |claims: Value| hs256_token(SECRET, claims);
    vec![
        (
            "expired",
            live(json!({ "sub": "user-1", "jti": "old", "exp": unix_now() - 3600 })),
        ),
        (
            "revoked",
            live(json!({ "sub": "user-1", "jti": "logged-out" })),
        ),
        (
            "bad signature",
            hs256_token(OLD_SECRET, json!({ "sub": "user-1", "jti": "rotated" })),
        ),
        ("malformed", "not-a-token".to_owned()),
    ]
}

async fn with_cookie(addr: SocketAddr, path: &str, token: &str) -> Reply {
    let cookie = format!("theme=dark; {COOKIE}={token}");
    send(addr, "GET", path, &[("cookie", &cookie)], None).await
}

async fn with_bearer(addr: SocketAddr, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    send(addr, "GET", path, &[("authorization", &auth)], None).await
}

/// A user whose session cookie expired, was revoked (logged out elsewhere) or was signed
/// with a secret since rotated got a 401 problem on the home page, and on the login page
/// itself: they could not log in again until they cleared their cookies. Such a cookie now
/// reads as logged out there; the account page still refuses it (401), and the reason is
/// logged at info as before, with where the credential came from.
#[tokio::test]
async fn a_stale_session_cookie_reads_as_logged_out_where_login_is_optional() {
    let addr = app(revoked_list().await).await;
    let (log, _guard) = Captured::json_logs(tracing::Level::INFO);
    for (what, token) in stale_tokens() {
        let home = with_cookie(addr, "/", &token).await;
        assert_eq!(
            (home.status, home.body.as_str()),
            (200, "anonymous"),
            "{what}: {home:?}"
        );
        let account = with_cookie(addr, "/account", &token).await;
        account.problem(401);
        assert_eq!(
            account.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#),
            "{what}"
        );
    }
    let refused: Vec<Value> = log
        .json_lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "token refused")
        .collect();
    // Each stale cookie twice: the home page and the account page.
    assert_eq!(refused.len(), 2 * stale_tokens().len(), "{refused:#?}");
    for line in &refused {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["target"], "hardening::auth", "{line}");
        assert_eq!(line["fields"]["source"], "cookie", "{line}");
        assert!(line["fields"]["reason"].is_string(), "{line}");
    }
    // The home page's refusals are no rejection: no security event.
    let events = log.security_event_names();
    assert_eq!(
        events,
        vec!["unauthenticated"; stale_tokens().len()],
        "{events:?}"
    );

    // A live session still says who it is.
    let live = hs256_token(SECRET, json!({ "sub": "user-1", "jti": "live" }));
    let home = with_cookie(addr, "/", &live).await;
    assert_eq!((home.status, home.body.as_str()), (200, "hello user-1"));
}

/// An API client must learn that its token is bad: a failed `Authorization: Bearer` token
/// stays a 401 on a route that takes `Option<Authenticated>`.
#[tokio::test]
async fn a_bad_bearer_token_stays_a_401_where_login_is_optional() {
    let addr = app(revoked_list().await).await;
    for (what, token) in stale_tokens() {
        let home = with_bearer(addr, "/", &token).await;
        home.problem(401);
        assert_eq!(
            home.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#),
            "{what}"
        );
    }
    let home = send(addr, "GET", "/", &[], None).await;
    assert_eq!((home.status, home.body.as_str()), (200, "anonymous"));
}

/// A session cookie whose claims do not fit the page's claims type is no session for that
/// page: logged out there; a bearer token of that shape is a 401.
#[tokio::test]
async fn a_session_cookie_of_another_shape_reads_as_logged_out() {
    let addr = app(revoked_list().await).await;
    let token = hs256_token(SECRET, json!({ "sub": "user-1", "tenant": "acme" }));
    let page = with_cookie(addr, "/typed", &token).await;
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "anonymous"),
        "{page:?}"
    );
    with_bearer(addr, "/typed", &token).await.problem(401);
    let fits = hs256_token(SECRET, json!({ "sub": "user-1", "tenant": 7 }));
    let page = with_cookie(addr, "/typed", &fits).await;
    assert_eq!((page.status, page.body.as_str()), (200, "hello user-1"));
}

/// A session cookie the denylist could not be asked about (its store down) reads as logged
/// out where login is optional: nothing is granted on the word of a token that may be
/// revoked, and the page still works. Where authentication is needed it is a 503, and a
/// bearer token is a 503 on the optional page too (the client should retry).
#[tokio::test]
async fn a_session_cookie_the_denylist_cannot_check_reads_as_logged_out() {
    let addr = app(Arc::new(DownStore)).await;
    let token = hs256_token(SECRET, json!({ "sub": "user-1", "jti": "live" }));
    let home = with_cookie(addr, "/", &token).await;
    assert_eq!(
        (home.status, home.body.as_str()),
        (200, "anonymous"),
        "{home:?}"
    );
    let account = with_cookie(addr, "/account", &token).await;
    account.problem(503);
    assert_eq!(account.header("retry-after"), Some("1"));
    let home = with_bearer(addr, "/", &token).await;
    home.problem(503);
    assert_eq!(home.header("retry-after"), Some("1"));
}

/// The README's sessions example, served behind `Hardening`: `/login` starts a session for
/// the user named in the query, `/logout` ends it.
async fn sessions_app(denylist: Arc<dyn Denylist>) -> SocketAddr {
    sessions_app_lasting(denylist, Duration::from_secs(8 * 3600)).await
}

/// [`sessions_app`], its sessions lasting `lifetime`.
async fn sessions_app_lasting(denylist: Arc<dyn Denylist>, lifetime: Duration) -> SocketAddr {
    let hardening = TempNotes::hardening("100000").build().unwrap();
    sessions_app_behind(denylist, lifetime, hardening).await
}

/// [`sessions_app_lasting`] behind this `Hardening`.
async fn sessions_app_behind(
    denylist: Arc<dyn Denylist>,
    lifetime: Duration,
    hardening: Hardening,
) -> SocketAddr {
    let verifier = hardening_auth::JwtVerifier::builder()
        .hmac(None, hardening_auth::Algorithm::HS256, SECRET)
        .unwrap()
        .issuer("notes")
        .max_age(lifetime)
        .require_jti()
        .build()
        .unwrap();
    let auth = AuthLayer::new(verifier)
        .session_cookie(COOKIE)
        .unwrap()
        .denylist(denylist);
    let sessions = SessionIssuer::builder(&auth, lifetime).build().unwrap();

    async fn login(
        State(sessions): State<SessionIssuer>,
    ) -> Result<impl IntoResponse, SessionError> {
        Ok((sessions.issue("user-1")?, Redirect::to("/")))
    }
    async fn logout(
        State(sessions): State<SessionIssuer>,
        session: CurrentSession,
    ) -> Result<LoggedOut, SessionError> {
        sessions.logout(session).await
    }
    let app = Router::new()
        .route("/", get(home))
        .route("/account", get(account))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(sessions)
        .layer(auth)
        .layer(hardening);
    hardening_tests::serve(app).await
}

/// The `name=value` a browser sends back for this `Set-Cookie`.
fn sent_back(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

async fn post_with(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    send(addr, "POST", path, &headers, None).await
}

/// Log in, use the session, log out: the same cookie then reads as logged out where login
/// is optional and is refused (401) where it is needed; the logout clears it. Through
/// `Hardening`, whose cookie rules leave the session's `Set-Cookie` as it was issued.
#[tokio::test]
async fn a_session_is_issued_used_and_ended() {
    let addr = sessions_app(Arc::new(MemoryDenylist::new(100))).await;
    let login = post_with(addr, "/login", None).await;
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/"));
    assert_eq!(login.header("cache-control"), Some("no-store"));
    let set = login.all("set-cookie");
    assert_eq!(set.len(), 1, "{set:?}");
    let mut attributes: Vec<&str> = set[0].split("; ").skip(1).collect();
    attributes.sort_unstable();
    assert_eq!(
        attributes,
        [
            "HttpOnly",
            "Max-Age=28800",
            "Path=/",
            "SameSite=Lax",
            "Secure"
        ]
    );
    let cookie = sent_back(set[0]).to_owned();
    assert!(cookie.starts_with("__Host-session=ey"), "{cookie}");

    let home = send(addr, "GET", "/", &[("cookie", &cookie)], None).await;
    assert_eq!((home.status, home.body.as_str()), (200, "hello user-1"));
    let account = send(addr, "GET", "/account", &[("cookie", &cookie)], None).await;
    assert_eq!((account.status, account.body.as_str()), (200, "user-1"));
    // The token is a bearer token too.
    let token = cookie.trim_start_matches("__Host-session=");
    let account = with_bearer(addr, "/account", token).await;
    assert_eq!(account.status, 200);

    let logout = post_with(addr, "/logout", Some(&cookie)).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let cleared = logout.all("set-cookie");
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].starts_with("__Host-session=;"), "{cleared:?}");
    assert!(cleared[0].contains("Max-Age=0"), "{cleared:?}");

    // A copy of the cookie kept (stolen, or a second tab) is dead.
    let home = send(addr, "GET", "/", &[("cookie", &cookie)], None).await;
    assert_eq!((home.status, home.body.as_str()), (200, "anonymous"));
    send(addr, "GET", "/account", &[("cookie", &cookie)], None)
        .await
        .problem(401);
    with_bearer(addr, "/account", token).await.problem(401);
    // Logging out again: nothing left to revoke, the cookie cleared all the same.
    let again = post_with(addr, "/logout", Some(&cookie)).await;
    assert_eq!(again.status, 204);
    assert!(again.all("set-cookie")[0].contains("Max-Age=0"));
}

/// A session lasting longer than `Hardening`'s cap on cookie lifetimes (30 days by default,
/// `CookiePolicy::max_age`) keeps its token's `exp`, but its cookie is cut to the cap: the
/// browser drops it first, and the user is logged out early. `SessionIssuer` cannot know the
/// cap (it is set on `Hardening`'s `HeaderPolicy`, which `hardening-auth` does not see), so
/// its docs say to keep the lifetime within it; this is what they warn of.
#[tokio::test]
async fn a_session_longer_than_the_cookie_cap_loses_its_cookie_first() {
    const SIXTY_DAYS: u64 = 60 * 24 * 3600;
    let lifetime = Duration::from_secs(SIXTY_DAYS);
    let addr = sessions_app_lasting(Arc::new(MemoryDenylist::new(100)), lifetime).await;
    let login = post_with(addr, "/login", None).await;
    assert_eq!(login.status, 303, "{login:?}");
    let set = login.all("set-cookie");
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].contains("Max-Age=2592000"), "{set:?}");
    let token = sent_back(set[0]).trim_start_matches("__Host-session=");
    let claims: Value = {
        use base64::Engine as _;
        let payload = token.split('.').nth(1).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    };
    let lasts = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lasts, SIXTY_DAYS);
}

/// A logout the denylist could not take is a 503 that clears no cookie: the session is
/// not ended, and must not look ended.
#[tokio::test]
async fn a_logout_the_denylist_cannot_take_is_a_503() {
    let addr = sessions_app(Arc::new(DownStore)).await;
    let login = post_with(addr, "/login", None).await;
    let cookie = sent_back(login.all("set-cookie")[0]).to_owned();
    let logout = post_with(addr, "/logout", Some(&cookie)).await;
    logout.problem(503);
    assert_eq!(logout.header("retry-after"), Some("1"));
    assert!(logout.all("set-cookie").is_empty(), "{logout:?}");
}

/// A session cookie refused where authentication is needed (revoked by a logout, expired,
/// signed with a secret since rotated, garbled) was kept by its 401: the browser sent it on
/// every request, each a 401, until the user logged in again or the cookie expired. That
/// 401 now clears it with the very `Set-Cookie` a logout sends, which the cookie rules of
/// `Hardening::strict()` let through as it is. A bad bearer token's 401, a request with no
/// credential, a denylist outage's 503 and the pages that do not require a login clear
/// nothing.
#[tokio::test]
async fn a_refused_session_cookie_is_cleared_by_its_401() {
    let lifetime = Duration::from_secs(8 * 3600);
    let sessions = sessions_app_behind(
        Arc::new(MemoryDenylist::new(100)),
        lifetime,
        Hardening::strict(),
    )
    .await;
    let login = post_with(sessions, "/login", None).await;
    let cookie = sent_back(login.all("set-cookie")[0]).to_owned();
    let logout = post_with(sessions, "/logout", Some(&cookie)).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let cleared = logout.all("set-cookie")[0].to_owned();
    assert!(cleared.starts_with("__Host-session=;"), "{cleared}");
    // The copy of the cookie a second tab kept, on a page that needs the session.
    let account = send(sessions, "GET", "/account", &[("cookie", &cookie)], None).await;
    account.problem(401);
    assert_eq!(account.all("set-cookie"), [cleared.as_str()], "{account:?}");
    let home = send(sessions, "GET", "/", &[("cookie", &cookie)], None).await;
    assert_eq!((home.status, home.body.as_str()), (200, "anonymous"));
    assert!(home.all("set-cookie").is_empty(), "{home:?}");

    let addr = app_behind(revoked_list().await, Hardening::strict()).await;
    for (what, token) in stale_tokens() {
        let account = with_cookie(addr, "/account", &token).await;
        account.problem(401);
        assert_eq!(
            account.all("set-cookie"),
            [cleared.as_str()],
            "{what}: {account:?}"
        );
        let home = with_cookie(addr, "/", &token).await;
        assert_eq!(home.status, 200, "{what}: {home:?}");
        assert!(home.all("set-cookie").is_empty(), "{what}: {home:?}");
        for path in ["/", "/account"] {
            let res = with_bearer(addr, path, &token).await;
            res.problem(401);
            assert!(
                res.all("set-cookie").is_empty(),
                "bearer {what} {path}: {res:?}"
            );
        }
    }
    let nothing = send(addr, "GET", "/account", &[], None).await;
    nothing.problem(401);
    assert!(nothing.all("set-cookie").is_empty(), "{nothing:?}");

    let down = app_behind(Arc::new(DownStore), Hardening::strict()).await;
    let live = hs256_token(SECRET, json!({ "sub": "user-1", "jti": "live" }));
    let account = with_cookie(down, "/account", &live).await;
    account.problem(503);
    assert!(account.all("set-cookie").is_empty(), "{account:?}");
}

/// With a `RedisDenylist` shared by two instances (the LLM gateway's set-up), a session
/// ended on one is dead on the other.
#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_session_ended_on_one_instance_is_dead_on_another() {
    let server = hardening_tests::redis_server::RedisServer::start();
    let denylist = || async {
        Arc::new(
            hardening_auth::RedisDenylist::builder(&server.url())
                .connect()
                .await
                .unwrap(),
        )
    };
    let (one, two) = (
        sessions_app(denylist().await).await,
        sessions_app(denylist().await).await,
    );
    let login = post_with(one, "/login", None).await;
    let cookie = sent_back(login.all("set-cookie")[0]).to_owned();
    let home = send(two, "GET", "/", &[("cookie", &cookie)], None).await;
    assert_eq!(home.body, "hello user-1");
    assert_eq!(post_with(one, "/logout", Some(&cookie)).await.status, 204);
    let home = send(two, "GET", "/", &[("cookie", &cookie)], None).await;
    assert_eq!((home.status, home.body.as_str()), (200, "anonymous"));
    send(two, "GET", "/account", &[("cookie", &cookie)], None)
        .await
        .problem(401);
}
