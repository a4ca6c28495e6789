//! The smallest service a user would write: a JSON notes API.
//!
//! `main.rs` serves it on 127.0.0.1:3000; tests build it with [`app`]. The whole router sits
//! behind `Hardening::strict()`: request ids, limits, timeouts, CORS, a redacted access log,
//! and every error an RFC 9457 problem.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use hardening_core::Hardening;
use hardening_core::errors::{Error, Valid};
use serde::{Deserialize, Serialize};

/// A note.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// Its id, assigned on creation.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
}

/// The body of `POST /notes`.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// 1 to 100 characters.
    #[garde(length(chars, min = 1, max = 100))]
    pub title: String,
    /// Up to 10 000 characters.
    #[garde(length(chars, max = 10_000))]
    pub body: String,
}

/// The query of `GET /notes`.
#[derive(Debug, Deserialize, garde::Validate)]
pub struct Page {
    /// How many notes to return, 1 to 100 (default 20).
    #[garde(range(min = 1, max = 100))]
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    20
}

/// The notes, in memory.
#[derive(Debug, Clone, Default)]
pub struct Notes(Arc<Mutex<Vec<Note>>>);

impl Notes {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<Note>>, Error> {
        self.0
            .lock()
            .map_err(|_| Error::internal("the notes store lock is poisoned"))
    }
}

/// The router: `GET /health`, `GET /notes`, `POST /notes`, `GET /notes/{id}`.
pub fn app() -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/notes", get(list_notes).post(create_note))
        .route("/notes/{id}", get(get_note))
        .with_state(Notes::default())
        .layer(Hardening::strict())
}

async fn list_notes(
    State(notes): State<Notes>,
    Valid(Query(page)): Valid<Query<Page>>,
) -> Result<Json<Vec<Note>>, Error> {
    let notes = notes.lock()?;
    Ok(Json(
        notes.iter().take(page.limit as usize).cloned().collect(),
    ))
}

async fn create_note(
    State(notes): State<Notes>,
    Valid(Json(new)): Valid<Json<NewNote>>,
) -> Result<(axum::http::StatusCode, Json<Note>), Error> {
    let mut notes = notes.lock()?;
    let note = Note {
        id: notes.len() as u64 + 1,
        title: new.title,
        body: new.body,
    };
    notes.push(note.clone());
    Ok((axum::http::StatusCode::CREATED, Json(note)))
}

async fn get_note(State(notes): State<Notes>, Path(id): Path<u64>) -> Result<Json<Note>, Error> {
    let notes = notes.lock()?;
    notes
        .iter()
        .find(|n| n.id == id)
        .cloned()
        .map(Json)
        .ok_or(Error::NotFound)
}
