//! Owner scoping and role/scope guards, attacked over TCP on 127.0.0.1: ids spelled other
//! ways, claims of the wrong JSON type, odd scope separators, repeated claims. Another
//! owner's row answers exactly as a missing one, and so does one's own under an id spelled
//! otherwise than its type writes it; a guard passes only for the exact claim.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use hardening_auth::{AuthLayer, Authenticated, CanonicalId, Owned, OwnedResource};
use hardening_core::errors::Error;
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::notes::TempNotes;
use hardening_tests::{Reply, send};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-guards";

/// Rows by id, each with its owner; owners compared exactly, as SQL's `=` does.
#[derive(Clone)]
struct Rows<Id>(Arc<BTreeMap<Id, &'static str>>);

/// A row's owner, loaded by an id of type `Id`.
struct Row<Id>(&'static str, PhantomData<Id>);

impl<Id: DeserializeOwned + Ord + Send + Sync + 'static> OwnedResource for Row<Id> {
    type Id = Id;
    type Store = Rows<Id>;
    async fn load_owned(rows: &Rows<Id>, owner: &str, id: Id) -> Result<Option<Self>, Error> {
        let row = rows.0.get(&id).filter(|o| **o == owner);
        Ok(row.map(|o| Row(o, PhantomData)))
    }
    fn admin_role() -> Option<&'static str> {
        Some("admin")
    }
    async fn load_any(rows: &Rows<Id>, id: Id) -> Result<Option<Self>, Error> {
        Ok(rows.0.get(&id).map(|o| Row(o, PhantomData)))
    }
}

async fn admin_only(user: Authenticated) -> Result<&'static str, Error> {
    user.require_role("admin")?;
    Ok("admin")
}

async fn writer_only(user: Authenticated) -> Result<&'static str, Response> {
    user.require_scope("notes:write")?;
    Ok("written")
}

/// The address of `::a` or `::b`, whose `FromStr`, like a `Uuid`'s, takes many spellings.
fn host(last: u16) -> CanonicalId<Ipv6Addr> {
    CanonicalId::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, last))
}

async fn app() -> SocketAddr {
    let rows = [(1, "alice"), (2, "bob")].into_iter().collect();
    let hosts = [(host(0xa), "alice")].into_iter().collect();
    let app = Router::new()
        .route(
            "/rows/{id}",
            get(|Owned(row): Owned<Row<u64>>| async move { row.0 }),
        )
        .route("/admin", get(admin_only))
        .route("/write", get(writer_only))
        .with_state(Rows(Arc::new(rows)))
        .merge(
            Router::new()
                .route(
                    "/hosts/{id}",
                    get(|Owned(row): Owned<Row<CanonicalId<Ipv6Addr>>>| async move { row.0 }),
                )
                .with_state(Rows(Arc::new(hosts))),
        )
        .layer(AuthLayer::new(hs256_verifier(SECRET)))
        .layer(TempNotes::hardening("100000").build().unwrap());
    hardening_tests::serve(app).await
}

async fn get_as(addr: SocketAddr, claims: &Value, path: &str) -> Reply {
    let auth = format!("Bearer {}", hs256_token(SECRET, claims.clone()));
    send(addr, "GET", path, &[("authorization", &auth)], None).await
}

