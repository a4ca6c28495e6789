//! example-notes: a hardened notes service.
//!
//! SQLite through rusqlite (owner-scoped queries), registration and login with argon2id
//! passwords and throttled failures, sessions from `hardening-auth`'s `SessionIssuer` (an
//! HS256 token answered as a bearer token and set in the `__Host-session` cookie; logout
//! revokes it), notes CRUD where another user's note is a 404, an admin listing
//! (for the `ADMIN_EMAIL` account, created at start-up with `ADMIN_PASSWORD`, which cannot be
//! had by registering that address; registration answers alike whether an address is
//! taken or not),
//! a token-budgeted fake AI completion, and an HTML page whose scripts run through the CSP
//! nonce. Everything sits behind `Hardening` built from the `HARDENING_*` environment.
//!
//! `main.rs` serves [`app`] on `BIND`:`PORT`; the end-to-end tests build it the same way.

mod ai;
mod config;
mod db;
mod page;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hardening_core::auth::{
    Authenticated, CanonicalId, CurrentSession, MAX_PASSWORD_LEN, Owned, PasswordError, Passwords,
    SessionError, SessionIssuer, Verification,
};
use hardening_core::errors::{Error, FieldError, Problem, Valid, report_rejection};
use hardening_core::headers::{Csp, CspReports, HeaderPolicy};
use hardening_core::ratelimit::{LoginThrottle, Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_core::{ClientIp, HardeningConfig, Health, RequestId, SecurityEvent};
use serde::Deserialize;
use serde_json::json;

pub use config::{ConfigError, NotesConfig};
pub use db::{CreateUser, Db, Note, User};
pub use session::{AUDIENCE, ISSUER, SESSION_COOKIE, TOKEN_LIFETIME};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    db: Db,
    passwords: Passwords,
    sessions: SessionIssuer,
    throttle: Arc<LoginThrottle>,
    admin: Option<Arc<Admin>>,
}

/// The configured admin account: its address and password come from configuration
/// (`ADMIN_EMAIL`, `ADMIN_PASSWORD`), never from registration. Logging in with that address
/// checks the configured password, not the database row (which [`app`] creates at start-up
/// with no usable hash).
struct Admin {
    email: String,
    /// The argon2id hash of the (normalised) `ADMIN_PASSWORD`, made at start-up: made on the
    /// first login instead, that login took one hash longer and told the address apart.
    hash: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The account for `email` and `password`, hashed now. `Passwords` hashes on a runtime's
    /// blocking pool and this runs in synchronous start-up, maybe on a runtime thread: the
    /// hash is made on a thread of its own, with a runtime of its own, and waited for.
    fn new(email: &str, password: &str, passwords: &Passwords) -> Result<Self, ConfigError> {
        let password = normalised(password);
        let hash = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .map_err(|_| PasswordError::Internal)?
                        .block_on(passwords.hash(password.as_bytes()))
                })
                .join()
                .unwrap_or(Err(PasswordError::Internal))
        })
        .map_err(ConfigError::AdminPasswordHash)?;
        Ok(Self {
            // Keyed as addresses are stored and looked up, however the config was made.
            email: LoginThrottle::account_key(email),
            hash,
        })
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error("cannot open the database {path}: {source}; check DATABASE_PATH")]
    Database {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
}

/// The whole service for `config`, `Hardening` included, with `HARDENING_*` settings from
/// `hardening` (use [`HardeningConfig::from_env`]).
pub fn app(config: &NotesConfig, hardening: HardeningConfig) -> Result<Router, StartError> {
    let database_error = |source| StartError::Database {
        path: config.database.display().to_string(),
        source,
    };
    let db = Db::open(&config.database).map_err(database_error)?;
    let routes = routes(config, db.clone())?;
    if let Some(email) = &config.admin_email {
        // The admin's row exists from the start, so the address is taken, and holds no usable
        // password: only ADMIN_PASSWORD logs in. One registered before this binding is set
        // aside, its id and notes with it: the admin's row is a new one.
        db.lock_account(&LoginThrottle::account_key(email))
            .map_err(database_error)?;
    }
    let hardening = hardening
        .build()
        .map_err(ConfigError::from)?
        .security_headers(HeaderPolicy::html().csp(Csp::html().report_uri("/csp-report")))
        .map_err(ConfigError::from)?
        .health(Health::new().check("database", {
            let db = db.clone();
            move || {
                let db = db.clone();
                async move { db.ping().await }
            }
        }));
    Ok(routes.layer(hardening))
}

