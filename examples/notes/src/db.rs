//! SQLite, off the async runtime. Every note query carries `owner_id = ?` in its `WHERE`:
//! authorisation lives in the query, not only in the route.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hardening_core::auth::OwnedResource;
use hardening_core::errors::Error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::NoteId;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran. They run
/// with foreign keys off (a table rebuilt drops the old one, which would cascade).
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch())
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        updated_at INTEGER NOT NULL DEFAULT (unixepoch())
    );
    CREATE INDEX notes_by_owner ON notes(owner_id, id);",
    // Ids are never handed out again. Without AUTOINCREMENT, SQLite gives a new row the
    // highest id in use plus one, so deleting the newest note (or account) gave its id to
    // the next one: a link, a token's `sub` or a log entry naming it named the new row.
    // SQLite cannot add AUTOINCREMENT to a table, so both are rebuilt as its manual says
    // (lang_altertable.html, "other kinds of table schema changes"), rows and ids kept.
    "CREATE TABLE users_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch())
    );
    INSERT INTO users_v2 (id, email, password_hash, created_at)
        SELECT id, email, password_hash, created_at FROM users;
    DROP TABLE users;
    ALTER TABLE users_v2 RENAME TO users;
    CREATE TABLE notes_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        updated_at INTEGER NOT NULL DEFAULT (unixepoch())
    );
    INSERT INTO notes_v2 (id, owner_id, title, body, created_at, updated_at)
        SELECT id, owner_id, title, body, created_at, updated_at FROM notes;
    DROP TABLE notes;
    ALTER TABLE notes_v2 RENAME TO notes;
    CREATE INDEX notes_by_owner ON notes(owner_id, id);",
];

/// A SQLite connection shared by the handlers; each call runs on the blocking pool.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Connection>>);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// A note, as the API returns it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Note {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// An account, as the admin listing shows it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Its id (the token's `sub`).
    pub id: i64,
    /// Its email.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// What `create_user` can run into.
#[derive(Debug)]
pub enum CreateUser {
    /// Created with this id.
    Created(i64),
    /// The email is taken.
    Duplicate,
}

fn db_error(e: rusqlite::Error) -> Error {
    // The SQL and its error go to the log through `Error::internal`, never to the client.
    Error::internal(e)
}

const NOTE_COLUMNS: &str = "id, title, body, created_at, updated_at";

