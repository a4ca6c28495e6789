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

    /// A role whose holders may load any owner's resource (default: none). Every such load is
    /// logged.
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
        // A malformed id names nothing: the same 404 as a missing or foreign one.
        let Ok(Path(id)) = Path::<T::Id>::from_request_parts(parts, state).await else {
            return Err(Error::NotFound.into_response());
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
        let sub_less = token(serde_json::json!({}));
        let req = Request::get("/notes/1")
            .header(AUTHORIZATION, format!("Bearer {sub_less}"))
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}