/// The routes and their own layers (auth, budgets), without `Hardening`: for the load test's
/// "same route without Hardening" comparison. Serve [`app`] instead: without `Hardening` there
/// are no security headers, limits or problem mapping, and login falls back to the socket
/// peer for its per-IP throttle (it needs `ConnectInfo`), and the admin account's row is not
/// created (`app` creates it), so the admin cannot log in.
pub fn routes(config: &NotesConfig, db: Db) -> Result<Router, ConfigError> {
    // `NotesConfig::from_env` checks `jwt_secret`'s length; the verifier checks it again (a
    // config built by hand).
    let (auth, sessions) = session::auth(&config.jwt_secret)?;
    let passwords = config.passwords.clone();
    let admin = config::admin_account(
        config.admin_email.as_deref(),
        config.admin_password.as_deref(),
    )?
    .map(|(email, password)| Admin::new(email, password, &passwords).map(Arc::new))
    .transpose()?;
    let state = AppState {
        db,
        passwords,
        sessions,
        throttle: Arc::new(LoginThrottle::new()),
        admin,
    };
    Ok(Router::new()
        .route("/", get(page::index))
        .route(
            "/auth/register",
            post(register).route_layer(RateLimitLayer::new(sign_up_limit())),
        )
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/notes", get(list_notes).post(create_note))
        .route(
            "/notes/{id}",
            get(get_note).put(update_note).delete(delete_note),
        )
        .route("/admin/users", get(admin_users))
        .merge(ai::router(config.ai_daily_tokens)?)
        .merge(CspReports::new().router("/csp-report"))
        .with_state(state)
        .layer(auth))
}

/// Sign-ups per client IP (IPv6 by /64): 10 an hour. Each one costs an argon2 hash and makes
/// an account; without a limit of its own, one client could make thousands an hour under the
/// general per-IP limit. Taken and new addresses count alike (and are refused alike).
fn sign_up_limit() -> RateLimiter {
    let per_hour = std::num::NonZeroU32::new(10).unwrap_or(std::num::NonZeroU32::MIN);
    RateLimiter::new([Policy::per_client_ip(
        "sign-ups-per-hour",
        Quota::per_hour(per_hour),
    )])
}

/// `POST /auth/register` and `/auth/login`.
#[derive(Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Credentials {
    #[garde(length(bytes, min = 3, max = 254), custom(email_shape))]
    email: String,
    // Checked by hand below (strength, length) so the message can say what is wrong.
    #[garde(skip)]
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `local@domain.tld`, no spaces, controls or invisible characters: enough to catch typos
/// (the real check is a confirmation mail, out of scope here) and look-alikes of another
/// address made of characters no one sees.
fn email_shape(value: &str, _: &()) -> garde::Result {
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_default_ignorable(c));
    if ok {
        Ok(())
    } else {
        Err(garde::Error::new("not an email address"))
    }
}

/// Unicode's default-ignorable code points (DerivedCoreProperties.txt): zero-width spaces and
/// joiners, bidi controls, the soft hyphen, the byte order mark, variation selectors, tags.
/// Shown as nothing, they made `ada@example.com` and a second account that reads the same.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Too short, too long, only white space, holding a control character (NIST SP 800-63B
/// asks for printable characters and spaces), the account's own address (or its part
/// before the `@`), in any case or form, or one of the most common passwords.
fn weak_password(password: &str, email: &str) -> Option<&'static str> {
    const COMMON: &[&str] = &[
        "password",
        "123456789012",
        "qwertyuiop",
        "passwordpassword",
        "iloveyou1234",
        "correcthorsebatterystaple",
    ];
    if password.len() > 1024 {
        Some("at most 1024 bytes")
    } else if password.chars().count() < 10 {
        Some("at least 10 characters")
    } else if password.chars().all(char::is_whitespace) {
        Some("not only spaces")
    } else if password.chars().any(char::is_control) {
        Some("no control characters (tabs, line breaks)")
    } else if is_the_address(password, email) {
        Some("not the email address or its part before the @")
    } else if COMMON.contains(&password.to_lowercase().as_str()) {
        Some("not one of the most common passwords")
    } else {
        None
    }
}

