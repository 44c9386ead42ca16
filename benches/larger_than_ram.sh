#!/usr/bin/env bash
# Builds and queries a synthetic index far larger than its caches, and reports peak memory.
#
#   bash benches/larger_than_ram.sh            # 10,000,000 points (about 25 min and 6 GB of disk here)
#   POINTS=1000000 bash benches/larger_than_ram.sh
#
# The points stream from a generator into `kdsled build --input -`, so the input never exists as
# a file. Half are uniform on the sphere, half in 1,000 dense clusters. The build runs with
# --cache-mb $CACHE_MB and --memory-mb $MEMORY_MB; the query runs with --cache-mb $CACHE_MB on
# one thread. Peak RSS comes from /usr/bin/time -v. Settings: POINTS, CACHE_MB, MEMORY_MB,
# QUERIES, WORK (a directory with room for the index: ~600 MB per million points), REUSE=1 to
# query an index a previous run left in WORK instead of building it again.
set -euo pipefail

POINTS=${POINTS:-10000000}
CACHE_MB=${CACHE_MB:-64}
MEMORY_MB=${MEMORY_MB:-128}
QUERIES=${QUERIES:-20000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/larger-than-ram}
DB="$WORK/index-$POINTS"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
KDSLED="$ROOT/target/release/kdsled"
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
    echo "needs GNU time at /usr/bin/time (Debian: apt-get install time)" >&2
    exit 1
fi
mkdir -p "$WORK"

# id, lon, lat, category.
generate() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        srand(seed); pi = atan2(0, -1)
        for (c = 0; c < 1000; c++) {
            z = 2 * rand() - 1
            clat[c] = atan2(z, sqrt(1 - z * z)) * 180 / pi; clon[c] = rand() * 360 - 180
        }
        for (i = 0; i < n; i++) {
            if (i % 2 == 0) {
                z = 2 * rand() - 1
                lat = atan2(z, sqrt(1 - z * z)) * 180 / pi; lon = rand() * 360 - 180
            } else {
                c = int(rand() * 1000)
                lat = clat[c] + (rand() + rand() + rand() - 1.5) * 0.4
                lon = clon[c] + (rand() + rand() + rand() - 1.5) * 0.4
                if (lat > 90) lat = 90; if (lat < -90) lat = -90
                if (lon > 180) lon -= 360; if (lon < -180) lon += 360
            }
            printf "%d\t%.6f\t%.6f\tc%d\n", i, lon, lat, i % 7
        }
    }'
}

peak_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$1"; }

if [ "${REUSE:-0}" = 1 ] && [ -f "$WORK/build.time" ] && [ -d "$DB" ]; then
    echo "== reusing $DB"
else
    echo "== build: $POINTS points, --cache-mb $CACHE_MB --memory-mb $MEMORY_MB"
    generate "$POINTS" 42 | $TIME -v -o "$WORK/build.time" "$KDSLED" build --db "$DB" --force \
        --input - --format tsv --no-header --id 0 --lon 1 --lat 2 \
        --cache-mb "$CACHE_MB" --memory-mb "$MEMORY_MB" 2>&1 | tee "$WORK/build.out"
fi
BUILD_RSS=$(peak_mb "$WORK/build.time")
DISK_MB=$(du -sm "$DB" | cut -f1)

# Queries: half at random points, half inside the clusters (generated with another seed).
generate "$QUERIES" 7 | awk -F'\t' '{ print "q" $1 "\t" $2 "\t" $3 }' > "$WORK/queries.tsv"

# Memory of opening the index alone: what sled holds for an index of this size before any
# query.
$TIME -v -o "$WORK/open.time" "$KDSLED" info --db "$DB" --cache-mb "$CACHE_MB" > /dev/null
OPEN_RSS=$(peak_mb "$WORK/open.time")

declare -A RATE RSS VISITS
for radius in 1200 25000; do
    echo "== query: $QUERIES queries at $radius m, --cache-mb $CACHE_MB, one thread"
    $TIME -v -o "$WORK/query-$radius.time" "$KDSLED" near --db "$DB" --cache-mb "$CACHE_MB" \
        --queries "$WORK/queries.tsv" --radius "$radius" --counts --threads 1 \
        > "$WORK/counts-$radius.tsv" 2> "$WORK/query-$radius.err"
    cat "$WORK/query-$radius.err"
    RATE[$radius]=$(sed -n 's/.*: \([0-9]*\) queries\/s.*/\1/p' "$WORK/query-$radius.err")
    VISITS[$radius]=$(sed -n 's/.*queries\/s, \([0-9.]*\) nodes.*/\1/p' "$WORK/query-$radius.err")
    RSS[$radius]=$(peak_mb "$WORK/query-$radius.time")
done

echo
echo "| points | on disk | build wall | build peak RSS | open-only peak RSS | radius | queries/s (1 thread) | nodes visited/query | query peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|"
for radius in 1200 25000; do
    echo "| $POINTS | ${DISK_MB} MB | $(wall "$WORK/build.time") | ${BUILD_RSS} MB | ${OPEN_RSS} MB | $radius m | ${RATE[$radius]} | ${VISITS[$radius]} | ${RSS[$radius]} MB |"
done
