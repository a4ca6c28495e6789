//! Liveness and readiness endpoints, answered by the layer itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hardening_errors::{Problem, ProblemBody, RequestId, reject};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::ConfigError;
use crate::client_ip::{IpNet, KnownClientIp};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type CheckFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// A registered check: its name, the function, and whether a run of it is still going (one
/// that blocks its thread outlives the probe that started it).
#[derive(Clone)]
struct Check {
    name: String,
    run: CheckFn,
    running: Arc<AtomicBool>,
}

/// Health endpoints: `GET /healthz` (liveness: the process answers; no work) and
/// `GET /readyz` (readiness: runs the registered checks, each under a timeout, and answers
/// 503 naming the ones that failed).
///
/// They are answered before the host allowlist, CORS and rate limits (their responses carry
/// no `RateLimit` or `RateLimit-Policy` field: they are not counted), and are left out of
/// the access log unless [`Health::log_requests`] is set. The per-check results (and error
/// messages, with their sources and secrets redacted) are shown only to clients in
/// [`Health::detail_for`]'s networks (default: loopback); everyone else sees the overall
/// status and the names of failed checks. A run in which checks fail is logged once, a
/// warning (target [`LOG_TARGET`](crate::LOG_TARGET)) with each failed check's error. The
/// checks run one run at a time, at most once per [`Health::reuse_results_for`] window
/// (1 s), however many probes come; no probe waits for more than two runs.
///
/// ```
/// use std::time::Duration;
/// use hardening_core::{Hardening, Health};
///
/// let health = Health::new()
///     .check("database", || async { Ok::<(), std::io::Error>(()) })
///     .check_timeout(Duration::from_secs(2))?;
/// let hardening = Hardening::strict().health(health);
/// # let _ = hardening;
/// # Ok::<(), hardening_core::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Health {
    live_path: String,
    ready_path: String,
    checks: Vec<Check>,
    check_timeout: Duration,
    detail_networks: Vec<IpNet>,
    log_requests: bool,
    reuse_for: Duration,
    /// The last run and the one going on, shared by clones.
    runs: Arc<Mutex<Runs>>,
}

/// The checks' runs: at most one going on at a time.
#[derive(Default)]
struct Runs {
    /// When the last run ended, and its results.
    last: Option<(Instant, Arc<[CheckResult]>)>,
    /// The run going on: when it started, and where its results will be sent.
    going: Option<(Instant, RunResults)>,
}

/// A run's results, `None` until it ends.
type RunResults = tokio::sync::watch::Receiver<Option<Arc<[CheckResult]>>>;

/// A check's result: its error text (secrets redacted) when it failed.
type CheckResult = Result<(), String>;

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("live_path", &self.live_path)
            .field("ready_path", &self.ready_path)
            .field(
                "checks",
                &self.checks.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field("check_timeout", &self.check_timeout)
            .field("detail_networks", &self.detail_networks)
            .field("log_requests", &self.log_requests)
            .field("reuse_for", &self.reuse_for)
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Live,
    Ready,
}

impl Health {
    /// `/healthz` and `/readyz`, no checks, 5 s per check, detail for loopback clients.
    pub fn new() -> Self {
        Self {
            live_path: "/healthz".to_owned(),
            ready_path: "/readyz".to_owned(),
            checks: Vec::new(),
            check_timeout: Duration::from_secs(5),
            detail_networks: IpNet::LOOPBACK.to_vec(),
            log_requests: false,
            reuse_for: Duration::from_secs(1),
            runs: Arc::default(),
        }
    }

    /// Serves liveness and readiness on these paths instead: absolute paths that a request
    /// can have (no query, fragment, spaces or control characters).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPath`] for a path no request can have, and
    /// [`ConfigError::SameHealthPaths`] for one path given twice.
    pub fn paths(
        mut self,
        live: impl Into<String>,
        ready: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let (live, ready) = (live.into(), ready.into());
        for path in [&live, &ready] {
            // A path that no request target can spell would never be answered.
            if !path.starts_with('/')
                || path.contains(['?', '#'])
                || path.parse::<http::uri::PathAndQuery>().is_err()
            {
                return Err(ConfigError::InvalidPath(path.clone()));
            }
        }
        if live == ready {
            // Readiness would never be asked: every probe would get liveness's "ok".
            return Err(ConfigError::SameHealthPaths(live));
        }
        self.live_path = live;
        self.ready_path = ready;
        Ok(self)
    }

