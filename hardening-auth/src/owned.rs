//! Owner-scoped loading: a resource is only ever loaded through a query that names its owner.

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use hardening_errors::Error;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AUTH_TARGET;

/// A resource that can only be loaded by `(owner, id)`.
///
/// Implement [`load_owned`](OwnedResource::load_owned) with the owner in the query itself,
/// so a forgotten check cannot leak someone else's row:
///
/// ```sql
/// SELECT id, title, body FROM notes WHERE id = ?1 AND owner_id = ?2
/// ```
///
/// The owner is the token's `sub` as it is: compare it exactly (a case-insensitive
/// collation, MySQL's default, would let `Alice` load `alice`'s rows).
///
/// Then take [`Owned<T>`] in handlers: it parses the id from the path, takes the
/// authenticated [`Principal`](crate::Principal), and calls only that load. "Not found" and "not yours" are the
/// same 404, so ids cannot be probed.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use hardening_auth::{Owned, OwnedResource};
/// use hardening_errors::Error;
///
/// #[derive(Clone)]
/// struct Note { owner: String, title: String }
///
/// #[derive(Clone, Default)]
/// struct Db(Arc<Mutex<HashMap<u64, Note>>>);
///
/// impl OwnedResource for Note {
///     type Id = u64;
///     type Store = Db;
///     async fn load_owned(db: &Db, owner: &str, id: u64) -> Result<Option<Note>, Error> {
///         let db = db.0.lock().map_err(|_| Error::internal("poisoned"))?;
///         // In SQL: WHERE id = ? AND owner_id = ?
///         Ok(db.get(&id).filter(|n| n.owner == owner).cloned())
///     }
/// }
///
/// async fn show(Owned(note): Owned<Note>) -> String {
///     note.title
/// }
/// # let _: axum::Router = axum::Router::new()
/// #     .route("/notes/{id}", axum::routing::get(show))
/// #     .with_state(Db::default());
/// ```
pub trait OwnedResource: Sized + Send {
    /// The id in the path (`/notes/{id}`).
    type Id: DeserializeOwned + Send;
    /// Where resources are loaded from (a pool, a repository), taken from the router state.
    type Store: Send + Sync;

    /// Loads the resource with this id **only if** `owner` owns it.
    fn load_owned(
        store: &Self::Store,
        owner: &str,
        id: Self::Id,
    ) -> impl Future<Output = Result<Option<Self>, Error>> + Send;

    /// A role whose holders may load any owner's resource (default: none), through
    /// [`load_any`](Self::load_any) only (implement it too). Every such load is logged.
    fn admin_role() -> Option<&'static str> {
        None
    }

    /// Loads any owner's resource; only called for [`admin_role`](Self::admin_role) holders.
    fn load_any(
        _store: &Self::Store,
        _id: Self::Id,
    ) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        async { Ok(None) }
    }
}

/// A resource loaded for its owner, the authenticated principal; 404 otherwise (and 401
/// without authentication). Needs [`AuthLayer`](crate::AuthLayer).
#[derive(Debug, Clone)]
pub struct Owned<T>(pub T);