fn note(row: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: row.get(0)?,
        title: row.get(1)?,
        body: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

/// A principal's subject is the user id, exactly as the app writes it; anything else owns
/// nothing.
fn owner_id(subject: &str) -> Option<i64> {
    crate::session::user_id(subject)
}

impl Db {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        if path != Path::new(":memory:") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // Off while migrating (it cannot change inside a transaction); the rows copied were
        // checked when they were written.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (version, sql) in (1i64..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(applied).unwrap_or(0))
        {
            // The write lock first, then the version again: another process opening the
            // file at the same time may have applied this one meanwhile (run twice, a rebuilt
            // table's AUTOINCREMENT counter would start again at the highest id left).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let applied: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if applied >= version {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` on the connection, on tokio's blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db
                .lock()
                .map_err(|_| Error::internal("the database lock is poisoned"))?;
            f(&mut conn).map_err(db_error)
        })
        .await
        .map_err(Error::internal)?
    }

    /// For `/readyz`: the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    /// Creates an account, or leaves a taken address's account as it is (its password hash
    /// included). Either way one write is committed (a taken row is rewritten unchanged), so
    /// that the two take the same time: a failed INSERT writes nothing and took 10 µs where a
    /// new account's commit took 187 µs (medians, WAL on local disk), which told a sign-up
    /// form's caller which addresses have accounts.
    pub async fn create_user(&self, email: String, hash: String) -> Result<CreateUser, Error> {
        self.call(move |c| {
            // A fresh hash has a random salt: the row holds it only if this call inserted it.
            let (id, created): (i64, bool) = c.query_row(
                "INSERT INTO users (email, password_hash) VALUES (?1, ?2) \
                 ON CONFLICT (email) DO UPDATE SET email = excluded.email \
                 RETURNING id, password_hash = ?2",
                params![email, hash],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            Ok(if created {
                CreateUser::Created(id)
            } else {
                CreateUser::Duplicate
            })
        })
        .await
    }

    /// Makes `email` an account with no usable password hash (`!` verifies nothing): for an
    /// account whose password is kept elsewhere (the admin's, in configuration). Synchronous,
    /// for start-up.
    ///
    /// A row of that address with a usable hash was made by signing up, by whoever typed the
    /// address (registration is unverified): it is not this account. It is set aside, its
    /// notes with it, under an address that no one can register or log in with, and the
    /// account gets a row, so an id, of its own. Locked in place instead, the row kept its
    /// id: the registrant's sessions (the token's `sub` is the id) reached the new owner's
    /// notes, and the registrant's notes were the new owner's.
    pub fn lock_account(&self, email: &str) -> Result<(), rusqlite::Error> {
        // Nothing can have poisoned the lock before the service answers a request.
        let mut conn = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction()?;
        // A space: not an address `email_shape` lets anyone register or log in with. The id
        // keeps it unique.
        tx.execute(
            "UPDATE users SET email = email || ' (signed up before it was bound; account ' \
             || id || ')', password_hash = '!' WHERE email = ?1 AND password_hash <> '!'",
            params![email],
        )?;
        // A new row's id is above every id ever used (AUTOINCREMENT), the set-aside row's
        // included.
        tx.execute(
            "INSERT INTO users (email, password_hash) VALUES (?1, '!') \
             ON CONFLICT (email) DO NOTHING",
            params![email],
        )?;
        tx.commit()
    }

    /// An account's id and password hash, by email.
    pub async fn credentials(&self, email: String) -> Result<Option<(i64, String)>, Error> {
        self.call(move |c| {
            c.query_row(
                "SELECT id, password_hash FROM users WHERE email = ?1",
                params![email],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
    }

    /// Stores a new hash (after a rehash on login).
    pub async fn set_password_hash(&self, id: i64, hash: String) -> Result<(), Error> {
        self.call(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, id],
            )
            .map(drop)
        })
        .await
    }

    /// Up to `limit` accounts with ids above `after`, by id (admin only; the route checks the
    /// role).
    pub async fn users(&self, limit: u32, after: Option<i64>) -> Result<Vec<User>, Error> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, email, created_at FROM users WHERE ?1 IS NULL OR id > ?1 \
                 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok(User {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Up to `limit` of the owner's notes with ids below `before`, newest first.
    pub async fn notes_of(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Note>, Error> {
        let Some(owner) = owner_id(owner) else {
            return Ok(Vec::new());
        };
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {NOTE_COLUMNS} FROM notes WHERE owner_id = ?1 AND (?3 IS NULL OR id < ?3) \
                 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![owner, limit, before], note)?;
            rows.collect()
        })
        .await
    }

    /// Creates a note for its owner; 403 if there is no such account (a token for a user of
    /// a database since replaced: not a foreign-key error, which is a 500).
    pub async fn create_note(
        &self,
        owner: &str,
        title: String,
        body: String,
    ) -> Result<Note, Error> {
        let owner = owner_id(owner).ok_or(Error::Forbidden)?;
        self.call(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO notes (owner_id, title, body) \
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1) \
                     RETURNING {NOTE_COLUMNS}"
                ),
                params![owner, title, body],
                note,
            )
            .optional()
        })
        .await?
        .ok_or(Error::Forbidden)
    }

    /// Replaces a note's title and body, only if `owner` owns it.
    pub async fn update_note(
        &self,
        owner: &str,
        id: i64,
        title: String,
        body: String,
    ) -> Result<Option<Note>, Error> {
        let Some(owner) = owner_id(owner) else {
            return Ok(None);
        };
        self.call(move |c| {
            c.query_row(
                &format!(
                    "UPDATE notes SET title = ?1, body = ?2, updated_at = unixepoch() \
                     WHERE id = ?3 AND owner_id = ?4 RETURNING {NOTE_COLUMNS}"
                ),
                params![title, body, id, owner],
                note,
            )
            .optional()
        })
        .await
    }

    /// Deletes a note, only if `owner` owns it; whether one was deleted.
    pub async fn delete_note(&self, owner: &str, id: i64) -> Result<bool, Error> {
        let Some(owner) = owner_id(owner) else {
            return Ok(false);
        };
        self.call(move |c| {
            c.execute(
                "DELETE FROM notes WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )
            .map(|n| n > 0)
        })
        .await
    }
}