/// Whether `password` is `email`, or its part before the `@`, compared as account names
/// are (case folded, NFKC): the first guess of anyone who knows the address.
fn is_the_address(password: &str, email: &str) -> bool {
    let (password, address) = (
        LoginThrottle::account_key(password),
        LoginThrottle::account_key(email),
    );
    let local = address
        .split_once('@')
        .map_or(address.as_str(), |(local, _)| local);
    password == address || password == local
}

/// `password` in Unicode NFKC, as NIST SP 800-63B (§5.1.1.2) advises: one password
/// whatever keyboard or input method typed it (`é` precomposed or as `e` and an accent,
/// full-width letters from a CJK input method). NFKC rather than NFC so the compatibility
/// forms count too; what it merges (`ﬁ` and `fi`, `²` and `2`) costs a password next to no
/// strength. Register, login and `ADMIN_PASSWORD` all go through it before any check or hash.
///
/// One over four times [`MAX_PASSWORD_LEN`] bytes is returned as it is: NFKC shrinks a
/// character at most fourfold (a 4-byte mathematical letter to one ASCII byte), so it is too
/// long whatever it would become, and refused as such; normalising it would cost this worker
/// thread work and memory up to 18 times its size (`\u{FDFA}` is 18 characters in NFKC),
/// before any limit on the hasher's pool.
fn normalised(password: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if password.len() > 4 * MAX_PASSWORD_LEN {
        return std::borrow::Cow::Borrowed(password);
    }
    password.nfkc().collect::<String>().into()
}

fn unprocessable(pointer: &str, detail: &str) -> Error {
    Error::Validation(vec![FieldError::new(pointer, detail)])
}

fn password_error(e: PasswordError) -> Error {
    match e {
        PasswordError::TooLong => unprocessable("#/password", "at most 1024 bytes"),
        other => Error::internal(other),
    }
}

/// The 503 for a sign-up or login the password hasher had no room for (every permit taken,
/// its queue full): nothing was hashed, so the reply is the same for every account, and the
/// client may retry in a second. Logged as the `load_shed` security event, as `Hardening`'s
/// own shedding is (outside `Hardening`, with a request id of its own).
fn hasher_busy(request_id: Option<RequestId>, client_ip: Option<IpAddr>) -> Response {
    let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_detail("the service is at capacity; retry shortly")
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        .into_response();
    let id = request_id.unwrap_or_else(RequestId::generate);
    let event = SecurityEvent::LoadShed.as_str();
    report_rejection(&mut response, event, id, client_ip, None);
    response
}

/// `POST /auth/register`: the same `202 Accepted` whether the address was free or taken (the
/// admin's included), after the same password hashing, so that signing up tells no one which
/// addresses have accounts. A taken address keeps its account and password. (A service that
/// sends mail would write to the address here: "you have an account already".) A 503 when
/// the password hasher is too busy to take the hash.
async fn register(
    State(state): State<AppState>,
    request_id: Option<RequestId>,
    client_ip: Option<ClientIp>,
    Valid(Json(new)): Valid<Json<Credentials>>,
) -> Result<Response, Error> {
    let password = normalised(&new.password);
    if let Some(rule) = weak_password(&password, &new.email) {
        return Err(unprocessable("#/password", rule));
    }
    let email = LoginThrottle::account_key(&new.email);
    let hash = match state.passwords.hash(password.as_bytes()).await {
        Ok(hash) => hash,
        Err(PasswordError::Busy) => {
            return Ok(hasher_busy(request_id, client_ip.map(|ClientIp(ip)| ip)));
        }
        Err(e) => return Err(password_error(e)),
    };
    // The admin account comes from configuration, never from signing up: its row exists
    // from start-up and is left as it is, like any taken address's. It goes through the same
    // statement all the same (the same time as any other address), with a hash that
    // verifies nothing in case its row were missing.
    let is_admin = state
        .admin
        .as_ref()
        .is_some_and(|admin| admin.email == email);
    let hash = if is_admin { "!".to_owned() } else { hash };
    if let db::CreateUser::Created(id) = state.db.create_user(email.clone(), hash).await?
        && !is_admin
    {
        tracing::info!(target: "example_notes::auth", user = id, "account created");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "email": email,
            "detail": "if this address had no account, it has one now: log in with it",
        })),
    )
        .into_response())
}

