//! `kdsled tiles`.

use std::process::ExitCode;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use kdsled::tiles::mercator::{tiles_covering, MAX_ZOOM};
use kdsled::tiles::{render, HeatmapParams};
use kdsled::Index;
use rayon::prelude::*;

use super::args::TilesArgs;

fn zooms(s: &str) -> anyhow::Result<(u32, u32)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u32, u32) = (
        a.trim().parse().context("--zoom takes N or N-M")?,
        b.trim().parse().context("--zoom takes N or N-M")?,
    );
    if a > b || b > MAX_ZOOM {
        bail!("--zoom {s}: zooms run from 0 to {MAX_ZOOM}, low to high");
    }
    Ok((a, b))
}

/// Renders every tile over the box at each zoom; empty tiles are written too, so a static
/// server needs no fallback.
pub fn run(a: TilesArgs) -> anyhow::Result<ExitCode> {
    if a.bbox.len() != 4 {
        bail!("--bbox takes MINLON,MINLAT,MAXLON,MAXLAT");
    }
    let (z0, z1) = zooms(&a.zoom)?;
    let filter = super::query::where_filter(a.filter.as_deref())?;
    let params = HeatmapParams {
        radius_m: a.radius,
        saturation: a.saturation,
        filter,
    };
    params.check()?;
    let index = Index::open(&a.db.db, a.db.cache_mb)?;
    let [lon0, lat0, lon1, lat1] = [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]];
    let tiles: Vec<_> = (z0..=z1)
        .flat_map(|z| tiles_covering(z, lon0, lat0, lon1, lat1))
        .collect();
    let bar = super::progress::new_bar(Some(tiles.len() as u64));
    bar.set_message("tiles");
    let started = std::time::Instant::now();
    let non_empty = AtomicUsize::new(0);
    // Tiles on every core: most are small and render on one thread, and their PNG encoding and
    // file write are serial work of their own.
    tiles.par_iter().try_for_each(|t| -> anyhow::Result<()> {
        let tile = render(&index, *t, &params)?;
        if !tile.is_empty() {
            non_empty.fetch_add(1, Ordering::Relaxed);
        }
        let dir = a.out.join(t.z.to_string()).join(t.x.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join(format!("{}.png", t.y)), tile.png())?;
        bar.inc(1);
        Ok(())
    })?;
    let non_empty = non_empty.into_inner();
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    status!(
        "wrote {} tiles ({non_empty} non-empty) to {} in {secs:.1} s ({:.0} tiles/s)",
        tiles.len(),
        a.out.display(),
        tiles.len() as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
