//! example-notes end to end, over real TCP: the HTTP contract of the README, owner scoping
//! (the auth crate's IDOR probe across two users), cookies and CSRF, logout, login
//! throttling, the admin account from configuration, the AI token budget, health and the
//! HTML page.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use hardening_core::auth::{IdorRoutes, idor_probe};
use hardening_tests::jwt::{hs256_token, unix_now};
use hardening_tests::notes::TempNotes;
use hardening_tests::{OverTcp, Reply, send};
use http::{HeaderName, HeaderValue};

/// A running example on a fresh SQLite file, removed when dropped.
struct Running {
    addr: SocketAddr,
    notes: TempNotes,
}

impl Running {
    /// A token signed with the app's `JWT_SECRET` carrying these claims, and the app's `iss`
    /// and `aud`: one the verifier accepts if the claims are right.
    fn mint(&self, mut claims: serde_json::Value) -> String {
        claims["iss"] = example_notes::ISSUER.into();
        claims["aud"] = example_notes::AUDIENCE.into();
        hs256_token(&self.notes.config.jwt_secret, claims)
    }
}

/// The token's `sub` (the user id).
fn subject_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

async fn start(ai_daily_tokens: &str) -> Running {
    let notes = TempNotes::new(
        "e2e",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("AI_DAILY_TOKENS", ai_daily_tokens),
        ],
    );
    Running {
        addr: notes.serve().await,
        notes,
    }
}

const PASSWORD: &str = "a long passphrase for tests";
const ADMIN_PASSWORD: &str = "the configured admin passphrase";

async fn login(addr: SocketAddr, email: &str, password: &str) -> Reply {
    let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
    send(addr, "POST", "/auth/login", &[], Some(&body)).await
}

async fn register(addr: SocketAddr, email: &str) -> Reply {
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    send(addr, "POST", "/auth/register", &[], Some(&body)).await
}

/// Registers and logs in: (bearer token, session cookie pair `__Host-session=…`).
async fn user(addr: SocketAddr, email: &str) -> (String, String) {
    assert_eq!(register(addr, email).await.status, 202);
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let login = send(addr, "POST", "/auth/login", &[], Some(&body)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (token, cookie)
}

/// `send` with `Authorization: <auth>` (a `bearer(..)` value).
async fn send_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<&str>,
) -> Reply {
    send(addr, method, path, &[("authorization", auth)], body).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert!(body["request_id"].is_string(), "{body}");
}