/// `POST /auth/login`: a session for the right password, its token in the body (for a client
/// that sends it as `Authorization: Bearer`) and in the session cookie; a 401 for a
/// wrong one or an unknown account, a 429 while the throttle locks the account or client
/// out, a 503 (not counted as a failure: no password was checked) when the password hasher
/// is too busy to take the check.
async fn login(
    State(state): State<AppState>,
    request_id: Option<RequestId>,
    client_ip: Option<ClientIp>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Valid(Json(creds)): Valid<Json<Credentials>>,
) -> Result<Response, Error> {
    // Hardening's client IP (trusted proxies applied), else the socket peer. The `ClientIp`
    // extractor, not `Extension<ClientIp>`: Hardening keeps it in its `RequestContext`, where
    // an `Extension` never finds it (every client behind a proxy was then the proxy).
    let ip = match (client_ip, peer) {
        (Some(ClientIp(ip)), _) => ip,
        (None, Some(Extension(ConnectInfo(addr)))) => addr.ip(),
        (None, None) => {
            return Err(Error::internal(
                "login needs the client IP: serve behind Hardening or with ConnectInfo",
            ));
        }
    };
    // Addresses are stored and looked up by the throttle's key (case folded, NFKC): two
    // accounts sharing a key would share its counts, one's login clearing the other's.
    let email = LoginThrottle::account_key(&creds.email);
    // Counted as a failure from here on (also if anything below returns early), until the
    // password is found right: concurrent guesses cannot all pass the check first.
    let attempt = state
        .throttle
        .attempt(&creds.email, ip)
        .map_err(throttled)?;
    let stored = state.db.credentials(email.clone()).await?;
    // The admin address logs in with the configured password only, whatever its row holds.
    let admin = state.admin.as_deref().filter(|admin| admin.email == email);
    let expected = match admin {
        Some(admin) => Some(admin.hash.as_str()),
        None => stored.as_ref().map(|(_, h)| h.as_str()),
    };
    let verdict = state
        .passwords
        .verify(normalised(&creds.password).as_bytes(), expected)
        .await;
    let id = match (verdict, stored) {
        (Ok(Verification::Valid), Some((id, _))) => id,
        (Ok(Verification::ValidRehashed(hash)), Some((id, _))) => {
            if admin.is_none() {
                state.db.set_password_hash(id, hash).await?;
            }
            id
        }
        (Ok(_) | Err(PasswordError::TooLong), _) => {
            attempt.failed();
            tracing::info!(target: "example_notes::auth", %ip, "login failed");
            return Err(Error::Unauthenticated);
        }
        // No password was checked: neither a failure (a flood filling the hasher's queue must
        // not lock its owner out) nor a success (nothing is cleared).
        (Err(PasswordError::Busy), _) => {
            attempt.not_checked();
            return Ok(hasher_busy(request_id, Some(ip)));
        }
        (Err(e), _) => return Err(Error::internal(e)),
    };
    attempt.succeeded();
    // Only a login checked against ADMIN_PASSWORD above gets here with the admin's address.
    let session = session::issue(&state.sessions, id, admin.is_some())?;
    let body = Json(json!({
        "access_token": session.token(),
        "token_type": "Bearer",
        "expires_in": session.expires_in().as_secs(),
    }));
    // The session as response parts: its `Set-Cookie` and `Cache-Control: no-store`.
    Ok((session, body).into_response())
}

