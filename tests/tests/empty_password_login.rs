//! An empty password at login is a wrong password: the same 401 as any other, never a 500.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardening_tests::notes::TempNotes;
use hardening_tests::send;

/// `Passwords::verify` answered `Err(PasswordError::Empty)`, which example-notes (like any
/// caller that maps unexpected errors to 500) turned into a 500 for a login form sent with
/// an empty password field.
#[tokio::test]
async fn an_empty_password_at_login_is_a_401_like_a_wrong_one() {
    let notes = TempNotes::new(
        "empty-password",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "the configured admin passphrase"),
        ],
    );
    let addr = notes.serve().await;
    let registered = send(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some(r#"{"email":"ada@example.com","password":"a long passphrase for tests"}"#),
    )
    .await;
    assert_eq!(registered.status, 202, "{}", registered.body);
    let login = |email: &'static str, password: String| async move {
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        send(addr, "POST", "/auth/login", &[], Some(&body)).await
    };
    let wrong = login("ada@example.com", "not the password".to_owned()).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    for email in ["ada@example.com", "nobody@example.com", "admin@example.com"] {
        let empty = login(email, String::new()).await;
        assert_eq!(empty.status, 401, "{email}: {}", empty.body);
        assert_eq!(empty.json()["detail"], wrong.json()["detail"], "{email}");
    }
}

/// Passwords `Passwords::verify` answers without hashing, or that bcrypt could not take: one
/// over 1024 bytes (`Invalid`; it was `Err(TooLong)`), one with a NUL byte. Each is the same 401 as a wrong
/// password, for a known, an unknown and the admin's account alike: never a 422 or a 500
/// that only a known account gets.
#[tokio::test]
async fn an_over_long_or_nul_password_at_login_is_a_401_like_a_wrong_one() {
    let notes = TempNotes::new(
        "odd-password",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "the configured admin passphrase"),
        ],
    );
    let addr = notes.serve().await;
    let body = r#"{"email":"ada@example.com","password":"a long passphrase for tests"}"#;
    assert_eq!(
        send(addr, "POST", "/auth/register", &[], Some(body))
            .await
            .status,
        202
    );
    let login = async |email: &str, password: &str| {
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        send(addr, "POST", "/auth/login", &[], Some(&body)).await
    };
    let wrong = login("ada@example.com", "not the password").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let (long, nul) = (
        "x".repeat(1025),
        r"a long passphrase\u0000for tests".to_owned(),
    );
    for email in ["ada@example.com", "nobody@example.com", "admin@example.com"] {
        for password in [&long, &nul] {
            let reply = login(email, password).await;
            assert_eq!(reply.status, 401, "{email}: {}", reply.body);
            assert_eq!(reply.json()["detail"], wrong.json()["detail"], "{email}");
        }
    }
}