#[tokio::test]
async fn registration_and_login_follow_the_contract() {
    let app = start("2000").await;
    let addr = app.addr;
    let first = register(addr, "ada@example.com").await;
    assert_eq!(first.status, 202, "{}", first.body);
    // A taken address gets the same answer (signing up tells no one who has an account),
    // and its account keeps its password.
    let body = r#"{"email":"ADA@example.com","password":"another passphrase"}"#;
    let again = send(addr, "POST", "/auth/register", &[], Some(body)).await;
    assert_eq!((again.status, again.json()), (first.status, first.json()));
    assert_eq!(login(addr, "ada@example.com", PASSWORD).await.status, 200);
    assert_problem(
        &login(addr, "ada@example.com", "another passphrase").await,
        401,
    );
    let weak = send(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some(r#"{"email":"bob@example.com","password":"short"}"#),
    )
    .await;
    assert_problem(&weak, 422);
    assert_eq!(weak.json()["errors"][0]["pointer"], "#/password");
    let huge = format!(
        r#"{{"email":"bob@example.com","password":"{}"}}"#,
        "x".repeat(2048)
    );
    assert_problem(
        &send(addr, "POST", "/auth/register", &[], Some(&huge)).await,
        422,
    );
    let bad_email = r#"{"email":"not an email","password":"a long passphrase"}"#;
    assert_problem(
        &send(addr, "POST", "/auth/register", &[], Some(bad_email)).await,
        422,
    );

    let ok = format!(r#"{{"email":"ada@example.com","password":"{PASSWORD}"}}"#);
    let login = send(addr, "POST", "/auth/login", &[], Some(&ok)).await;
    assert_eq!(login.status, 200);
    let body = login.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    let cookie = login.header("set-cookie").unwrap();
    for attribute in [
        "__Host-session=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=900",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    // The answer holds the session: no cache keeps it.
    assert_eq!(login.header("cache-control"), Some("no-store"));

    // Wrong password and unknown account: the same 401.
    let wrong = send(
        addr,
        "POST",
        "/auth/login",
        &[],
        Some(r#"{"email":"ada@example.com","password":"not the password"}"#),
    )
    .await;
    let unknown = send(
        addr,
        "POST",
        "/auth/login",
        &[],
        Some(r#"{"email":"nobody@example.com","password":"not the password"}"#),
    )
    .await;
    assert_problem(&wrong, 401);
    assert_problem(&unknown, 401);
    let strip = |r: &Reply| {
        let mut v = r.json();
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(&wrong), strip(&unknown));
}

/// The same password typed on two keyboards: `é` precomposed (NFC, U+00E9) and decomposed
/// (NFD, `e` + U+0301). The app hashed the raw bytes, so a user who registered on one device
/// could not log in from another. Passwords are NFKC-normalised (NIST SP 800-63B
/// §5.1.1.2), `ADMIN_PASSWORD` too; NFKC also merges compatibility forms (`ﬁ` and `fi`).
#[tokio::test]
async fn a_password_logs_in_whatever_its_unicode_normalisation() {
    let notes = TempNotes::new(
        "e2e-nfkc",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "l'admin a un s\u{e9}cret"),
        ],
    );
    let addr = notes.serve().await;
    // JSON escapes, so the bytes on the wire are the ones meant.
    let nfc = r"mot de passe s\u00e9cret";
    let nfd = r"mot de passe se\u0301cret";
    let body = format!(r#"{{"email":"zoe@example.com","password":"{nfc}"}}"#);
    let registered = send(addr, "POST", "/auth/register", &[], Some(&body)).await;
    assert_eq!(registered.status, 202, "{}", registered.body);
    assert_eq!(login(addr, "zoe@example.com", nfc).await.status, 200);
    let other_form = login(addr, "zoe@example.com", nfd).await;
    assert_eq!(
        other_form.status, 200,
        "the NFD spelling of the registered NFC password was refused: {}",
        other_form.body
    );
    let body = format!(r#"{{"email":"yan@example.com","password":"{nfd}"}}"#);
    assert_eq!(
        send(addr, "POST", "/auth/register", &[], Some(&body))
            .await
            .status,
        202
    );
    assert_eq!(login(addr, "yan@example.com", nfc).await.status, 200);
    let body = r#"{"email":"fi@example.com","password":"a fine long passphrase"}"#;
    assert_eq!(
        send(addr, "POST", "/auth/register", &[], Some(body))
            .await
            .status,
        202
    );
    let ligature = r"a \ufb01ne long passphrase";
    assert_eq!(login(addr, "fi@example.com", ligature).await.status, 200);
    // A different password is still refused.
    assert_problem(
        &login(addr, "zoe@example.com", r"mot de passe secret!").await,
        401,
    );
    let admin = login(addr, "admin@example.com", r"l'admin a un se\u0301cret").await;
    assert_eq!(admin.status, 200, "{}", admin.body);
}

/// One API, one pointer shape: the hand-written password errors use `Valid`'s RFC 6901
/// fragment form (`#/email`), so a client reads every `errors[].pointer` alike.
#[tokio::test]
async fn field_error_pointers_have_one_shape() {
    let app = start("2000").await;
    let bad_email = send(
        app.addr,
        "POST",
        "/auth/register",
        &[],
        Some(&format!(
            r#"{{"email":"not-an-email","password":"{PASSWORD}"}}"#
        )),
    )
    .await;
    let weak = send(
        app.addr,
        "POST",
        "/auth/register",
        &[],
        Some(r#"{"email":"bob@example.com","password":"short"}"#),
    )
    .await;
    let long = format!(
        r#"{{"email":"bob@example.com","password":"{}"}}"#,
        "x".repeat(2048)
    );
    let long = send(app.addr, "POST", "/auth/register", &[], Some(&long)).await;
    for reply in [&bad_email, &weak, &long] {
        assert_problem(reply, 422);
    }
    assert_eq!(bad_email.json()["errors"][0]["pointer"], "#/email");
    assert_eq!(weak.json()["errors"][0]["pointer"], "#/password");
    assert_eq!(long.json()["errors"][0]["pointer"], "#/password");
}

/// An address holding a control character (NUL, ESC) or an invisible one (a zero-width
/// space, a bidi control, a soft hyphen, a byte order mark) was an account of its own:
/// `ada@example.com` and a zero-width space made a second account, listed to the admin as
/// `ada@example.com`. Such an address is a 422 naming `#/email`, at sign-up and at login.
#[tokio::test]
async fn an_address_with_control_or_invisible_characters_is_refused() {
    let app = start("2000").await;
    // JSON escapes: `register` and `login` put them in the body as they are.
    for email in [
        r"ada@example.com\u200b",
        r"ada@example.com\u0000",
        r"\u001b[31mada@example.com",
        r"ada\u202e@example.com",
        r"\u2066ada@example.com",
        r"ada@exa\u00admple.com",
        r"\ufeffada@example.com",
    ] {
        let replies = [
            register(app.addr, email).await,
            login(app.addr, email, PASSWORD).await,
        ];
        for reply in &replies {
            assert_eq!(reply.status, 422, "{email} was taken: {}", reply.body);
            assert_problem(reply, 422);
            assert_eq!(reply.json()["errors"][0]["pointer"], "#/email", "{email}");
        }
    }
}

/// Every request here comes from one client (127.0.0.1): past 5 failures it is locked out of
/// the account (the account from one client's count), the right password included.
#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = start("2000").await;
    assert_eq!(register(app.addr, "eve@example.com").await.status, 202);
    let wrong = r#"{"email":"eve@example.com","password":"guess guess guess"}"#;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(send(app.addr, "POST", "/auth/login", &[], Some(wrong)).await);
    }
    assert!(statuses[..5].iter().all(|r| r.status == 401));
    let throttled = statuses.last().unwrap();
    assert_problem(throttled, 429);
    assert!(throttled.header("retry-after").is_some());
    // Even the right password waits out the lockout, from that client.
    let right = format!(r#"{{"email":"eve@example.com","password":"{PASSWORD}"}}"#);
    assert_eq!(
        send(app.addr, "POST", "/auth/login", &[], Some(&right))
            .await
            .status,
        429
    );
}

/// One client's wrong guesses lock that client out of the account, not the account's owner:
/// behind a trusted proxy, a guesser at 203.0.113.66 gets 401 ×6 then 429, while eve, at
/// 198.51.100.7, logs in with her password meanwhile.
#[tokio::test]
async fn one_clients_failed_logins_do_not_lock_the_owner_out() {
    let notes = TempNotes::new("e2e-login-clients", &[]);
    let hardening = hardening_core::HardeningConfig::from_vars([
        ("HARDENING_RATE_LIMIT_PER_MINUTE", "100000"),
        ("HARDENING_RATE_LIMIT_BURST", "100000"),
        ("HARDENING_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .unwrap();
    let addr = hardening_tests::serve(example_notes::app(&notes.config, hardening).unwrap()).await;
    assert_eq!(register(addr, "eve@example.com").await.status, 202);
    let login_from = async |client: &str, password: &str| {
        let body = format!(r#"{{"email":"eve@example.com","password":"{password}"}}"#);
        let from = [("x-forwarded-for", client)];
        send(addr, "POST", "/auth/login", &from, Some(&body)).await
    };
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login_from("203.0.113.66", "guess guess guess").await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
    assert_eq!(login_from("203.0.113.66", PASSWORD).await.status, 429);
    let owner = login_from("198.51.100.7", PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    assert_eq!(
        login_from("203.0.113.66", PASSWORD).await.status,
        429,
        "the owner's login does not unlock the guessing client"
    );
}

/// The login throttle counts `ａlice@example.com` (fullwidth `ａ`) as `alice@example.com`,
/// but the app stored and looked up addresses lower-cased in ASCII only, so the two were
/// two accounts sharing one count: logging in to a look-alike account of one's own cleared
/// alice's counts, and one client guessed her password past its 6 tries, without end.
#[tokio::test]
async fn a_look_alike_account_s_login_does_not_reset_another_account_s_count() {
    let app = start("2000").await;
    assert_eq!(register(app.addr, "alice@example.com").await.status, 202);
    let own = "\u{ff41}lice@example.com";
    let mine = "the guesser's own passphrase";
    let body = format!(r#"{{"email":"{own}","password":"{mine}"}}"#);
    let registered = send(app.addr, "POST", "/auth/register", &[], Some(&body)).await;
    assert_eq!(registered.status, 202, "{}", registered.body);
    let guess = async || {
        login(app.addr, "alice@example.com", "guess guess guess")
            .await
            .status
    };
    for _ in 0..5 {
        assert_eq!(guess().await, 401);
    }
    // Whatever the look-alike login answers, it must not hand back alice's guesses.
    let _ = login(app.addr, own, mine).await;
    let after = [guess().await, guess().await];
    assert_eq!(
        after[1], 429,
        "past 6 tries on alice from one client, a look-alike's login let more through: {after:?}"
    );
}

#[tokio::test]
async fn notes_crud_with_a_bearer_token_or_the_session_cookie() {
    let app = start("2000").await;
    let addr = app.addr;
    let (token, cookie) = user(addr, "ada@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let created = send(
        addr,
        "POST",
        "/notes",
        &h,
        Some(r#"{"title":"a","body":"b"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/notes/{id}");
    assert_eq!(
        send(addr, "GET", &path, &h, None).await.json()["title"],
        "a"
    );
    let updated = send(
        addr,
        "PUT",
        &path,
        &h,
        Some(r#"{"title":"a2","body":"b2"}"#),
    )
    .await;
    assert_eq!(updated.json()["title"], "a2");
    let list = send(addr, "GET", "/notes", &h, None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_problem(
        &send(addr, "POST", "/notes", &h, Some(r#"{"title":""}"#)).await,
        422,
    );
    assert_problem(&send(addr, "GET", "/notes", &[], None).await, 401);

    // The session cookie works too; unsafe requests from another site are refused (CSRF).
    let c = [("cookie", cookie.as_str())];
    assert_eq!(send(addr, "GET", &path, &c, None).await.status, 200);
    let same_site = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let note = r#"{"title":"from the page","body":""}"#;
    assert_eq!(
        send(addr, "POST", "/notes", &same_site, Some(note))
            .await
            .status,
        201
    );
    let cross = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ];
    assert_problem(&send(addr, "POST", "/notes", &cross, Some(note)).await, 403);
    assert_problem(&send(addr, "DELETE", &path, &cross, None).await, 403);

    assert_eq!(send(addr, "DELETE", &path, &h, None).await.status, 204);
    assert_problem(&send(addr, "GET", &path, &h, None).await, 404);
}

/// The session cookie is read by its name trimmed of spaces (`__Host-session =…` too), as
/// browsers read names: a session under any such spelling is its user's, and a token the app
/// did not sign, changed or expired is refused under every spelling. (This replaces a check of
/// the sealed cookie's internals: the cookie held an encrypted token, and a test planted a
/// raw one beside it. The cookie now holds the token `SessionIssuer` signed, the one the login
/// answer carries, so what matters is that no other token passes for a session.)
#[tokio::test]
async fn only_a_token_the_app_signed_passes_for_a_session_whatever_the_cookies_spelling() {
    let app = start("2000").await;
    let (mallory, mallory_cookie) = user(app.addr, "mallory@example.com").await;
    let (alice, _) = user(app.addr, "alice@example.com").await;
    let own = mallory_cookie.split_once('=').unwrap().1;
    assert_eq!(own, mallory, "the cookie carries the login's token");
    let now = unix_now();
    let claims = serde_json::json!({
        "sub": subject_of(&alice), "iat": now, "exp": now + 600, "jti": "forged",
        "iss": example_notes::ISSUER, "aud": example_notes::AUDIENCE, "roles": ["admin"],
    });
    let forged = hardening_tests::jwt::hs256_token(b"not the app's JWT_SECRET, 32 bytes+", claims);
    // Mallory's signature over a payload naming alice.
    let (_, alice_payload, _) = split3(&alice);
    let (mallory_header, _, mallory_signature) = split3(&mallory);
    let spliced = format!("{mallory_header}.{alice_payload}.{mallory_signature}");
    let expired = app.mint(serde_json::json!({
        "sub": subject_of(&alice), "iat": now - 800, "exp": now - 600, "jti": "expired",
    }));
    let list = |cookie: &str| {
        let cookie = cookie.to_owned();
        async move { send(app.addr, "GET", "/notes", &[("cookie", &cookie)], None).await }
    };
    for spelling in [
        "__Host-session=",
        "__Host-session =",
        "__Host-session\t= ",
        "theme=dark; __Host-session =",
    ] {
        let reply = list(&format!("{spelling}{mallory}")).await;
        assert_eq!(reply.status, 200, "{spelling:?}: {}", reply.body);
        for (what, token) in [
            ("forged", &forged),
            ("spliced", &spliced),
            ("expired", &expired),
        ] {
            let reply = list(&format!("{spelling}{token}")).await;
            assert_eq!(
                reply.status, 401,
                "{what} under {spelling:?}: {}",
                reply.body
            );
            assert_problem(&reply, 401);
        }
    }
}

/// A token's three parts.
fn split3(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("not a JWS compact token: {token}");
    };
    (header, payload, signature)
}

/// Beside Alice's session, a cookie of the same name that is not a session of the app
/// (forged, changed, made up) never makes her request someone else's: it is hers, or a 401
/// when the other cookie comes first (a request carries one session; `AuthLayer` reads the
/// first, as browsers send a `__Host-` cookie only from this host). Her writes land in her
/// account or nowhere. (It replaced a check that a planted raw token was not read before
/// the sealed session. Sealing did not keep Mallory's session out: `unseal` opened the first
/// session cookie that decrypted, so her own sealed cookie, planted first, was read. What
/// keeps a planted session out is the `__Host-` prefix, which browsers enforce.)
#[tokio::test]
async fn a_planted_cookie_never_makes_alices_request_someone_elses() {
    let app = start("2000").await;
    let (mallory, _) = user(app.addr, "mallory@example.com").await;
    let (alice, alice_cookie) = user(app.addr, "alice@example.com").await;
    let (_, mallory_payload, _) = split3(&mallory);
    let (alice_header, _, alice_signature) = split3(&alice);
    let spliced = format!("{alice_header}.{mallory_payload}.{alice_signature}");
    let mut created = 0;
    for (n, both) in [
        format!("{alice_cookie}; __Host-session ={spliced}"),
        format!("__Host-session ={spliced}; {alice_cookie}"),
        format!("{alice_cookie}; __Host-session=made-up"),
        format!("__Host-session=made-up; {alice_cookie}"),
    ]
    .iter()
    .enumerate()
    {
        let note = format!(r#"{{"title":"alice's secret {n}","body":"x"}}"#);
        let same_site = [("cookie", both.as_str()), ("sec-fetch-site", "same-origin")];
        let reply = send(app.addr, "POST", "/notes", &same_site, Some(&note)).await;
        match reply.status {
            201 => created += 1,
            401 => assert_problem(&reply, 401),
            other => panic!("{both:?}: {other} {}", reply.body),
        }
    }
    let notes_of = async |token: &str| {
        send(
            app.addr,
            "GET",
            "/notes",
            &[("authorization", &bearer(token))],
            None,
        )
        .await
        .json()
    };
    assert_eq!(
        notes_of(&mallory).await,
        serde_json::json!([]),
        "Alice's request was authenticated as Mallory"
    );
    assert_eq!(
        notes_of(&alice).await.as_array().map(Vec::len),
        Some(created)
    );
    assert!(created >= 2, "Alice's own cookie, read first, is hers");
}

#[tokio::test]
async fn one_user_cannot_reach_another_users_notes() {
    let app = start("2000").await;
    let (alice, _) = user(app.addr, "alice@example.com").await;
    let (bob, _) = user(app.addr, "bob@example.com").await;
    let creds = |t: &str| {
        (
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&bearer(t)).unwrap(),
        )
    };
    let routes = IdorRoutes {
        create: (
            "/notes".into(),
            r#"{"title":"private","body":"alice only"}"#.into(),
        ),
        id_pointer: "/id".into(),
        item: "/notes/{id}".into(),
        updates: vec![(
            http::Method::PUT,
            r#"{"title":"changed by bob","body":""}"#.into(),
        )],
        list: Some("/notes".into()),
    };
    idor_probe(OverTcp(app.addr), creds(&alice), creds(&bob), &routes)
        .await
        .unwrap();
    // Ids that do not exist and ids that are not yours answer alike.
    let h = [("authorization", bearer(&bob))];
    let h = [(h[0].0, h[0].1.as_str())];
    let missing = send(app.addr, "GET", "/notes/999999", &h, None).await;
    let theirs = send(app.addr, "GET", "/notes/1", &h, None).await;
    assert_eq!((missing.status, theirs.status), (404, 404));
    // A malformed id names nothing: the same 404 whatever the method (GET, through `Owned`,
    // always said so; PUT and DELETE parsed the id themselves and answered 400).
    let note = Some(r#"{"title":"t","body":"b"}"#);
    for id in ["abc", "1.0", "99999999999999999999", "%D9%A1"] {
        let path = format!("/notes/{id}");
        for (method, body) in [("GET", None), ("PUT", note), ("DELETE", None)] {
            let reply = send(app.addr, method, &path, &h, body).await;
            assert_problem(&reply, 404);
            assert_eq!(
                reply.json()["detail"],
                missing.json()["detail"],
                "{method} {path}"
            );
        }
    }
}

/// A note had many URLs: `/notes/01`, `/notes/+1` and `/notes/%2B1` reached note 1 (axum's
/// `Path<i64>` parses as `str::parse` does), so a rule or a cache keyed on the path could be
/// bypassed or poisoned. Only the decimal spelling the app writes names a note; any other
/// answers as a missing note does. `%31` is the same URI as `1` (RFC 3986 §6.2.2.2: an
/// unreserved character percent-encoded) and names the note too.
#[tokio::test]
async fn only_the_canonical_spelling_of_an_id_names_a_note() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "kim@example.com").await;
    let auth = bearer(&token);
    let note = Some(r#"{"title":"mine","body":"private"}"#);
    let created = send_as(app.addr, "POST", "/notes", &auth, note).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();
    let without_request_id = |reply: &Reply| {
        let mut body: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        body.as_object_mut()?.remove("request_id");
        Some(body)
    };
    let change = Some(r#"{"title":"changed","body":"through another URL"}"#);
    let invalid = Some(r#"{"title":"","body":""}"#);
    let mut unlike_missing = Vec::new();
    let requests = [
        ("GET", None),
        ("PUT", change),
        ("PUT", invalid),
        ("DELETE", None),
    ];
    for (method, body) in requests {
        let missing = send_as(app.addr, method, "/notes/999999", &auth, body).await;
        assert_problem(&missing, if body == invalid { 422 } else { 404 });
        for spelling in [
            format!("0{id}"),
            format!("00{id}"),
            format!("+{id}"),
            format!("%2B{id}"),
            format!("%30{id}"),
            format!("{id}%20"),
            format!("-0{id}"),
            "0".to_owned(),
            "-0".to_owned(),
            "9223372036854775808".to_owned(),
        ] {
            let path = format!("/notes/{spelling}");
            let reply = send_as(app.addr, method, &path, &auth, body).await;
            let alike = reply.header("content-type") == missing.header("content-type")
                && without_request_id(&reply) == without_request_id(&missing);
            if reply.status != missing.status || !alike {
                unlike_missing.push(format!("{method} {path}: {} {}", reply.status, reply.body));
            }
        }
    }
    assert!(
        unlike_missing.is_empty(),
        "answered unlike a missing note: {unlike_missing:#?}"
    );
    // Untouched, and named by its one URL, percent-encoded or not.
    let encoded: String = id
        .to_string()
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    for path in [format!("/notes/{id}"), format!("/notes/{encoded}")] {
        let reply = send_as(app.addr, "GET", &path, &auth, None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.json()["title"], "mine", "{path}");
    }
}

/// SQLite's `INTEGER PRIMARY KEY` hands the highest deleted id out again: a deleted note's
/// link, bookmark or audit-log entry named the next note created, perhaps another user's.
/// Ids are never reused.
#[tokio::test]
async fn a_deleted_notes_id_is_not_given_to_the_next_note() {
    let app = start("2000").await;
    let addr = app.addr;
    let (alice, _) = user(addr, "alice@example.com").await;
    let (bob, _) = user(addr, "bob@example.com").await;
    let note = Some(r#"{"title":"t","body":"b"}"#);
    let create = |token: String| async move {
        let created = send_as(addr, "POST", "/notes", &bearer(&token), note).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.json()["id"].as_i64().unwrap()
    };
    let first = create(alice.clone()).await;
    let newest = create(alice.clone()).await;
    let path = format!("/notes/{newest}");
    let deleted = send_as(addr, "DELETE", &path, &bearer(&alice), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let next = create(bob.clone()).await;
    assert!(
        next > newest && newest > first,
        "ids {first}, {newest} (deleted), then {next}: the deleted note's id was reused"
    );
    assert_problem(
        &send_as(addr, "GET", &path, &bearer(&alice), None).await,
        404,
    );
}

#[tokio::test]
async fn admin_listing_needs_the_admin_role() {
    let app = start("2000").await;
    let (user_token, _) = user(app.addr, "carol@example.com").await;
    // The admin account exists from start-up; its password is ADMIN_PASSWORD.
    let admin = login(app.addr, "admin@example.com", ADMIN_PASSWORD).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let admin_token = admin.json()["access_token"].as_str().unwrap().to_owned();
    let as_user = bearer(&user_token);
    let as_admin = bearer(&admin_token);
    assert_problem(
        &send_as(app.addr, "GET", "/admin/users", &as_user, None).await,
        403,
    );
    let users = send_as(app.addr, "GET", "/admin/users", &as_admin, None).await;
    assert_eq!(users.status, 200);
    let list = users.json();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@example.com", "carol@example.com"]);
    assert!(!users.body.contains("argon2"), "no hashes in the listing");
}

/// The admin listing read and validated its query before it checked the role: a non-admin
/// got a 422 for `limit=0` and a 400 "expected an integer" for `after=x` where a parameter
/// exists, and another 400 where it does not, which told the admin route's parameters and
/// their bounds to anyone logged in. A non-admin gets the same 403 whatever the query.
#[tokio::test]
async fn the_admin_listing_refuses_a_non_admin_before_reading_the_query() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "nina@example.com").await;
    let auth = bearer(&token);
    let forbidden = send_as(app.addr, "GET", "/admin/users", &auth, None).await;
    assert_problem(&forbidden, 403);
    let mut expected = forbidden.json();
    expected["request_id"] = serde_json::Value::Null;
    for query in [
        "?limit=0",
        "?limit=201",
        "?after=x",
        "?limit=1&after=1",
        "?foo=1",
    ] {
        let path = format!("/admin/users{query}");
        let reply = send_as(app.addr, "GET", &path, &auth, None).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        let mut body = reply.json();
        body["request_id"] = serde_json::Value::Null;
        assert_eq!(body, expected, "{path}");
    }
}

/// The admin role goes to the `ADMIN_EMAIL` account, and registration is open and
/// unverified: signing up with that address must not be a way in. It changes nothing (the
/// account exists from start-up; the answer is the one any address gets), and only
/// `ADMIN_PASSWORD` logs in with it.
#[tokio::test]
async fn registering_the_admin_email_does_not_make_an_admin() {
    let app = start("2000").await;
    let (victim, _) = user(app.addr, "victim@example.com").await;
    // An anonymous visitor claims the configured admin address, in any case.
    for claimed in ["admin@example.com", "Admin@Example.COM"] {
        assert_eq!(register(app.addr, claimed).await.status, 202);
    }
    // The visitor's password does not log in with it; nor does anything but ADMIN_PASSWORD.
    assert_problem(&login(app.addr, "admin@example.com", PASSWORD).await, 401);
    let listing = send(
        app.addr,
        "GET",
        "/admin/users",
        &[("authorization", &bearer(&victim))],
        None,
    )
    .await;
    assert_problem(&listing, 403);
}

/// A `NotesConfig` built by hand (not read from `ADMIN_EMAIL`) with the admin address in
/// another case: the admin account is keyed as every address is, so it logs in, as admin.
#[tokio::test]
async fn a_hand_built_admin_address_is_keyed_as_logins_are() {
    let mut notes = TempNotes::new(
        "e2e-admin-case",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    notes.config.admin_email = Some("Admin@Example.COM".to_owned());
    let addr = notes.serve().await;
    let admin = login(addr, "admin@example.com", ADMIN_PASSWORD).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let token = bearer(admin.json()["access_token"].as_str().unwrap());
    let listing = send(
        addr,
        "GET",
        "/admin/users",
        &[("authorization", &token)],
        None,
    )
    .await;
    assert_eq!(listing.status, 200, "{}", listing.body);
}

/// A database where someone registered the admin address before it was configured (or
/// before this binding existed): at start-up the row loses its password, so its registrant
/// cannot log in, and `ADMIN_PASSWORD` does, as admin.
#[tokio::test]
async fn an_admin_address_registered_earlier_is_bound_to_the_configuration() {
    let before = TempNotes::new("e2e-before", &[]);
    let addr = before.serve().await;
    assert_eq!(register(addr, "admin@example.com").await.status, 202);
    assert_eq!(login(addr, "admin@example.com", PASSWORD).await.status, 200);

    let database = before.config.database.to_str().unwrap().to_owned();
    let after = TempNotes::new(
        "e2e-after",
        &[
            ("DATABASE_PATH", database.as_str()),
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    let addr = after.serve().await;
    assert_problem(&login(addr, "admin@example.com", PASSWORD).await, 401);
    let admin = login(addr, "admin@example.com", ADMIN_PASSWORD).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let token = bearer(admin.json()["access_token"].as_str().unwrap());
    let listing = send_as(addr, "GET", "/admin/users", &token, None).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
}

/// Binding the admin address to the configuration locked the row its registrant had made,
/// but kept its id: the registrant's session, opened before the binding and signed with the
/// same `JWT_SECRET`, named that id and so read (and could change) the admin's notes, and the
/// registrant's notes showed up as the admin's. The admin gets an account of its own.
#[tokio::test]
async fn the_admin_address_registrants_session_reaches_nothing_of_the_admins() {
    let jwt_secret = hardening_tests::notes::random_secret();
    let before = TempNotes::new("e2e-squat-before", &[("JWT_SECRET", jwt_secret.as_str())]);
    let addr = before.serve().await;
    let (squatter, _) = user(addr, "admin@example.com").await;
    let squatter = bearer(&squatter);
    let planted = Some(r#"{"title":"planted","body":"by the registrant"}"#);
    let planted = send_as(addr, "POST", "/notes", &squatter, planted).await;
    assert_eq!(planted.status, 201, "{}", planted.body);

    let database = before.config.database.to_str().unwrap().to_owned();
    let after = TempNotes::new(
        "e2e-squat-after",
        &[
            ("JWT_SECRET", jwt_secret.as_str()),
            ("DATABASE_PATH", database.as_str()),
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    let addr = after.serve().await;
    let admin = login(addr, "admin@example.com", ADMIN_PASSWORD).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let admin = bearer(admin.json()["access_token"].as_str().unwrap());
    let secret = Some(r#"{"title":"admin only","body":"secret"}"#);
    let secret = send_as(addr, "POST", "/notes", &admin, secret).await;
    assert_eq!(secret.status, 201, "{}", secret.body);
    let path = format!("/notes/{}", secret.json()["id"]);

    // The registrant's session is still valid, and is still the registrant's: its own note
    // only, none of the admin's.
    let titles = listed(addr, "/notes", &squatter, "title").await;
    assert_eq!(
        titles,
        ["planted"],
        "the registrant's session lists the admin's notes"
    );
    assert_problem(&send_as(addr, "GET", &path, &squatter, None).await, 404);
    let note = Some(r#"{"title":"changed","body":"by the registrant"}"#);
    assert_problem(&send_as(addr, "PUT", &path, &squatter, note).await, 404);
    assert_problem(&send_as(addr, "DELETE", &path, &squatter, None).await, 404);
    // And the admin's account holds the admin's notes only.
    let titles = listed(addr, "/notes", &admin, "title").await;
    assert_eq!(
        titles,
        ["admin only"],
        "the registrant's notes are the admin's"
    );

    // A restart binds the admin's own row: it keeps its id, so its notes and sessions.
    let again = TempNotes::new(
        "e2e-squat-again",
        &[
            ("JWT_SECRET", jwt_secret.as_str()),
            ("DATABASE_PATH", database.as_str()),
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    let addr = again.serve().await;
    let titles = listed(addr, "/notes", &admin, "title").await;
    assert_eq!(
        titles,
        ["admin only"],
        "a restart took the admin's notes away"
    );
}

#[tokio::test]
async fn logout_revokes_the_token_and_clears_the_cookie() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "dave@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    assert_eq!(send(app.addr, "GET", "/notes", &h, None).await.status, 200);
    let out = send(app.addr, "POST", "/auth/logout", &h, None).await;
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(out.header("clear-site-data"), Some("\"cookies\""));
    assert_problem(&send(app.addr, "GET", "/notes", &h, None).await, 401);
    assert_problem(&send(app.addr, "GET", "/notes/1", &h, None).await, 401);
}

/// Logout with a session cookie whose token is no longer accepted (revoked by a logout
/// elsewhere, expired, invalid) answered 401 and left the cookie in the browser. It clears
/// the cookie whatever the token.
#[tokio::test]
async fn logout_with_a_dead_session_still_clears_the_cookie() {
    let app = start("2000").await;
    let (token, cookie) = user(app.addr, "lou@example.com").await;
    let auth = bearer(&token);
    let first = send_as(app.addr, "POST", "/auth/logout", &auth, None).await;
    assert_eq!(first.status, 204, "{}", first.body);
    // The browser still holds the cookie (that answer went to another client). An expired
    // session, a made-up cookie and a bad bearer token are dead too.
    let now = unix_now();
    let expired = app.mint(serde_json::json!({
        "sub": subject_of(&token), "iat": now - 800, "exp": now - 600, "jti": "expired",
    }));
    let expired = format!("__Host-session={expired}");
    for headers in [
        [("cookie", cookie.as_str())],
        [("cookie", expired.as_str())],
        [("cookie", "__Host-session=not-a-token")],
        [("authorization", "Bearer not.a.token")],
        [("authorization", auth.as_str())],
    ] {
        let again = send(app.addr, "POST", "/auth/logout", &headers, None).await;
        assert_eq!(again.status, 204, "{headers:?}: {}", again.body);
        assert!(
            again
                .header("set-cookie")
                .is_some_and(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")),
            "{headers:?}: no clearing Set-Cookie"
        );
        assert_eq!(again.header("clear-site-data"), Some("\"cookies\""));
        // Dead indeed: refused as a credential.
        assert_problem(&send(app.addr, "GET", "/notes", &headers, None).await, 401);
    }
}

/// One account logging in and out in a loop filled the denylist (100 000 entries), after
/// which nobody could log out. Past a few per user, its revocations now merge by `sub` and
/// `iat`, which logout passes along: every token it logged out stays refused, its session
/// opened after them works, and another user logs out as before.
#[tokio::test]
async fn many_logouts_of_one_account_all_stay_revoked() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "jo@example.com").await;
    let sub = subject_of(&token);
    let now = unix_now();
    let looped: Vec<String> = (0..20)
        .map(|n| {
            app.mint(serde_json::json!({
                "sub": sub, "iat": now - 100 + n, "exp": now + 600, "jti": format!("loop-{n}"),
            }))
        })
        .collect();
    for (n, token) in looped.iter().enumerate() {
        let auth = bearer(token);
        let out = send_as(app.addr, "POST", "/auth/logout", &auth, None).await;
        assert_eq!(out.status, 204, "logout {n}: {}", out.body);
    }
    for (n, token) in looped.iter().enumerate() {
        let auth = bearer(token);
        let notes = send_as(app.addr, "GET", "/notes", &auth, None).await;
        assert_eq!(notes.status, 401, "token {n} valid again after its logout");
    }
    let auth = bearer(&token);
    let notes = send_as(app.addr, "GET", "/notes", &auth, None).await;
    assert_eq!(
        notes.status, 200,
        "the session opened after them: {}",
        notes.body
    );

    let (other, _) = user(app.addr, "kim@example.com").await;
    let auth = bearer(&other);
    let h = [("authorization", auth.as_str())];
    assert_eq!(
        send(app.addr, "POST", "/auth/logout", &h, None)
            .await
            .status,
        204
    );
    assert_problem(&send(app.addr, "GET", "/notes", &h, None).await, 401);
}

/// Logout read `exp` with `as_u64().unwrap_or(0)`: a fractional `exp` (which the verifier
/// accepts) revoked the token until 1970, so it stayed valid after a 204. Any number the
/// verifier accepts is revoked until then (rounded up), one far past the token's `max_age`
/// too.
#[tokio::test]
async fn logout_revokes_a_token_whatever_number_its_exp_is() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "fran@example.com").await;
    let sub = subject_of(&token);
    let now = unix_now();
    let exps = [
        serde_json::json!(now as f64 + 600.5),
        serde_json::json!(1e12),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e300),
    ];
    for (n, exp) in exps.into_iter().enumerate() {
        let token = app.mint(serde_json::json!({
            "sub": sub, "iat": now, "exp": exp, "jti": format!("exp-form-{n}"),
        }));
        let auth = bearer(&token);
        let h = [("authorization", auth.as_str())];
        let before = send(app.addr, "GET", "/notes", &h, None).await;
        assert_eq!(before.status, 200, "exp {exp}: {}", before.body);
        let out = send(app.addr, "POST", "/auth/logout", &h, None).await;
        assert_eq!(out.status, 204, "exp {exp}: {}", out.body);
        let after = send(app.addr, "GET", "/notes", &h, None).await;
        assert_eq!(after.status, 401, "exp {exp}: still valid after logout");
        assert_problem(&after, 401);
    }
}

/// A token with no `jti` cannot be put on the denylist: logout answered 204 and the token
/// stayed valid. The app's verifier requires a `jti` (`require_jti`): such a token (or one
/// with an empty `jti`) is refused everywhere, never left valid; logout treats it as any
/// dead token (nothing to revoke, the cookie cleared).
#[tokio::test]
async fn a_token_it_could_not_revoke_is_refused() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "gus@example.com").await;
    let now = unix_now();
    for jti in [None, Some("")] {
        let mut claims = serde_json::json!({
            "sub": subject_of(&token), "iat": now, "exp": now + 600,
        });
        if let Some(jti) = jti {
            claims["jti"] = jti.into();
        }
        let auth = bearer(&app.mint(claims));
        let h = [("authorization", auth.as_str())];
        let notes = send(app.addr, "GET", "/notes", &h, None).await;
        assert_problem(&notes, 401);
        let out = send(app.addr, "POST", "/auth/logout", &h, None).await;
        assert_eq!(out.status, 204, "{}", out.body);
        assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
        assert_problem(&send(app.addr, "GET", "/notes", &h, None).await, 401);
    }
}

/// The app issues tokens for `TOKEN_LIFETIME`; one issued longer ago than that was accepted
/// for as long as its `exp` said (and a logout had to revoke it for that long).
#[tokio::test]
async fn a_token_older_than_the_app_issues_is_refused_whatever_its_exp() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "hal@example.com").await;
    let now = unix_now();
    let old = app.mint(serde_json::json!({
        "sub": subject_of(&token), "iat": now - 3_600, "exp": now + 3_600, "jti": "old",
    }));
    let auth = bearer(&old);
    assert_problem(&send_as(app.addr, "GET", "/notes", &auth, None).await, 401);
}

/// The subject was read with `str::parse`: `+5` and `05` named user 5 and reached their
/// notes. Only the id as the app writes it names a user.
#[tokio::test]
async fn only_the_subject_the_app_writes_reaches_a_users_notes() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "ivy@example.com").await;
    let auth = bearer(&token);
    let created = send_as(
        app.addr,
        "POST",
        "/notes",
        &auth,
        Some(r#"{"title":"mine","body":"private"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/notes/{}", created.json()["id"]);
    let sub = subject_of(&token);
    let now = unix_now();
    for other in [format!("+{sub}"), format!("0{sub}"), format!("{sub} ")] {
        let token = app.mint(serde_json::json!({
            "sub": other, "iat": now, "exp": now + 600, "jti": format!("sub-{other}"),
        }));
        let auth = bearer(&token);
        let h = [("authorization", auth.as_str())];
        let list = send(app.addr, "GET", "/notes", &h, None).await;
        assert_eq!(list.status, 200, "{other:?}: {}", list.body);
        assert_eq!(
            list.json(),
            serde_json::json!([]),
            "{other:?} read the notes"
        );
        assert_problem(&send(app.addr, "GET", &path, &h, None).await, 404);
        assert_problem(&send(app.addr, "DELETE", &path, &h, None).await, 404);
        let note = Some(r#"{"title":"t","body":"b"}"#);
        assert_problem(&send(app.addr, "PUT", &path, &h, note).await, 404);
        assert_problem(&send(app.addr, "POST", "/notes", &h, note).await, 403);
    }
    let list = send_as(app.addr, "GET", "/notes", &auth, None).await;
    assert_eq!(list.json()[0]["body"], "private");
}

/// A valid token for an account the database does not hold (it was replaced while the token
/// lived) failed the notes' foreign key: a 500 and an error in the log, for a client error.
#[tokio::test]
async fn a_token_for_a_missing_account_cannot_create_notes() {
    let app = start("2000").await;
    let now = unix_now();
    let token = app.mint(serde_json::json!({
        "sub": "999999", "iat": now, "exp": now + 600, "jti": "gone",
    }));
    let auth = bearer(&token);
    let note = Some(r#"{"title":"t","body":"b"}"#);
    let out = send(
        app.addr,
        "POST",
        "/notes",
        &[("authorization", &auth)],
        note,
    )
    .await;
    assert_problem(&out, 403);
}

/// A listing's `field` values, for a request that must succeed.
async fn listed(addr: SocketAddr, path: &str, auth: &str, field: &str) -> Vec<serde_json::Value> {
    let reply = send_as(addr, "GET", path, auth, None).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    let list = reply.json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].clone())
        .collect()
}

/// Listings are bounded (`limit` 1 to 200) and page by id. The admin listing had no bound
/// at all: every account in one response, `limit` ignored.
#[tokio::test]
async fn listings_are_bounded_and_page_by_id() {
    let app = start("2000").await;
    let addr = app.addr;
    let (token, _) = user(addr, "jo@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        let body = format!(r#"{{"title":"{title}","body":""}}"#);
        let created = send(addr, "POST", "/notes", &h, Some(&body)).await;
        assert_eq!(created.status, 201, "{}", created.body);
        ids.push(created.json()["id"].clone());
    }
    let newest = listed(addr, "/notes?limit=2", &auth, "id").await;
    assert_eq!(newest, [ids[2].clone(), ids[1].clone()]);
    let next = format!("/notes?limit=2&before={}", ids[1]);
    assert_eq!(listed(addr, &next, &auth, "id").await, [ids[0].clone()]);
    for bad in ["/notes?limit=0", "/notes?limit=201"] {
        assert_problem(&send(addr, "GET", bad, &h, None).await, 422);
    }
    // An unknown parameter is an error, not a first page that looks like the one asked for.
    assert_problem(&send(addr, "GET", "/notes?offset=2", &h, None).await, 400);

    let admin = login(addr, "admin@example.com", ADMIN_PASSWORD).await;
    let admin = bearer(admin.json()["access_token"].as_str().unwrap());
    let first = listed(addr, "/admin/users?limit=1", &admin, "id").await;
    assert_eq!(first.len(), 1, "{first:?}");
    let after = format!("/admin/users?limit=1&after={}", first[0]);
    let second = listed(addr, &after, &admin, "email").await;
    assert_eq!(second, ["jo@example.com"]);
    let a = [("authorization", admin.as_str())];
    assert_problem(
        &send(addr, "GET", "/admin/users?limit=201", &a, None).await,
        422,
    );
}

#[tokio::test]
async fn the_ai_route_reports_usage_and_stops_at_the_daily_budget() {
    let app = start("300").await;
    let (token, _) = user(app.addr, "erin@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let ask = r#"{"prompt":"summarise my notes please","max_tokens":100}"#;
    let first = send(app.addr, "POST", "/ai/complete", &h, Some(ask)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let usage = &first.json()["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 16);
    assert_eq!(usage["total_tokens"], 20);
    assert_eq!(
        first.json()["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        16
    );
    assert!(
        first
            .header("ratelimit")
            .unwrap()
            .contains("\"ai-tokens-per-day\"")
    );
    // 20 of 300 spent per call, and a call needs room for its reservation (4 + 100):
    // (300 - 104) / 20 + 1 = 10 calls fit.
    let mut statuses = vec![first.status];
    for _ in 0..20 {
        let r = send(app.addr, "POST", "/ai/complete", &h, Some(ask)).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_problem(&r, 429);
            assert_eq!(r.json()["violated-policies"][0], "ai-tokens-per-day");
            assert!(
                r.json()["type"]
                    .as_str()
                    .unwrap()
                    .contains("quota-exceeded")
            );
            assert!(r.header("retry-after").is_some());
            assert!(
                r.header("ratelimit")
                    .unwrap()
                    .contains("\"ai-tokens-per-day\";r=")
            );
            assert!(
                r.header("ratelimit-policy")
                    .unwrap()
                    .contains("\"ai-tokens-per-day\";q=300")
            );
            break;
        }
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 10, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
    // Without a token: 401, not a budget decision.
    assert_problem(
        &send(app.addr, "POST", "/ai/complete", &[], Some(ask)).await,
        401,
    );
}

/// One request reserves at most half the daily budget, and spends no more than it reserved:
/// a prompt whose tokens plus `max_tokens` exceed the reservation is refused before the
/// model runs, and costs nothing.
#[tokio::test]
async fn one_ai_request_spends_no_more_than_it_reserved() {
    let app = start("300").await; // at most 150 tokens reserved per request
    let (token, _) = user(app.addr, "erin@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let ask = |words: usize, max_tokens: u32| {
        let prompt = vec!["a"; words].join(" ");
        format!(r#"{{"prompt":"{prompt}","max_tokens":{max_tokens}}}"#)
    };
    for (words, max_tokens) in [(1000, 1), (149, 2), (1, 256)] {
        let r = send(
            app.addr,
            "POST",
            "/ai/complete",
            &h,
            Some(&ask(words, max_tokens)),
        )
        .await;
        assert_problem(&r, 422);
        let error = &r.json()["errors"][0];
        assert_eq!(error["pointer"], "#/prompt");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains("(150 tokens)"), "{detail}");
    }
    // Exactly the reservation fits, and the refusals above cost nothing: two of these fill
    // the day's 300, the third is over budget.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = send(app.addr, "POST", "/ai/complete", &h, Some(&ask(149, 1))).await;
        if r.status == 200 {
            assert_eq!(r.json()["usage"]["total_tokens"], 150);
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn health_and_the_page() {
    let app = start("2000").await;
    assert_eq!(
        send(app.addr, "GET", "/healthz", &[], None).await.status,
        200
    );
    let ready = send(app.addr, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let page = send(app.addr, "GET", "/", &[], None).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    assert!(page.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert_eq!(
        page.body.matches("<script").count(),
        1,
        "one script, the nonce'd one"
    );
    assert!(page.header("x-request-id").is_some());
}
