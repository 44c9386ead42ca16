//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A k-d tree spatial index persisted in sled.
#[derive(Parser, Debug)]
#[command(name = "kdsled", version, about)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print no status lines or progress, only data and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour in logs: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an index from a file of points.
    Build(BuildArgs),
    /// Points within a radius of a location.
    Near(NearArgs),
    /// The k nearest points to a location.
    Nearest(NearestArgs),
    /// Points inside a bounding box.
    Within(WithinArgs),
    /// Counts (and sums) per value of an attribute within a radius.
    Stats(StatsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `kdsled man | man -l -`.
    Man,
    /// Describe an index.
    Info(SourceArgs),
    /// Walk every node and check every invariant.
    Verify(SourceArgs),
    /// Insert points from a file into an existing index (durable when it returns).
    Insert(InsertArgs),
    /// Delete points by id, one id per line of a file.
    Delete(DeleteArgs),
    /// Build one partition's tree from points on standard input; write its nodes as flat lines
    /// (a Hadoop Streaming reducer or Spark `RDD.pipe` stage).
    PartitionBuild(PartitionBuildArgs),
    /// Load flat node files (from partition-build): check each partition's tree, then build a
    /// new index of leaf buckets from their points.
    Import(ImportArgs),
    /// Pre-render heatmap tiles to DIR/{z}/{x}/{y}.png.
    Tiles(TilesArgs),
    /// Upgrade an index to this binary's on-disk format version (safe to interrupt and rerun).
    Migrate(RewriteArgs),
    /// Rewrite an index into a fresh, densely packed database (reclaims the space deletes leave).
    Compact(RewriteArgs),
    /// Serve an index over HTTP (with no --db: the bundled GeoNames data, built on first start).
    Serve(ServeArgs),
}

/// `kdsled insert`.
#[derive(Args, Debug)]
pub struct InsertArgs {
    /// The index.
    #[command(flatten)]
    pub db: DbArgs,
    /// The input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Replace points whose id exists instead of failing.
    #[arg(long)]
    pub upsert: bool,
    /// Skip rows with bad coordinates (and report how many) instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// `kdsled delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The index.
    #[command(flatten)]
    pub db: DbArgs,
    /// File of ids, one per line (`-` for standard input).
    #[arg(long)]
    pub ids: PathBuf,
}

/// `kdsled partition-build`.
#[derive(Args, Debug)]
pub struct PartitionBuildArgs {
    /// The input (standard input by default).
    #[command(flatten)]
    pub input: InputArgs,
}

/// `kdsled import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The new index.
    #[command(flatten)]
    pub db: DbArgs,
    /// Root nodes: a file or a directory of part files.
    #[arg(long)]
    pub roots: PathBuf,
    /// Branch nodes: a file or a directory of part files.
    #[arg(long)]
    pub branches: PathBuf,
    /// Distance metric of the points.
    #[arg(long, value_enum, default_value_t = MetricArg::Haversine)]
    pub metric: MetricArg,
    /// Replace an existing index.
    #[arg(long)]
    pub force: bool,
}

/// `kdsled tiles`.
#[derive(Args, Debug)]
pub struct TilesArgs {
    /// The index.
    #[command(flatten)]
    pub db: SourceArgs,
    /// MINLON,MINLAT,MAXLON,MAXLAT of the area to cover.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub bbox: Vec<f64>,
    /// Zoom levels: one (`11`) or a range (`8-12`).
    #[arg(long)]
    pub zoom: String,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Walking distance, metres.
    #[arg(long, default_value_t = 1200.0)]
    pub radius: f64,
    /// Summed closeness (km) at which a pixel saturates.
    #[arg(long, default_value_t = 4.0)]
    pub saturation: f64,
    /// Only points whose attribute FIELD equals VALUE.
    #[arg(long = "where")]
    pub filter: Option<String>,
}