/// The answer without what differs per request by design: the request id, the date and the
/// rate limit's counters.
fn generic(reply: &Reply) -> (u16, Vec<(String, String)>, Value) {
    let mut headers: Vec<_> = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| match name.as_str() {
            "ratelimit" => (name.clone(), String::new()),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    headers.sort();
    let mut body = reply.json();
    assert!(body["request_id"].is_string(), "{}", reply.body);
    body["request_id"] = Value::Null;
    (reply.status, headers, body)
}

/// A row is a 404 problem exactly like a missing row spelled the same way (status, headers
/// and body but for its request id): to another owner however its id is spelled, and to its
/// owner unless spelled as the id's type writes it. `/rows/01` and `/rows/+1` loaded alice's
/// row 1 for her: one row had many URLs, so a rule or a cache keyed on the path in front
/// could be bypassed or poisoned. A `CanonicalId` holds any other type to one spelling.
#[tokio::test]
async fn a_row_answers_as_a_missing_one_unless_its_owner_spells_its_id_as_written() {
    let addr = app().await;
    let (alice, bob) = (json!({ "sub": "alice" }), json!({ "sub": "bob" }));
    let spellings = |n: u64| {
        [
            format!("{n}"),
            format!("0{n}"),
            format!("00{n}"),
            format!("+{n}"),
            format!("-{n}"),
            format!("%3{n}"),
            format!("{n}%20"),
            format!("%20{n}"),
            format!("{n};"),
            format!("{n};x=1"),
            format!("{n}.0"),
            format!("{n}e0"),
            format!("{n}%2F"),
            format!("{n}%00"),
            format!("{n}?x=1"),
            format!("{}", u64::MAX as u128 + u128::from(n)),
        ]
    };
    // `1` as `u64` writes it; `%31` is the same URI, a query is not the path.
    let written = ["1", "%31", "1?x=1"];
    let mut unlike_missing = Vec::new();
    // 1 is alice's, 3 is no one's (single digits, so `%3{n}` is the digit percent-encoded).
    for (theirs, missing) in spellings(1).iter().zip(spellings(3)) {
        let theirs = format!("/rows/{theirs}");
        let missing = format!("/rows/{missing}");
        for (claims, owner) in [(&bob, false), (&alice, true)] {
            let reply = get_as(addr, claims, &theirs).await;
            if owner && written.contains(&&theirs[6..]) {
                assert_eq!(reply.status, 200, "{theirs}: {}", reply.body);
                continue;
            }
            let missing_reply = get_as(addr, claims, &missing).await;
            if reply.status != 404
                || reply.header("content-type") != Some("application/problem+json")
                || generic(&reply) != generic(&missing_reply)
            {
                unlike_missing.push(format!(
                    "{claims} {theirs}: {} {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    // `::a` is alice's, `::b` no one's; only `::a`, as `Ipv6Addr` writes it, names her row.
    let hosts = |h: &str| {
        [
            format!("::{h}"),
            format!("::{}", h.to_uppercase()),
            format!("::00{h}"),
            format!("0::{h}"),
            format!("0:0:0:0:0:0:0:{h}"),
        ]
    };
    for (i, (theirs, missing)) in hosts("a").iter().zip(hosts("b")).enumerate() {
        let theirs = format!("/hosts/{theirs}");
        let reply = get_as(addr, &alice, &theirs).await;
        if i == 0 {
            assert_eq!(reply.status, 200, "{theirs}: {}", reply.body);
            continue;
        }
        let missing_reply = get_as(addr, &alice, &format!("/hosts/{missing}")).await;
        if reply.status != 404 || generic(&reply) != generic(&missing_reply) {
            unlike_missing.push(format!("{alice} {theirs}: {} {}", reply.status, reply.body));
        }
    }
    assert!(
        unlike_missing.is_empty(),
        "answered unlike a missing row: {unlike_missing:#?}"
    );
    // Unicode digits, a full-width one and an Arabic-Indic one, name nothing either.
    for other in ["%EF%BC%91", "%D9%A1", "\u{661}"] {
        let reply = get_as(addr, &bob, &format!("/rows/{other}")).await;
        assert_eq!(reply.status, 404, "{other}: {}", reply.body);
    }
}

/// Roles and scopes are read from the claim of the documented type only: a string where a
/// list is expected, a list of non-strings, a nested list or an object grant nothing, nor
/// does a subject spelled otherwise or a look-alike role (the admin override of `Owned`
/// included); a repeated claim is refused outright.
#[tokio::test]
async fn guards_grant_nothing_for_claims_of_another_type_or_spelling() {
    let addr = app().await;
    let admin = |roles: Value| json!({ "sub": "eve", "roles": roles });
    for (claims, admitted) in [
        (admin(json!(["admin"])), true),
        (admin(json!(["user", "admin"])), true),
        (admin(json!("admin")), false),
        (admin(json!("user admin")), false),
        (admin(json!([["admin"]])), false),
        (admin(json!([{ "name": "admin" }])), false),
        (admin(json!({ "admin": true })), false),
        (admin(json!([null, 1, true])), false),
        (
            admin(json!(["Admin", "ADMIN", "admin ", " admin", "admin\u{0}"])),
            false,
        ),
        (admin(json!(["\u{ff41}dmin", "adm\u{0131}n"])), false),
        (
            json!({ "sub": "eve", "role": "admin", "scope": "admin", "scp": ["admin"] }),
            false,
        ),
        (
            json!({ "sub": "eve", "groups": ["admin"], "realm_access": { "roles": ["admin"] } }),
            false,
        ),
    ] {
        let status = if admitted { 200 } else { 403 };
        let reply = get_as(addr, &claims, "/admin").await;
        assert_eq!(reply.status, status, "{claims}: {}", reply.body);
        // The admin override of `Owned` follows the same role, no other.
        let row = get_as(addr, &claims, "/rows/1").await;
        assert_eq!(row.status, if admitted { 200 } else { 404 }, "{claims}");
    }
    let writer = |scope: Value| json!({ "sub": "eve", "scope": scope });
    for (claims, admitted) in [
        (writer(json!("notes:write")), true),
        (writer(json!("notes:read notes:write")), true),
        (writer(json!("  notes:read   notes:write  ")), true),
        (
            json!({ "sub": "eve", "scp": ["notes:read", "notes:write"] }),
            true,
        ),
        (writer(json!("notes:read,notes:write")), false),
        (writer(json!("notes:read+notes:write")), false),
        (writer(json!("notes:read;notes:write")), false),
        (writer(json!("notes:read\tnotes:write")), false),
        (writer(json!("notes:read\nnotes:write")), false),
        (writer(json!("notes:read\u{a0}notes:write")), false),
        (writer(json!("notes:read\u{2028}notes:write")), false),
        (writer(json!("Notes:Write")), false),
        (writer(json!("notes:*")), false),
        (writer(json!("notes")), false),
        (writer(json!(["notes:write"])), false),
        (writer(json!({ "notes:write": true })), false),
        // Azure AD writes `scp` as a string separated by spaces: read as `scope` is.
        (json!({ "sub": "eve", "scp": "notes:write" }), true),
        (
            json!({ "sub": "eve", "scp": "User.Read notes:write" }),
            true,
        ),
        (
            json!({ "sub": "eve", "scp": "notes:read,notes:write" }),
            false,
        ),
        (
            json!({ "sub": "eve", "scp": "notes:read\tnotes:write" }),
            false,
        ),
        (json!({ "sub": "eve", "scp": [["notes:write"]] }), false),
        // `scope` is the claim; `scp` only stands in where there is no `scope` string.
        (
            json!({ "sub": "eve", "scope": "notes:read", "scp": ["notes:write"] }),
            false,
        ),
    ] {
        let status = if admitted { 200 } else { 403 };
        let reply = get_as(addr, &claims, "/write").await;
        assert_eq!(reply.status, status, "{claims}: {}", reply.body);
    }
    // A claim given twice (the signer may read the first, serde_json the last) is refused.
    for payload in [
        r#"{"sub":"eve","roles":["user"],"roles":["admin"]}"#,
        r#"{"sub":"eve","scope":"notes:read","scope":"notes:write"}"#,
        r#"{"sub":"bob","sub":"alice"}"#,
        r#"{"sub":"eve","roles":["user"],"rol\u0065s":["admin"]}"#,
    ] {
        let token = raw_hs256(payload);
        let auth = format!("Bearer {token}");
        for path in ["/admin", "/write", "/rows/1"] {
            let reply = send(addr, "GET", path, &[("authorization", &auth)], None).await;
            assert_eq!(reply.status, 401, "{payload} {path}: {}", reply.body);
        }
    }
}

/// An HS256 token whose payload is these exact bytes (with an `exp`).
fn raw_hs256(payload: &str) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let exp = hardening_tests::jwt::unix_now() + 600;
    let payload = format!(r#"{},"exp":{exp}}}"#, payload.strip_suffix('}').unwrap());
    let message = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256);
    format!("{message}.{}", signature.unwrap())
}
