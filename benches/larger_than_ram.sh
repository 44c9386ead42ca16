#!/usr/bin/env bash
# Builds and queries a synthetic index far larger than its caches, and reports peak memory.
#
#   bash benches/larger_than_ram.sh            # 10,000,000 points (about 2 min and 0.8 GB of disk here)
#   POINTS=100000000 bash benches/larger_than_ram.sh
#
# The points stream from a generator into `kdsled build --input -`, so the input never exists as
# a file. Half are uniform on the sphere, half in 1,000 dense clusters. The build runs with
# --cache-mb $CACHE_MB and --memory-mb $MEMORY_MB; the queries run with --cache-mb $CACHE_MB on
# one thread, and so does `verify`, each inside a memory cgroup of $CGROUP_MB MB (cgroup v1,
# needs root; CGROUP_MB=0 skips it) beside GNU time's peak RSS: an OOM kill fails the script.
# Settings: POINTS, CACHE_MB, MEMORY_MB, QUERIES, LEAF_SIZE (default: the build's), CGROUP_MB,
# WORK (a directory with room for the index: ~80 MB per million points, and as much again for
# the build's spill files), REUSE=1 to query an index a previous run left in WORK.
set -euo pipefail

POINTS=${POINTS:-10000000}
CACHE_MB=${CACHE_MB:-64}
MEMORY_MB=${MEMORY_MB:-256}
CGROUP_MB=${CGROUP_MB:-256}
LEAF_SIZE=${LEAF_SIZE:-}
QUERIES=${QUERIES:-20000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/larger-than-ram}
DB="$WORK/index-$POINTS${LEAF_SIZE:+-leaf$LEAF_SIZE}"
LEAF_FLAG=()
if [ -n "$LEAF_SIZE" ]; then LEAF_FLAG=(--leaf-size "$LEAF_SIZE"); fi

# Runs a command inside a fresh memory cgroup of CGROUP_MB MB (when set and possible); exits
# the script if the kernel killed it for memory.
CG=""
in_cgroup() {
    if [ "$CGROUP_MB" = 0 ] || [ ! -w /sys/fs/cgroup/memory ]; then
        "$@"
        return
    fi
    CG=/sys/fs/cgroup/memory/kdsled-bench-$$
    mkdir -p "$CG"
    echo $((CGROUP_MB * 1024 * 1024)) > "$CG/memory.limit_in_bytes"
    local rc=0
    sh -c 'echo $$ > "$1/tasks"; shift; exec "$@"' sh "$CG" "$@" || rc=$?
    local peak; peak=$(( $(cat "$CG/memory.max_usage_in_bytes") / 1024 / 1024 ))
    local oom; oom=$(awk '/oom_kill / { print $2 }' "$CG/memory.oom_control" 2>/dev/null || echo 0)
    rmdir "$CG" 2>/dev/null || true
    CG=""
    echo "   (cgroup of $CGROUP_MB MB: peak charge $peak MB, OOM kills ${oom:-0})" >&2
    if [ "$rc" != 0 ] || [ "${oom:-0}" != 0 ]; then
        echo "killed or failed inside the $CGROUP_MB MB cgroup (exit $rc)" >&2
        exit 1
    fi
}
trap '[ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true' EXIT

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
        --cache-mb "$CACHE_MB" --memory-mb "$MEMORY_MB" "${LEAF_FLAG[@]}" 2>&1 | tee "$WORK/build.out"
fi
BUILD_RSS=$(peak_mb "$WORK/build.time")
DISK_MB=$(du -sm "$DB" | cut -f1)

# Queries: half at random points, half inside the clusters (generated with another seed).
generate "$QUERIES" 7 | awk -F'\t' '{ print "q" $1 "\t" $2 "\t" $3 }' > "$WORK/queries.tsv"

# Memory of opening the index alone: what sled holds for an index of this size before any
# query.
$TIME -v -o "$WORK/open.time" "$KDSLED" info --db "$DB" --cache-mb "$CACHE_MB" > /dev/null
OPEN_RSS=$(peak_mb "$WORK/open.time")

declare -A RATE RSS VISITS READS
for radius in 1200 25000; do
    echo "== query: $QUERIES queries at $radius m, --cache-mb $CACHE_MB, one thread"
    in_cgroup $TIME -v -o "$WORK/query-$radius.time" "$KDSLED" near --db "$DB" --cache-mb "$CACHE_MB" \
        --queries "$WORK/queries.tsv" --radius "$radius" --counts --threads 1 \
        > "$WORK/counts-$radius.tsv" 2> "$WORK/query-$radius.err"
    cat "$WORK/query-$radius.err"
    RATE[$radius]=$(sed -n 's/.*: \([0-9]*\) queries\/s.*/\1/p' "$WORK/query-$radius.err")
    VISITS[$radius]=$(sed -n 's/.*queries\/s, \([0-9.]*\) nodes.*/\1/p' "$WORK/query-$radius.err")
    READS[$radius]=$(sed -n 's/.*per query, \([0-9.]*\) read.*/\1/p' "$WORK/query-$radius.err")
    RSS[$radius]=$(peak_mb "$WORK/query-$radius.time")
done

echo "== verify, --cache-mb $CACHE_MB"
in_cgroup $TIME -v -o "$WORK/verify.time" "$KDSLED" verify --db "$DB" --cache-mb "$CACHE_MB"
VERIFY_RSS=$(peak_mb "$WORK/verify.time")
BYTES=$(du -sb "$DB" | cut -f1)

echo
echo "| points | on disk | bytes/point | build wall | build peak RSS | open-only peak RSS | verify peak RSS | radius | queries/s (1 thread) | visits/query | sled reads/query | query peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for radius in 1200 25000; do
    echo "| $POINTS | ${DISK_MB} MB | $((BYTES / POINTS)) | $(wall "$WORK/build.time") | ${BUILD_RSS} MB | ${OPEN_RSS} MB | ${VERIFY_RSS} MB | $radius m | ${RATE[$radius]} | ${VISITS[$radius]} | ${READS[$radius]} | ${RSS[$radius]} MB |"
done
