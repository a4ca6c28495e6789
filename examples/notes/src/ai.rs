//! `POST /ai/complete`: a deterministic local fake model behind a per-user token budget
//! (reserved before the call, settled to the reported usage) and a request rate limit.

use std::num::NonZeroU32;

use axum::routing::post;
use axum::{Json, Router};
use hardening_core::auth::Authenticated;
use hardening_core::errors::{Error, FieldError, Valid};
use hardening_core::ratelimit::{
    CostConfigError, CostLayer, Estimate, Policy, Quota, RateLimitLayer, RateLimiter, Usage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;

/// The request, OpenAI-style.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Completion {
    #[garde(length(chars, min = 1, max = 4_000))]
    prompt: String,
    #[garde(range(min = 1, max = 4_096))]
    #[serde(default = "default_max_tokens")]
    max_tokens: u32,
}

fn default_max_tokens() -> u32 {
    256
}

/// Tokens the way the fake model counts them: whitespace-separated words.
fn tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// What a request may cost before it runs: its prompt plus the most it may generate.
fn estimate(body: &[u8]) -> u32 {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return default_max_tokens();
    };
    let prompt = v.get("prompt").and_then(Value::as_str).map_or(0, tokens);
    let max = v
        .get("max_tokens")
        .and_then(Value::as_u64)
        .map_or(default_max_tokens(), |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        });
    prompt.saturating_add(max)
}

/// A deterministic "model": the same prompt always gives the same words.
fn complete(prompt: &str, max_tokens: u32) -> (String, u32) {
    const WORDS: &[&str] = &[
        "secure", "by", "default", "notes", "are", "scoped", "to", "their", "owner", "and",
        "every", "error", "is", "a", "problem", "with", "an", "id",
    ];
    // FNV-1a over the prompt picks where to start.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prompt.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let n = max_tokens.min(8 + 2 * tokens(prompt));
    let words: Vec<&str> = (0..n)
        .map(|i| WORDS[((h as usize).wrapping_add(i as usize * 7)) % WORDS.len()])
        .collect();
    (words.join(" "), n)
}

async fn complete_route(
    user: Authenticated,
    usage: Usage,
    Valid(Json(req)): Valid<Json<Completion>>,
) -> Result<Json<Value>, Error> {
    let prompt_tokens = tokens(&req.prompt);
    // Never spend more than was reserved for this request: the reservation is the estimate
    // (prompt + max_tokens) capped at the most one request may reserve, so a request whose
    // worst case is above the cap is refused before the model runs, and charged nothing.
    let reserved = usage.reserved();
    let asked = u64::from(prompt_tokens) + u64::from(req.max_tokens);
    if asked > reserved {
        usage.set(0);
        return Err(Error::Validation(vec![FieldError::new(
            "#/prompt",
            format!(
                "the prompt ({prompt_tokens} tokens) plus max_tokens ({}) is more than one \
                 request may spend ({reserved} tokens): shorten the prompt or lower max_tokens",
                req.max_tokens
            ),
        )]));
    }
    let (text, completion_tokens) = complete(&req.prompt, req.max_tokens);
    let total = prompt_tokens.saturating_add(completion_tokens);
    usage.set(u64::from(total));
    tracing::info!(target: "example_notes::ai", user = %user.principal.subject, total, "completion");
    Ok(Json(json!({
        "text": text,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total,
        },
    })))
}

/// The route with its budget (`daily` tokens per user per day, one request reserving at
/// most half of it) and a limit of 20 requests a minute per user, behind the check that
/// refuses anonymous callers (401): the budgets count by user, so a request without one must
/// not reach them (`CostLayer` would refuse it as misconfigured, with a 500).
pub(crate) fn router(daily: NonZeroU32) -> Result<Router<AppState>, CostConfigError> {
    let budget = RateLimiter::new([Policy::per_principal(
        "ai-tokens-per-day",
        Quota::per_day(daily),
    )]);
    let half = NonZeroU32::new(daily.get() / 2).unwrap_or(NonZeroU32::MIN);
    let cost = CostLayer::new(budget, Estimate::from_fn(|_, body| estimate(body)))
        .max_estimate(half.min(NonZeroU32::new(8_192).unwrap_or(NonZeroU32::MIN)))?;
    let requests = RateLimiter::new([Policy::per_principal(
        "ai-requests-per-minute",
        Quota::per_minute(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN)),
    )]);
    Ok(Router::new()
        .route("/ai/complete", post(complete_route))
        .route_layer(cost)
        .route_layer(RateLimitLayer::new(requests))
        .route_layer(axum::middleware::from_extractor::<Authenticated>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_model_is_deterministic_and_bounded() {
        let (a, n) = complete("tell me about notes", 1000);
        assert_eq!(complete("tell me about notes", 1000), (a.clone(), n));
        assert_eq!(n, 8 + 2 * 4);
        assert_eq!(tokens(&a), n);
        assert_eq!(complete("tell me about notes", 3).1, 3);
        assert_eq!(estimate(br#"{"prompt":"a b c","max_tokens":100}"#), 103);
        assert_eq!(estimate(b"not json"), 256);
    }
}
