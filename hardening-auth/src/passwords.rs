//! Password hashing: argon2id, off the async runtime, with a bounded number in flight.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{self, PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use hardening_errors::{Error, FieldError};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, TryAcquireError};

/// The longest password accepted, in bytes (refused before hashing: argon2 on a megabyte
/// "password" is a denial of service).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The highest parameters [`Passwords::with_params`] takes: 4 GiB, 64 iterations, 64 lanes.
/// Past them is a unit mistake (bytes for KiB), not a stronger hash: every hash would fail
/// to allocate or hold a blocking thread for good.
const MAX_PARAMS: (u32, u32, u32) = (4 * 1024 * 1024, 64, 64);

/// Callers allowed to wait for a hashing permit, per permit, by default: at OWASP's
/// parameters (tens of milliseconds a hash) the last of them waits well under a second, far
/// from any request timeout, while a burst of logins larger than the CPUs still queues.
const WAITING_PER_PERMIT: usize = 8;

/// The salt of the dummy verification (unknown accounts): its cost, not its output, matters.
const DUMMY_SALT: &[u8; 16] = b"hardening-dummy!";

/// Why a password could not be hashed or checked. A handler answers it with `?` into
/// [`hardening_errors::Error`] (see [`From<PasswordError>`](#impl-From%3CPasswordError%3E-for-Error)):
///
/// - at sign-up or a password change ([`Passwords::hash`]), an [`Empty`](Self::Empty) or
///   [`TooLong`](Self::TooLong) password is a 422 naming the field, `#/password` (another
///   field: [`for_field`](Self::for_field));
/// - at login ([`Passwords::verify`]) neither happens: such a password is `Invalid`, a wrong
///   password, so the answer is the one for a wrong password and tells nothing more;
/// - either way, [`Busy`](Self::Busy) is a 503 with `Retry-After: 1`, the same for every
///   account (at login, tell the throttle the password was not checked first), and the
///   others a 500 (the error logged, never sent).
///
/// No answer holds the password.
///
/// ```
/// use axum::extract::State;
/// use hardening_auth::Passwords;
/// use hardening_errors::Error;
///
/// async fn sign_up(State(passwords): State<Passwords>, password: String) -> Result<String, Error> {
///     let hash = passwords.hash(password.as_bytes()).await?; // 422 empty or too long, 503 busy
///     Ok(hash) // (store it)
/// }
/// # use axum::response::IntoResponse;
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let res = sign_up(State(Passwords::new()), String::new()).await.unwrap_err().into_response();
/// # assert_eq!(res.status(), 422);
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Longer than [`MAX_PASSWORD_LEN`] (from [`Passwords::hash`]; [`Passwords::verify`]
    /// answers `Invalid`, as for a wrong password).
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// Empty (from [`Passwords::hash`]; [`Passwords::verify`] answers `Invalid`).
    #[error("password is empty")]
    Empty,
    /// Parameters below OWASP's minimum for argon2id.
    #[error("argon2id parameters below OWASP's minimum (m = 19456 KiB, t = 2, p = 1)")]
    WeakParams,
    /// Parameters above m = 4 GiB (4194304 KiB), t = 64 or p = 64.
    #[error(
        "argon2id parameters above m = 4194304 KiB (4 GiB), t = 64 or p = 64; m is in KiB, not bytes"
    )]
    AbsurdParams,
    /// [`Passwords::max_waiting`] of zero.
    #[error(
        "max_waiting(0) would refuse every hash while all permits are busy: allow at least 1 \
         waiting caller (the default is 8 per permit, one permit per CPU)"
    )]
    ZeroMaxWaiting,
    /// Every hashing permit is taken and [`Passwords::max_waiting`] callers already wait for
    /// one: nothing was hashed. Answer 503 with `Retry-After` (and, for a login, do not count
    /// it as a failure: the password was not checked).
    #[error("too many password hashes waiting; retry shortly")]
    Busy,
    /// The hashing task failed (it panicked or the runtime is shutting down).
    #[error("password hashing failed")]
    Internal,
}

impl PasswordError {
    /// The answer for this error when the password was sent in the field at `pointer` (a
    /// JSON pointer, `#/new_password`): as [`From<PasswordError>`](#impl-From%3CPasswordError%3E-for-Error),
    /// with an [`Empty`](Self::Empty) or [`TooLong`](Self::TooLong) password's 422 naming
    /// that field instead of `#/password`.
    ///
    /// ```
    /// use hardening_auth::PasswordError;
    ///
    /// let problem = PasswordError::TooLong.for_field("#/new_password").to_problem();
    /// assert_eq!(problem.status(), 422);
    /// assert_eq!(problem.errors()[0].pointer, "#/new_password");
    /// assert_eq!(problem.errors()[0].detail, "at most 1024 bytes");
    /// ```
    pub fn for_field(self, pointer: &str) -> Error {
        let detail = match self {
            Self::Empty => "must not be empty",
            Self::TooLong => "at most 1024 bytes",
            // Nothing was hashed: the same answer for every account, and soon worth a retry.
            Self::Busy => return Error::UnavailableFor(Duration::from_secs(1)),
            other => return Error::internal(other),
        };
        Error::Validation(vec![FieldError::new(pointer, detail)])
    }
}

impl From<PasswordError> for Error {
    /// [`Empty`](PasswordError::Empty) and [`TooLong`](PasswordError::TooLong) (from
    /// [`Passwords::hash`] only): a 422 naming `#/password`; [`Busy`](PasswordError::Busy): a
    /// 503 with `Retry-After: 1`; the others a 500. See [`PasswordError::for_field`].
    ///
    /// ```
    /// use hardening_auth::PasswordError;
    /// use hardening_errors::Error;
    ///
    /// let busy = Error::from(PasswordError::Busy).to_problem();
    /// assert_eq!(busy.status(), 503);
    /// assert_eq!(busy.headers()["retry-after"], "1");
    /// assert_eq!(Error::from(PasswordError::Empty).to_problem().errors()[0].pointer, "#/password");
    /// assert_eq!(Error::from(PasswordError::Internal).status(), 500);
    /// ```
    fn from(error: PasswordError) -> Self {
        error.for_field("#/password")
    }
}

