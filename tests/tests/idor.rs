//! Owner scoping: `Owned<T>` keeps one user's notes from another, and the IDOR probe proves
//! it (and catches a router that forgets).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use hardening_auth::{
    AuthLayer, Authenticated, Credentials, IdorRoutes, Owned, OwnedResource, idor_probe,
};
use hardening_core::Hardening;
use hardening_core::errors::Error;
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use http::{HeaderValue, Method};
use serde::{Deserialize, Serialize};

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-idor";

#[derive(Clone, Serialize)]
struct Note {
    id: u64,
    #[serde(skip)]
    owner: String,
    title: String,
}

#[derive(Clone, Default)]
struct Db(Arc<Mutex<BTreeMap<u64, Note>>>);

impl OwnedResource for Note {
    type Id = u64;
    type Store = Db;
    async fn load_owned(db: &Db, owner: &str, id: u64) -> Result<Option<Note>, Error> {
        // SQL: SELECT … FROM notes WHERE id = ?1 AND owner_id = ?2
        Ok(db
            .0
            .lock()
            .unwrap()
            .get(&id)
            .filter(|n| n.owner == owner)
            .cloned())
    }
}

#[derive(Deserialize)]
struct NewNote {
    title: String,
}

async fn create(State(db): State<Db>, user: Authenticated, Json(new): Json<NewNote>) -> Json<Note> {
    let mut db = db.0.lock().unwrap();
    let id = db.len() as u64 + 1;
    let note = Note {
        id,
        owner: user.principal.subject,
        title: new.title,
    };
    db.insert(id, note.clone());
    Json(note)
}

async fn list(State(db): State<Db>, user: Authenticated) -> Json<Vec<Note>> {
    let db = db.0.lock().unwrap();
    Json(
        db.values()
            .filter(|n| n.owner == user.principal.subject)
            .cloned()
            .collect(),
    )
}

async fn show(Owned(note): Owned<Note>) -> Json<Note> {
    Json(note)
}

async fn update(
    State(db): State<Db>,
    Owned(note): Owned<Note>,
    Json(new): Json<NewNote>,
) -> Json<Note> {
    let mut db = db.0.lock().unwrap();
    let updated = Note {
        title: new.title,
        ..note
    };
    db.insert(updated.id, updated.clone());
    Json(updated)
}

async fn remove(State(db): State<Db>, Owned(note): Owned<Note>) -> http::StatusCode {
    db.0.lock().unwrap().remove(&note.id);
    http::StatusCode::NO_CONTENT
}

/// The mistake the probe exists to catch: loading by id alone.
async fn show_anyones(
    State(db): State<Db>,
    _user: Authenticated,
    Path(id): Path<u64>,
) -> Result<Json<Note>, Error> {
    db.0.lock()
        .unwrap()
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(Error::NotFound)
}

/// The same mistake in an update: changes whichever note the path names.
async fn update_anyones(
    State(db): State<Db>,
    _user: Authenticated,
    Path(id): Path<u64>,
    Json(new): Json<NewNote>,
) -> Result<Json<Note>, Error> {
    let mut db = db.0.lock().unwrap();
    let note = db.get_mut(&id).ok_or(Error::NotFound)?;
    note.title = new.title;
    Ok(Json(note.clone()))
}

fn app(scoped: bool) -> Router {
    if scoped {
        app_item(get(show).put(update).delete(remove))
    } else {
        app_item(get(show_anyones).put(update).delete(remove))
    }
}

/// [`app`] with these methods on `/notes/{id}`.
fn app_item(item: axum::routing::MethodRouter<Db>) -> Router {
    Router::new()
        .route("/notes", get(list).post(create))
        .route("/notes/{id}", item)
        .with_state(Db::default())
        .layer(AuthLayer::new(hs256_verifier(SECRET)))
        .layer(Hardening::strict())
}

fn bearer(sub: &str) -> Credentials {
    let token = hs256_token(SECRET, serde_json::json!({ "sub": sub }));
    (
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    )
}