    /// Adds a readiness check: an async function that fails when the service cannot serve
    /// (a database down, a queue unreachable). A check still running from an earlier probe
    /// (one that blocks its thread past the timeout) is not started again: it counts as
    /// failed until it returns.
    pub fn check<F, Fut, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let check: CheckFn = Arc::new(move || {
            let fut = check();
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.checks.push(Check {
            name: name.into(),
            run: check,
            running: Arc::default(),
        });
        self
    }

    /// Answers readiness probes that come within this long of the end of the last run of the
    /// checks with that run's results (default 1 s). `/readyz` is not rate-limited
    /// (orchestrators must reach it): without this, anyone could make the service run every
    /// check (database pings and the like) as often as they like.
    ///
    /// The checks run one run at a time, and probes never queue up runs. A probe takes the
    /// last run's results if it ended less than this long ago; else it waits for the run
    /// going on (or starts one), and, if that run started before the probe came and its
    /// results are by then this old, for the next one, started once for all the probes
    /// waiting for it. So no probe waits for more than two runs. `Duration::ZERO` gives every
    /// probe the results of a run started after it came.
    pub fn reuse_results_for(mut self, window: Duration) -> Self {
        self.reuse_for = window;
        self
    }

    /// How long each check may take before it counts as failed (default 5 s;
    /// `Duration::MAX` waits for ever). Zero is an error: every check that waits at all
    /// would fail, and readiness would answer 503 for good.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for `Duration::ZERO`.
    pub fn check_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::ZeroLimit("check_timeout"));
        }
        self.check_timeout = timeout;
        Ok(self)
    }

    /// The networks whose clients see per-check results and error messages (with secrets
    /// redacted). Behind trusted proxies, only a client they name (a
    /// [`KnownClientIp`](crate::KnownClientIp)); and only with a `Host`
    /// the host allowlist accepts, an IP address or `localhost` (and a target that names a
    /// host, in absolute form, naming the same one), so that a DNS-rebinding page in a
    /// browser inside these networks does not see them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidDetailNetwork`] for an entry that is not an address or a CIDR
    /// network.
    pub fn detail_for<I>(mut self, networks: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.detail_networks = networks
            .into_iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<_, _>>()
            .map_err(|e| match e {
                // Its message names the trusted proxies: this is another setting.
                ConfigError::InvalidNetwork { value, why } => {
                    ConfigError::InvalidDetailNetwork { value, why }
                }
                other => other,
            })?;
        Ok(self)
    }

    /// Writes health requests to the access log too (off by default: probes are noise).
    pub fn log_requests(mut self) -> Self {
        self.log_requests = true;
        self
    }

    pub(crate) fn logs_requests(&self) -> bool {
        self.log_requests
    }

    #[inline]
    pub(crate) fn probe(&self, method: &http::Method, path: &str) -> Option<Probe> {
        if !matches!(*method, http::Method::GET | http::Method::HEAD) {
            return None;
        }
        if path == self.live_path {
            Some(Probe::Live)
        } else if path == self.ready_path {
            Some(Probe::Ready)
        } else {
            None
        }
    }

    /// Whether `client` may see the checks' detail: only a client's own address (never a
    /// trusted proxy's standing in for a client it did not name) inside the networks.
    pub(crate) fn shows_detail(&self, client: Option<KnownClientIp>) -> bool {
        client.is_some_and(|KnownClientIp(ip)| self.detail_networks.iter().any(|n| n.contains(ip)))
    }

    /// The liveness answer.
    pub(crate) fn live<B>(request_id: RequestId) -> Response<ProblemBody<B>> {
        ok_response(json!({ "status": "ok" }), request_id)
    }

    /// Runs every check concurrently, each under the timeout, and builds the answer.
    pub(crate) fn ready<B>(
        &self,
        request_id: RequestId,
        detail: bool,
    ) -> impl Future<Output = Response<ProblemBody<B>>> + Send + 'static {
        let checks = self.checks.clone();
        let timeout = self.check_timeout;
        let (runs, reuse_for) = (self.runs.clone(), self.reuse_for);
        let came = Instant::now();
        async move {
            let results = loop {
                let (started, mut going, to_start) = {
                    let mut state = runs.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some((ended, results)) = &state.last
                        && ended.elapsed() < reuse_for
                    {
                        break results.clone();
                    }
                    match &state.going {
                        Some((started, going)) => (*started, going.clone(), None),
                        None => {
                            let (send, going) = tokio::sync::watch::channel(None);
                            let started = Instant::now();
                            state.going = Some((started, going.clone()));
                            let publish = Publish {
                                runs: runs.clone(),
                                send,
                                results: None,
                            };
                            (started, going, Some(publish))
                        }
                    }
                };
                // Outside the lock, which the run takes when it ends.
                if let Some(publish) = to_start {
                    start_run(publish, &checks, timeout, request_id);
                }
                let results = match going.wait_for(Option::is_some).await {
                    Ok(results) => results.clone(),
                    Err(_) => None,
                };
                let results = results.unwrap_or_else(|| {
                    vec![Err("the checks could not run".to_owned()); checks.len()].into()
                });
                // A run started before this probe came answers it only if its results are
                // within the window (checked on the next turn); the next run always does.
                if started >= came {
                    break results;
                }
            };
            answer(&checks, &results, request_id, detail)
        }
    }
}