/// `kdsled serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Index directory; without it, the bundled data is built into --default-dir on first start.
    #[arg(long, env = "KDSLED_DB")]
    pub db: Option<PathBuf>,
    /// Where the bundled data's index goes when --db is not given.
    #[arg(long, default_value = "kdsled-data/cities1000")]
    pub default_dir: PathBuf,
    /// The GeoNames file built when --db is not given (default: the bundled data/cities1000.txt.gz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on: HOST:PORT, a host name such as localhost:8080, or :PORT for every
    /// interface (port 0 picks a free port).
    #[arg(long, env = "KDSLED_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: std::net::SocketAddr,
    /// Refuse every write route with 405.
    #[arg(long)]
    pub read_only: bool,
    /// Cache memory, MiB: half for sled's page cache, a quarter for decoded tree nodes, a quarter
    /// for leaves' payload JSON.
    #[arg(long, default_value_t = kdsled::index::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Threads that run index work (default: one per core; more hide disk latency on indexes
    /// larger than the cache).
    #[arg(long, default_value_t = 0)]
    pub query_threads: usize,
    /// Follow this primary as a read-only replica (e.g. http://10.0.0.5:8080); --db is then the
    /// replica's own data directory, bootstrapped from the primary's snapshot when empty.
    #[arg(long, value_parser = parse_primary)]
    pub follow: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on write routes.
    #[arg(long, env = "KDSLED_WRITE_TOKEN", hide_env_values = true)]
    pub write_token: Option<String>,
    /// Require this bearer token on the replication endpoints; a replica sends it to its primary.
    #[arg(long, env = "KDSLED_REPLICATION_TOKEN", hide_env_values = true)]
    pub replication_token: Option<String>,
    /// Committed writes kept for replicas; one further behind re-snapshots.
    #[arg(long, default_value_t = kdsled::index::DEFAULT_CHANGE_RETENTION)]
    pub retain_changes: u64,
    /// How this replica names itself in its primary's metrics (default: host name and pid).
    #[arg(long)]
    pub follower_name: Option<String>,
    /// A base map under the heatmap on the map page, e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png (off by default).
    #[arg(long)]
    pub basemap_url: Option<String>,
    /// Attribution shown with the base map.
    #[arg(long)]
    pub basemap_attribution: Option<String>,
    /// Let pages from this origin (e.g. https://maps.example.org, or `*` for any) call the API
    /// from a browser: CORS headers and answered preflights.
    #[arg(long, env = "KDSLED_CORS_ORIGIN")]
    pub cors_origin: Option<String>,
}

/// Where the index is.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// Index directory.
    #[arg(long, env = "KDSLED_DB")]
    pub db: PathBuf,
    /// Cache memory, MiB: half for sled's page cache, a quarter for decoded tree nodes, a quarter
    /// for leaves' payload JSON.
    #[arg(long, default_value_t = kdsled::index::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
}

/// An index directory, or a running server that holds one (sled lets one process open a
/// directory, so a served index is inspected through its server).
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["db", "server"])))]
pub struct SourceArgs {
    /// Index directory.
    #[arg(long, env = "KDSLED_DB")]
    pub db: Option<PathBuf>,
    /// Ask the `kdsled serve` at this http:// URL instead of opening a directory (taken over
    /// --db when both are given).
    #[arg(long, env = "KDSLED_SERVER", value_parser = parse_server)]
    pub server: Option<String>,
    /// With --server: the server's write token, which `verify` needs when one is set.
    #[arg(long, env = "KDSLED_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Cache memory, MiB: half for sled's page cache, a quarter for decoded tree nodes, a quarter
    /// for leaves' payload JSON.
    #[arg(long, default_value_t = kdsled::index::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
}

/// Input file formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatArg {
    /// GeoNames dump (cities1000.txt and friends).
    Geonames,
    /// Comma-separated values.
    Csv,
    /// Tab-separated values.
    Tsv,
}

/// Distance metrics.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricArg {
    /// Great-circle metres on lon/lat degrees.
    Haversine,
    /// Straight-line distance in k dimensions.
    Euclidean,
}

/// How to read points from a file.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Input file (`-`, the default, reads standard input; `.gz` is decompressed).
    #[arg(long, default_value = "-")]
    pub input: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Geonames)]
    pub format: FormatArg,
    /// The first row is a header (the default for csv and tsv).
    #[arg(long, overrides_with = "no_header")]
    pub header: bool,
    /// The first row is data.
    #[arg(long)]
    pub no_header: bool,
    /// Point id column (header name or 0-based index); without it, the row number is the id.
    #[arg(long)]
    pub id: Option<String>,
    /// Longitude column (default: a header column named lon, lng, longitude or x).
    #[arg(long)]
    pub lon: Option<String>,
    /// Latitude column (default: a header column named lat, latitude or y).
    #[arg(long)]
    pub lat: Option<String>,
    /// Coordinate columns, comma-separated, for euclidean indexes.
    #[arg(long, value_delimiter = ',')]
    pub coords: Option<Vec<String>>,
    /// Distance metric (default: haversine with --lon/--lat, euclidean with --coords).
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Names for the columns of a file without a header, comma-separated (with --no-header):
    /// attributes are stored under these names, and --id/--lon/--lat may use them.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
}

/// `kdsled build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Where the index goes.
    #[command(flatten)]
    pub db: DbArgs,
    /// The input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Skip rows with bad coordinates (and report how many) instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Replace an existing index.
    #[arg(long)]
    pub force: bool,
    /// Memory for the points held at once, MiB: a larger input is spilled to temporary files
    /// beside the index and built in partitions that each fit (peak memory is about this plus
    /// --cache-mb plus ~150 MB for sled's write path).
    #[arg(long, default_value_t = kdsled::index::DEFAULT_BUILD_MEMORY_MB)]
    pub memory_mb: u64,
    /// Most points a leaf holds: leaves are one sled record each, so larger leaves mean fewer
    /// records (less memory and disk per point) but more bytes read per visit. Default: 128,
    /// fewer for points of more than 7 dimensions (a leaf record stays under 7 KiB).
    #[arg(long)]
    pub leaf_size: Option<usize>,
}

