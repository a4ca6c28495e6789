//! API keys over TCP on 127.0.0.1, behind `Hardening`, as a B2B API's machine clients use
//! them: a live key admits as its principal (the handler, `Owned`'s scoping, the
//! per-principal limiter and the access log's `enduser.id` all see it); a missing, unknown or
//! revoked key is a 401 problem with a request id and a challenge naming the header; the key
//! never reaches the logs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hardening_auth::{
    ApiKey, ApiKeyLayer, Authenticated, MemoryApiKeys, Owned, OwnedResource, Principal,
};
use hardening_core::Hardening;
use hardening_core::errors::Error;
use hardening_core::ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::{Captured, Reply, send, serve};
use serde_json::Value;

const CHALLENGE: &str = r#"ApiKey header="x-api-key""#;
const REFUSED: &str = r#"ApiKey header="x-api-key", error="invalid_key""#;

/// An invoice of one tenant.
struct Invoice {
    tenant: &'static str,
    total: u32,
}

/// Invoices by id, and the tenant each machine account belongs to.
#[derive(Clone)]
struct Db {
    invoices: Arc<HashMap<u64, Invoice>>,
    members: Arc<HashMap<&'static str, &'static str>>,
}

impl OwnedResource for Invoice {
    type Id = u64;
    type Store = Db;
    async fn load_owned(db: &Db, owner: &str, id: u64) -> Result<Option<Invoice>, Error> {
        // SQL: SELECT … FROM invoices i JOIN members m ON m.tenant_id = i.tenant_id
        //      WHERE i.id = ?1 AND m.account_id = ?2
        let tenant = db.members.get(owner);
        Ok(db
            .invoices
            .get(&id)
            .filter(|i| Some(&i.tenant) == tenant)
            .map(|i| Invoice {
                tenant: i.tenant,
                total: i.total,
            }))
    }
}

/// The keys of two tenants' machine accounts, and one revoked.
struct Keys {
    acme: ApiKey,
    globex: ApiKey,
    revoked: ApiKey,
    store: Arc<MemoryApiKeys>,
}

fn account(subject: &str, tenant: &str) -> Principal {
    Principal {
        subject: subject.into(),
        tenant: Some(tenant.into()),
        scopes: vec!["invoices:read".into()],
        ..Principal::default()
    }
}

fn keys() -> Keys {
    let store = Arc::new(MemoryApiKeys::new());
    let acme = ApiKey::generate("acme_live").unwrap();
    let globex = ApiKey::generate("acme_live").unwrap();
    let revoked = ApiKey::generate("acme_live").unwrap();
    store.add(&acme, account("acme-billing", "acme")).unwrap();
    store
        .add(&globex, account("globex-sync", "globex"))
        .unwrap();
    store.add(&revoked, account("acme-old", "acme")).unwrap();
    assert!(store.revoke(&revoked.id()));
    Keys {
        acme,
        globex,
        revoked,
        store,
    }
}

/// `/whoami`, `/invoices/{id}` (owner-scoped through the account's tenant) and `/limited`
/// (3 requests a minute per principal, inside the key layer), behind `Hardening` with the
/// request headers logged.
async fn app(keys: &Keys) -> SocketAddr {
    let db = Db {
        invoices: Arc::new(HashMap::from([(
            1,
            Invoice {
                tenant: "acme",
                total: 120,
            },
        )])),
        members: Arc::new(HashMap::from([
            ("acme-billing", "acme"),
            ("globex-sync", "globex"),
        ])),
    };
    let per_key = RateLimiter::new([Policy::per_principal(
        "per-key",
        Quota::per_minute(NonZeroU32::new(3).unwrap()),
    )]);
    let app = Router::new()
        .route(
            "/whoami",
            get(|who: Authenticated| async move {
                let p = who.principal;
                format!("{} {}", p.subject, p.tenant.unwrap_or_default())
            }),
        )
        .route(
            "/invoices/{id}",
            get(|Owned(invoice): Owned<Invoice>| async move {
                format!("{} {}", invoice.tenant, invoice.total)
            }),
        )
        .route(
            "/limited",
            get(|| async { "counted" }).route_layer(RateLimitLayer::new(per_key)),
        )
        .with_state(db)
        .layer(ApiKeyLayer::new(keys.store.clone()))
        .layer(Hardening::strict().log_request_headers());
    serve(app).await
}

async fn with_key(addr: SocketAddr, path: &str, key: &str) -> Reply {
    send(addr, "GET", path, &[("x-api-key", key)], None).await
}