/// The 429 for a login refused by the throttle.
fn throttled(retry_after: Duration) -> Error {
    Error::TooManyRequests {
        retry_after,
        policies: vec!["login-failures".to_owned()],
    }
}

/// `POST /auth/logout`: ends the session ([`SessionIssuer::logout`]): the request's token
/// (from the cookie or `Authorization: Bearer`) is revoked until it expires and the cookie
/// is cleared, with `Clear-Site-Data: "cookies"` too. Without a live token (none, or one
/// revoked, expired or invalid) there is only the cookie to clear: still a 204 that clears
/// it. A 503 with `Retry-After` if the denylist cannot be asked or does not take the
/// revocation (the token may be live: a 204 would say it was ended).
async fn logout(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Response, SessionError> {
    let logged_out = state.sessions.logout(session).await?;
    let clear_site_data = [(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cookies\""),
    )];
    Ok((clear_site_data, logged_out).into_response())
}

/// The body of `POST /notes` and `PUT /notes/{id}`.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct NoteInput {
    #[garde(length(chars, min = 1, max = 200))]
    title: String,
    #[garde(length(chars, max = 20_000))]
    body: String,
}

/// `GET /notes?limit=&before=`: the newest `limit` notes with ids below `before` (the last
/// id of the previous page; none for the first page).
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Page {
    #[garde(range(min = 1, max = 200))]
    #[serde(default = "default_limit")]
    limit: u32,
    #[garde(skip)]
    before: Option<i64>,
}

/// `GET /admin/users?limit=&after=`: the first `limit` accounts with ids above `after` (the
/// last id of the previous page; none for the first page).
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct UserPage {
    #[garde(range(min = 1, max = 200))]
    #[serde(default = "default_limit")]
    limit: u32,
    #[garde(skip)]
    after: Option<i64>,
}

fn default_limit() -> u32 {
    50
}

async fn list_notes(
    State(db): State<Db>,
    user: Authenticated,
    Valid(Query(page)): Valid<Query<Page>>,
) -> Result<Json<Vec<Note>>, Error> {
    Ok(Json(
        db.notes_of(&user.principal.subject, page.limit, page.before)
            .await?,
    ))
}

async fn create_note(
    State(db): State<Db>,
    user: Authenticated,
    Valid(Json(input)): Valid<Json<NoteInput>>,
) -> Result<(StatusCode, Json<Note>), Error> {
    let note = db
        .create_note(&user.principal.subject, input.title, input.body)
        .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

// `Owned` verifies the token (denylist included) and loads with `owner_id = ?` in the query.
async fn get_note(Owned(note): Owned<Note>) -> Json<Note> {
    Json(note)
}

/// A note's id as its one URL spells it, as `i64` writes it (`/notes/42`; see
/// [`CanonicalId`]). Any other spelling (`042`, `+42`, `abc`, `1.0`, past `i64`) names no
/// note: the same 404 as a missing or another user's note, whatever the method, not the 400
/// of axum's `Path`. With `str::parse`, `/notes/042` and `/notes/+42` reached note 42 too,
/// so a rule or a cache keyed on the path could be bypassed or poisoned. `0` and negative
/// ids, spelled so, name no note either: the owner-scoped query finds none.
///
/// The path is percent-decoded first: `/notes/%34%32` is `/notes/42`, the same URI by
/// RFC 3986 §6.2.2.2 (digits are unreserved), as any normalising proxy or cache sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NoteId(CanonicalId<i64>);

impl NoteId {
    /// The number.
    pub fn get(self) -> i64 {
        self.0.into_inner()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoteId {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Error> {
        axum::extract::Path::<NoteId>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| id)
            .map_err(|_| Error::NotFound)
    }
}

/// A malformed id is the missing note's 404 after the body is checked, as for a missing
/// note: refused first, `PUT /notes/042` with an invalid body was a 404 where a missing
/// note's was a 422.
async fn update_note(
    State(db): State<Db>,
    user: Authenticated,
    id: Result<NoteId, Error>,
    Valid(Json(input)): Valid<Json<NoteInput>>,
) -> Result<Json<Note>, Error> {
    let id = id?;
    db.update_note(&user.principal.subject, id.get(), input.title, input.body)
        .await?
        .map(Json)
        .ok_or(Error::NotFound)
}

async fn delete_note(
    State(db): State<Db>,
    user: Authenticated,
    id: NoteId,
) -> Result<StatusCode, Error> {
    if db.delete_note(&user.principal.subject, id.get()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound)
    }
}

/// An authenticated principal with the `admin` role; 401 or 403 otherwise. An extractor, so
/// that it refuses before the handler's later extractors read the request: checked in the
/// handler, after the query was parsed and validated, a non-admin learnt the admin route's
/// parameters and their bounds from the 400s and 422s.
struct AdminRole;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AdminRole {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        let user =
            <Authenticated as axum::extract::FromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        user.require_role("admin")
            .map_err(IntoResponse::into_response)?;
        Ok(Self)
    }
}

