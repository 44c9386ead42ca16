//! `kdsled build`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use kdsled::index::{build, BuildOptions};
use kdsled::input::{self, Column, Format, InputSpec};
use kdsled::Metric;

use super::args::{BuildArgs, FormatArg, InputArgs, MetricArg};
use super::progress::BarProgress;

/// Turns the input flags into an [`InputSpec`].
pub fn input_spec(a: &InputArgs) -> anyhow::Result<InputSpec> {
    let format = match a.format {
        FormatArg::Geonames => Format::Geonames,
        FormatArg::Csv => Format::Csv,
        FormatArg::Tsv => Format::Tsv,
    };
    let metric = match (a.metric, &a.coords) {
        (Some(MetricArg::Haversine), _) => Metric::Haversine,
        (Some(MetricArg::Euclidean), _) => Metric::Euclidean,
        (None, Some(_)) => Metric::Euclidean,
        (None, None) => Metric::Haversine,
    };
    if format == Format::Geonames {
        if a.lon.is_some() || a.lat.is_some() || a.coords.is_some() || a.id.is_some() {
            bail!("--format geonames has fixed columns; --id, --lon, --lat and --coords are for csv and tsv");
        }
        if metric != Metric::Haversine {
            bail!("--format geonames holds lon/lat points: use the haversine metric");
        }
        return Ok(InputSpec::geonames());
    }
    let coords = match (&a.coords, &a.lon, &a.lat) {
        (Some(c), None, None) => c.iter().map(|s| Column::parse(s)).collect(),
        (None, Some(lon), Some(lat)) => vec![Column::parse(lon), Column::parse(lat)],
        (Some(_), _, _) => bail!("give either --coords or --lon and --lat, not both"),
        // A header (or --columns) naming lon/lng/longitude/x and lat/latitude/y needs no flags.
        (None, None, None) if metric == Metric::Haversine => InputSpec::detected_lonlat(),
        _ => bail!("name the coordinate columns: --lon COL --lat COL, or --coords COL,COL,..."),
    };
    if a.columns.is_some() && !a.no_header {
        bail!("--columns names the columns of a file without a header: add --no-header");
    }
    Ok(InputSpec {
        format,
        header: !a.no_header,
        id: a.id.as_deref().map(Column::parse),
        coords,
        metric,
        names: a.columns.clone(),
    })
}

/// Builds an index and prints a summary.
pub fn run(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let spec = input_spec(&a.input)?;
    let reader = input::open(&a.input.input, &spec)?;
    let opts = BuildOptions {
        metric: spec.metric,
        dims: spec.dims(),
        cache_mb: a.db.cache_mb,
        memory_mb: a.memory_mb,
        skip_invalid: a.skip_invalid,
        force: a.force,
        history: None,
        leaf_size: a
            .leaf_size
            .unwrap_or_else(|| kdsled::store::format::default_leaf_size(spec.dims())),
    };
    let progress = BarProgress::new();
    let summary = build(&a.db.db, reader, &opts, &progress)
        .with_context(|| format!("building {}", a.db.db.display()))?;
    for e in &summary.skipped_examples {
        eprintln!("skipped: {e}");
    }
    if summary.skipped > 0 {
        eprintln!("skipped {} invalid rows", summary.skipped);
    }
    status!(
        "built {}: {} points in {:.2} s, depth {}, {} partition{}, {} bytes on disk",
        a.db.db.display(),
        summary.points,
        summary.seconds,
        summary.depth,
        summary.partitions,
        if summary.partitions == 1 { "" } else { "s" },
        summary.bytes_on_disk
    );
    Ok(ExitCode::SUCCESS)
}
