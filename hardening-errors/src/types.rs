//! The problem types used across the hardening suite, documented in one place.
//!
//! RFC 9457 §3.1.1 lets a problem's `type` be `about:blank` when the HTTP status says it all;
//! the `title` is then the status's reason phrase. The suite uses `about:blank` for every
//! plain status (400, 401, 403, 404, 405, 408, 409, 413, 500, 503, …) and a named type only
//! where a client can do something specific with the extra members:
//!
//! | `type` | status | extra members | when |
//! |---|---|---|---|
//! | [`ABOUT_BLANK`] | any | — | the status code is the whole story |
//! | [`VALIDATION_ERROR`] | 422 | `errors`: `[{ "pointer": "#/field", "detail": "…" }]` | the request parsed but its values broke a rule |
//! | [`QUOTA_EXCEEDED`] | 429 | `violated-policies`: `["…"]`; header `Retry-After` | a rate limit or cost budget is spent |
//!
//! <h2 id="about-blank">about:blank</h2>
//!
//! The default. `title` is the reason phrase of `status`; `detail` says, in words a client
//! developer can act on, what was wrong (which parameter, which header), without echoing
//! the request's values back.
//!
//! <h2 id="validation-error">validation-error</h2>
//!
//! The body was well-formed but one or more values broke a validation rule. Each entry in
//! `errors` names the field as a JSON Pointer fragment (RFC 6901), relative to the request
//! body or query, and says which rule it broke.
//!
//! <h2 id="quota-exceeded">quota-exceeded</h2>
//!
//! The client has spent a rate limit or cost budget. `violated-policies` names the policies
//! (as in the `RateLimit-Policy` header of the IETF RateLimit header fields draft) and
//! `Retry-After` says when to come back. The URI is the one that draft registers with IANA.

/// `about:blank`: the status code is the whole story (RFC 9457 §4.2.1).
pub const ABOUT_BLANK: &str = "about:blank";

/// A request whose values broke validation rules; carries field-level `errors`.
pub const VALIDATION_ERROR: &str =
    "https://docs.rs/hardening-errors/latest/hardening_errors/types/index.html#validation-error";

/// A spent rate limit or cost budget; carries `violated-policies` and `Retry-After`.
pub const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";