/// Starts a run of the checks in a task of its own: a probe dropped while they run (its
/// client hung up) does not leave them running unrecorded, for the next probe to count
/// "still running" as failed, nor the probes waiting for it without results.
fn start_run(mut publish: Publish, checks: &[Check], timeout: Duration, request_id: RequestId) {
    let checks = checks.to_vec();
    tokio::spawn(async move {
        let results: Arc<[CheckResult]> = run(&checks, timeout).await.into();
        // Once per run, not per probe: probes are not rate-limited, and those that share
        // this run share its results.
        let failed = failed_names(&checks, &results);
        if !failed.is_empty() {
            // Why, too: a probe from outside the detail networks (an orchestrator's) is told
            // the names alone, and the log is where its operator looks.
            let errors: Vec<String> = checks
                .iter()
                .zip(results.iter())
                .filter_map(|(check, result)| {
                    Some(format!("{}: {}", check.name, result.as_ref().err()?))
                })
                .collect();
            tracing::warn!(target: crate::LOG_TARGET, request_id = %request_id, failed = ?failed, errors = ?errors, "readiness check failed");
        }
        // Recorded and sent as `publish` drops.
        publish.results = Some(results);
        drop(publish);
    });
}

/// Ends a run when dropped: records its results (if it has them: a run that panicked or was
/// dropped has none) and sends them to the probes waiting for it.
struct Publish {
    runs: Arc<Mutex<Runs>>,
    send: tokio::sync::watch::Sender<Option<Arc<[CheckResult]>>>,
    results: Option<Arc<[CheckResult]>>,
}

impl Drop for Publish {
    fn drop(&mut self) {
        let mut state = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        state.going = None;
        if let Some(results) = &self.results {
            state.last = Some((Instant::now(), results.clone()));
        }
        // Sent (or, with none, the channel closed) with the state updated: a probe that then
        // finds no run going finds these results.
        self.send.send_replace(self.results.take());
    }
}

