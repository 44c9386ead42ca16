//! The follower: keeps a replica's index in step with a primary over HTTP.
//!
//! A replica's directory is an ordinary index directory (see [`crate::store::directory`]): each
//! snapshot loaded becomes a new generation that `CURRENT` switches to. The follower bootstraps
//! from the primary's snapshot when it has none (or when the primary's history changed, or the
//! changes it needs were pruned), then long-polls the changes after its own applied sequence and
//! applies them through the same write path as the primary. Errors never stop it: it retries
//! with backoff while the server keeps serving what it has (a replica with nothing yet answers
//! 503 until its first snapshot is in).

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::snapshot::import;
use super::wire::change_from_json;
use crate::error::{Error, Result};
use crate::index::{Index, NoProgress};
use crate::store::IndexDir;

/// Where and how to follow.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The primary's base URL, e.g. `http://10.0.0.5:8080`.
    pub primary: String,
    /// Bearer token for the primary's replication endpoints.
    pub token: Option<String>,
    /// The replica's own data directory.
    pub dir: PathBuf,
    /// Cache memory for the replica's index, MiB.
    pub cache_mb: u64,
    /// How this follower names itself to the primary.
    pub name: String,
    /// Longest long-poll, seconds.
    pub wait_s: u64,
}

/// What the follower knows, for `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct FollowStatus {
    /// The primary's URL.
    pub primary: String,
    /// The primary's latest sequence, as it last said.
    pub primary_sequence: u64,
    /// The replica's applied sequence.
    pub applied_sequence: u64,
    /// Whether the replica has caught up with the primary at least once since it started.
    pub ready: bool,
    /// Since when the replica has been behind, if it is.
    pub behind_since: Option<Instant>,
    /// Changes applied since start.
    pub applied_changes: u64,
    /// Snapshots loaded since start.
    pub snapshots: u64,
    /// The last error talking to the primary, if the last attempt failed.
    pub last_error: Option<String>,
}

impl FollowStatus {
    /// Sequences behind the primary.
    pub fn lag_sequences(&self) -> u64 {
        self.primary_sequence.saturating_sub(self.applied_sequence)
    }