async fn admin_users(
    State(db): State<Db>,
    _admin: AdminRole,
    Valid(Query(page)): Valid<Query<UserPage>>,
) -> Result<Json<Vec<User>>, Error> {
    Ok(Json(db.users(page.limit, page.after).await?))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// A throw-away database file (WAL needs a file), removed with its WAL files on drop.
    pub(crate) struct TempDb(pub(crate) std::path::PathBuf);

    impl TempDb {
        pub(crate) fn new(purpose: &str) -> Self {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            Self(std::env::temp_dir().join(format!(
                "example-notes-unit-{purpose}-{}-{nanos}.sqlite3",
                std::process::id()
            )))
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Changes whenever another connection commits a write to the database.
    fn data_version(observer: &rusqlite::Connection) -> i64 {
        observer
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .unwrap()
    }

    /// Ten spaces, or a password with a tab or a line break in it, passed the length check.
    #[test]
    fn blank_passwords_and_control_characters_are_weak() {
        let email = "ada@example.com";
        for (password, rule) in [
            ("          ", "not only spaces"),
            (
                "\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}\u{3000}",
                "not only spaces",
            ),
            (
                "a long\tpassphrase",
                "no control characters (tabs, line breaks)",
            ),
            (
                "a long\npassphrase",
                "no control characters (tabs, line breaks)",
            ),
        ] {
            assert_eq!(weak_password(password, email), Some(rule), "{password:?}");
        }
        assert_eq!(weak_password("a long passphrase", email), None);
    }

    /// `ada@example.com` with a NUL, an ESC, a zero-width space, a bidi control, a soft
    /// hyphen or a byte order mark in it was taken for an address: a second account, shown
    /// as `ada@example.com` wherever addresses are listed.
    #[test]
    fn addresses_with_control_or_invisible_characters_are_refused() {
        for email in [
            "ada@example.com\u{200b}",
            "ada@example.com\u{0}",
            "\u{1b}[31mada@example.com",
            "ada\u{202e}@example.com",
            "\u{2066}ada@example.com",
            "ada@exa\u{ad}mple.com",
            "\u{feff}ada@example.com",
            "ada@example.com\u{e0041}",
        ] {
            assert!(
                email_shape(email, &()).is_err(),
                "{email:?} was taken for an address"
            );
        }
        assert!(email_shape("ada@example.com", &()).is_ok());
        assert!(email_shape("\u{e9}lise@exemple.fr", &()).is_ok());
    }

    /// A config built by hand (its fields are public) skips `from_env`'s length checks: a
    /// short `jwt_secret` is a `ConfigError` naming the variable, not a panic.
    #[test]
    fn a_hand_built_config_with_a_short_key_is_refused_not_a_panic() {
        let key = "3q2+7w0ZbX9kLm4PaR8sTvU1yWcE6hJn".to_owned();
        let base =
            NotesConfig::from_vars(|name| (name == "JWT_SECRET").then(|| key.clone())).unwrap();
        let file = TempDb::new("short-key");
        let db = Db::open(&file.0).unwrap();
        let mut config = base.clone();
        config.jwt_secret = b"short".to_vec();
        let err = routes(&config, db.clone()).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("JWT_SECRET is not a usable HMAC key")),
            "{err:?}"
        );
        assert!(routes(&base, db).is_ok());
    }

    /// A password was normalised whatever its length, on the request's worker thread and
    /// before any limit: a 1 MiB body of `\u{FDFA}` became 18 times as much. One over four
    /// times the hasher's limit is left as it is (refused as too long all the same); one under
    /// it is normalised as before.
    #[test]
    fn a_password_too_long_to_hash_is_not_normalised() {
        let long = "\u{FDFA}".repeat(4 * MAX_PASSWORD_LEN / 3 + 1);
        assert!(long.len() > 4 * MAX_PASSWORD_LEN);
        assert!(matches!(normalised(&long), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            weak_password(&normalised(&long), "a@example.com"),
            Some("at most 1024 bytes")
        );
        let short = "\u{FDFA}".repeat(4 * MAX_PASSWORD_LEN / 3);
        assert_eq!(
            normalised(&short).chars().count(),
            18 * short.chars().count()
        );
    }

    /// The admin's first login hashed `ADMIN_PASSWORD` (one hash more than any other login,
    /// which told the address apart). It is hashed as the app is built, which `main` and the
    /// tests do inside a runtime, and normalised as logins are.
    #[tokio::test]
    async fn the_admin_password_is_hashed_as_the_app_is_built() {
        let passwords = Passwords::new();
        let nfd = "l'admin a un se\u{301}cret";
        let hash = Admin::new("admin@example.com", nfd, &passwords)
            .unwrap()
            .hash;
        let nfc = normalised("l'admin a un s\u{e9}cret");
        let verdict = passwords.verify(nfc.as_bytes(), Some(&hash)).await;
        assert_eq!(verdict, Ok(Verification::Valid));
    }

    /// Registration answers alike for a new, a taken and the admin's address, and must take
    /// the same time too. It did not: a new address committed an INSERT (a WAL write and
    /// its fsync: 187 µs median here), a taken one failed its INSERT and wrote nothing
    /// (10 µs), and the admin's address skipped the database altogether. Timed over many
    /// sign-ups, that told which addresses have accounts. Each must commit one write.
    #[tokio::test]
    async fn registration_does_the_same_database_work_for_new_taken_and_admin_addresses() {
        let file = TempDb::new("register");
        let db = Db::open(&file.0).unwrap();
        db.lock_account("admin@example.com").unwrap();
        let observer = rusqlite::Connection::open(&file.0).unwrap();
        let state = AppState {
            db: db.clone(),
            passwords: Passwords::new(),
            sessions: session::auth(b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj")
                .unwrap()
                .1,
            throttle: Arc::new(LoginThrottle::new()),
            admin: Some(Arc::new(Admin {
                email: "admin@example.com".to_owned(),
                hash: "!".to_owned(),
            })),
        };
        for (email, password, what) in [
            ("ada@example.com", "a long passphrase", "a new address"),
            ("ADA@example.com", "another passphrase", "a taken address"),
            (
                "admin@example.com",
                "a long passphrase",
                "the admin's address",
            ),
            (
                "Admin@Example.com",
                "a long passphrase",
                "the admin's address, spelt otherwise",
            ),
        ] {
            let before = data_version(&observer);
            let credentials = Credentials {
                email: email.to_owned(),
                password: password.to_owned(),
            };
            let res = register(State(state.clone()), None, None, Valid(Json(credentials)))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED, "{what}");
            assert_ne!(
                data_version(&observer),
                before,
                "{what} committed no write: its registration is faster than a new one's"
            );
        }
        // Nothing a taken address was registered with replaced what it had.
        let (_, ada) = db
            .credentials("ada@example.com".into())
            .await
            .unwrap()
            .unwrap();
        let verdict = |password: &'static str| {
            let (passwords, ada) = (state.passwords.clone(), ada.clone());
            async move {
                matches!(
                    passwords.verify(password.as_bytes(), Some(&ada)).await,
                    Ok(Verification::Valid | Verification::ValidRehashed(_))
                )
            }
        };
        assert!(verdict("a long passphrase").await);
        assert!(!verdict("another passphrase").await);
        let (_, admin) = db
            .credentials("admin@example.com".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(admin, "!", "the admin's row holds no usable hash");
    }
}
