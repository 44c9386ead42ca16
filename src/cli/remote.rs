//! `--server URL`: the reading commands asked of a running `kdsled serve` over HTTP, since sled
//! lets one process open an index directory and a served one is held by its server.

use std::time::Duration;

use anyhow::{bail, Context};
use kdsled::Index;
use serde_json::Value as Json;

use super::args::SourceArgs;

/// Largest answer body read (a page of 10,000 places with every attribute is ~10 MB).
const MAX_BODY: u64 = 1 << 30;

/// A running server.
pub struct Remote {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Where a reading command reads from.
pub enum Source {
    /// The index directory, opened by this process (boxed: an index is large beside a client).
    Local(Box<Index>),
    /// A server that holds it.
    Remote(Remote),
}

impl SourceArgs {
    /// The server when `--server` is given, else the index opened from `--db`.
    pub fn open(&self) -> anyhow::Result<Source> {
        if let Some(url) = &self.server {
            return Ok(Source::Remote(Remote::new(url, self.token.clone())));
        }
        Ok(Source::Local(Box::new(self.open_local()?)))
    }

    /// The index opened from `--db`, for commands that have no remote form.
    pub fn open_local(&self) -> anyhow::Result<Index> {
        let Some(db) = &self.db else {
            bail!("give the index as --db DIR, or a server holding it as --server URL");
        };
        Ok(Index::open(db, self.cache_mb)?)
    }
}

impl Remote {
    /// The server at `base` (an `http://` URL without a trailing slash).
    pub fn new(base: &str, token: Option<String>) -> Remote {
        Remote {
            base: base.to_string(),
            token,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(600)))
                .build()
                .into(),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The body of `GET path?query`, or the server's error.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        answer(&url, req.call())
    }

    /// `GET path?query` as JSON.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Json> {
        let body = self.get(path, query)?;
        serde_json::from_slice(&body).with_context(|| format!("{}{path}: not JSON", self.base))
    }

    /// `POST path` (no body) as JSON.
    pub fn post_json(&self, path: &str) -> anyhow::Result<Json> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let body = answer(&url, req.send_empty())?;
        serde_json::from_slice(&body).with_context(|| format!("{url}: not JSON"))
    }
}

/// A 2xx answer's body; anything else an error carrying the server's own message.
fn answer(
    url: &str,
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<Vec<u8>> {
    let mut r = r.with_context(|| format!("cannot reach {url}"))?;
    let status = r.status();
    let body = r
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let said = serde_json::from_slice::<Json>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(500).collect());
        bail!("{url} answered {status}: {said}");
    }
    Ok(body)
}