    /// Seconds behind the primary: how long the oldest unapplied change has been known.
    pub fn lag_seconds(&self) -> f64 {
        self.behind_since
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// What the follower needs from the server it feeds.
pub trait Host: Send + Sync {
    /// The index being served.
    fn index(&self) -> Arc<Index>;
    /// Serve this index from now on.
    fn replace(&self, index: Arc<Index>);
    /// A change was applied up to `seq` (wakes long-polls of chained followers).
    fn applied(&self, seq: u64);
}

/// Takes the replica directory's lock and opens the index it holds, if any and if it opens.
/// A directory that is not a replica's (it holds files of its own) is refused.
pub fn open_replica(cfg: &FollowerConfig) -> Result<(Arc<IndexDir>, Option<Index>)> {
    let (dir, _) = IndexDir::for_build(&cfg.dir, true)?;
    if dir.current()?.is_none() {
        return Ok((dir, None));
    }
    match Index::open_in(dir.clone(), cfg.cache_mb) {
        Ok(i) => Ok((dir, Some(i))),
        Err(e) => {
            tracing::warn!(error = %e, "the replica's index does not open: bootstrapping again");
            Ok((dir, None))
        }
    }
}

/// Loads a snapshot from the primary into `dir`, retrying with backoff until one is in.
pub fn load_first_snapshot(
    cfg: &FollowerConfig,
    dir: &Arc<IndexDir>,
    status: &Mutex<FollowStatus>,
) -> Index {
    let mut backoff = Backoff::new();
    loop {
        match snapshot_into(cfg, dir, status) {
            Ok(index) => return index,
            Err(e) => {
                tracing::warn!(error = %e, primary = %cfg.primary, "bootstrap failed; retrying");
                set_error(status, &e);
                backoff.sleep();
            }
        }
    }
}

/// Follows the primary forever; first loads a snapshot (retrying with backoff until one is in)
/// when `bootstrap` is set.
pub fn run(
    cfg: FollowerConfig,
    dir: Arc<IndexDir>,
    bootstrap: bool,
    host: Arc<dyn Host>,
    status: Arc<Mutex<FollowStatus>>,
) {
    if bootstrap {
        host.replace(Arc::new(load_first_snapshot(&cfg, &dir, &status)));
    }
    let mut backoff = Backoff::new();
    let agent = agent(cfg.wait_s + 30);
    loop {
        match step(&cfg, &dir, &agent, host.as_ref(), &status) {
            Ok(()) => backoff.reset(),
            Err(e) => {
                tracing::warn!(error = %e, primary = %cfg.primary, "following failed; retrying");
                set_error(&status, &e);
                backoff.sleep();
            }
        }
    }
}

/// One long-poll and the changes it brings (or a re-snapshot).
fn step(
    cfg: &FollowerConfig,
    dir: &Arc<IndexDir>,
    agent: &ureq::Agent,
    host: &dyn Host,
    status: &Mutex<FollowStatus>,
) -> Result<()> {
    let index = host.index();
    let meta = index.meta();
    // Until caught up once, ask without waiting, so readiness follows as soon as it is true.
    let ready = status.lock().unwrap_or_else(|p| p.into_inner()).ready;
    let wait = if ready { cfg.wait_s } else { 0 };
    let url = format!(
        "{}/v1/replication/changes?since={}&limit=1000&wait={wait}&generation={}",
        cfg.primary, meta.sequence, meta.generation
    );
    let mut resp = request(agent, cfg, &url)?;
    let code = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Error::Storage(format!("reading the primary's answer: {e}")))?;
    if code == 410 {
        tracing::info!("the primary no longer has the changes this replica needs: re-snapshotting");
        return resnapshot(cfg, dir, host, status);
    }
    if code != 200 {
        return Err(Error::Storage(format!(
            "the primary answered {code}: {body}"
        )));
    }
    let page: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| Error::Storage(format!("the primary's changes are not JSON: {e}")))?;
    if page["generation"].as_str() != Some(meta.generation.as_str()) {
        tracing::info!("the primary's history changed (new generation): re-snapshotting");
        return resnapshot(cfg, dir, host, status);
    }
    let primary_seq = page["sequence"].as_u64().unwrap_or(0);
    let changes = page["changes"].as_array().cloned().unwrap_or_default();
    let mut applied = meta.sequence;
    for c in &changes {
        let (seq, ops) = change_from_json(c)?;
        index.apply_replicated(seq, &ops)?;
        applied = seq;
        host.applied(seq);
        status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .applied_changes += 1;
    }
    let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
    s.primary_sequence = primary_seq.max(applied);
    s.applied_sequence = applied;
    s.last_error = None;
    if applied >= s.primary_sequence {
        s.ready = true;
        s.behind_since = None;
    } else if s.behind_since.is_none() {
        s.behind_since = Some(Instant::now());
    }
    Ok(())
}

fn resnapshot(
    cfg: &FollowerConfig,
    dir: &Arc<IndexDir>,
    host: &dyn Host,
    status: &Mutex<FollowStatus>,
) -> Result<()> {
    let index = snapshot_into(cfg, dir, status)?;
    host.replace(Arc::new(index));
    Ok(())
}

/// Downloads a snapshot into a new generation, switches `CURRENT` to it, and opens it.
fn snapshot_into(
    cfg: &FollowerConfig,
    dir: &Arc<IndexDir>,
    status: &Mutex<FollowStatus>,
) -> Result<Index> {
    let agent = agent(3600);
    let url = format!("{}/v1/replication/snapshot", cfg.primary);
    let resp = request(&agent, cfg, &url)?;
    let code = resp.status().as_u16();
    if code != 200 {
        return Err(Error::Storage(format!(
            "the primary's snapshot answered {code}"
        )));
    }
    let reader = BufReader::new(resp.into_body().into_reader());
    let header = import(dir, reader, cfg.cache_mb, &NoProgress)?;
    let index = Index::open_in(dir.clone(), cfg.cache_mb)?;
    tracing::info!(
        sequence = header.sequence,
        points = header.count,
        "snapshot loaded"
    );
    let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
    s.snapshots += 1;
    s.applied_sequence = header.sequence;
    s.primary_sequence = s.primary_sequence.max(header.sequence);
    Ok(index)
}

fn agent(timeout_s: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(timeout_s)))
        .build()
        .into()
}

fn request(
    agent: &ureq::Agent,
    cfg: &FollowerConfig,
    url: &str,
) -> Result<ureq::http::Response<ureq::Body>> {
    let mut req = agent.get(url).header("x-kdsled-follower", &cfg.name);
    if let Some(t) = &cfg.token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    req.call()
        .map_err(|e| Error::Storage(format!("cannot reach the primary at {}: {e}", cfg.primary)))
}

fn set_error(status: &Mutex<FollowStatus>, e: &Error) {
    status.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some(e.to_string());
}

/// Exponential backoff from 100 ms to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
    fn sleep(&mut self) {
        std::thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}
