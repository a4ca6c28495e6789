//! Owner-scoped loading: a resource is only ever loaded through a query that names its owner.

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use hardening_errors::Error;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AUTH_TARGET;
use crate::canonical::CanonicalIntegers;

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
/// One resource has one URL: an integer id (`u64`, `i64`, …, alone or in a tuple or struct
/// of path parameters) is taken only as its `Display` writes it, so `/notes/042` and
/// `/notes/+42` answer as a missing note, not as note 42. Wrap other ids whose `FromStr`
/// takes several spellings, such as a `Uuid`, in [`CanonicalId`](crate::CanonicalId).
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
    /// The id in the path (`/notes/{id}`); integers only in their canonical spelling.
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
    ///
    /// The role reaches every owner there is: in a multi-tenant service, every tenant's.
    /// Name a role only the service's own operators hold, never one a tenant grants its own
    /// members (an organisation's `admin`), which would let them read every organisation's
    /// data. Tenant scoping belongs in [`load_owned`](Self::load_owned)'s query: join the
    /// owner's membership there (`… JOIN members m ON m.org_id = d.org_id WHERE m.user_id =
    /// ?owner`), so that a membership removed counts at once.
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
///
/// Rejections, each a problem: those of [`Authenticated`](crate::Authenticated) first; 404
/// for an id that is malformed, not in its canonical spelling, missing or another owner's;
/// the error [`load_owned`](OwnedResource::load_owned) returns, as it answers; 500 when the
/// route's path parameters do not fit `T::Id` (a wiring mistake, logged). See
/// [`OwnedResource`] for a handler that takes it.
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
        let id = match Path::<CanonicalIntegers<T::Id>>::from_request_parts(parts, state).await {
            Ok(Path(CanonicalIntegers(id))) => id,
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
            // A malformed id, or one spelled otherwise than its type writes it, names
            // nothing: the same 404 as a missing or foreign one.
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

    use std::net::Ipv6Addr;

    use super::*;
    use crate::test_tokens::{token, verifier};
    use crate::{AuthLayer, CanonicalId};

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

    /// Loads whatever id reaches it, to show which spellings do.
    struct Echo<Id>(std::marker::PhantomData<Id>);

    impl<Id: DeserializeOwned + Send> OwnedResource for Echo<Id> {
        type Id = Id;
        type Store = Anyone;
        async fn load_owned(_: &Anyone, _: &str, _: Id) -> Result<Option<Self>, Error> {
            Ok(Some(Echo(std::marker::PhantomData)))
        }
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // deserialized only: which spellings get through is the test
    struct Newtype(u64);

    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // as `Newtype`
    struct OrgRow {
        org: String,
        id: u32,
    }

    /// `/rows/01` and `/rows/+1` loaded row 1 (axum's `Path<u64>` parses as `str::parse`
    /// does): one row had many URLs, so a rule or a cache keyed on the path could be bypassed
    /// or poisoned. An integer id, alone or among other parameters, is taken only as its type
    /// writes it; a `CanonicalId` the same for any type; strings are left as they are.
    #[tokio::test]
    async fn an_id_reaches_the_load_only_in_its_canonical_spelling() {
        fn route<Id: DeserializeOwned + Send + 'static>(route: &str) -> Router {
            Router::new()
                .route(route, get(|_: Owned<Echo<Id>>| async {}))
                .with_state(Anyone)
                .layer(AuthLayer::new(verifier()))
        }
        let apps = [
            ("/u64/", route::<u64>("/u64/{id}")),
            ("/i64/", route::<i64>("/i64/{id}")),
            ("/newtype/", route::<Newtype>("/newtype/{id}")),
            ("/name/", route::<String>("/name/{id}")),
            ("/tuple/", route::<(String, u64)>("/tuple/{org}/{id}")),
            ("/struct/", route::<OrgRow>("/struct/{org}/{id}")),
            ("/ip/", route::<CanonicalId<Ipv6Addr>>("/ip/{id}")),
        ];
        let canonical = [
            "/u64/1",
            "/u64/%31",
            "/i64/-1",
            "/i64/0",
            "/newtype/7",
            "/name/007",
            "/name/+7",
            "/tuple/007/7",
            "/struct/007/7",
            "/ip/::ab",
        ];
        let other = [
            "/u64/01",
            "/u64/+1",
            "/u64/%2B1",
            "/u64/%301",
            "/u64/1%20",
            "/u64/-0",
            "/i64/-01",
            "/i64/-0",
            "/i64/+0",
            "/newtype/07",
            "/tuple/o/07",
            "/tuple/o/+7",
            "/struct/o/07",
            "/struct/o/+7",
            "/ip/::AB",
            "/ip/0::ab",
            "/ip/::00ab",
        ];
        let alice = json!({ "sub": "alice" });
        let mut wrong = Vec::new();
        for (path, want) in canonical
            .iter()
            .map(|path| (path, StatusCode::OK))
            .chain(other.iter().map(|path| (path, StatusCode::NOT_FOUND)))
        {
            let (_, app) = apps
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix))
                .unwrap();
            let got = get_as(app, alice.clone(), path).await;
            if got != want {
                wrong.push(format!("{path}: {got}"));
            }
        }
        assert!(wrong.is_empty(), "answered otherwise: {wrong:?}");
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
