//! example-notes' login and registration, as an attacker probing them sees them: nothing in
//! a reply (status, headers, problem body) tells a known account from an unknown one, a taken
//! address from a new one, and neither passwords nor hashes reach the logs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use hardening_auth::{HeldPermits, Passwords};
use hardening_tests::notes::TempNotes;
use hardening_tests::{Captured, Reply, send, wait_until};
use tokio::task::JoinHandle;

const PASSWORD: &str = "a long passphrase for tests";
const ADMIN_PASSWORD: &str = "the configured admin passphrase";

/// The notes app behind a trusted proxy at 127.0.0.1, so that each probe picks its client
/// address (`X-Forwarded-For`) and has counts of its own.
async fn behind_proxy(notes: &TempNotes) -> SocketAddr {
    let hardening = hardening_core::HardeningConfig::from_vars([
        ("HARDENING_RATE_LIMIT_PER_MINUTE", "100000"),
        ("HARDENING_RATE_LIMIT_BURST", "100000"),
        ("HARDENING_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .unwrap();
    hardening_tests::serve(example_notes::app(&notes.config, hardening).unwrap()).await
}

/// `POST path` with these credentials, from `client`.
async fn post_from(
    addr: SocketAddr,
    client: &str,
    path: &str,
    email: &str,
    password: &str,
) -> Reply {
    let body = serde_json::json!({ "email": email, "password": password }).to_string();
    let from = [("x-forwarded-for", client)];
    send(addr, "POST", path, &from, Some(&body)).await
}

/// What may not differ between two probes' replies: the status, every header but the date
/// and the request id (values included: `Content-Length`, `Retry-After`, `RateLimit`; the
/// CSP without its per-response nonces), and the body without its request id.
fn observable(reply: &Reply) -> (u16, Vec<(String, String)>, String) {
    // Every nonce source: `script-src`'s and `style-src`'s.
    let without_nonce = |value: &str| {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some((head, tail)) = rest.split_once("'nonce-") {
            out.push_str(head);
            out.push_str("'nonce-…");
            rest = &tail[tail.find('\'').unwrap()..];
        }
        out.push_str(rest);
        out
    };
    let headers = reply
        .headers
        .iter()
        .filter(|(name, _)| name != "date" && name != "x-request-id")
        .map(|(name, value)| (name.clone(), without_nonce(value)))
        .collect();
    let mut body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("request_id");
    }
    (reply.status, headers, body.to_string())
}

/// The notes app with an admin account, served behind a trusted proxy (the returned
/// `TempNotes` keeps its database until dropped).
async fn served_notes(purpose: &str) -> (TempNotes, SocketAddr) {
    let notes = notes_with_admin(purpose);
    let addr = behind_proxy(&notes).await;
    (notes, addr)
}

/// Signs up ada@example.com (with `PASSWORD`) from a client of its own.
async fn register_ada(addr: SocketAddr) {
    let registered = post_from(
        addr,
        "198.51.100.1",
        "/auth/register",
        "ada@example.com",
        PASSWORD,
    );
    assert_eq!(registered.await.status, 202);
}

fn notes_with_admin(purpose: &str) -> TempNotes {
    TempNotes::new(
        purpose,
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    )
}

/// A wrong password on a known account, on the admin's, and any password on an unknown one,
/// each from a client of its own: reply for reply the same, the lockout's 429 included.
#[tokio::test]
async fn known_unknown_and_admin_accounts_answer_alike_up_to_and_past_the_lockout() {
    let (_notes, addr) = served_notes("audit-login-alike").await;
    register_ada(addr).await;
    let probes = [
        ("203.0.113.1", "ada@example.com"),
        ("203.0.113.2", "bob@example.com"),
        ("203.0.113.3", "admin@example.com"),
    ];
    for attempt in 1..=7 {
        let mut replies = Vec::new();
        for (client, email) in probes {
            let reply = post_from(addr, client, "/auth/login", email, "guess guess guess").await;
            replies.push((email, observable(&reply)));
        }
        let (first, expected) = &replies[0];
        let want = if attempt <= 6 { 401 } else { 429 };
        assert_eq!(
            expected.0, want,
            "attempt {attempt} on {first}: {expected:?}"
        );
        for (email, seen) in &replies[1..] {
            assert_eq!(seen, expected, "attempt {attempt}: {email} against {first}");
        }
    }
}

/// Signing up a new address and a taken one (spelt otherwise: case, fullwidth, NFD) gives
/// the same reply, and the taken one stays one account with its first password.
#[tokio::test]
async fn a_new_and_a_taken_address_sign_up_alike_and_spellings_are_one_account() {
    let (_notes, addr) = served_notes("audit-register-alike").await;
    let first = post_from(
        addr,
        "198.51.100.1",
        "/auth/register",
        "zoé@example.com",
        PASSWORD,
    );
    assert_eq!(first.await.status, 202);
    // Same length once keyed, so the bodies (which echo the key) may be compared whole.
    let new = post_from(
        addr,
        "203.0.113.1",
        "/auth/register",
        "zaé@example.com",
        PASSWORD,
    );
    let new = observable(&new.await);
    for (n, taken) in [
        "ZOÉ@example.com",
        "\u{ff5a}oé@example.com",
        "zoe\u{301}@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        let client = format!("203.0.113.{}", n + 2);
        let reply = post_from(addr, &client, "/auth/register", taken, PASSWORD).await;
        let mut seen = observable(&reply);
        seen.2 = seen.2.replace("zoé@", "zaé@");
        assert_eq!(seen, new, "{taken}");
        let other = post_from(
            addr,
            &client,
            "/auth/register",
            taken,
            "another long passphrase",
        );
        assert_eq!(other.await.status, 202);
        let login = post_from(addr, &client, "/auth/login", taken, PASSWORD).await;
        assert_eq!(login.status, 200, "{taken}: {}", login.body);
    }
    let replaced = post_from(
        addr,
        "203.0.113.9",
        "/auth/login",
        "zoé@example.com",
        "another long passphrase",
    );
    assert_eq!(
        replaced.await.status,
        401,
        "a taken address's password was replaced"
    );
}

/// Passwords, and the hashes made of them, never reach the logs: not through a login (right,
/// wrong, unknown account), nor a registration, nor a refused (weak) password.
#[tokio::test]
async fn passwords_and_hashes_stay_out_of_the_logs() {
    let (logs, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let (_notes, addr) = served_notes("audit-logs").await;
    let secret = "Sekr1t-passphrase-for-logs";
    let client = "203.0.113.1";
    for (path, email, password) in [
        ("/auth/register", "ada@example.com", secret),
        ("/auth/register", "bob@example.com", "Short-1"),
        ("/auth/login", "ada@example.com", secret),
        (
            "/auth/login",
            "ada@example.com",
            "Wrong-passphrase-for-logs",
        ),
        (
            "/auth/login",
            "nobody@example.com",
            "Wrong-passphrase-for-logs",
        ),
        ("/auth/login", "admin@example.com", ADMIN_PASSWORD),
    ] {
        let reply = post_from(addr, client, path, email, password).await;
        assert!(!reply.body.contains(password), "{}", reply.body);
        assert!(!reply.body.contains("$argon2"), "{}", reply.body);
    }
    let text = logs.text();
    assert!(!text.is_empty(), "nothing was captured");
    for secret in [
        secret,
        "Short-1",
        "Wrong-passphrase-for-logs",
        ADMIN_PASSWORD,
        "$argon2",
    ] {
        assert!(!text.contains(secret), "{secret} in the logs: {text}");
    }
}

/// A password that is the address itself, in any case, or its part before the `@`, is the
/// first guess of anyone who knows the address (NIST SP 800-63B has sign-up refuse the user
/// name and words derived from it). Signing up with one was a 202.
#[tokio::test]
async fn a_password_made_of_the_address_is_refused_at_sign_up() {
    let (_notes, addr) = served_notes("audit-password-is-address").await;
    let email = "carol.smith@example.com";
    for password in [
        email,
        "Carol.Smith@Example.COM",
        "carol.smith",
        "\u{ff43}arol.smith",
    ] {
        let reply = post_from(addr, "203.0.113.1", "/auth/register", email, password).await;
        assert_eq!(reply.status, 422, "{password:?} was taken: {}", reply.body);
        assert_eq!(
            reply.json()["errors"][0]["pointer"],
            "#/password",
            "{password:?}"
        );
    }
    let reply = post_from(addr, "203.0.113.1", "/auth/register", email, PASSWORD).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Twenty wrong guesses on one account from one client, sent at once: six are checked (the
/// five free and the one that locks), every other is the lockout's 429, never a 5xx.
#[tokio::test]
async fn guesses_sent_at_once_are_let_through_six_times_at_most() {
    let (_notes, addr) = served_notes("audit-login-concurrent").await;
    register_ada(addr).await;
    let guesses: Vec<_> = (0..20)
        .map(|n| {
            tokio::spawn(async move {
                let guess = format!("guess number {n}");
                let from = "203.0.113.1";
                post_from(addr, from, "/auth/login", "ada@example.com", &guess)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(checked, 6, "{statuses:?}");
    assert!(statuses[6..].iter().all(|&s| s == 429), "{statuses:?}");
}

/// One client under other spellings of its address (IPv4 and IPv4-mapped IPv6; two
/// addresses of one IPv6 /64) is one client: its guesses share the one lockout.
#[tokio::test]
async fn spellings_of_one_client_share_its_lockout() {
    let (_notes, addr) = served_notes("audit-login-client-spellings").await;
    for (email, spellings) in [
        ("ada@example.com", ["203.0.113.7", "::ffff:203.0.113.7"]),
        (
            "bob@example.com",
            ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:9"],
        ),
    ] {
        for n in 0..6 {
            let from = spellings[n % 2];
            let reply = post_from(addr, from, "/auth/login", email, "guess guess guess").await;
            assert_eq!(reply.status, 401, "guess {n} from {from}: {}", reply.body);
        }
        for from in spellings {
            let reply = post_from(addr, from, "/auth/login", email, "guess guess guess").await;
            assert_eq!(reply.status, 429, "{email} from {from}, past six guesses");
        }
    }
}

/// A flood of logins (unknown accounts, each from a client of its own) queues for the
/// hashing permits, up to the queue's bound: every one is answered 401, or past the bound
/// the busy hasher's 503, none another 5xx, and a health probe sent among them is answered
/// too.
#[tokio::test]
async fn a_flood_of_logins_queues_and_the_health_probe_is_answered() {
    let (_notes, addr) = served_notes("audit-login-flood").await;
    let logins: Vec<_> = (0..32u8)
        .map(|n| {
            tokio::spawn(async move {
                let (from, email) = (format!("203.0.113.{n}"), format!("user{n}@example.com"));
                post_from(addr, &from, "/auth/login", &email, "guess guess guess").await
            })
        })
        .collect();
    let health = hardening_tests::get(addr, "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.body);
    for login in logins {
        let reply = login.await.unwrap();
        match reply.status {
            401 => {}
            503 => assert_busy(&reply),
            other => panic!("{other}: {}", reply.body),
        }
    }
}

/// The notes app (with ada@example.com signed up) whose password hasher has one queue
/// place, served behind the proxy, with its permits held and its queue place taken by a
/// login of bob's (from 203.0.113.99): every other sign-up and login finds the hasher busy
/// until the permits are dropped; the queued login is then answered.
async fn saturated(purpose: &str) -> (TempNotes, SocketAddr, HeldPermits, JoinHandle<Reply>) {
    let mut notes = notes_with_admin(purpose);
    notes.config.passwords = Passwords::new().max_waiting(1).unwrap();
    let addr = behind_proxy(&notes).await;
    register_ada(addr).await;
    let passwords = notes.config.passwords.clone();
    let held = passwords.hold_permits().await;
    let queued = tokio::spawn(post_from(
        addr,
        "203.0.113.99",
        "/auth/login",
        "bob@example.com",
        "guess guess guess",
    ));
    wait_until("bob's login waits for a hashing permit", || {
        passwords.waiting() == 1
    })
    .await;
    (notes, addr, held, queued)
}

/// The busy hasher's reply: a 503 problem with its request id, retried after a second.
fn assert_busy(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let id = reply.header("x-request-id").expect("a request id header");
    assert_eq!(reply.json()["request_id"], id, "{}", reply.body);
}

/// While the hasher is saturated (its permits taken, its queue full), the owner's logins
/// are not checked, so they are not her failures: after six of them from her client, one
/// typo, then her right password, logs her in. Each used to wait for a permit until the
/// request timeout (503), charged as a failure: the typo was her seventh, and locked her out.
#[tokio::test]
async fn logins_the_hasher_has_no_room_for_do_not_lock_the_owner_out() {
    let (_notes, addr, held, queued) = saturated("audit-login-busy").await;
    let owner = "198.51.100.1";
    let logins: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn(post_from(
                addr,
                owner,
                "/auth/login",
                "ada@example.com",
                PASSWORD,
            ))
        })
        .collect();
    for login in logins {
        assert_busy(&login.await.unwrap());
    }
    drop(held);
    assert_eq!(
        queued.await.unwrap().status,
        401,
        "the queued login is checked"
    );
    let typo = post_from(
        addr,
        owner,
        "/auth/login",
        "ada@example.com",
        "a long passphrase for test",
    );
    assert_eq!(typo.await.status, 401);
    let reply = post_from(addr, owner, "/auth/login", "ada@example.com", PASSWORD).await;
    assert_eq!(
        reply.status, 200,
        "logins never checked, and one typo, locked the owner out: {}",
        reply.body
    );
}

/// While the hasher is busy, a login on a known account, on an unknown one and on the
/// admin's, and a sign-up of a new address and of a taken one, each from a client of its
/// own, get one reply, byte for byte: the busy 503, each logged as the `load_shed` security
/// event.
#[tokio::test]
async fn busy_replies_are_alike_for_every_account_and_address() {
    let (logs, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (_notes, addr, _held, _queued) = saturated("audit-busy-alike").await;
    let probes = [
        ("/auth/login", "ada@example.com"),
        ("/auth/login", "bob@example.com"),
        ("/auth/login", "admin@example.com"),
        ("/auth/register", "zoe@example.com"),
        ("/auth/register", "ada@example.com"),
    ];
    let mut replies = Vec::new();
    for (n, (path, email)) in probes.into_iter().enumerate() {
        let client = format!("203.0.113.{}", n + 1);
        let reply = post_from(addr, &client, path, email, PASSWORD).await;
        assert_busy(&reply);
        replies.push(((path, email), observable(&reply)));
    }
    // Alike within each route (sign-ups also carry their own limit's `RateLimit` values).
    for route in ["/auth/login", "/auth/register"] {
        let mut of_route = replies.iter().filter(|((path, _), _)| *path == route);
        let (first, expected) = of_route.next().unwrap();
        for (probe, seen) in of_route {
            assert_eq!(seen, expected, "{probe:?} against {first:?}");
        }
    }
    let shed = logs.security_event_names();
    let shed = shed.iter().filter(|name| *name == "load_shed").count();
    assert_eq!(shed, probes.len(), "{}", logs.text());
}

/// Each sign-up costs an argon2 hash and makes an account, and only the general per-IP
/// limit (100 a minute) applied to them: one client could create thousands of accounts an
/// hour and keep the hasher busy. Sign-ups are now limited to 10 an hour per client, taken
/// or new address alike (the same 429 for both), and other clients are not affected.
#[tokio::test]
async fn sign_ups_are_limited_per_client() {
    let (_notes, addr) = served_notes("audit-sign-up-limit").await;
    let mut statuses = Vec::new();
    for n in 0..12 {
        let email = format!("user{n}@example.com");
        let reply = post_from(addr, "203.0.113.50", "/auth/register", &email, PASSWORD).await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses[..10], [202; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    // Taken or new, the refusal is the same.
    let taken = post_from(
        addr,
        "203.0.113.50",
        "/auth/register",
        "user0@example.com",
        PASSWORD,
    );
    let new = post_from(
        addr,
        "203.0.113.50",
        "/auth/register",
        "user99@example.com",
        PASSWORD,
    );
    let (taken, new) = (taken.await, new.await);
    assert_eq!(taken.status, 429);
    assert_problem_type_and_status(&taken);
    assert_eq!(observable(&taken).0, observable(&new).0);
    assert_eq!(observable(&taken).2, observable(&new).2);
    // Another client signs up as usual.
    let other = post_from(
        addr,
        "203.0.113.51",
        "/auth/register",
        "zed@example.com",
        PASSWORD,
    );
    assert_eq!(other.await.status, 202);
}

/// A 429 problem with `Retry-After`, as every rate limit answers.
fn assert_problem_type_and_status(reply: &Reply) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert_eq!(reply.json()["status"], 429);
}