impl OwnedResource for Note {
    type Id = NoteId;
    type Store = Db;

    async fn load_owned(db: &Db, owner: &str, id: NoteId) -> Result<Option<Note>, Error> {
        let Some(owner) = owner_id(owner) else {
            return Ok(None);
        };
        db.call(move |c| {
            c.query_row(
                &format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = ?1 AND owner_id = ?2"),
                params![id.get(), owner],
                note,
            )
            .optional()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use hardening_core::auth::CanonicalId;

    use super::*;
    use crate::tests::TempDb;

    /// The schema's SQL as `sqlite_master` holds it, for a table.
    fn table_sql(db: &Db, table: &str) -> String {
        let conn = db.0.lock().unwrap();
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get(0),
        )
        .unwrap()
    }

    fn execute(db: &Db, sql: &str) {
        db.0.lock().unwrap().execute_batch(sql).unwrap();
    }

    async fn new_user(db: &Db, email: &str) -> i64 {
        match db
            .create_user(email.to_owned(), format!("hash of {email}"))
            .await
        {
            Ok(CreateUser::Created(id)) => id,
            other => panic!("{email}: {other:?}"),
        }
    }

    /// `INTEGER PRIMARY KEY` without `AUTOINCREMENT` hands the highest deleted id out again:
    /// an old link, token or log entry naming it named the next row, maybe someone else's.
    #[tokio::test]
    async fn the_newest_rows_id_is_not_reused_once_deleted() {
        let file = TempDb::new("ids");
        let db = Db::open(&file.0).unwrap();
        let ada = new_user(&db, "ada@example.com").await;
        let bob = new_user(&db, "bob@example.com").await;
        let (ada, bob_subject) = (ada.to_string(), bob.to_string());
        let newest = db.create_note(&ada, "t".into(), "b".into()).await.unwrap();
        assert!(db.delete_note(&ada, newest.id).await.unwrap());
        let next = db
            .create_note(&bob_subject, "t".into(), "b".into())
            .await
            .unwrap();
        assert!(
            next.id > newest.id,
            "note {} was deleted, and the next note got id {}",
            newest.id,
            next.id
        );
        execute(&db, &format!("DELETE FROM users WHERE id = {bob}"));
        let carol = new_user(&db, "carol@example.com").await;
        assert!(
            carol > bob,
            "user {bob} was deleted, and the next account got id {carol}"
        );
    }

    /// A database as the first schema (`INTEGER PRIMARY KEY` alone) left it, in WAL mode:
    /// ada's notes 1 and 3, bob's note 2.
    fn first_schema_database(purpose: &str) -> TempDb {
        let file = TempDb::new(purpose);
        let old = Connection::open(&file.0).unwrap();
        old.pragma_update(None, "journal_mode", "WAL").unwrap();
        old.pragma_update(None, "foreign_keys", "ON").unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES
                 (1, 'ada@example.com', 'h1', 100), (2, 'bob@example.com', 'h2', 200);
             INSERT INTO notes (id, owner_id, title, body, created_at, updated_at) VALUES
                 (1, 1, 'ada''s', 'one', 101, 102), (2, 2, 'bob''s', 'two', 201, 202),
                 (3, 1, 'ada''s too', 'three', 301, 302);",
        )
        .unwrap();
        file
    }

    /// A database made by the first schema (`INTEGER PRIMARY KEY` alone) opens, keeps its
    /// rows, ids, owners and cascade, and from then on never reuses an id.
    #[tokio::test]
    async fn a_database_of_the_first_schema_is_migrated_in_place() {
        let file = first_schema_database("v1");
        let db = Db::open(&file.0).unwrap();
        for table in ["users", "notes"] {
            let sql = table_sql(&db, table);
            assert!(sql.contains("AUTOINCREMENT"), "{sql}");
        }
        let index: i64 =
            db.0.lock()
                .unwrap()
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'notes_by_owner'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
        assert_eq!(index, 1, "the owner index was lost");
        let note = |id, title: &str, body: &str, created_at| Note {
            id,
            title: title.to_owned(),
            body: body.to_owned(),
            created_at,
            updated_at: created_at + 1,
        };
        assert_eq!(
            db.notes_of("1", 10, None).await.unwrap(),
            [
                note(3, "ada's too", "three", 301),
                note(1, "ada's", "one", 101)
            ]
        );
        let bobs = Note::load_owned(&db, "2", NoteId(CanonicalId::new(2)))
            .await
            .unwrap();
        assert_eq!(bobs.map(|n| n.body).as_deref(), Some("two"));
        assert_eq!(
            db.credentials("bob@example.com".into()).await.unwrap(),
            Some((2, "h2".to_owned()))
        );
        // Ids keep going up past a deleted newest row, for notes and accounts.
        assert!(db.delete_note("1", 3).await.unwrap());
        let next = db.create_note("2", "t".into(), "b".into()).await.unwrap();
        assert_eq!(next.id, 4);
        let carol = new_user(&db, "carol@example.com").await;
        assert_eq!(carol, 3);
        // The notes still belong to their accounts: deleting one deletes its notes, and a
        // note needs an account.
        execute(&db, "DELETE FROM users WHERE id = 2");
        assert_eq!(
            Note::load_owned(&db, "2", NoteId(CanonicalId::new(2)))
                .await
                .unwrap(),
            None
        );
        assert_eq!(db.notes_of("2", 10, None).await.unwrap(), []);
        let orphan =
            db.0.lock()
                .unwrap()
                .execute(
                    "INSERT INTO notes (owner_id, title, body) VALUES (99, 't', 'b')",
                    [],
                )
                .is_err();
        assert!(orphan, "a note without an account was stored");
        // Opening it again changes nothing.
        drop(db);
        let db = Db::open(&file.0).unwrap();
        assert_eq!(db.notes_of("1", 10, None).await.unwrap().len(), 1);
    }

    /// Two processes opening a first-schema database together (a rolling restart on one
    /// volume): the second read `user_version` before the first committed its migration,
    /// then ran it again once the first let go of the write lock. Rebuilding the tables
    /// again restarted their AUTOINCREMENT counters at the highest id left, so an id deleted
    /// in between (note 3 here; an account's, named by its tokens' `sub`) was handed out
    /// again. The other process is played by a connection that migrates, deletes note 3 and
    /// commits while `Db::open` waits for the write lock. (The pause lets `Db::open` read the
    /// version first; were it slower, the test would pass without the race, never fail.)
    #[tokio::test]
    async fn a_migration_another_process_applied_meanwhile_is_not_run_again() {
        let file = first_schema_database("race");
        let mut other = Connection::open(&file.0).unwrap();
        other.pragma_update(None, "foreign_keys", "OFF").unwrap();
        let migrating = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        migrating.execute_batch(MIGRATIONS[1]).unwrap();
        migrating.pragma_update(None, "user_version", 2).unwrap();
        migrating
            .execute_batch("DELETE FROM notes WHERE id = 3")
            .unwrap();
        let path = file.0.clone();
        let opening = std::thread::spawn(move || Db::open(&path));
        std::thread::sleep(std::time::Duration::from_millis(500));
        migrating.commit().unwrap();
        let db = opening.join().unwrap().unwrap();
        let next = db.create_note("1", "t".into(), "b".into()).await.unwrap();
        assert_eq!(
            next.id, 4,
            "note 3 was deleted, and the next note got id {}",
            next.id
        );
        assert_eq!(db.notes_of("1", 10, None).await.unwrap().len(), 2);
    }
}