fn routes() -> IdorRoutes {
    IdorRoutes {
        create: ("/notes".into(), r#"{"title":"alice's secret"}"#.into()),
        id_pointer: "/id".into(),
        item: "/notes/{id}".into(),
        updates: vec![(Method::PUT, r#"{"title":"bob was here"}"#.into())],
        list: Some("/notes".into()),
    }
}

#[tokio::test]
async fn owned_resources_pass_the_idor_probe() {
    idor_probe(app(true), bearer("alice"), bearer("bob"), &routes())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_probe_catches_a_route_that_loads_by_id_alone() {
    let finding = idor_probe(app(false), bearer("alice"), bearer("bob"), &routes())
        .await
        .unwrap_err();
    assert!(finding.0.contains("GET /notes/1 answered 200"), "{finding}");
}

#[tokio::test]
async fn a_revoked_token_loads_nothing_through_owned_alone() {
    use hardening_auth::{Denylist, MemoryDenylist, TokenRef};
    use tower::ServiceExt;

    let denylist = Arc::new(MemoryDenylist::new(100));
    let db = Db::default();
    db.0.lock().unwrap().insert(
        1,
        Note {
            id: 1,
            owner: "alice".into(),
            title: "alice's secret".into(),
        },
    );
    let app = Router::new()
        .route("/notes/{id}", get(show)) // takes `Owned<Note>` only, no `Authenticated`
        .with_state(db)
        .layer(AuthLayer::new(hs256_verifier(SECRET)).denylist(denylist.clone()))
        .layer(Hardening::strict());
    let token = hs256_token(
        SECRET,
        serde_json::json!({ "sub": "alice", "jti": "session-1" }),
    );
    let get_note = || {
        http::Request::get("/notes/1")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(app.clone().oneshot(get_note()).await.unwrap().status(), 200);
    denylist
        .revoke(
            TokenRef::new("session-1", "alice", None),
            SystemTime::now() + std::time::Duration::from_secs(600),
        )
        .await
        .unwrap();
    let refused = app.clone().oneshot(get_note()).await.unwrap();
    assert_eq!(refused.status(), 401, "logged out means logged out");
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
}

/// The probe tried `PUT` only: a `PATCH` that changes anyone's note, beside a `PUT` that is
/// owner-scoped, passed. `IdorRoutes::updates` names every method that changes the item.
#[tokio::test]
async fn the_probe_catches_a_patch_that_changes_anyones_note() {
    let body = r#"{"title":"bob was here"}"#;
    let routes = IdorRoutes {
        updates: vec![(Method::PUT, body.into()), (Method::PATCH, body.into())],
        ..routes()
    };
    passes_and_catches_the_leaky_patch(
        &routes,
        get(show).put(update).patch(update).delete(remove),
        get(show).put(update).patch(update_anyones).delete(remove),
    )
    .await;
}

/// A resource updated by `PATCH` only could not be described: the probe's `PUT` got a 405
/// where it wanted a 404, and reported that.
#[tokio::test]
async fn an_owner_scoped_patch_only_api_passes() {
    let routes = IdorRoutes {
        updates: vec![(Method::PATCH, r#"{"title":"bob was here"}"#.into())],
        ..routes()
    };
    passes_and_catches_the_leaky_patch(
        &routes,
        get(show).patch(update).delete(remove),
        get(show).patch(update_anyones).delete(remove),
    )
    .await;
}

/// The probe passes the `scoped` item routes and reports the `leaky` ones' PATCH.
async fn passes_and_catches_the_leaky_patch(
    routes: &IdorRoutes,
    scoped: axum::routing::MethodRouter<Db>,
    leaky: axum::routing::MethodRouter<Db>,
) {
    idor_probe(app_item(scoped), bearer("alice"), bearer("bob"), routes)
        .await
        .unwrap();
    let finding = idor_probe(app_item(leaky), bearer("alice"), bearer("bob"), routes)
        .await
        .unwrap_err();
    assert!(
        finding.0.contains("PATCH /notes/1 answered 200"),
        "{finding}"
    );
}

/// [`app`] with another `GET /notes`, whose answer the probe must check.
fn app_listing(list: axum::routing::MethodRouter<Db>) -> Router {
    Router::new()
        .route("/notes", list.post(create))
        .route("/notes/{id}", get(show).put(update).delete(remove))
        .with_state(Db::default())
        .layer(AuthLayer::new(hs256_verifier(SECRET)))
        .layer(Hardening::strict())
}

/// A list the probe cannot read (not JSON, or not a 2xx) was read as `null`, which lists no
/// id: the probe passed without having checked the list.
#[tokio::test]
async fn the_probe_reports_a_list_it_cannot_read() {
    let lists = [
        get(|| async { "alice's secret" }),
        get(|| async { Error::Forbidden }),
        get(|| async { (http::StatusCode::NOT_FOUND, Json(serde_json::json!([]))) }),
    ];
    for list in lists {
        let finding = idor_probe(app_listing(list), bearer("alice"), bearer("bob"), &routes())
            .await
            .unwrap_err();
        assert!(finding.0.contains("not a 2xx JSON body"), "{finding}");
    }
    // A 2xx JSON list that does not hold the id passes.
    let empty = get(|| async { Json(serde_json::json!({ "items": [] })) });
    idor_probe(
        app_listing(empty),
        bearer("alice"),
        bearer("bob"),
        &routes(),
    )
    .await
    .unwrap();
}

/// The list was searched for the id as a member's value only: a list of everyone's notes as
/// links (`"href": "/notes/1"`) passed.
#[tokio::test]
async fn the_probe_catches_a_list_that_links_everyones_notes() {
    let links = get(|State(db): State<Db>| async move {
        let db = db.0.lock().unwrap();
        let links = db
            .values()
            .map(|n| serde_json::json!({ "title": n.title, "href": format!("/notes/{}", n.id) }));
        Json(links.collect::<Vec<_>>())
    });
    let finding = idor_probe(
        app_listing(links),
        bearer("alice"),
        bearer("bob"),
        &routes(),
    )
    .await
    .unwrap_err();
    assert!(finding.0.contains("/notes lists id 1"), "{finding}");
}

/// `idor_probe` looked for the item's id in the list under members named `id` only, not
/// where `IdorRoutes::id_pointer` says it lives: a resource whose id is `note_id` and a list
/// route that returns every user's notes (the IDOR the list check exists for) passed.
mod probe_list {
    use super::*;

    #[derive(Clone, Serialize)]
    struct Entry {
        note_id: u64,
        #[serde(skip)]
        owner: String,
        title: String,
    }

    #[derive(Clone, Default)]
    struct Entries(Arc<Mutex<BTreeMap<u64, Entry>>>);

    impl OwnedResource for Entry {
        type Id = u64;
        type Store = Entries;
        async fn load_owned(db: &Entries, owner: &str, id: u64) -> Result<Option<Entry>, Error> {
            let db = db.0.lock().unwrap();
            Ok(db.get(&id).filter(|n| n.owner == owner).cloned())
        }
    }

    async fn create(
        State(db): State<Entries>,
        user: Authenticated,
        Json(new): Json<NewNote>,
    ) -> Json<Entry> {
        let mut db = db.0.lock().unwrap();
        let note = Entry {
            note_id: db.len() as u64 + 1,
            owner: user.principal.subject,
            title: new.title,
        };
        db.insert(note.note_id, note.clone());
        Json(note)
    }

    /// The bug under test: every user's notes, not the caller's.
    async fn list_everyones(State(db): State<Entries>, _user: Authenticated) -> Json<Vec<Entry>> {
        Json(db.0.lock().unwrap().values().cloned().collect())
    }

    async fn list_own(State(db): State<Entries>, user: Authenticated) -> Json<Vec<Entry>> {
        let db = db.0.lock().unwrap();
        let own = db.values().filter(|n| n.owner == user.principal.subject);
        Json(own.cloned().collect())
    }

    async fn show(Owned(note): Owned<Entry>) -> Json<Entry> {
        Json(note)
    }

    async fn update(
        State(db): State<Entries>,
        Owned(note): Owned<Entry>,
        Json(new): Json<NewNote>,
    ) -> Json<Entry> {
        let updated = Entry {
            title: new.title,
            ..note
        };
        db.0.lock()
            .unwrap()
            .insert(updated.note_id, updated.clone());
        Json(updated)
    }

    async fn remove(State(db): State<Entries>, Owned(note): Owned<Entry>) -> http::StatusCode {
        db.0.lock().unwrap().remove(&note.note_id);
        http::StatusCode::NO_CONTENT
    }

    fn app(everyones: bool) -> Router {
        let list = if everyones {
            get(list_everyones)
        } else {
            get(list_own)
        };
        Router::new()
            .route("/notes", list.post(create))
            .route("/notes/{id}", get(show).put(update).delete(remove))
            .with_state(Entries::default())
            .layer(AuthLayer::new(hs256_verifier(SECRET)))
            .layer(Hardening::strict())
    }

    #[tokio::test]
    async fn the_probe_catches_a_list_that_shows_everyones_notes() {
        let routes = IdorRoutes {
            id_pointer: "/note_id".into(),
            ..routes()
        };
        idor_probe(app(false), bearer("alice"), bearer("bob"), &routes)
            .await
            .unwrap();
        let finding = idor_probe(app(true), bearer("alice"), bearer("bob"), &routes)
            .await
            .unwrap_err();
        assert!(finding.0.contains("/notes lists id 1"), "{finding}");
    }
}
