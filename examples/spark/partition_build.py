"""Build kdsled's tree on Apache Spark: one k-d tree per quadkey partition, then `kdsled import`.

Reads a GeoNames dump, keys every place by its Web Mercator tile at --zoom (its quadkey),
gives each tile its own RDD partition, and pipes every partition through
`kdsled partition-build`, exactly as a Hadoop Streaming reducer would run it. The nodes are
saved as two directories of part files, roots and branches, ready for

    kdsled import --db DIR --roots OUT/roots --branches OUT/branches

Usage: python partition_build.py --kdsled PATH --input data/cities1000.txt.gz --out DIR [--zoom 4]
Runs Spark in local mode (pip install pyspark; Java 17 is enough).
"""

import argparse
import math

from pyspark.sql import SparkSession


def tile(lon, lat, zoom):
    n = 2 ** zoom
    lat = max(min(lat, 85.05112878), -85.05112878)
    x = min(int((lon + 180.0) / 360.0 * n), n - 1)
    r = math.radians(lat)
    y = min(int((1.0 - math.log(math.tan(r) + 1.0 / math.cos(r)) / math.pi) / 2.0 * n), n - 1)
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kdsled", required=True, help="path to the kdsled binary")
    ap.add_argument("--input", required=True, help="GeoNames dump (.txt or .gz)")
    ap.add_argument("--out", required=True, help="output directory (roots/, branches/)")
    ap.add_argument("--zoom", type=int, default=4, help="quadkey level of the partitions")
    a = ap.parse_args()

    spark = SparkSession.builder.master("local[2]").appName("kdsled-partition-build").getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("WARN")

    def keyed(line):
        c = line.split("\t")
        lon, lat = float(c[5]), float(c[4])
        # id, lon, lat, then name, feature code and population as attributes.
        return tile(lon, lat, a.zoom), "\t".join([c[0], c[5], c[4], c[1], c[7], c[14]])

    points = sc.textFile(a.input).map(keyed)
    tiles = sorted(points.keys().distinct().collect())
    index = {t: i for i, t in enumerate(tiles)}
    # One RDD partition per tile, so each pipe invocation builds exactly one partition's tree.
    per_tile = points.partitionBy(len(tiles), lambda t: index[t]).values()
    nodes = per_tile.pipe(
        f"{a.kdsled} partition-build --format tsv --no-header --id 0 --lon 1 --lat 2"
    ).cache()
    nodes.filter(lambda l: l.split("\t")[1] == "1").saveAsTextFile(f"{a.out}/roots")
    nodes.filter(lambda l: l.split("\t")[1] == "0").saveAsTextFile(f"{a.out}/branches")
    print(f"{len(tiles)} partitions, {nodes.count()} nodes written to {a.out}")
    spark.stop()


if __name__ == "__main__":
    main()
