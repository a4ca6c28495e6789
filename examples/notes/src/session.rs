//! Access tokens (HS256 JWTs) and the encrypted `__Host-session` cookie that carries the same
//! token for the browser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::COOKIE;
use axum::http::{HeaderValue, Request};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hardening_core::errors::Error;
use rand::RngExt;
use serde::Serialize;

/// The session cookie's name: `__Host-` makes the browser insist on `Secure`, `Path=/` and no
/// `Domain`.
pub const SESSION_COOKIE: &str = "__Host-session";
/// The issuer of our tokens.
pub const ISSUER: &str = "example-notes";
/// The audience of our tokens.
pub const AUDIENCE: &str = "notes-api";
/// How long a token (and the cookie) lives.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Serialize)]
struct Claims<'a> {
    sub: String,
    iss: &'static str,
    aud: &'static str,
    iat: u64,
    exp: u64,
    jti: String,
    roles: &'a [&'a str],
}

/// The token subject (`sub`) for user `id`: its decimal digits.
fn subject(id: i64) -> String {
    id.to_string()
}

/// The user id a token subject names: only the form [`subject`] writes (`5`, never `+5`,
/// `05` or ` 5`), so that one account has one subject (per-user limits key on it).
pub(crate) fn user_id(sub: &str) -> Option<i64> {
    sub.parse().ok().filter(|id| subject(*id) == sub)
}

/// Signs tokens and seals cookies.
#[derive(Clone)]
pub struct Sessions {
    signing: jsonwebtoken::EncodingKey,
    cookie_key: Key,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

impl Sessions {
    /// From `JWT_SECRET` and `COOKIE_KEY` (both at least 32 bytes, as [`routes`](crate::routes)
    /// checks).
    ///
    /// # Panics
    ///
    /// If `cookie_key` is shorter than 32 bytes.
    pub fn new(jwt_secret: &[u8], cookie_key: &[u8]) -> Self {
        Self {
            signing: jsonwebtoken::EncodingKey::from_secret(jwt_secret),
            // HKDF-expanded to the 64 bytes the cookie crate's AES-GCM + HMAC keys need.
            cookie_key: Key::derive_from(cookie_key),
        }
    }

    /// A fresh access token for user `id`.
    pub fn issue(&self, id: i64, admin: bool) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(Error::internal)?
            .as_secs();
        let jti: u128 = rand::rng().random();
        let claims = Claims {
            sub: subject(id),
            iss: ISSUER,
            aud: AUDIENCE,
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
            jti: format!("{jti:032x}"),
            roles: if admin { &["admin"] } else { &[] },
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(Error::internal)
    }

    /// `Set-Cookie` for a session carrying `token`, encrypted and authenticated with the
    /// cookie key (the browser holds it but cannot read or change it).
    pub fn cookie(&self, token: &str) -> Result<HeaderValue, Error> {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.cookie_key).add(
            Cookie::build((SESSION_COOKIE, token.to_owned()))
                .path("/")
                .secure(true)
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(cookie::time::Duration::seconds(
                    i64::try_from(TOKEN_LIFETIME.as_secs()).unwrap_or(900),
                )),
        );
        let sealed = jar
            .get(SESSION_COOKIE)
            .ok_or_else(|| Error::internal("sealed cookie missing from its jar"))?;
        HeaderValue::from_str(&sealed.to_string()).map_err(Error::internal)
    }

