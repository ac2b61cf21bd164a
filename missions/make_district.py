#!/usr/bin/env python3
"""Generates missions/wenqu.geojson: a sample district of about 16 km² near 36.56 N,
103.68 E, modelled on (not copied from) the Wenqu community's university town: campus,
residential, commercial-street, park and road grid cells, streets, two no-fly zones and a
dock.

Deterministic: run it again and the file is the same. WGS-84, counter-clockwise outer
rings (RFC 7946), one cell with a courtyard hole, some concave (L-shaped) cells.
"""
import json
import math

LAT0, LON0 = 36.56, 103.68          # district centre
HALF = 2000.0                        # metres: 4 km x 4 km = 16 km²
ROAD = 40.0                          # main road width, metres
N = 7                                # blocks per side
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def ll(n, e):
    """(north, east) metres from the centre -> [lon, lat] rounded to 1e-7 degrees."""
    return [round(LON0 + e / M_PER_DEG_LON, 7), round(LAT0 + n / M_PER_DEG_LAT, 7)]


def ring(points):
    """A closed counter-clockwise ring from (north, east) corners."""
    pts = [ll(n, e) for n, e in points]
    area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1]))
    if area < 0:
        pts.reverse()
    return pts + [pts[0]]


def rect(n0, e0, n1, e1):
    return [(n0, e0), (n0, e1), (n1, e1), (n1, e0)]


# Blocks along each axis, leaving room for the two main roads after block 3.
size = (2 * HALF - ROAD) / N

def span(i):
    """Block i's [start, end] in metres, shifted to leave the main road after block 3."""
    a, b = -HALF + i * size, -HALF + (i + 1) * size
    if i >= 4:
        a, b = a + ROAD, b + ROAD
    return a, b

# (row, col) -> kind; rows count from the south, columns from the west.
KINDS = {}
for r in range(N):
    for c in range(N):
        if r >= 4 and c <= 3:
            kind = "campus"
        elif r == 3 or c == 3:
            kind = "commercial"
        elif r <= 1 and c >= 5:
            kind = "park" if (r, c) == (0, 6) else "residential"
        else:
            kind = "residential"
        KINDS[(r, c)] = kind

NAMES = {"campus": "文曲大学城", "residential": "文曲苑", "commercial": "文曲商业街", "park": "文曲公园"}
DEPTS = {
    "campus": "高校后勤保障处",
    "residential": "社区网格化管理中心",
    "commercial": "城市管理综合执法局",
    "park": "园林绿化所",
    "road": "交通运输局",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"

features = []
gid = 0
for r in range(N):
    for c in range(N):
        gid += 1
        n0, n1 = span(r)
        e0, e1 = span(c)
        kind = KINDS[(r, c)]
        holes = []
        if (r, c) in [(1, 1), (5, 5), (2, 4)]:
            # L-shaped (concave): the north-east quarter is a plaza outside every cell.
            nm, em = (n0 + n1) / 2, (e0 + e1) / 2
            outer = ring([(n0, e0), (n0, e1), (nm, e1), (nm, em), (n1, em), (n1, e0)])
        else:
            outer = ring(rect(n0, e0, n1, e1))
        if (r, c) == (4, 1):
            # A campus quad with a courtyard: the hole is a separate park-like yard.
            m = size * 0.3
            hole = ring(rect(n0 + m, e0 + m, n1 - m, e1 - m))
            holes.append(list(reversed(hole)))  # holes run clockwise
        worker = SURNAMES[(gid * 7) % len(SURNAMES)] + GIVEN[(gid * 11) % len(GIVEN)]
        features.append({
            "type": "Feature",
            "properties": {
                "kind": "grid",
                "grid_id": f"WQ-{gid:02d}",
                "name": f"{NAMES[kind]}{gid:02d}网格",
                "type": kind,
                "community": "文曲西社区" if c <= 3 else "文曲东社区",
                "grid_worker": worker,
                "phone": f"1390931{gid:04d}",
                "department": DEPTS[kind],
            },
            "geometry": {"type": "Polygon", "coordinates": [outer] + holes},
        })

# The two main roads as road cells: east-west across, north-south in two halves.
road_w0, road_w1 = span(3)[1], span(4)[0]
roads = [
    ("WQ-R1", "长江大道", rect(road_w0, -HALF, road_w1, HALF)),
    ("WQ-R2", "中快速路北段", rect(road_w1, road_w0, HALF, road_w1)),
    ("WQ-R3", "中快速路南段", rect(-HALF, road_w0, road_w0, road_w1)),
]
for rid, name, pts in roads:
    features.append({
        "type": "Feature",
        "properties": {
            "kind": "grid", "grid_id": rid, "name": name, "type": "road",
            "community": "文曲中心社区", "grid_worker": "路段巡查组", "phone": "13909310000",
            "department": DEPTS["road"],
        },
        "geometry": {"type": "Polygon", "coordinates": [ring(pts)]},
    })


# Streets: centre lines along the block edges inside each half (the main roads are cells).
STREET_NAMES_EW = ["文曲南路", "学府路", "文曲路", None, "明德路", "博学路", "文曲北路"]
STREET_NAMES_NS = ["西环路", "书院街", "文昌街", None, "兴业街", "东园路", "东环路"]
for i in range(1, N):
    if i == 4:
        continue  # the main road lies there
    edge = span(i)[0]
    for name, pts in [
        (STREET_NAMES_EW[i - 1] if i < 4 else STREET_NAMES_EW[i], [(edge, -HALF), (edge, HALF)]),
        (STREET_NAMES_NS[i - 1] if i < 4 else STREET_NAMES_NS[i], [(-HALF, edge), (HALF, edge)]),
    ]:
        features.append({
            "type": "Feature",
            "properties": {"kind": "road", "name": name},
            "geometry": {"type": "LineString", "coordinates": [ll(n, e) for n, e in pts]},
        })


def circle(n, e, radius, k=24):
    return ring([(n + radius * math.cos(2 * math.pi * i / k), e + radius * math.sin(2 * math.pi * i / k)) for i in range(k)])


for zid, name, (n, e) in [("NFZ-1", "新区人民医院", (900.0, 1300.0)), ("NFZ-2", "西岔派出所", (-1300.0, -700.0))]:
    features.append({
        "type": "Feature",
        "properties": {"kind": "no_fly", "zone_id": zid, "name": name, "radius_m": 150},
        "geometry": {"type": "Polygon", "coordinates": [circle(n, e, 150.0)]},
    })

for hid, name, (n, e), hover, orbit in [
    ("HS-1", "文曲大学城南门", (700.0, -900.0), 20, 40),
    ("HS-2", "文曲夜市", (-100.0, 500.0), 30, 60),
    ("HS-3", "公交枢纽站", (-150.0, -1500.0), 15, None),
    ("HS-4", "文曲苑广场", (-1200.0, 900.0), 15, None),
]:
    props = {"kind": "hotspot", "hotspot_id": hid, "name": name, "hover_s": hover}
    if orbit:
        props["orbit_radius_m"] = orbit
    features.append({"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": ll(n, e)}})

features.append({
    "type": "Feature",
    "properties": {"kind": "home", "name": "综治中心无人机机巢", "alt_m": 1800.0},
    "geometry": {"type": "Point", "coordinates": ll(0.0, -60.0)},
})

out = {"type": "FeatureCollection", "name": "文曲中心社区 (sample district)", "features": features}
with open(__file__.replace("make_district.py", "wenqu.geojson"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
print(f"{sum(1 for x in features if x['properties']['kind'] == 'grid')} grid cells written")
