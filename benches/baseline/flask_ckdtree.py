"""The baseline the HTTP benchmark compares kdsled with: Flask + scipy cKDTree, in memory.

Serves GET /v1/near?lon=&lat=&radius=&limit= over cities1000 with the same answer shape as kdsled
(id, lon, lat, distance_m, properties), nearest first. Points are unit vectors on the sphere, so a
great-circle radius r is the chord 2*sin(r / 2R) and the answers match kdsled's.

Run: gunicorn -w 2 -b 127.0.0.1:PORT --chdir benches/baseline flask_ckdtree:app
(KDSLED_CITIES points at the data file; default ../../data/cities1000.txt.gz from this file).
"""

import gzip
import math
import os

import numpy as np
from flask import Flask, jsonify, request
from scipy.spatial import cKDTree

R = 6_371_008.8
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("KDSLED_CITIES", os.path.join(HERE, "..", "..", "data", "cities1000.txt.gz"))
COLUMNS = [
    "geonameid", "name", "asciiname", "alternatenames", "latitude", "longitude", "feature_class",
    "feature_code", "country_code", "cc2", "admin1_code", "admin2_code", "admin3_code",
    "admin4_code", "population", "elevation", "dem", "timezone", "modification_date",
]
INTEGER = {"population", "elevation", "dem"}


def load():
    ids, lonlat, props = [], [], []
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            ids.append(int(c[0]))
            lonlat.append((float(c[5]), float(c[4])))
            p = {}
            for name, v in zip(COLUMNS, c):
                if name in ("geonameid", "latitude", "longitude"):
                    continue
                if v == "":
                    p[name] = None
                elif name in INTEGER:
                    try:
                        p[name] = int(v)
                    except ValueError:
                        p[name] = v
                else:
                    p[name] = v
            props.append(p)
    return ids, np.array(lonlat), props


def unit(lon, lat):
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def haversine(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * R * math.asin(min(1.0, math.sqrt(a)))


IDS, LONLAT, PROPS = load()
TREE = cKDTree(unit(LONLAT[:, 0], LONLAT[:, 1]))
app = Flask(__name__)


@app.get("/v1/near")
def near():
    try:
        lon = float(request.args["lon"])
        lat = float(request.args["lat"])
        radius = float(request.args["radius"])
        limit = int(request.args.get("limit", 1000))
    except (KeyError, ValueError) as e:
        return jsonify({"error": str(e)}), 400
    chord = 2 * math.sin(min(radius / R, math.pi) / 2) * (1 + 1e-12)
    found = TREE.query_ball_point(unit(lon, lat), chord)
    hits = []
    for i in found:
        d = haversine(lon, lat, LONLAT[i, 0], LONLAT[i, 1])
        if d <= radius:
            hits.append((d, i))
    hits.sort()
    results = [
        {"id": IDS[i], "lon": LONLAT[i, 0], "lat": LONLAT[i, 1], "distance_m": round(d, 3), "properties": PROPS[i]}
        for d, i in hits[:limit]
    ]
    return jsonify({"count": len(hits), "truncated": len(hits) > limit, "results": results})