/// A live key is its account: the handler, the access log's `enduser.id` and `no-store` on
/// its response; its logged headers show `x-api-key` redacted, and no line of any log holds
/// the key (nor a refused one).
#[tokio::test]
async fn a_key_admits_as_its_principal_and_never_reaches_the_logs() {
    let keys = keys();
    let addr = app(&keys).await;
    let (log, _guard) = Captured::json_logs(tracing::Level::TRACE);

    let me = with_key(addr, "/whoami", keys.acme.expose_secret()).await;
    assert_eq!((me.status, me.body.as_str()), (200, "acme-billing acme"));
    assert_eq!(me.header("cache-control"), Some("no-store"), "{me:?}");
    let refused = with_key(addr, "/whoami", keys.revoked.expose_secret()).await;
    refused.problem(401);

    let access = log.wait_for_access_events(2).await;
    assert_eq!(access[0]["enduser.id"], "acme-billing", "{:#?}", access[0]);
    let headers = access[0]["http.request.headers"].as_str().unwrap();
    assert!(headers.contains("x-api-key"), "{headers}");
    assert!(access[1].get("enduser.id").is_none(), "{:#?}", access[1]);
    let all = log.text();
    for key in [&keys.acme, &keys.revoked] {
        let secret = &key.expose_secret()[key.id().as_str().len()..];
        assert!(!all.contains(secret), "a key reached the logs:\n{all}");
    }
    // The refused key is named by its public id only.
    let reasons: Vec<Value> = log
        .json_lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "api key refused")
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:#?}");
    assert_eq!(reasons[0]["fields"]["key_id"], keys.revoked.id().as_str());
}

/// No key, an unknown key, a revoked key: 401 problems with the request id and a challenge
/// naming the header, each one security event `unauthenticated`; the unknown and the revoked
/// key are answered alike.
#[tokio::test]
async fn missing_unknown_and_revoked_keys_are_401_problems() {
    let keys = keys();
    let addr = app(&keys).await;
    let (log, _guard) = Captured::json_logs(tracing::Level::INFO);

    let none = send(addr, "GET", "/whoami", &[], None).await;
    none.problem(401);
    assert_eq!(none.header("www-authenticate"), Some(CHALLENGE));
    let unknown = ApiKey::generate("acme_live").unwrap();
    let mut bodies = Vec::new();
    for key in [&unknown, &keys.revoked] {
        let refused = with_key(addr, "/whoami", key.expose_secret()).await;
        let mut body = refused.problem(401);
        assert_eq!(refused.header("www-authenticate"), Some(REFUSED));
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(
        log.security_event_names(),
        ["unauthenticated", "unauthenticated", "unauthenticated"]
    );
}

/// The per-principal limit inside the key layer counts each key's account on its own.
#[tokio::test]
async fn each_key_is_limited_on_its_own() {
    let keys = keys();
    let addr = app(&keys).await;
    for _ in 0..3 {
        let ok = with_key(addr, "/limited", keys.acme.expose_secret()).await;
        assert_eq!(ok.status, 200, "{ok:?}");
    }
    let limited = with_key(addr, "/limited", keys.acme.expose_secret()).await;
    let body = limited.problem(429);
    assert_eq!(body["violated-policies"], serde_json::json!(["per-key"]));
    let other = with_key(addr, "/limited", keys.globex.expose_secret()).await;
    assert_eq!(other.status, 200, "{other:?}");
}

/// `Owned<T>` loads through the key's account, scoped by its tenant: another tenant's key
/// gets the same 404 as a missing invoice.
#[tokio::test]
async fn owned_scoping_follows_the_keys_tenant() {
    let keys = keys();
    let addr = app(&keys).await;
    let mine = with_key(addr, "/invoices/1", keys.acme.expose_secret()).await;
    assert_eq!((mine.status, mine.body.as_str()), (200, "acme 120"));
    let theirs = with_key(addr, "/invoices/1", keys.globex.expose_secret()).await;
    let missing = with_key(addr, "/invoices/2", keys.acme.expose_secret()).await;
    let (mut theirs, mut missing) = (theirs.problem(404), missing.problem(404));
    theirs.as_object_mut().unwrap().remove("request_id");
    missing.as_object_mut().unwrap().remove("request_id");
    assert_eq!(theirs, missing);
    let none = send(addr, "GET", "/invoices/1", &[], None).await;
    none.problem(401);
}
