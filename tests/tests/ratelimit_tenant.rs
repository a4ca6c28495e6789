//! Per-tenant limits (`Policy::per_tenant`, `KeyKind::Tenant`) over TCP on 127.0.0.1. The
//! tenant reaches the limiter as a `TenantId` in the request's extensions, which `AuthLayer`
//! puts there from a verified token's `tenant` (or `tid`) claim, and `ApiKeyLayer` from an API
//! key's principal: the users of one tenant share
//! its budget, another tenant has its own, and a request without a tenant is not counted by
//! it (the layer says so, once). `Hardening`, which runs before the auth layer, refuses such a
//! policy at build.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::Router;
use axum::routing::{get, post};
use hardening_core::auth::AuthLayer;
use hardening_core::ratelimit::{
    CostLayer, Estimate, KeyKind, Policy, Quota, RateLimitLayer, RateLimiter, Usage,
};
use hardening_core::{ConfigError, Hardening};
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::{Captured, Reply, get as http_get, send, serve};
use serde_json::json;

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A bearer token for `sub`, with these other claims (an object).
fn token(sub: &str, mut claims: serde_json::Value) -> String {
    claims["sub"] = sub.into();
    hs256_token(SECRET, claims)
}

/// `GET /` with `token`.
async fn get_as(addr: SocketAddr, token: &str) -> Reply {
    http_get(addr, "/", &[&format!("authorization: Bearer {token}")]).await
}

/// `GET /` limited per user (100 a day) and per tenant (3 a day), inside the auth layer,
/// under `Hardening::strict()` (whose own limit is per IP).
async fn per_user_and_tenant() -> SocketAddr {
    let limiter = RateLimiter::new([
        Policy::per_principal("per-user", Quota::per_day(nz(100))),
        Policy::per_tenant("per-tenant", Quota::per_day(nz(3))),
    ]);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(limiter))
        .layer(AuthLayer::new(hs256_verifier(SECRET)))
        .layer(Hardening::strict());
    serve(app).await
}

#[tokio::test]
async fn the_users_of_one_tenant_share_its_budget() {
    let addr = per_user_and_tenant().await;
    let ann = token("ann", json!({"tenant": "acme"}));
    let bo = token("bo", json!({"tenant": "acme"}));
    // Azure AD's claim, `tid`, names the tenant too.
    let cy = token("cy", json!({"tid": "globex"}));
    let both = "\"per-user\";q=100;w=86400, \"per-tenant\";q=3;w=86400, \"per-ip\";q=100;w=60";
    for (who, tenant_left) in [(&ann, 2), (&ann, 1), (&bo, 0)] {
        let reply = get_as(addr, who).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("ratelimit-policy"), Some(both));
        let ratelimit = reply.header("ratelimit").unwrap();
        assert!(
            ratelimit.contains(&format!("\"per-tenant\";r={tenant_left};")),
            "{ratelimit}"
        );
    }
    // acme's three are spent, by two users: bo, with 99 of his own left, is refused.
    let refused = get_as(addr, &bo).await;
    assert_eq!(
        refused.problem(429)["violated-policies"],
        json!(["per-tenant"])
    );
    // Another tenant has its own budget.
    let reply = get_as(addr, &cy).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .header("ratelimit")
            .unwrap()
            .contains("\"per-tenant\";r=2;"),
        "{reply:?}"
    );
}

/// A token without a tenant claim (or with an empty one), and an anonymous caller, are not
/// counted by the per-tenant policy: its fields leave it out, the per-user one still counts
/// the token. With no policy counting a request, the layer lets it through and warns once,
/// saying it had no tenant.
#[tokio::test]
async fn a_request_without_a_tenant_is_not_counted_by_it() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = per_user_and_tenant().await;
    for claims in [json!({}), json!({"tenant": ""}), json!({"tenant": 7})] {
        let dee = token("dee", claims.clone());
        for _ in 0..4 {
            let reply = get_as(addr, &dee).await;
            assert_eq!(reply.status, 200, "{claims}: {reply:?}");
            assert_eq!(
                reply.header("ratelimit-policy"),
                Some("\"per-user\";q=100;w=86400, \"per-ip\";q=100;w=60"),
                "{claims}"
            );
        }
    }
    let only_tenant = RateLimiter::new([Policy::per_tenant("per-tenant", Quota::per_day(nz(1)))]);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(only_tenant))
        .layer(AuthLayer::new(hs256_verifier(SECRET)));
    let addr = serve(app).await;
    let dee = token("dee", json!({}));
    for _ in 0..3 {
        let reply = get_as(addr, &dee).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("ratelimit-policy"), None, "{reply:?}");
    }
    let warnings = captured.layer_warnings("RateLimitLayer");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "it has no tenant (an anonymous caller, a token without a `tenant` or `tid` claim"
        ),
        "{message}"
    );
}