impl<S, T> FromRequestParts<S> for Owned<T>
where
    S: Send + Sync,
    T: OwnedResource,
    T::Store: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The same checks as `Authenticated` (a verified token, not revoked): a logged-out
        // token must not load resources just because the route asked for `Owned<T>` only.
        let principal =
            <crate::Authenticated as FromRequestParts<S>>::from_request_parts(parts, state)
                .await?
                .principal;
        let id = match Path::<T::Id>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            // The route does not fit `T::Id` (another number of path parameters, say): a
            // wiring mistake, said in the log, not a silent 404 on every request.
            Err(rejection) if rejection.status().is_server_error() => {
                let why = format!(
                    "Owned<{}>: {}",
                    std::any::type_name::<T>(),
                    rejection.body_text()
                );
                return Err(Error::internal(why).into_response());
            }
            // A malformed id names nothing: the same 404 as a missing or foreign one.
            Err(_) => return Err(Error::NotFound.into_response()),
        };
        let store = T::Store::from_ref(state);
        let loaded = match T::admin_role() {
            Some(role) if principal.has_role(role) => {
                tracing::warn!(target: AUTH_TARGET, subject = %principal.subject, role, "admin override: loading without owner scope");
                T::load_any(&store, id).await
            }
            _ => T::load_owned(&store, &principal.subject, id).await,
        };
        match loaded {
            Ok(Some(resource)) => Ok(Owned(resource)),
            Ok(None) => Err(Error::NotFound.into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::header::AUTHORIZATION;
    use http::{Request, StatusCode};
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::AuthLayer;
    use crate::test_tokens::{token, verifier};

    /// A store where every note belongs to whoever asks, `""` included.
    #[derive(Clone)]
    struct Anyone;

    struct Note(String);

    impl OwnedResource for Note {
        type Id = u64;
        type Store = Anyone;
        async fn load_owned(_: &Anyone, owner: &str, _: u64) -> Result<Option<Note>, Error> {
            Ok(Some(Note(owner.to_owned())))
        }
    }

    #[tokio::test]
    async fn a_token_without_a_subject_owns_nothing() {
        let app = Router::new()
            .route(
                "/notes/{id}",
                get(|Owned(note): Owned<Note>| async move { note.0 }),
            )
            .with_state(Anyone)
            .layer(AuthLayer::new(verifier()));
        let sub_less = token(json!({}));
        let req = Request::get("/notes/1")
            .header(AUTHORIZATION, format!("Bearer {sub_less}"))
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }

    /// Rows by id, each with its owner; `load_owned` compares owners exactly, as SQL's `=`
    /// with a binary collation does.
    #[derive(Clone)]
    struct Rows(std::sync::Arc<std::collections::BTreeMap<u64, &'static str>>);

    struct Row(&'static str);

    impl OwnedResource for Row {
        type Id = u64;
        type Store = Rows;
        async fn load_owned(rows: &Rows, owner: &str, id: u64) -> Result<Option<Row>, Error> {
            Ok(rows.0.get(&id).filter(|o| **o == owner).map(|o| Row(o)))
        }
        fn admin_role() -> Option<&'static str> {
            Some("admin")
        }
        async fn load_any(rows: &Rows, id: u64) -> Result<Option<Row>, Error> {
            Ok(rows.0.get(&id).map(|o| Row(o)))
        }
    }

    fn rows_app(route: &str) -> Router {
        let rows = [(1, "alice"), (2, "Alice"), (3, "' OR '1'='1")];
        Router::new()
            .route(route, get(|Owned(row): Owned<Row>| async move { row.0 }))
            .with_state(Rows(std::sync::Arc::new(rows.into_iter().collect())))
            .layer(AuthLayer::new(verifier()))
    }

    async fn get_as(app: &Router, claims: serde_json::Value, path: &str) -> StatusCode {
        let req = Request::get(path)
            .header(AUTHORIZATION, format!("Bearer {}", token(claims)))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    /// The subject reaches `load_owned` as the token has it (no case folding, no trimming),
    /// and only the exact admin role, not a look-alike role or a scope, loads any row.
    #[tokio::test]
    async fn owners_are_exact_and_only_the_admin_role_loads_any_row() {
        let app = rows_app("/rows/{id}");
        for (claims, readable) in [
            (json!({ "sub": "alice" }), &[1][..]),
            (json!({ "sub": "Alice" }), &[2]),
            (json!({ "sub": "alice " }), &[]),
            (json!({ "sub": "' OR '1'='1" }), &[3]),
            (json!({ "sub": "eve", "roles": ["Admin", "admin "] }), &[]),
            (
                json!({ "sub": "eve", "scope": "admin", "scp": ["admin"] }),
                &[],
            ),
            (json!({ "sub": "root", "roles": ["admin"] }), &[1, 2, 3]),
        ] {
            for id in 1..=4 {
                let want = if readable.contains(&id) {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                let got = get_as(&app, claims.clone(), &format!("/rows/{id}")).await;
                assert_eq!(got, want, "{claims} /rows/{id}");
            }
            // A malformed id names nothing, for the admin too.
            for path in ["/rows/x", "/rows/1%20OR%201=1", "/rows/-1", "/rows/1.0"] {
                let got = get_as(&app, claims.clone(), path).await;
                assert_eq!(got, StatusCode::NOT_FOUND, "{claims} {path}");
            }
        }
    }

    /// A route whose path parameters do not fit `T::Id` (two where it takes one, or none)
    /// answered 404 to every request, owner's included, and logged nothing: a wiring mistake
    /// that looked like missing rows.
    #[tokio::test]
    async fn a_route_that_does_not_fit_the_id_is_a_server_error() {
        for (route, path) in [
            ("/orgs/{org}/rows/{id}", "/orgs/o/rows/1"),
            ("/row", "/row"),
        ] {
            let got = get_as(&rows_app(route), json!({ "sub": "alice" }), path).await;
            assert_eq!(got, StatusCode::INTERNAL_SERVER_ERROR, "{route}");
        }
    }
}