    /// `Set-Cookie` that ends the session.
    pub fn clear_cookie() -> HeaderValue {
        HeaderValue::from_static(
            "__Host-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        )
    }

    /// Opens the sealed session cookie in place, so `AuthLayer` finds the token; a cookie
    /// that does not open (tampered, old key, never sealed) is dropped. Other cookies pass
    /// unchanged, read as bytes from every `Cookie` header: one that is not text (another
    /// app's, a sibling subdomain's) must not hide the session.
    ///
    /// A piece is the session cookie when its name, trimmed of ASCII whitespace, is
    /// `__Host-session`: the rule `AuthLayer` reads it by, so any piece it could take for the
    /// session (`__Host-session =…` too) is one this opened. The first that opens goes
    /// first, alone; every other is dropped.
    pub fn unseal<B>(&self, mut req: Request<B>) -> Request<B> {
        let is_session = |piece: &[u8]| cookie_name(piece) == SESSION_COOKIE.as_bytes();
        let pieces: Vec<Vec<u8>> = req
            .headers()
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .map(|piece| piece.trim_ascii().to_vec())
            .filter(|piece| !piece.is_empty())
            .collect();
        if !pieces.iter().any(|piece| is_session(piece)) {
            return req;
        }
        let empty = CookieJar::new();
        let jar = empty.private(&self.cookie_key);
        let mut open = None;
        let mut others = Vec::new();
        for piece in pieces {
            if !is_session(&piece) {
                others.push(piece);
            } else if open.is_none() {
                open = cookie_value(&piece)
                    .and_then(|value| jar.decrypt(Cookie::new(SESSION_COOKIE, value.to_owned())))
                    .map(|c| format!("{SESSION_COOKIE}={}", c.value()).into_bytes());
            }
        }
        if let Some(open) = open {
            others.insert(0, open);
        }
        req.headers_mut().remove(COOKIE);
        if !others.is_empty()
            && let Ok(value) = HeaderValue::from_bytes(&others.join(&b"; "[..]))
        {
            req.headers_mut().insert(COOKIE, value);
        }
        req
    }
}

/// A `Cookie` header piece's name as `AuthLayer` reads it: the bytes before the first `=`
/// (the whole piece if none), without surrounding ASCII whitespace (RFC 6265 §5.2: user
/// agents trim names too).
fn cookie_name(piece: &[u8]) -> &[u8] {
    piece
        .split(|b| *b == b'=')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// A piece's value as text, without surrounding ASCII whitespace; none without `=`.
fn cookie_value(piece: &[u8]) -> Option<&str> {
    let eq = piece.iter().position(|b| *b == b'=')?;
    std::str::from_utf8(piece.get(eq + 1..)?.trim_ascii()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `owner_id` was `subject.parse()`, which reads `+5` and `05` as user 5: a token
    /// signed with any of those spellings reached user 5's notes under another subject
    /// (a fresh per-user AI budget for each spelling).
    #[test]
    fn only_the_subject_the_app_writes_names_a_user() {
        for id in [1, 5, 42, i64::MAX] {
            assert_eq!(user_id(&subject(id)), Some(id), "{id}");
        }
        for other in [
            "+5",
            "05",
            "00",
            "-0",
            " 5",
            "5 ",
            "5\n",
            "5.0",
            "0x5",
            "",
            "9223372036854775808",
            "user-5",
        ] {
            assert_eq!(user_id(other), None, "{other:?}");
        }
    }

    /// `unseal` took only `__Host-session=` (exact bytes) for the session, `AuthLayer` reads
    /// names trimmed: `__Host-session =<token>` passed unopened and was read as the session,
    /// before the sealed one. Every spelling `AuthLayer` reads is opened or dropped.
    #[test]
    fn a_session_cookie_is_opened_or_dropped_whatever_its_spacing() {
        let s = Sessions::new(&[7; 32], &[9; 32]);
        let set = s.cookie("the.real.token").unwrap();
        let sealed = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let value = sealed.split_once('=').unwrap().1;
        let cookies = |header: &str| {
            let req = Request::get("/").header(COOKIE, header).body(()).unwrap();
            let req = s.unseal(req);
            req.headers()
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        for planted in [
            "__Host-session =plain.jwt.token",
            "__Host-session\t=plain.jwt.token",
            "__Host-session = plain.jwt.token",
            "__Host-session=plain.jwt.token",
            "__Host-session",
        ] {
            assert_eq!(cookies(planted), None, "{planted:?}");
            let opened = Some("__Host-session=the.real.token; theme=dark".to_owned());
            assert_eq!(
                cookies(&format!("theme=dark; {sealed}; {planted}")),
                opened,
                "{planted:?}"
            );
            assert_eq!(
                cookies(&format!("{planted}; theme=dark; {sealed}")),
                opened,
                "{planted:?}"
            );
        }
        // A sealed one under a spaced name opens too (`AuthLayer` would read it).
        assert_eq!(
            cookies(&format!("__Host-session = {value}")).as_deref(),
            Some("__Host-session=the.real.token")
        );
        // Another name is another cookie.
        let other = "x__Host-session=plain.jwt.token";
        assert_eq!(cookies(other).as_deref(), Some(other));
    }

    #[test]
    fn sealed_cookies_open_only_with_their_key() {
        let s = Sessions::new(&[7; 32], &[9; 32]);
        let set = s.cookie("the.jwt.token").ok();
        let set = set
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(set.starts_with("__Host-session=") && !set.contains("the.jwt.token"));
        assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"));
        let sealed = set.split(';').next().unwrap_or_default();
        let req = Request::get("/")
            .header(COOKIE, format!("theme=dark; {sealed}"))
            .body(())
            .ok();
        let opened = req.map(|r| s.unseal(r));
        let cookie = opened
            .as_ref()
            .and_then(|r| r.headers().get(COOKIE))
            .and_then(|v| v.to_str().ok());
        assert_eq!(cookie, Some("__Host-session=the.jwt.token; theme=dark"));
        // Another key cannot open it: the session is dropped, the rest kept.
        let other = Sessions::new(&[7; 32], &[1; 32]);
        let req = Request::get("/").header(COOKIE, sealed).body(()).ok();
        let opened = req.map(|r| other.unseal(r));
        assert!(opened.is_some_and(|r| r.headers().get(COOKIE).is_none()));
        // A cookie that is not text, before it in another `Cookie` header, hides nothing.
        let req = Request::get("/")
            .header(
                COOKIE,
                HeaderValue::from_bytes("pref=café".as_bytes()).unwrap(),
            )
            .header(COOKIE, sealed)
            .body(())
            .ok();
        let opened = req.map(|r| s.unseal(r));
        let cookie = opened
            .as_ref()
            .and_then(|r| r.headers().get(COOKIE))
            .map(|v| v.as_bytes().to_vec());
        assert_eq!(
            cookie.as_deref(),
            Some("__Host-session=the.jwt.token; pref=café".as_bytes())
        );
    }
}