/// The result of checking a password. Its `Debug` shows a new hash's parameters only, so a
/// logged verdict does not put the hash in the log.
#[derive(Clone, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or no such account.
    Invalid,
    /// Right password, stored hash is current.
    Valid,
    /// Right password; store this new hash (older parameters or argon2 version, or a legacy
    /// scheme).
    ValidRehashed(String),
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid => f.write_str("Invalid"),
            Self::Valid => f.write_str("Valid"),
            Self::ValidRehashed(hash) => {
                // `$argon2id$v=19$m=…,t=…,p=…` without its salt and digest.
                let params = hash.rsplitn(3, '$').nth(2).unwrap_or("");
                write!(f, "ValidRehashed(\"{params}$…\")")
            }
        }
    }
}

/// Hashes and verifies passwords with argon2id (PHC strings), at OWASP's parameters or
/// stronger (m = 19456 KiB, t = 2, p = 1), on tokio's blocking pool behind a semaphore sized
/// to the CPUs, so a login flood queues instead of starving other requests.
///
/// The queue is bounded: at most 8 callers per permit wait for one (see
/// [`max_waiting`](Self::max_waiting)); past that, `hash` and `verify` answer
/// [`PasswordError::Busy`] at once, having hashed nothing, so a flood is refused quickly
/// instead of every caller waiting until a request timeout. A caller that gives up (its
/// future dropped) leaves the queue; a hash already started keeps its permit to its end.
///
/// Verifying against no stored hash (unknown account) runs a dummy verification, so response
/// time does not tell which accounts exist: every check runs exactly one slow hash before its
/// verdict (the stored argon2 hash, a bcrypt hash at its own cost, or else the dummy). A
/// stored argon2 hash made with weaker parameters than this service's (an older
/// configuration, an imported database) is checked at its own, then a wrong password runs
/// the difference on top (memory × passes), so that it takes about as long as an unknown
/// account; a right one is rehashed (below). One made with stronger parameters answers a
/// wrong password more slowly than an unknown account, which nothing can shorten: a right
/// one is rehashed at this service's parameters, so that lasts until its user next logs
/// in, as for bcrypt below. Every hash not at this service's parameters is rewritten, so
/// give every instance of a service the same ones (while a change rolls out, a user's hash
/// may be rewritten back and forth). Legacy
/// hashes verify and come back with an argon2id rehash to store: unsalted SHA-256 hex
/// (`sha256$<hex>`) and bcrypt (`$2a$`, `$2b$`, `$2y$`, cost at most 18). A bcrypt account
/// answers in its bcrypt cost's time rather than argon2id's until its user next logs in and
/// the upgrade is stored.
///
/// bcrypt only ever saw the first 72 bytes of a password, up to its first NUL byte, so a
/// password longer than 72 bytes or containing a NUL byte is refused (`Invalid`) against a
/// bcrypt hash: otherwise any password sharing the first 72 bytes would match. A user whose
/// old password was longer must reset it.
///
/// Passwords are hashed as the bytes given: `é` as one code point (NFC) and as `e` plus an
/// accent (NFD) are two passwords. To accept both, normalise (NFKC, say) before both `hash`
/// and `verify`.
///
/// Build it once and clone it: clones share the limit on hashes in flight.
///
/// Unoptimised, argon2 takes seconds a hash: in a debug build, give it
/// `[profile.dev.package.argon2] opt-level = 3` (and `blake2`) in your `Cargo.toml`.
///
/// ```
/// use hardening_auth::{Passwords, Verification};
///
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// let passwords = Passwords::new();
/// let stored = passwords.hash(b"correct horse battery staple").await.unwrap();
/// assert!(stored.starts_with("$argon2id$"));
/// assert_eq!(passwords.verify(b"correct horse battery staple", Some(&stored)).await.unwrap(), Verification::Valid);
/// assert_eq!(passwords.verify(b"wrong", Some(&stored)).await.unwrap(), Verification::Invalid);
/// assert_eq!(passwords.verify(b"anything", None).await.unwrap(), Verification::Invalid);
/// # });
/// ```
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// How many permits there are: hashes in flight at most (read by `hold_permits`).
    #[cfg(any(test, feature = "test-util"))]
    in_flight: usize,
    /// Callers waiting for a permit now (shared by clones).
    waiting: Arc<AtomicUsize>,
    /// Past this many waiting, a caller is [`PasswordError::Busy`].
    max_waiting: usize,
    /// How many dummy hashes checks have run (tests only).
    #[cfg(test)]
    dummy_runs: Arc<AtomicUsize>,
    /// The work of every argon2 run of checks, in KiB × passes (tests only).
    #[cfg(test)]
    work: Arc<std::sync::atomic::AtomicU64>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .field("permits", &self.permits.available_permits())
            .field("waiting", &self.waiting())
            .field("max_waiting", &self.max_waiting)
            .finish()
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// OWASP's argon2id parameters, one hash in flight per CPU, 8 callers per CPU waiting at
    /// most.
    pub fn new() -> Self {
        let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
        Self::build(params)
    }

    /// Stronger parameters (memory in KiB, iterations, lanes); weaker than OWASP's is refused,
    /// and so is more than 4 GiB, 64 iterations or 64 lanes.
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, PasswordError> {
        if m_cost_kib < 19_456 || t_cost < 2 || p_cost < 1 {
            return Err(PasswordError::WeakParams);
        }
        let (max_m, max_t, max_p) = MAX_PARAMS;
        if m_cost_kib > max_m || t_cost > max_t || p_cost > max_p {
            return Err(PasswordError::AbsurdParams);
        }
        let params =
            Params::new(m_cost_kib, t_cost, p_cost, None).map_err(|_| PasswordError::WeakParams)?;
        Ok(Self::build(params))
    }

    /// Hashes nothing: it may run on an async worker (the dummy is hashed per check, on the
    /// blocking pool).
    fn build(params: Params) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            params,
            permits: Arc::new(Semaphore::new(cpus)),
            #[cfg(any(test, feature = "test-util"))]
            in_flight: cpus,
            waiting: Arc::default(),
            max_waiting: cpus.saturating_mul(WAITING_PER_PERMIT),
            #[cfg(test)]
            dummy_runs: Arc::default(),
            #[cfg(test)]
            work: Arc::default(),
        }
    }

    /// At most `callers` wait for a hashing permit (8 per permit, one permit per CPU, by
    /// default); past them `hash` and `verify` answer [`PasswordError::Busy`] at once. Zero
    /// is refused: every hash would be refused while all permits are busy. Set it before
    /// cloning: clones share the queue, each with the bound it was built with.
    ///
    /// ```
    /// use hardening_auth::{PasswordError, Passwords};
    ///
    /// let passwords = Passwords::new().max_waiting(64)?;
    /// let err = Passwords::new().max_waiting(0).unwrap_err();
    /// assert_eq!(err, PasswordError::ZeroMaxWaiting);
    /// assert!(err.to_string().contains("at least 1"));
    /// # Ok::<(), PasswordError>(())
    /// ```
    pub fn max_waiting(mut self, callers: usize) -> Result<Self, PasswordError> {
        if callers == 0 {
            return Err(PasswordError::ZeroMaxWaiting);
        }
        self.max_waiting = callers;
        Ok(self)
    }

    /// How many callers wait for a hashing permit now (for a metric or a test).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn argon(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// Runs `work` on the blocking pool once a permit is free, or answers `Busy` at once when
    /// none is and `max_waiting` callers wait already. The permit moves into the job: if this
    /// future is dropped (the client went away, a timeout fired), the job still runs to its
    /// end and holds its permit until then, so abandoned hashes count against the limit. A
    /// future dropped while it waits leaves the queue.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(PasswordError::Internal),
            Err(TryAcquireError::NoPermits) => {
                let _place =
                    QueuePlace::take(&self.waiting, self.max_waiting).ok_or(PasswordError::Busy)?;
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| PasswordError::Internal)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| PasswordError::Internal)
    }

    /// The argon2id PHC string for `password`.
    ///
    /// # Errors
    ///
    /// [`PasswordError::Empty`], [`PasswordError::TooLong`] (over [`MAX_PASSWORD_LEN`]),
    /// [`PasswordError::Busy`] when the hashing queue is full, [`PasswordError::Internal`]
    /// when the hashing task failed.
    pub async fn hash(&self, password: &[u8]) -> Result<String, PasswordError> {
        check_len(password)?;
        let (params, password) = (self.params.clone(), password.to_vec());
        self.blocking(move || {
            Self::argon(&params)
                .hash_password(&password)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|_| PasswordError::Internal)
    }

    /// Checks `password` against the stored hash (`None` for an unknown account). An empty
    /// password, or one over [`MAX_PASSWORD_LEN`], is `Invalid`: a wrong password, answered
    /// as any other (no hash runs: the answer is the same for every account, and one that
    /// long is never hashed), so a login never needs to tell these apart.
    ///
    /// # Errors
    ///
    /// [`PasswordError::Busy`] and [`PasswordError::Internal`], as [`hash`](Self::hash); a
    /// wrong password is `Ok(Verification::Invalid)`.
    pub async fn verify(
        &self,
        password: &[u8],
        stored: Option<&str>,
    ) -> Result<Verification, PasswordError> {
        if check_len(password).is_err() {
            return Ok(Verification::Invalid);
        }
        let (params, password) = (self.params.clone(), password.to_vec());
        let stored = stored.map(str::to_owned);
        #[cfg(test)]
        let dummy_runs = self.dummy_runs.clone();
        #[cfg(test)]
        let work = self.work.clone();
        #[cfg(test)]
        let count_work = move |p: &Params| {
            work.fetch_add(
                u64::from(p.m_cost()) * u64::from(p.t_cost()),
                Ordering::Relaxed,
            );
        };
        // Each check runs exactly one slow hash before its verdict: the stored hash's own
        // (argon2, or bcrypt at its cost), or else the dummy argon2id hash (unknown account,
        // SHA-256 legacy, an unusable stored hash, a password bcrypt must refuse).
        // A correct password then pays for its rehash, but the answer says it was correct.
        let verdict: Result<_, password_hash::Error> = self
            .blocking(move || {
                let argon = Self::argon(&params);
                // What verifying a hash made at `params` costs, with nothing to compare.
                let invalid_after_dummy = || {
                    #[cfg(test)]
                    {
                        dummy_runs.fetch_add(1, Ordering::Relaxed);
                        count_work(&params);
                    }
                    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                    argon.hash_password_into(&password, DUMMY_SALT, &mut out)?;
                    Ok(Verification::Invalid)
                };
                let Some(stored) = stored else {
                    return invalid_after_dummy();
                };
                if ["$2a$", "$2b$", "$2y$"]
                    .iter()
                    .any(|p| stored.starts_with(p))
                {
                    // Legacy bcrypt: verify (same truncation-safe input only), then upgrade.
                    // A bcrypt run is this check's slow hash: no dummy after it. A bcrypt
                    // account answers in its bcrypt cost's time until it is upgraded.
                    return match bcrypt_check(&password, &stored) {
                        Some(true) => argon
                            .hash_password(&password)
                            .map(|h| Verification::ValidRehashed(h.to_string())),
                        Some(false) => Ok(Verification::Invalid),
                        None => invalid_after_dummy(),
                    };
                }
                if let Some(hex) = stored.strip_prefix("sha256$") {
                    // Legacy: unsalted SHA-256. Verify, then hand back an argon2id hash.
                    let digest = Sha256::digest(&password);
                    let ok = decode_hex(hex).is_some_and(|want| constant_time_eq(&want, &digest));
                    if !ok {
                        return invalid_after_dummy();
                    }
                    return argon
                        .hash_password(&password)
                        .map(|h| Verification::ValidRehashed(h.to_string()));
                }
                let Ok(hash) = argon2::password_hash::phc::PasswordHash::new(&stored) else {
                    return invalid_after_dummy();
                };
                // The stored hash's own algorithm and parameters verify it.
                let own = Params::try_from(&hash).ok();
                let stored_alg = Algorithm::try_from(hash.algorithm.as_str()).ok();
                // Without a salt or a digest, argon2 would answer at once: no hash to run.
                let (Some(own), Some(stored_alg), Some(_), Some(_)) =
                    (own, stored_alg, &hash.salt, &hash.hash)
                else {
                    return invalid_after_dummy();
                };
                if !within_ceiling(&own, &params) {
                    // Like a bcrypt cost over its cap: a hash planted with t=2^32-1 (or
                    // m=4 GiB) would hold a blocking thread and its permit for good.
                    tracing::warn!(
                        target: "hardening::auth",
                        m_cost_kib = own.m_cost(),
                        t_cost = own.t_cost(),
                        p_cost = own.p_cost(),
                        "a stored argon2 hash has parameters far above this service's; refused without hashing"
                    );
                    return invalid_after_dummy();
                }
                let checker = Argon2::new(stored_alg, Version::V0x13, own.clone());
                #[cfg(test)]
                count_work(&own);
                match checker.verify_password(&password, &hash) {
                    Ok(()) => {}
                    // argon2 ran: another digest. A weaker stored hash ran less than one
                    // hash at this service's parameters: the rest runs now.
                    Err(password_hash::Error::PasswordInvalid) => {
                        if let Some(rest) = top_up(&own, &params) {
                            #[cfg(test)]
                            count_work(&rest);
                            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                            Argon2::new(Algorithm::Argon2id, Version::V0x13, rest)
                                .hash_password_into(&password, DUMMY_SALT, &mut out)?;
                        }
                        return Ok(Verification::Invalid);
                    }
                    // Not a wrong password: the check could not run.
                    Err(e @ password_hash::Error::OutOfMemory) => return Err(e),
                    // Refused before hashing (a version, salt or digest length argon2 does
                    // not take).
                    Err(_) => return invalid_after_dummy(),
                }
                // An older version (v=16, 0x10) is outdated like other parameters are. A
                // hash without `v=` verified as 0x13 (argon2's default) but is rewritten with
                // it. Stronger parameters are rewritten too (within the ceiling): a wrong
                // password against them takes longer than against an unknown account, which
                // tells the account exists, until the hash is the service's own.
                let current = stored_alg == Algorithm::Argon2id
                    && hash.version == Some(u32::from(Version::V0x13))
                    && own.m_cost() == params.m_cost()
                    && own.t_cost() == params.t_cost()
                    && own.p_cost() == params.p_cost();
                if current {
                    Ok(Verification::Valid)
                } else {
                    argon
                        .hash_password(&password)
                        .map(|h| Verification::ValidRehashed(h.to_string()))
                }
            })
            .await?;
        verdict.map_err(|_| PasswordError::Internal)
    }
}

