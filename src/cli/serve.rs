//! `kdsled serve`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use kdsled::index::{build, BuildOptions};
use kdsled::input::{self, InputSpec};
use kdsled::replication::follower::{self, FollowStatus, FollowerConfig};
use kdsled::server::{serve, AppState, ServerConfig};
use kdsled::{Index, Metric};

use super::args::ServeArgs;
use super::progress::BarProgress;

/// The bundled GeoNames file: next to the sources when run through cargo, else under ./data.
fn bundled_data() -> anyhow::Result<PathBuf> {
    let candidates = [
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/cities1000.txt.gz"
        )),
        PathBuf::from("data/cities1000.txt.gz"),
    ];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    bail!("the bundled data/cities1000.txt.gz was not found: pass --db DIR or --data FILE")
}

/// Builds the default index from the bundled data unless it is already there.
fn default_index(dir: &Path, data: Option<&Path>, cache_mb: u64) -> anyhow::Result<()> {
    if kdsled::store::directory::has_index(dir) {
        return Ok(());
    }
    let data = match data {
        Some(d) => d.to_path_buf(),
        None => bundled_data()?,
    };
    tracing::info!(data = %data.display(), index = %dir.display(), "first start: building the index");
    let spec = InputSpec::geonames();
    let opts = BuildOptions {
        metric: Metric::Haversine,
        dims: 2,
        cache_mb,
        memory_mb: kdsled::index::DEFAULT_BUILD_MEMORY_MB,
        skip_invalid: false,
        force: dir.exists(),
        history: None,
        leaf_size: kdsled::store::format::default_leaf_size(2),
    };
    let summary = build(dir, input::open(&data, &spec)?, &opts, &BarProgress::new())
        .with_context(|| format!("building {}", dir.display()))?;
    tracing::info!(
        points = summary.points,
        seconds = format!("{:.1}", summary.seconds),
        depth = summary.depth,
        "index built"
    );
    Ok(())
}

/// Opens (building if needed, or bootstrapping from a primary) the index and serves it until a
/// signal.
pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let follow = match &a.follow {
        Some(primary) => {
            let Some(dir) = a.db.clone() else {
                bail!("--follow needs --db DIR: the replica's own data directory");
            };
            let name = a.follower_name.clone().unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
                format!("{host}:{}", std::process::id())
            });
            Some(FollowerConfig {
                primary: primary.trim_end_matches('/').to_string(),
                token: a.replication_token.clone(),
                dir,
                cache_mb: a.cache_mb,
                name,
                wait_s: 20,
            })
        }
        None => None,
    };
    let status = Arc::new(Mutex::new(FollowStatus {
        primary: a.follow.clone().unwrap_or_default(),
        ..FollowStatus::default()
    }));
    let mut replica = None;
    let (index, dir) = match &follow {
        Some(cfg) => {
            let (replica_dir, index) = follower::open_replica(cfg)?;
            let bootstrap = index.is_none();
            let index = match index {
                Some(i) => i,
                None => {
                    tracing::info!(primary = %cfg.primary, "replica: loading a first snapshot in the background; /v1 routes answer 503 until it is in");
                    // Served until the snapshot is in; the server answers 503 meanwhile.
                    Index::create_in(
                        Arc::new(kdsled::store::SledStore::temporary()?),
                        Metric::Haversine,
                        2,
                    )?
                }
            };
            replica = Some((replica_dir, bootstrap));
            (index, cfg.dir.clone())
        }
        None => {
            let dir = match &a.db {
                Some(d) => d.clone(),
                None => {
                    default_index(&a.default_dir, a.data.as_deref(), a.cache_mb)?;
                    a.default_dir.clone()
                }
            };
            (Index::open(&dir, a.cache_mb)?, dir)
        }
    };
    index.set_change_retention(a.retain_changes);
    let index = Arc::new(index);
    let meta = index.meta();
    let config = ServerConfig {
        read_only: a.read_only,
        request_timeout: Duration::from_secs(a.request_timeout.max(1)),
        query_threads: a.query_threads,
        write_token: a.write_token.clone(),
        replication_token: a.replication_token.clone(),
        follow: follow.as_ref().map(|f| f.primary.clone()),
        basemap_url: a.basemap_url.clone(),
        basemap_attribution: a.basemap_attribution.clone(),
        cors_origin: a.cors_origin.clone(),
        // The bundled gazetteer is CC-BY: its attribution goes on the map page.
        data_attribution: (a.db.is_none() && a.follow.is_none() && a.data.is_none()).then(|| {
            "Places: <a href=\"https://www.geonames.org/\">GeoNames</a> (CC BY 3.0)".to_string()
        }),
        ..ServerConfig::default()
    };
    let mut state = AppState::new(index, config)?;
    if let (Some(cfg), Some((replica_dir, bootstrap))) = (follow, replica) {
        state = state.following(status.clone());
        state.set_loading(bootstrap);
        let host: Arc<dyn follower::Host> = Arc::new(state.clone());
        std::thread::Builder::new()
            .name("kdsled-follower".into())
            .spawn(move || follower::run(cfg, replica_dir, bootstrap, host, status))
            .context("starting the follower")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let announcer = state.index();
    runtime
        .block_on(serve(state, a.addr, |bound| {
            announcer.announce(&format!("serving http://{bound}"));
            tracing::info!(
                points = meta.count,
                metric = meta.metric.name(),
                dims = meta.dims,
                index = %dir.display(),
                read_only = a.read_only,
                "listening on http://{bound}"
            );
        }))
        .with_context(|| format!("cannot listen on {} (--addr)", a.addr))?;
    Ok(ExitCode::SUCCESS)
}