/// How long after the checks' timeout a readiness probe gives up on a check that has not
/// answered (one blocking its thread cannot time itself out).
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// Runs every check concurrently, each under the timeout, on a thread of the blocking pool:
/// a check that blocks its thread (a synchronous driver's ping) then holds that thread, not
/// one of the runtime's workers, whose timers (the probe's own deadline among them) would
/// wait for it. Such a check is not started again while it runs, so that probes do not
/// pile up threads behind it.
async fn run(checks: &[Check], timeout: Duration) -> Vec<CheckResult> {
    // Timed out until it answers: by its own timeout, or, still running at the deadline
    // (one that blocks its thread cannot time itself out; the thread finishes on its own),
    // by the deadline's. The margin lets the checks' own timeouts report first.
    let timed_out = format!("timed out after {} ms", timeout.as_millis());
    let mut results: Vec<CheckResult> = vec![Err(timed_out); checks.len()];
    let mut set = tokio::task::JoinSet::new();
    let mut task_ids = Vec::with_capacity(checks.len());
    let runtime = tokio::runtime::Handle::current();
    for (i, check) in checks.iter().enumerate() {
        if check.running.swap(true, Ordering::AcqRel) {
            results[i] = Err("still running since an earlier probe".to_owned());
            continue;
        }
        // Cleared when the run ends, panics, or is dropped before it starts.
        let running = Running(check.running.clone());
        let check = check.run.clone();
        let runtime = runtime.clone();
        let handle = set.spawn_blocking(move || {
            let _running = running;
            // Called in the task: a check that panics before its future exists fails
            // like one whose future panics.
            // `None`: timed out, as a check that does not answer by the deadline.
            let result = runtime
                .block_on(tokio::time::timeout(timeout, check()))
                .ok()
                .map(|checked| {
                    // Shown to the detail networks and logged: an error may quote a URL
                    // with its password. With its sources: an error's own text may be
                    // generic (`Error::internal`'s), its cause in them.
                    checked.map_err(|e| hardening_errors::redact_error_chain(&*e))
                });
            (i, result)
        });
        task_ids.push((handle.id(), i));
    }
    // No deadline for a timeout too long to add to the clock (`Duration::MAX`).
    let deadline = tokio::time::Instant::now().checked_add(timeout.saturating_add(DEADLINE_MARGIN));
    loop {
        let joined = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(joined) => joined,
                Err(_) => break,
            },
            None => set.join_next().await,
        };
        match joined {
            None => break,
            Some(Ok((i, Some(result)))) => results[i] = result,
            Some(Ok((_, None))) => {}
            Some(Err(e)) => {
                if let Some((_, i)) = task_ids.iter().find(|(id, _)| *id == e.id()) {
                    results[*i] = Err("the check panicked".to_owned());
                }
            }
        }
    }
    results
}

/// Marks a check as no longer running when dropped.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The names of the checks that failed, each once, in the order they were added.
fn failed_names<'a>(checks: &'a [Check], results: &[CheckResult]) -> Vec<&'a str> {
    let mut failed: Vec<&str> = Vec::new();
    for (check, result) in checks.iter().zip(results) {
        if result.is_err() && !failed.contains(&check.name.as_str()) {
            failed.push(&check.name);
        }
    }
    failed
}

/// The readiness answer for these results.
fn answer<B>(
    checks: &[Check],
    results: &[CheckResult],
    request_id: RequestId,
    detail: bool,
) -> Response<ProblemBody<B>> {
    let failed = failed_names(checks, results);
    let mut per_check = Map::new();
    if detail {
        for (check, result) in checks.iter().zip(results) {
            // Two checks of one name: a failure is not hidden by the other's success.
            if result.is_ok() && per_check.contains_key(&check.name) {
                continue;
            }
            let value = match result {
                Ok(()) => json!("ok"),
                Err(e) => json!({ "status": "failed", "error": e }),
            };
            per_check.insert(check.name.clone(), value);
        }
    }
    if failed.is_empty() {
        let mut body = json!({ "status": "ok" });
        if detail {
            body["checks"] = Value::Object(per_check);
        }
        return ok_response(body, request_id);
    }
    let mut problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_detail(format!("readiness checks failed: {}", failed.join(", ")));
    if detail {
        problem = problem.with_extension("checks", Value::Object(per_check));
    }
    reject(problem, request_id)
}