/// Every hashing permit of a [`Passwords`], held until dropped ([`Passwords::hold_permits`],
/// feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct HeldPermits {
    _permits: tokio::sync::OwnedSemaphorePermit,
}

#[cfg(any(test, feature = "test-util"))]
impl Passwords {
    /// Takes every hashing permit, once the hashes in flight have ended, until the returned
    /// guard is dropped: meanwhile checks and hashes wait for a permit. For tests of what a
    /// saturated hasher answers (feature `test-util`).
    pub async fn hold_permits(&self) -> HeldPermits {
        let all = u32::try_from(self.in_flight).unwrap_or(u32::MAX);
        let permits = Arc::clone(&self.permits)
            .acquire_many_owned(all)
            .await
            .expect("the hashing semaphore is never closed");
        HeldPermits { _permits: permits }
    }
}

/// One caller's place in the queue for a permit, given back when dropped (the permit was
/// had, or the caller gave up).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// A place, if fewer than `max` callers hold one.
    fn take(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn check_len(password: &[u8]) -> Result<(), PasswordError> {
    match password.len() {
        0 => Err(PasswordError::Empty),
        n if n > MAX_PASSWORD_LEN => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// Whether a stored argon2 hash's own parameters are ones this service will run: at most
/// four times the current memory and iterations (at least 256 MiB and 16 iterations) and 16
/// lanes. Higher ones are no stronger hash of a real user's, but a planted denial of service.
fn within_ceiling(own: &Params, current: &Params) -> bool {
    own.m_cost() <= current.m_cost().saturating_mul(4).max(262_144)
        && own.t_cost() <= current.t_cost().saturating_mul(4).max(16)
        && own.p_cost() <= current.p_cost().max(16)
}

/// The argon2 run that makes up what a check against a stored hash made at `own` costs less
/// than one at `current` (the work of both is memory × passes), so that a wrong password
/// against an account with an older, weaker hash takes about as long as against an unknown
/// account: no more memory than `current`'s, as few passes as that allows. `None` when `own`
/// costs at least as much, or all but 1 % of it.
fn top_up(own: &Params, current: &Params) -> Option<Params> {
    let work = |p: &Params| u64::from(p.m_cost()) * u64::from(p.t_cost());
    let (want, have) = (work(current), work(own));
    let rest = want.checked_sub(have).filter(|rest| rest * 100 > want)?;
    let passes = rest.div_ceil(u64::from(current.m_cost()));
    let memory = rest.div_ceil(passes).max(u64::from(Params::MIN_M_COST));
    Params::new(
        u32::try_from(memory).ok()?,
        u32::try_from(passes).ok()?,
        1,
        None,
    )
    .ok()
}

/// The longest password bcrypt reads in full.
const BCRYPT_MAX_LEN: usize = 72;
/// Costs above this are refused: a cost-31 hash planted in the database would hold a blocking
/// thread for days.
const BCRYPT_MAX_COST: u32 = 18;

/// bcrypt's verdict on `password` against the hash `stored`, or `None` when bcrypt never
/// ran: passwords bcrypt would have truncated (over 72 bytes, or with a NUL byte), excessive
/// costs and malformed hashes are refused before hashing (the caller then runs the dummy).
fn bcrypt_check(password: &[u8], stored: &str) -> Option<bool> {
    if password.len() > BCRYPT_MAX_LEN || password.contains(&0) {
        return None;
    }
    let cost_ok = stored
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| c <= BCRYPT_MAX_COST);
    if !cost_ok {
        return None;
    }
    bcrypt::verify(password, stored).ok()
}

pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::task::Poll;
    use std::time::Duration;

    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn edge_cases() {
        rt().block_on(async {
            let p = Passwords::new();
            assert_eq!(p.hash(b"").await, Err(PasswordError::Empty));
            assert_eq!(p.hash(&[b'a'; 2000]).await, Err(PasswordError::TooLong));
            let non_utf8 = [0xff, 0xfe, 0x00, b'x'];
            let h = p.hash(&non_utf8).await.unwrap();
            assert_eq!(
                p.verify(&non_utf8, Some(&h)).await.unwrap(),
                Verification::Valid
            );
            assert_eq!(
                p.verify(b"x", Some("not a hash")).await.unwrap(),
                Verification::Invalid
            );
            assert!(Passwords::with_params(4096, 1, 1).is_err());
        });
    }

    /// A hash planted with absurd parameters is refused without being run: before, each
    /// login against it held a blocking thread and a permit for good, and a few stopped every
    /// login and sign-up.
    #[test]
    fn a_planted_hash_with_absurd_parameters_is_refused_without_running() {
        let rt = rt();
        rt.block_on(async {
            let p = Passwords::new();
            let salt = "c29tZXNhbHRzb21lc2FsdA";
            let digest = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
            for (m, t, lanes) in [(19_456, u32::MAX, 1), (4_194_304, 2, 1), (19_456, 2, 255)] {
                let planted = format!("$argon2id$v=19$m={m},t={t},p={lanes}${salt}${digest}");
                for _ in 0..4 {
                    // A bound only so that a regression fails instead of hanging.
                    let verdict = tokio::time::timeout(
                        Duration::from_secs(60),
                        p.verify(b"whatever", Some(&planted)),
                    )
                    .await;
                    assert_eq!(
                        verdict.expect("the planted hash was run").unwrap(),
                        Verification::Invalid,
                        "{planted}"
                    );
                }
            }
            // Stronger-than-current hashes within the ceiling still verify (and are
            // rewritten at this service's parameters).
            let stronger = Passwords::with_params(65_536, 3, 2).unwrap();
            let h = stronger.hash(b"pw").await.unwrap();
            assert!(matches!(
                p.verify(b"pw", Some(&h)).await.unwrap(),
                Verification::ValidRehashed(_)
            ));
        });
        rt.shutdown_background();
    }

    /// A verification whose future is dropped (client gone, timeout) keeps its permit until
    /// its work on the blocking pool ends, so abandoned hashes still count against the limit.
    #[test]
    fn a_dropped_verification_keeps_its_permit_until_the_work_ends() {
        rt().block_on(async {
            let p = Passwords::new();
            let total = p.permits.available_permits();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let job = p.blocking(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            });
            tokio::select! {
                _ = job => panic!("the work finished before it was released"),
                _ = started_rx => {}
            }
            // The future is gone, the work is still running: its permit is still taken.
            assert_eq!(p.permits.available_permits(), total - 1);
            release_tx.send(()).unwrap();
            // Once the work ends, every permit comes back.
            let all = u32::try_from(total).unwrap();
            let back = tokio::time::timeout(Duration::from_secs(10), p.permits.acquire_many(all));
            assert!(back.await.is_ok(), "a permit was not released");
        });
    }

    /// Polls `future` once, with a waker that does nothing: the test decides when it is
    /// polled again.
    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    /// With every permit taken, 64 checks sent at once all waited: the queue grew with the
    /// flood, and only a request timeout ended a wait. Now 8 per permit wait and the others,
    /// hashes too, are `Busy` at once, having hashed nothing; the waiting ones are checked
    /// once the permits are free.
    #[test]
    fn checks_past_the_queue_bound_are_busy_at_once() {
        rt().block_on(async {
            let p = Passwords::new();
            let permits = p.in_flight;
            let held = p.hold_permits().await;
            let mut checks: Vec<_> = (0..64)
                .map(|_| Box::pin(p.verify(b"guess", None)))
                .collect();
            let polled: Vec<_> = checks
                .iter_mut()
                .map(|check| poll_once(check.as_mut()))
                .collect();
            let waiting = polled.iter().filter(|poll| poll.is_pending()).count();
            assert!(
                waiting <= 8 * permits,
                "{waiting} of 64 checks wait for {permits} permits: the queue is unbounded"
            );
            assert_eq!((waiting, p.waiting()), (8 * permits, 8 * permits));
            for poll in &polled[waiting..] {
                assert_eq!(*poll, Poll::Ready(Err(PasswordError::Busy)));
            }
            assert_eq!(p.hash(b"a password").await, Err(PasswordError::Busy));
            assert_eq!(
                p.dummy_runs.load(Ordering::Relaxed),
                0,
                "a busy check hashed"
            );

            drop(held);
            for check in checks.drain(..waiting) {
                let verdict = tokio::time::timeout(Duration::from_secs(60), check).await;
                assert_eq!(
                    verdict.expect("a queued check never ran"),
                    Ok(Verification::Invalid)
                );
            }
            assert_eq!(p.dummy_runs.load(Ordering::Relaxed), waiting);
            assert_eq!(p.waiting(), 0);
        });
    }

    /// A caller that gives up while it waits (its future dropped: the client went away, a
    /// timeout fired) leaves the queue, also once a permit was handed to it: however many
    /// come and go, no place and no permit is lost.
    #[test]
    fn a_check_dropped_while_it_waits_leaves_the_queue() {
        rt().block_on(async {
            let p = Passwords::new().max_waiting(2).unwrap();
            let held = p.hold_permits().await;
            let mut queue = Vec::new();
            for round in 0..100 {
                while queue.len() < 2 {
                    let mut check = Box::pin(p.verify(b"guess", None));
                    assert!(poll_once(check.as_mut()).is_pending(), "round {round}");
                    queue.push(check);
                }
                let mut past = std::pin::pin!(p.verify(b"guess", None));
                let busy = poll_once(past.as_mut());
                assert_eq!(busy, Poll::Ready(Err(PasswordError::Busy)), "round {round}");
                // One gives up at a time, then both at once.
                queue.truncate(if round % 2 == 0 { 1 } else { 0 });
                assert_eq!(p.waiting(), queue.len(), "round {round}: a place was kept");
            }
            assert_eq!(p.dummy_runs.load(Ordering::Relaxed), 0);

            // Permits handed to waiters that are dropped before they run come back.
            while queue.len() < 2 {
                let mut check = Box::pin(p.verify(b"guess", None));
                assert!(poll_once(check.as_mut()).is_pending());
                queue.push(check);
            }
            drop(held);
            drop(queue);
            assert_eq!(p.waiting(), 0);
            let all = tokio::time::timeout(Duration::from_secs(10), p.hold_permits()).await;
            drop(all.expect("a permit was lost to a dropped check"));
            assert_eq!(p.verify(b"guess", None).await, Ok(Verification::Invalid));
        });
    }

    #[test]
    fn a_queue_of_zero_is_refused_with_what_to_change() {
        let err = Passwords::new().max_waiting(0).unwrap_err();
        assert_eq!(err, PasswordError::ZeroMaxWaiting);
        assert!(err.to_string().contains("at least 1"), "{err}");
        assert!(Passwords::new().max_waiting(1).is_ok());
    }

    /// An empty password is a wrong one: `verify` answered `Err(Empty)`, which a login
    /// handler mapping unexpected errors to 500 (example-notes did) turned into a 500.
    #[test]
    fn an_empty_password_is_invalid_for_verify_and_refused_by_hash() {
        rt().block_on(async {
            let p = Passwords::new();
            let stored = p.hash(b"pw").await.unwrap();
            let empty_sha256 =
                "sha256$e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
            for stored in [Some(stored.as_str()), None, Some(empty_sha256)] {
                assert_eq!(p.verify(b"", stored).await, Ok(Verification::Invalid));
            }
            assert_eq!(p.hash(b"").await, Err(PasswordError::Empty));
        });
    }

    /// m is in KiB: `with_params(64 << 20, …)` meant 64 MiB but asks for 64 GiB. Such
    /// parameters were taken; the dummy hash then failed to allocate and became `""`, so
    /// unknown accounts were answered at once (told apart from known ones) and every hash
    /// failed. A t of 2^32-1 never finished building.
    #[test]
    fn absurd_parameters_are_refused_when_building() {
        for (m, t, lanes) in [
            (64 << 20, 3, 1),
            (u32::MAX, 2, 1),
            (19_456, u32::MAX, 1),
            (19_456, 65, 1),
            (19_456, 2, 65),
        ] {
            let err = Passwords::with_params(m, t, lanes).unwrap_err();
            assert_eq!(err, PasswordError::AbsurdParams, "{m} {t} {lanes}");
            assert!(err.to_string().contains("KiB"), "{err}");
        }
        assert!(Passwords::with_params(4 << 20, 64, 64).is_ok());
    }

    /// A stored argon2 hash argon2 refuses before hashing (no digest, a version it does not
    /// know, a salt too short) was answered `Invalid` at once, in microseconds, where an
    /// unknown account runs the dummy hash: such an account could be told from a missing
    /// one. Each now runs the dummy hash, as an unknown account does (counted, not timed).
    /// A wrong password against a stored hash with weaker parameters ran only that hash,
    /// less work than the dummy an unknown account runs: the answer came sooner, which told
    /// that the account exists. Now the difference is run on top. (Work is counted, in
    /// KiB × passes, not timed.)
    #[test]
    fn a_weaker_stored_hash_does_the_work_an_unknown_account_does() {
        use std::sync::atomic::Ordering::Relaxed;
        rt().block_on(async {
            let p = Passwords::new();
            let work_for = |stored: Option<String>, password: &'static [u8]| {
                let p = p.clone();
                async move {
                    let before = p.work.load(Relaxed);
                    let verdict = p.verify(password, stored.as_deref()).await.unwrap();
                    (verdict, p.work.load(Relaxed) - before)
                }
            };
            let (_, unknown) = work_for(None, b"wrong password").await;
            assert_eq!(unknown, 19_456 * 2);
            for (m, t, p_cost) in [(19_456, 1, 1), (8_192, 2, 1), (4_096, 3, 2), (19_000, 2, 1)] {
                let weak = Params::new(m, t, p_cost, None).unwrap();
                let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak)
                    .hash_password(b"right password")
                    .unwrap()
                    .to_string();
                let (verdict, work) = work_for(Some(stored.clone()), b"wrong password").await;
                assert_eq!(verdict, Verification::Invalid);
                assert!(
                    work.abs_diff(unknown) * 100 <= unknown,
                    "m={m} t={t}: {work} against {unknown} for an unknown account"
                );
                // The right password is rehashed, as before.
                let (verdict, _) = work_for(Some(stored), b"right password").await;
                assert!(
                    matches!(verdict, Verification::ValidRehashed(_)),
                    "{verdict:?}"
                );
            }
            // A current hash runs itself and nothing more.
            let current = p.hash(b"right password").await.unwrap();
            assert_eq!(work_for(Some(current), b"wrong password").await.1, unknown);
        });
    }

    /// A stored hash with stronger parameters than the service's (an older, stricter
    /// configuration) answers a wrong password more slowly than an unknown account, which
    /// tells the account exists; nothing can make it quicker. Its user's next login now
    /// rewrites it at the service's parameters (it was kept as current), so the difference
    /// ends there. A hash at the service's parameters stays as it is.
    #[test]
    fn a_stronger_stored_hash_is_rewritten_at_the_services_parameters() {
        rt().block_on(async {
            let p = Passwords::new();
            for (m, t, p_cost) in [(38_912, 2, 1), (19_456, 3, 1), (19_456, 2, 2)] {
                let strong = Params::new(m, t, p_cost, None).unwrap();
                let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, strong)
                    .hash_password(b"right password")
                    .unwrap()
                    .to_string();
                let verdict = p.verify(b"right password", Some(&stored)).await.unwrap();
                assert!(
                    matches!(&verdict, Verification::ValidRehashed(h)
                        if h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")),
                    "m={m} t={t} p={p_cost}: {verdict:?}"
                );
            }
            let own = p.hash(b"right password").await.unwrap();
            assert_eq!(
                p.verify(b"right password", Some(&own)).await.unwrap(),
                Verification::Valid
            );
        });
    }

    #[test]
    fn top_up_makes_up_the_difference_within_current_memory() {
        let params = |m, t| Params::new(m, t, 1, None).unwrap();
        let current = params(19_456, 2);
        for (own, rest) in [
            (params(19_456, 1), Some((19_456, 1))),
            (params(8_192, 2), Some((11_264, 2))),
            (params(19_456, 2), None),
            (params(65_536, 1), None),
            (params(19_400, 2), None), // within 1 %
            (params(8, 1), Some((19_452, 2))),
        ] {
            let got = top_up(&own, &current).map(|p| (p.m_cost(), p.t_cost()));
            assert_eq!(got, rest, "{own:?}");
            if let Some((m, t)) = got {
                assert!(m <= current.m_cost());
                let total =
                    u64::from(own.m_cost()) * u64::from(own.t_cost()) + u64::from(m) * u64::from(t);
                assert!(
                    total >= 19_456 * 2 && total < 19_456 * 2 + u64::from(t),
                    "{total}"
                );
            }
        }
    }

    #[test]
    fn unusable_argon2_hashes_run_the_dummy_hash_as_an_unknown_account_does() {
        use std::sync::atomic::Ordering::Relaxed;
        rt().block_on(async {
            let p = Passwords::new();
            let real = p.hash(b"pw").await.unwrap();
            let (head, digest) = real.rsplit_once('$').unwrap();
            let dummies_for = |stored: Option<String>| {
                let p = p.clone();
                async move {
                    let before = p.dummy_runs.load(Relaxed);
                    let verdict = p.verify(b"wrong password", stored.as_deref()).await;
                    assert_eq!(verdict, Ok(Verification::Invalid), "{stored:?}");
                    p.dummy_runs.load(Relaxed) - before
                }
            };
            assert_eq!(dummies_for(None).await, 1, "an unknown account");
            // A real hash, or one with a longer digest, is run itself.
            let longer = format!("{real}AAAA");
            for stored in [real.clone(), longer] {
                assert_eq!(dummies_for(Some(stored.clone())).await, 0, "{stored}");
            }
            for stored in [
                head.to_owned(),
                format!("{head}$"),
                real.replacen("$v=19$", "$v=99$", 1),
                format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${digest}"),
            ] {
                assert_eq!(dummies_for(Some(stored.clone())).await, 1, "{stored}");
            }
        });
    }

    /// argon2i and argon2d hashes verify and come back as argon2id; other schemes (scrypt,
    /// Django's PBKDF2) are not verified and are `Invalid`.
    #[test]
    fn other_argon2_variants_are_upgraded_and_other_schemes_refused() {
        rt().block_on(async {
            let p = Passwords::new();
            let owasp = Params::new(19_456, 2, 1, None).unwrap();
            for alg in [Algorithm::Argon2i, Algorithm::Argon2d] {
                let old = Argon2::new(alg, Version::V0x13, owasp.clone())
                    .hash_password(b"pw")
                    .unwrap()
                    .to_string();
                assert!(upgraded(p.verify(b"pw", Some(&old)).await.unwrap()), "{old}");
                assert_eq!(
                    p.verify(b"pW", Some(&old)).await.unwrap(),
                    Verification::Invalid
                );
            }
            for other in [
                "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
                "pbkdf2_sha256$600000$c2FsdA$3nWzVHCCCOb1aT7HZ7lgmDBP38yOfTtA4EOQ7jMHEmM=",
            ] {
                assert_eq!(
                    p.verify(b"pw", Some(other)).await.unwrap(),
                    Verification::Invalid
                );
            }
        });
    }

    /// A logged verdict (`?verdict`) printed the whole new hash, salt and digest included:
    /// what an offline guesser needs.
    #[test]
    fn a_verdict_s_debug_keeps_the_new_hash_out_of_logs() {
        rt().block_on(async {
            let p = Passwords::new();
            let legacy = format!(
                "sha256${}",
                "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
            );
            let verdict = p.verify(b"password", Some(&legacy)).await.unwrap();
            let Verification::ValidRehashed(hash) = &verdict else {
                panic!("{verdict:?}");
            };
            let (salt_and_digest, shown) = (hash.rsplitn(3, '$').take(2), format!("{verdict:?}"));
            for secret in salt_and_digest {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert_eq!(
                shown,
                r#"ValidRehashed("$argon2id$v=19$m=19456,t=2,p=1$…")"#
            );
            assert_eq!(format!("{:?}", Verification::Valid), "Valid");
        });
    }

    fn upgraded(v: Verification) -> bool {
        matches!(v, Verification::ValidRehashed(h) if h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
    }

    /// "Rehash on old parameters": an argon2id v=16 (0x10) hash at OWASP's parameters was
    /// reported `Valid`, never upgraded to v=19, because the version was not part of the
    /// check.
    #[test]
    fn argon2_version_0x10_hashes_are_upgraded() {
        rt().block_on(async {
            let p = Passwords::new();
            let old = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x10,
                Params::new(19_456, 2, 1, None).unwrap(),
            )
            .hash_password(b"pw")
            .unwrap()
            .to_string();
            assert!(old.starts_with("$argon2id$v=16$"), "{old}");
            assert!(upgraded(p.verify(b"pw", Some(&old)).await.unwrap()));
            assert_eq!(
                p.verify(b"pW", Some(&old)).await.unwrap(),
                Verification::Invalid
            );
            // The current version at the current parameters stays as it is.
            let current = p.hash(b"pw").await.unwrap();
            assert_eq!(
                p.verify(b"pw", Some(&current)).await.unwrap(),
                Verification::Valid
            );
            // Without `v=` it verifies as 0x13 (argon2's default) and is rewritten with it.
            let unversioned = current.replacen("$v=19$", "$", 1);
            assert!(upgraded(p.verify(b"pw", Some(&unversioned)).await.unwrap()));
        });
    }

    #[test]
    fn bcrypt_hashes_verify_and_are_upgraded() {
        rt().block_on(async {
            let p = Passwords::new();
            let generated = bcrypt::hash("hunter2", 4).unwrap();
            assert!(upgraded(
                p.verify(b"hunter2", Some(&generated)).await.unwrap()
            ));
            assert_eq!(
                p.verify(b"hunter3", Some(&generated)).await.unwrap(),
                Verification::Invalid
            );
            // Fixed hashes from other implementations, each bcrypt version prefix.
            let fixed = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
            for prefix in ["$2a$", "$2b$", "$2y$"] {
                let hash = format!("{prefix}{}", &fixed[4..]);
                assert!(upgraded(
                    p.verify(b"correctbatteryhorsestapler", Some(&hash))
                        .await
                        .unwrap()
                ));
                assert_eq!(
                    p.verify(b"correctbatteryhorsestaple", Some(&hash))
                        .await
                        .unwrap(),
                    Verification::Invalid
                );
            }
            let openwall = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
            assert!(upgraded(p.verify(b"U*U", Some(openwall)).await.unwrap()));
            // $2x$ (the buggy variant) is not accepted as bcrypt.
            let buggy = format!("$2x${}", &fixed[4..]);
            assert_eq!(
                p.verify(b"correctbatteryhorsestapler", Some(&buggy))
                    .await
                    .unwrap(),
                Verification::Invalid
            );
        });
    }

    #[test]
    fn bcrypt_truncation_never_lets_a_different_password_in() {
        rt().block_on(async {
            let p = Passwords::new();
            // Made by another implementation from "x" * 100, i.e. really from "x" * 72.
            let stored = "$2a$05$......................YgIDy4hFBdVlc/6LHnD9mX488r9cLd2";
            assert!(upgraded(p.verify(&[b'x'; 72], Some(stored)).await.unwrap()));
            for len in [73, 100, 1024] {
                assert_eq!(
                    p.verify(&vec![b'x'; len], Some(stored)).await.unwrap(),
                    Verification::Invalid,
                    "{len} bytes"
                );
            }
            // bcrypt cycles the NUL-terminated key, so "abc\0abc" is the key of "abc": raw
            // bcrypt accepts it; a password with a NUL byte is refused instead.
            let nul = bcrypt::hash("abc", 4).unwrap();
            assert!(bcrypt::verify(b"abc\0abc", &nul).unwrap());
            assert!(upgraded(p.verify(b"abc", Some(&nul)).await.unwrap()));
            for pw in [&b"abc\0abc"[..], b"abc\0def", b"abc\0"] {
                assert_eq!(
                    p.verify(pw, Some(&nul)).await.unwrap(),
                    Verification::Invalid
                );
            }
        });
    }

    #[test]
    fn malformed_bcrypt_hashes_are_invalid_not_panics() {
        rt().block_on(async {
            let p = Passwords::new();
            let good = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
            let cut_in_utf8 = format!("$2b$04${}é", &good[7..58]);
            let malformed = [
                "$2b$".to_owned(),
                "$2b$04$".to_owned(),
                "$2b$04$short".to_owned(),
                good[..59].to_owned(),
                format!("{good}x"),
                format!("$2b$xx${}", &good[7..]),
                format!("$2b$99${}", &good[7..]),
                format!("$2b$31${}", &good[7..]),
                format!("$2b$03${}", &good[7..]),
                format!("$2b$04${}", "!".repeat(53)),
                format!("$2b$04${}", "é".repeat(26)),
                cut_in_utf8,
            ];
            for hash in &malformed {
                assert_eq!(
                    p.verify(b"correctbatteryhorsestapler", Some(hash))
                        .await
                        .unwrap(),
                    Verification::Invalid,
                    "{hash:?}"
                );
            }
        });
    }

    #[test]
    fn legacy_and_weak_hashes_are_upgraded() {
        rt().block_on(async {
            let p = Passwords::new();
            let legacy = format!(
                "sha256${}",
                "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
            );
            match p.verify(b"password", Some(&legacy)).await.unwrap() {
                Verification::ValidRehashed(new) => {
                    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                p.verify(b"Password", Some(&legacy)).await.unwrap(),
                Verification::Invalid
            );
            let weak = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8192, 1, 1, None).unwrap(),
            )
            .hash_password(b"pw")
            .unwrap()
            .to_string();
            assert!(matches!(
                p.verify(b"pw", Some(&weak)).await.unwrap(),
                Verification::ValidRehashed(_)
            ));
        });
    }

    /// A password over [`MAX_PASSWORD_LEN`] at login is a wrong password, as an empty one
    /// is, with no hash run: `verify` answered `Err(TooLong)`, which a login handler had to
    /// know to answer as a wrong password (a 422 or a 500 instead tells over-long guesses
    /// apart, and skips the throttle's failure count).
    #[test]
    fn an_over_long_password_is_invalid_for_verify() {
        rt().block_on(async {
            let p = Passwords::new();
            let stored = p.hash(b"pw").await.unwrap();
            let long = [b'a'; MAX_PASSWORD_LEN + 1];
            for stored in [Some(stored.as_str()), None] {
                assert_eq!(p.verify(&long, stored).await, Ok(Verification::Invalid));
            }
            assert_eq!(p.dummy_runs.load(Ordering::Relaxed), 0, "it was hashed");
            let at_most = [b'a'; MAX_PASSWORD_LEN];
            assert_eq!(p.verify(&at_most, None).await, Ok(Verification::Invalid));
            assert_eq!(p.dummy_runs.load(Ordering::Relaxed), 1);
        });
    }

    /// What a handler answers for each `PasswordError` with `?`, behind a `ProblemLayer`:
    /// a sign-up's empty or over-long password is a 422 naming the field (another name
    /// with `for_field`), a busy hasher a 503 with `Retry-After: 1`, each a problem with
    /// a request id, and neither the body nor a log line holds the password.
    #[test]
    fn each_password_error_answers_as_a_problem_without_the_password() {
        use axum::Router;
        use axum::body::Body;
        use axum::extract::State;
        use axum::routing::post;
        use hardening_errors::{Error, ProblemLayer};
        use http::{Request, StatusCode};
        use tower::ServiceExt;

        const SECRET_PART: &str = "Tr0ub4dor&3-";
        async fn sign_up(State(p): State<Passwords>, password: String) -> Result<String, Error> {
            Ok(p.hash(password.as_bytes()).await?)
        }
        async fn change(State(p): State<Passwords>, password: String) -> Result<String, Error> {
            p.hash(password.as_bytes())
                .await
                .map_err(|e| e.for_field("#/new_password"))
        }
        let log = hardening_errors::test_log::Captured::default();
        let _log = log.capture();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let passwords = Passwords::new().max_waiting(1).unwrap();
            let app = Router::new()
                .route("/sign-up", post(sign_up))
                .route("/change", post(change))
                .with_state(passwords.clone())
                .layer(ProblemLayer::new());
            let call = |path: &'static str, password: String| {
                let req = Request::post(path).body(Body::from(password)).unwrap();
                app.clone().oneshot(req)
            };
            let long = SECRET_PART.repeat(MAX_PASSWORD_LEN / SECRET_PART.len() + 1);
            let cases = [
                ("/sign-up", String::new(), "#/password", "must not be empty"),
                ("/sign-up", long.clone(), "#/password", "at most 1024 bytes"),
                (
                    "/change",
                    long.clone(),
                    "#/new_password",
                    "at most 1024 bytes",
                ),
            ];
            for (path, password, pointer, detail) in cases {
                let res = call(path, password).await.unwrap();
                assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
                let problem = problem_of(res).await;
                assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
                assert_eq!(problem["errors"][0]["detail"], detail, "{problem}");
                assert!(!problem.to_string().contains(SECRET_PART), "{problem}");
            }

            // Every permit held and the one place in the queue taken: the next is `Busy`.
            let held = passwords.hold_permits().await;
            let mut waiting = Box::pin(passwords.verify(b"guess", None));
            assert!(poll_once(waiting.as_mut()).is_pending());
            let res = call("/sign-up", format!("{SECRET_PART}busy"))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(res.headers()[http::header::RETRY_AFTER], "1");
            let problem = problem_of(res).await;
            assert!(!problem.to_string().contains(SECRET_PART), "{problem}");
            drop((waiting, held));
        });
        for line in log.lines() {
            assert!(!format!("{line:?}").contains(SECRET_PART), "{line:?}");
        }
    }

    /// The problem body of `res`, checked to be `application/problem+json` with the request
    /// id of its `x-request-id` header.
    async fn problem_of(res: axum::response::Response) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        assert_eq!(
            res.headers()[http::header::CONTENT_TYPE],
            hardening_errors::PROBLEM_JSON
        );
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["request_id"], id.as_str(), "{problem}");
        problem
    }
}
