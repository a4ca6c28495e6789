//! An IDOR probe for your own test suite.

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Service, ServiceExt};

/// The routes of one resource, for [`idor_probe`].
#[derive(Debug, Clone)]
pub struct IdorRoutes {
    /// `POST` path that creates a resource, and its JSON body.
    pub create: (String, String),
    /// JSON Pointer to the new resource's id in the create response (for example `/id`).
    pub id_pointer: String,
    /// The resource's path with `{id}` where the id goes (for example `/notes/{id}`).
    pub item: String,
    /// A JSON body for `PUT` on the item.
    pub update: String,
    /// The path that lists the caller's resources, if any.
    pub list: Option<String>,
}

/// What the probe found: a way for one principal to reach another's resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IDOR: {0}")]
pub struct IdorFinding(pub String);

/// Credentials of one principal: a header and its value (`authorization: Bearer …` or a
/// session `cookie`).
pub type Credentials = (HeaderName, HeaderValue);

/// Proves that what `owner` creates cannot be read, changed, listed or deleted by `other`:
/// `other` must get 404 on GET, PUT and DELETE of the item, must not see its id in the list,
/// and afterwards the owner must still read it unchanged.
///
/// In a test of your own (a complete one is `tests/tests/idor.rs` in this repository):
///
/// ```text
/// hardening_auth::idor_probe(app.clone(), alice, bob, &routes).await?;
/// ```
pub async fn idor_probe<S>(
    app: S,
    owner: Credentials,
    other: Credentials,
    routes: &IdorRoutes,
) -> Result<(), IdorFinding>
where
    S: Service<Request<Body>, Response = axum::response::Response> + Clone,
    S::Error: std::fmt::Debug,
{
    let send = |who: &Credentials, method: Method, path: &str, body: Option<&str>| {
        let app = app.clone();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(who.0.clone(), who.1.clone());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Body::from(body.unwrap_or_default().to_owned()));
        let path = path.to_owned();
        async move {
            let req = req.map_err(|e| IdorFinding(format!("bad request for {path}: {e}")))?;
            let res = app
                .oneshot(req)
                .await
                .map_err(|e| IdorFinding(format!("{path}: {e:?}")))?;
            let status = res.status();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|_| IdorFinding(format!("{path}: unreadable body")))?
                .to_bytes();
            Ok::<_, IdorFinding>((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
    };
    let (path, body) = &routes.create;
    let (status, created) = send(&owner, Method::POST, path, Some(body)).await?;
    if !status.is_success() {
        return Err(IdorFinding(format!(
            "setup: create answered {status}: {created}"
        )));
    }
    let created: Value = serde_json::from_str(&created)
        .map_err(|_| IdorFinding("setup: create did not answer JSON".into()))?;
    let id = match created.pointer(&routes.id_pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(IdorFinding(format!(
                "setup: no id at {}",
                routes.id_pointer
            )));
        }
    };
    let item = routes.item.replace("{id}", &id);
    let (status, before) = send(&owner, Method::GET, &item, None).await?;
    if !status.is_success() {
        return Err(IdorFinding(format!(
            "setup: the owner cannot read {item} ({status})"
        )));
    }

    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(routes.update.as_str())),
        (Method::DELETE, None),
    ] {
        let (status, text) = send(&other, method.clone(), &item, body).await?;
        if status != StatusCode::NOT_FOUND {
            return Err(IdorFinding(format!(
                "another principal's {method} {item} answered {status} (expected 404): {text}"
            )));
        }
    }
    if let Some(list) = &routes.list {
        let (_, text) = send(&other, Method::GET, list, None).await?;
        let listed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if contains_id(&listed, &id) {
            return Err(IdorFinding(format!(
                "another principal's {list} lists id {id}"
            )));
        }
    }
    let (status, after) = send(&owner, Method::GET, &item, None).await?;
    if !status.is_success() || after != before {
        return Err(IdorFinding(format!(
            "another principal changed or deleted {item} (owner now gets {status})"
        )));
    }
    Ok(())
}

fn contains_id(value: &Value, id: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "id" && id_eq(v, id)) || contains_id(v, id)),
        Value::Array(items) => items.iter().any(|v| contains_id(v, id)),
        _ => false,
    }
}

fn id_eq(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id,
        Value::Number(n) => n.to_string() == id,
        _ => false,
    }
}