fn ok_response<B>(body: Value, request_id: RequestId) -> Response<ProblemBody<B>> {
    let bytes = Bytes::from(body.to_string());
    let mut res = Response::new(ProblemBody::full(bytes));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-request-id", request_id.to_header_value());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network `detail_for` refused was reported as one "in trusted proxies", sending its
    /// user to a setting they had not touched. The error names `Health::detail_for`.
    #[test]
    fn a_bad_detail_network_is_reported_as_detail_for_s() {
        let err = Health::new()
            .detail_for(["10.0.0.1/8"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Health::detail_for"), "{err}");
        assert!(!err.contains("trusted proxies"), "{err}");
        assert!(err.contains("write 10.0.0.0/8"), "{err}");
    }

    /// A probe dropped while the checks run (its client hung up) leaves their run to finish
    /// and count: the next probe does not find them "still running" and fail.
    #[tokio::test]
    async fn a_dropped_probe_does_not_fail_the_next_one() {
        let health = Health::new().check("db", || async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<(), std::io::Error>(())
        });
        let first = health.ready::<axum::body::Body>(RequestId::generate(), true);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), first)
                .await
                .is_err()
        );
        let next = health
            .ready::<axum::body::Body>(RequestId::generate(), true)
            .await;
        assert_eq!(next.status(), StatusCode::OK);
    }

    /// A run that ends without results (its task panicked outside the checks, or was
    /// dropped) clears itself and wakes the probes waiting for it: none waits for ever. A
    /// probe it was to answer gets "could not run" (503); one that came after it started
    /// takes the next run.
    #[tokio::test]
    async fn a_run_that_ends_without_results_leaves_no_probe_waiting() {
        let health = Health::new()
            .check("db", || async { Ok::<(), std::io::Error>(()) })
            .reuse_results_for(Duration::ZERO);
        for (started, expected) in [
            // Started after the probe came: its results were the probe's answer.
            (
                Instant::now() + Duration::from_secs(60),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            // Started before: the probe takes the next run, which succeeds.
            (Instant::now(), StatusCode::OK),
        ] {
            let (send, going) = tokio::sync::watch::channel(None);
            health.runs.lock().unwrap().going = Some((started, going));
            let publish = Publish {
                runs: health.runs.clone(),
                send,
                results: None,
            };
            let probe = tokio::spawn(health.ready::<axum::body::Body>(RequestId::generate(), true));
            // The probe joins the run (this test's runtime has one thread).
            tokio::task::yield_now().await;
            drop(publish);
            let answer = tokio::time::timeout(Duration::from_secs(10), probe)
                .await
                .expect("a probe still waits for a run that ended without results")
                .unwrap();
            assert_eq!(answer.status(), expected);
            assert!(health.runs.lock().unwrap().going.is_none());
        }
    }

    #[test]
    fn paths_must_be_ones_a_request_can_have() {
        for bad in ["", "healthz", "/h?x", "/h#x", "/h h", "/h\tx", "/h\u{7f}"] {
            let err = Health::new().paths(bad, "/ready").unwrap_err();
            assert_eq!(err, ConfigError::InvalidPath(bad.to_owned()));
            assert!(Health::new().paths("/live", bad).is_err(), "{bad:?}");
        }
        let health = Health::new().paths("/live", "/-/ready%20now").unwrap();
        assert_eq!(health.probe(&http::Method::GET, "/live"), Some(Probe::Live));
        assert_eq!(
            health.probe(&http::Method::HEAD, "/-/ready%20now"),
            Some(Probe::Ready)
        );
        assert_eq!(health.probe(&http::Method::POST, "/live"), None);
        assert_eq!(health.probe(&http::Method::GET, "/healthz"), None);
        // One path for both: readiness would never be asked.
        assert_eq!(
            Health::new().paths("/h", "/h").unwrap_err(),
            ConfigError::SameHealthPaths("/h".to_owned())
        );
    }
}
