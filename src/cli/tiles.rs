//! `kdsled tiles`.

use std::process::ExitCode;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use kdsled::tiles::mercator::{tiles_covering, TileId, MAX_ZOOM};
use kdsled::tiles::{render, HeatmapParams};
use rayon::prelude::*;

use super::args::TilesArgs;
use super::remote::Source;

/// Tiles fetched at once from a server.
const REMOTE_REQUESTS: usize = 8;

/// Whether a tile's PNG has a pixel that is not fully transparent.
fn draws_anything(png: &[u8]) -> anyhow::Result<bool> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut buf)?;
    let px = &buf[..frame.buffer_size()];
    Ok(match frame.color_type {
        png::ColorType::Rgba => px.chunks_exact(4).any(|p| p[3] != 0),
        // Without alpha every pixel is drawn.
        _ => !px.is_empty(),
    })
}

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
    let source = a.db.open()?;
    let [lon0, lat0, lon1, lat1] = [a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]];
    let tiles: Vec<_> = (z0..=z1)
        .flat_map(|z| tiles_covering(z, lon0, lat0, lon1, lat1))
        .collect();
    let bar = super::progress::new_bar(Some(tiles.len() as u64));
    bar.set_message("tiles");
    let started = std::time::Instant::now();
    let non_empty = AtomicUsize::new(0);
    // The tile parameters as a server takes them, the same for every tile.
    let mut query = vec![
        ("radius", a.radius.to_string()),
        ("saturation", a.saturation.to_string()),
    ];
    if let Some(w) = &a.filter {
        query.push(("where", w.clone()));
    }
    // Tiles on every core: most are small and render on one thread, and their PNG encoding and
    // file write are serial work of their own.
    let one = |t: &TileId| -> anyhow::Result<()> {
        let png = match &source {
            Source::Local(index) => {
                let tile = render(index, *t, &params)?;
                if !tile.is_empty() {
                    non_empty.fetch_add(1, Ordering::Relaxed);
                }
                tile.png()
            }
            Source::Remote(r) => {
                let png = r.get(
                    &format!("/v1/tiles/heatmap/{}/{}/{}.png", t.z, t.x, t.y),
                    &query,
                )?;
                if draws_anything(&png)
                    .with_context(|| format!("the server's tile {t:?} is not a PNG"))?
                {
                    non_empty.fetch_add(1, Ordering::Relaxed);
                }
                png
            }
        };
        let dir = a.out.join(t.z.to_string()).join(t.x.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join(format!("{}.png", t.y)), png)?;
        bar.inc(1);
        Ok(())
    };
    match &source {
        Source::Local(_) => tiles.par_iter().try_for_each(one)?,
        // Requests wait on the network and the server's renders: more of them in flight than
        // this machine has cores keeps the server busy.
        Source::Remote(_) => rayon::ThreadPoolBuilder::new()
            .num_threads(REMOTE_REQUESTS)
            .build()
            .context("starting the request threads")?
            .install(|| tiles.par_iter().try_for_each(one))?,
    }
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