/// The trial's case: a daily cost budget per tenant (LLM tokens), reserved before the
/// handler runs and settled to what it used, shared by the tenant's users.
#[tokio::test]
async fn a_daily_cost_budget_per_tenant() {
    let budget = RateLimiter::new([Policy::per_tenant(
        "tenant-tokens-per-day",
        Quota::per_day(nz(1_000)),
    )]);
    let complete = post(|usage: Usage| async move {
        usage.set(usage.reserved());
        "done"
    });
    let app = Router::new()
        .route("/complete", complete)
        .layer(
            CostLayer::new(budget, Estimate::json_field("/max_tokens", 256).unwrap())
                .max_estimate(nz(900))
                .unwrap(),
        )
        .layer(AuthLayer::new(hs256_verifier(SECRET)))
        .layer(Hardening::strict());
    let addr = serve(app).await;
    let ask = |sub: &'static str, tenant: &'static str, max_tokens: u32| async move {
        let bearer = format!("Bearer {}", token(sub, json!({"tenant": tenant})));
        let body = format!("{{\"max_tokens\":{max_tokens}}}");
        let headers = [("authorization", bearer.as_str())];
        send(addr, "POST", "/complete", &headers, Some(&body)).await
    };
    assert_eq!(ask("ann", "acme", 600).await.status, 200);
    let refused = ask("bo", "acme", 500).await;
    let problem = refused.problem(429);
    assert_eq!(
        problem["violated-policies"],
        json!(["tenant-tokens-per-day"])
    );
    assert_eq!(ask("bo", "acme", 400).await.status, 200);
    assert_eq!(ask("cy", "globex", 900).await.status, 200);
}

/// An API key's principal carries its tenant as a token's does (`ApiKeyLayer` admits it the
/// way `AuthLayer` admits a token): the keys of one tenant's robots share its budget.
#[tokio::test]
async fn api_keys_of_one_tenant_share_its_budget() {
    use hardening_core::auth::{ApiKey, ApiKeyLayer, MemoryApiKeys, Principal};
    let keys = std::sync::Arc::new(MemoryApiKeys::new());
    let robot = |subject: &str, tenant: &str| {
        let key = ApiKey::generate("acme").unwrap();
        let principal = Principal {
            subject: subject.into(),
            tenant: Some(tenant.into()),
            ..Principal::default()
        };
        keys.add(&key, principal).unwrap();
        key
    };
    let (billing, reports, other) = (
        robot("billing-bot", "acme"),
        robot("reports-bot", "acme"),
        robot("billing-bot", "globex"),
    );
    let limiter = RateLimiter::new([Policy::per_tenant("per-tenant", Quota::per_day(nz(2)))]);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(limiter))
        .layer(ApiKeyLayer::new(keys.clone()))
        .layer(Hardening::strict());
    let addr = serve(app).await;
    let with = |key: &ApiKey| format!("x-api-key: {}", key.expose_secret());
    assert_eq!(http_get(addr, "/", &[&with(&billing)]).await.status, 200);
    assert_eq!(http_get(addr, "/", &[&with(&reports)]).await.status, 200);
    let refused = http_get(addr, "/", &[&with(&billing)]).await;
    assert_eq!(
        refused.problem(429)["violated-policies"],
        json!(["per-tenant"])
    );
    assert_eq!(http_get(addr, "/", &[&with(&other)]).await.status, 200);
}

/// `Hardening` runs before the auth layer, where no request has a tenant yet: a per-tenant
/// policy there would count nothing, so it is refused when the layer is built, alone or in a
/// composite key.
#[test]
fn hardening_refuses_a_per_tenant_policy() {
    let day = Quota::per_day(nz(10));
    for policy in [
        Policy::per_tenant("per-tenant", day),
        Policy::keyed(
            "per-tenant-route",
            day,
            KeyKind::Composite(vec![KeyKind::Route, KeyKind::Tenant]),
        ),
    ] {
        let name = policy.name().to_string();
        let err = Hardening::strict()
            .rate_limit(RateLimiter::new([policy]))
            .unwrap_err();
        assert_eq!(err, ConfigError::PolicyNeedsPrincipal(name));
        assert!(
            err.to_string().contains("counts by principal or tenant")
                && err
                    .to_string()
                    .contains("RateLimitLayer inside the auth layer"),
            "{err}"
        );
    }
}