/// `kdsled migrate` and `kdsled compact`: commands that rewrite a whole index.
#[derive(Args, Debug)]
pub struct RewriteArgs {
    /// The index.
    #[command(flatten)]
    pub db: DbArgs,
    /// Memory for the points held at once while rewriting, MiB (as for build).
    #[arg(long, default_value_t = kdsled::index::DEFAULT_BUILD_MEMORY_MB)]
    pub memory_mb: u64,
}

/// Output formats of queries.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputArg {
    /// `{"count", "truncated", "nodes_read", "results"}`.
    Json,
    /// An RFC 7946 FeatureCollection.
    Geojson,
    /// One line per point: id, coordinates, distance.
    Tsv,
}

/// A query location.
#[derive(Args, Debug, Clone)]
pub struct PointArgs {
    /// Longitude (haversine indexes).
    #[arg(long, allow_hyphen_values = true)]
    pub lon: Option<f64>,
    /// Latitude (haversine indexes).
    #[arg(long, allow_hyphen_values = true)]
    pub lat: Option<f64>,
    /// Coordinates, comma-separated (euclidean indexes).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub point: Option<Vec<f64>>,
}

/// `kdsled near`.
#[derive(Args, Debug)]
pub struct NearArgs {
    /// The index.
    #[command(flatten)]
    pub db: SourceArgs,
    /// The centre (not with --queries).
    #[command(flatten)]
    pub at: PointArgs,
    /// Radius: metres for haversine indexes.
    #[arg(long)]
    pub radius: f64,
    /// At most this many points in the answer (the count covers all).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Json)]
    pub output: OutputArg,
    /// A file of `qid<TAB>lon<TAB>lat` lines (or `qid<TAB>x<TAB>y...`) to query in one run.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// With --queries: print `qid<TAB>count` per query.
    #[arg(long)]
    pub counts: bool,
    /// With --queries: worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `kdsled nearest`.
#[derive(Args, Debug)]
pub struct NearestArgs {
    /// The index.
    #[command(flatten)]
    pub db: SourceArgs,
    /// The query location.
    #[command(flatten)]
    pub at: PointArgs,
    /// How many points.
    #[arg(short, long)]
    pub k: usize,
    /// Only points within this distance.
    #[arg(long)]
    pub max_distance: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Json)]
    pub output: OutputArg,
}

/// `kdsled stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The index.
    #[command(flatten)]
    pub db: DbArgs,
    /// The centre.
    #[command(flatten)]
    pub at: PointArgs,
    /// Radius: metres for haversine indexes.
    #[arg(long)]
    pub radius: f64,
    /// The attribute to group by.
    #[arg(long)]
    pub group_by: String,
    /// A numeric attribute to sum per group.
    #[arg(long)]
    pub sum: Option<String>,
    /// Only points whose attribute FIELD equals VALUE (FIELD:VALUE).
    #[arg(long = "where", value_name = "FIELD:VALUE")]
    pub filter: Option<String>,
}

/// `kdsled within`.
#[derive(Args, Debug)]
pub struct WithinArgs {
    /// The index.
    #[command(flatten)]
    pub db: SourceArgs,
    /// MINLON,MINLAT,MAXLON,MAXLAT (or the k minimums then the k maximums for euclidean
    /// indexes). MINLON > MAXLON crosses the antimeridian.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        required = true
    )]
    pub bbox: Vec<f64>,
    /// At most this many points in the answer.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Json)]
    pub output: OutputArg,
}

/// `HOST:PORT`, a resolvable `name:PORT`, or `:PORT` (every interface).
fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let spelled = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    spelled
        .to_socket_addrs()
        .map_err(|e| format!("{s:?} is not HOST:PORT, name:PORT or :PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A server's `http://` URL, without a trailing slash.
fn parse_server(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "{s}: this build speaks plain HTTP only; use the server's http:// address"
        ));
    }
    if !lower.starts_with("http://") {
        return Err(format!("{s}: give the server as an http:// URL"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// A primary's `http://` URL. This build speaks plain HTTP to its primary, so an `https://` one
/// is refused at start rather than retried forever.
fn parse_primary(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "{s}: this build follows a primary over plain HTTP only; put the replica and the \
             primary on a private network, or terminate TLS in front of the primary and follow \
             its plain-HTTP address"
        ));
    }
    if !lower.starts_with("http://") {
        return Err(format!("{s}: the primary must be an http:// URL"));
    }
    Ok(s.trim_end_matches('/').to_string())
}
