"""The Barcelona municipal street graph with the city's per-section air-quality map.

Sources (Ajuntament de Barcelona, Open Data BCN, CC BY 4.0):

* ``BCN_GrafVial_Trams_ETRS89_CSV.csv``: the official street graph, one row per section.
  ``;``-separated, ISO-8859-1, CRLF. Columns: ``C_Tram`` section id (``T`` + digits +
  a check letter), ``C_Nus_I`` / ``C_Nus_F`` start/end junction ids (``N`` + digits +
  letter), ``LONGITUD`` planar length in EPSG:25831 metres, ``COORD_X`` / ``COORD_Y`` a
  point on the section at half its length (EPSG:25831), ``ANGLE`` the section's
  orientation at that point in degrees counter-clockwise from east, modulo 180 (a label
  angle: about half the rows point I→F, half F→I), then for the right (``_D``) and left
  (``_E``) side: district code and name, city block (``Illa``), street code (``CVia``),
  street type (``TVia``: Carrer, Avinguda, Plaça, Passeig, Escales, ...), full street
  name (``NVia``) and house-number range (``Tram_Dret`` / ``Tram_Esq``).
  A few values were UTF-8 encoded twice upstream (``PlaÃ§a``, ``MontjuÃ¯c``) and are
  repaired here; one name (``PlaÃ§a K?be``) lost a character for good.
* ``2022_tramer_{no2,pm10,pm2-5}_mapa_qualitat_aire_bcn.gpkg``: the 2022 annual-mean map,
  one single-part MULTILINESTRING per section in EPSG:25831, ``TRAM`` (= ``C_Tram``) and
  ``Rang``, a concentration class. The three maps share ids and geometry.

Direction: the graph has no one-way or traffic-direction field (I→F is digitising
order; ``ANGLE`` is undirected), so both directions are ridden (:data:`MODE_RIDE`).
Steps (``Escales``) are walked, pushing the bike (:data:`MODE_WALK`); the OSM importer
is the one that knows one-way streets and contraflow lanes.

Junction coordinates: the map's line for a section runs from its ``C_Nus_I`` junction
to its ``C_Nus_F`` junction (never reversed in the 2022 files), so each junction takes
the end point most of its sections' lines agree on. The map was drawn on a slightly
different edition of the graph: it lacks 147 of the 14,831 sections (the Zona Franca
port estate) and has 357 the CSV lacks (mostly the ring roads, ids ``RD``/``RL``/``LRD``),
and about 100 lines end 0.5 m to 1.4 km from where the other lines put their junction.
Junctions no line reaches (94) are rebuilt, spreading out from known ones, from the
shortest CSV section joining them to a known junction: its ends are at
``COORD ± LONGITUD/2·(cos ANGLE, sin ANGLE)``, the end nearer the known junction being
that junction (checked by hiding 300 known junctions: median error 2 mm, 90 % within
5 m; long curved sections err more). A line whose ends lie within
:data:`SNAP_TOLERANCE_M` of its junctions is kept with its ends set exactly on them
(73 lines are not); otherwise, or with no line, the section is drawn straight between
its junctions. ``LONGITUD`` is the planar UTM length; the geodesic ``length_m`` is
0.034 % longer in the median, the UTM scale factor at Barcelona.

Priors: the class midpoint in µg/m³ (:func:`class_midpoint_ugm3`). ``<=X`` is taken as
the middle of 0..X, ``>X`` as the middle of a class as wide as the map's closed classes
(NO2: ``>70`` → 75; PM10: ``>40`` → 42.5; PM2.5: ``>25`` → 27.5). Classes in the 2022
files, counted over all 15,041 map sections: NO2 ``10-20`` 715, ``20-30`` 8786, ``30-40``
4311, ``40-50`` 900, ``50-60`` 263, ``60-70`` 48, ``>70`` 18 (no ``<=10``); PM10 5 µg/m³
classes ``15-20`` .. ``35-40`` and ``>40``; PM2.5 ``5-10`` .. ``20-25`` and ``>25``.
Sections missing from a map get NaN (the builder fills those).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import shapely
from pyproj import Geod, Transformer

from airpath.errors import SourceError
from airpath.network.segments import (
    INFRA_CLASSES,
    MODE_RIDE,
    MODE_WALK,
    POLLUTANTS,
    BoolArray,
    FloatArray,
    IntArray,
    SegmentTable,
    StrArray,
)

CSV_NAME = "BCN_GrafVial_Trams_ETRS89_CSV.csv"
MAP_NAMES: dict[str, str] = {
    "no2": "2022_tramer_no2_mapa_qualitat_aire_bcn.gpkg",
    "pm10": "2022_tramer_pm10_mapa_qualitat_aire_bcn.gpkg",
    "pm25": "2022_tramer_pm2-5_mapa_qualitat_aire_bcn.gpkg",
}
CSV_COLUMNS = ("C_Tram", "C_Nus_I", "C_Nus_F", "LONGITUD", "COORD_X", "COORD_Y", "ANGLE")
SOURCE_CRS = "EPSG:25831"  # ETRS89 / UTM zone 31N, both files
SPEED_KPH = 16.0
STEPS_SPEED_KPH = 2.0  # pushing a bike up or down steps, as the OSM profile
SNAP_TOLERANCE_M = 10.0
"""A map line ending farther than this from its junction belongs to another edition."""

DEFAULT_CLASS_WIDTH_UGM3 = 10.0

_GEOD = Geod(ellps="WGS84")
_ID = re.compile(r"^[TN](\d+)[A-Z]$")
_NUM = r"(\d+(?:[.,]\d+)?)"
_UNIT = r"(?:\s*[\u00b5\u03bcu]g\s*/\s*m(?:\u00b3|3))?"
_BELOW = re.compile(rf"^\s*(?:<=|<|\u2264)\s*{_NUM}{_UNIT}\s*$")
_ABOVE = re.compile(rf"^\s*(?:>=|>|\u2265)\s*{_NUM}{_UNIT}\s*$")
_RANGE = re.compile(rf"^\s*{_NUM}\s*[-\u2013]\s*{_NUM}{_UNIT}\s*$")


def class_midpoint_ugm3(label: str, open_width_ugm3: float = DEFAULT_CLASS_WIDTH_UGM3) -> float:
    """Midpoint (µg/m³) of a concentration class label of the Barcelona maps.

    >>> class_midpoint_ugm3("20-30 µg/m³"), class_midpoint_ugm3("<=10 µg/m³")
    (25.0, 5.0)
    >>> class_midpoint_ugm3(">70 µg/m³"), class_midpoint_ugm3(">40 µg/m³", 5.0)
    (75.0, 42.5)
    """
    if m := _RANGE.match(label):
        lo, hi = _number(m[1]), _number(m[2])
        if hi <= lo:
            raise SourceError(f"air-quality class {label!r} has an empty range")
        return (lo + hi) / 2
    if m := _BELOW.match(label):
        return _number(m[1]) / 2
    if m := _ABOVE.match(label):
        return _number(m[1]) + open_width_ugm3 / 2
    raise SourceError(f"unrecognised air-quality class {label!r}")


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def read_barcelona(folder: str | Path) -> SegmentTable:
    """Read the street graph and the three air-quality maps from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"no such folder with the Barcelona street graph: {folder}")
    rows = _read_sections(folder / CSV_NAME)
    loops = rows["i"] == rows["f"]
    rows = rows[~loops].reset_index(drop=True)
    if rows.empty:
        raise SourceError(f"{folder / CSV_NAME}: no street sections between two junctions")
    maps = {p: _read_map(folder / name) for p, name in MAP_NAMES.items()}

    junction_ids, inverse = np.unique(np.r_[rows["i"], rows["f"]], return_inverse=True)
    u, v = inverse[: len(rows)], inverse[len(rows) :]
    tram = rows["tram"].to_numpy()

    # Map line of every section (the first map that has it), as flat UTM coordinates.
    line = np.full(len(rows), None, dtype=object)
    for sections in maps.values():
        hit = sections.reindex(tram)["geometry"].to_numpy()
        line = np.where(pd.isna(line), hit, line)
    has_line = ~pd.isna(line)
    has_line[has_line] = ~shapely.is_empty(line[has_line])
    xy, owner = shapely.get_coordinates(line[has_line], return_index=True)
    owner = np.flatnonzero(has_line)[owner]
    keep = np.r_[True, (owner[1:] != owner[:-1]) | np.any(xy[1:] != xy[:-1], axis=1)]
    xy, owner = xy[keep], owner[keep]  # multi-part joins repeat a vertex

    line_start, line_end = np.full((len(rows), 2), np.nan), np.full((len(rows), 2), np.nan)
    if len(owner):
        head = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1]
        tail = np.r_[head[1:] - 1, len(owner) - 1]
        line_start[owner[head]], line_end[owner[tail]] = xy[head], xy[tail]
    node_xy = _vote_junctions(len(junction_ids), u, v, has_line, line_start, line_end)
    rebuilt = int(np.isnan(node_xy[:, 0]).sum())
    _rebuild_junctions(node_xy, u, v, rows)

    off_m = np.maximum(np.hypot(*(line_start - node_xy[u]).T), np.hypot(*(line_end - node_xy[v]).T))
    use_line = has_line & (off_m <= SNAP_TOLERANCE_M)
    seg_xy, offsets = _assemble(xy, owner, use_line, node_xy, u, v)

    to_wgs84 = Transformer.from_crs(SOURCE_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(seg_xy[:, 0], seg_xy[:, 1])
    node_lon, node_lat = to_wgs84.transform(node_xy[:, 0], node_xy[:, 1])
    length_m = _polyline_lengths_m(np.asarray(lon), np.asarray(lat), offsets)
    longitud = rows["longitud"].to_numpy()
    rel = np.abs(length_m - longitud) / np.maximum(longitud, 1e-9)

    m = len(rows)
    steps = rows["highway"].to_numpy(dtype=object) == "escales"
    mode = np.where(steps, MODE_WALK, MODE_RIDE).astype(np.int8)
    priors = {p: _priors(sections, tram, folder / MAP_NAMES[p]) for p, sections in maps.items()}
    table = SegmentTable(
        node_lon=np.asarray(node_lon, dtype=np.float64),
        node_lat=np.asarray(node_lat, dtype=np.float64),
        node_source_id=_numeric_ids(junction_ids),
        u=u.astype(np.int64),
        v=v.astype(np.int64),
        mode_fwd=mode,
        mode_bwd=mode.copy(),
        length_m=length_m,
        speed_kph=np.where(steps, STEPS_SPEED_KPH, SPEED_KPH),
        highway=rows["highway"].to_numpy(dtype=object),
        infra=np.full(m, INFRA_CLASSES.index("shared"), dtype=np.int8),
        surface=np.full(m, "asphalt", dtype=object),
        name=rows["name"].to_numpy(dtype=object),
        source_id=_numeric_ids(tram),
        geom_offsets=offsets,
        geom_lonlat=np.column_stack([lon, lat]).astype(np.float64),
        priors=priors,
    )
    table.meta.update(
        source="barcelona",
        files=[CSV_NAME, *MAP_NAMES.values()],
        sections=m,
        self_loops_dropped=int(loops.sum()),
        junctions_rebuilt_from_csv=rebuilt,
        geometry={
            "map_line": int(use_line.sum()),
            "straight_no_map_line": int((~has_line).sum()),
            "straight_map_line_off_junctions": int((has_line & ~use_line).sum()),
        },
        priors_coverage={p: float(np.isfinite(priors[p]).mean()) for p in POLLUTANTS},
        length_vs_longitud_median_rel=float(np.median(rel)),
    )
    return table


def _read_sections(path: Path) -> pd.DataFrame:
    """The CSV as typed columns: tram, i, f, longitud, x, y, angle, name, highway."""
    if not path.is_file():
        raise SourceError(f"missing Barcelona street graph file: {path}")
    try:
        raw = pd.read_csv(path, sep=";", encoding="latin-1", dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SourceError(f"{path}: cannot read the street graph CSV: {exc}") from exc
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)}")
    ids = raw[["C_Tram", "C_Nus_I", "C_Nus_F"]].apply(lambda c: c.str.strip())
    if not ids.apply(lambda c: c.str.fullmatch(_ID)).all().all():
        raise SourceError(f"{path}: section/junction ids not like T00001B / N00001D")
    try:
        numbers = raw[["LONGITUD", "COORD_X", "COORD_Y", "ANGLE"]].astype(np.float64)
    except ValueError as exc:
        raise SourceError(f"{path}: non-numeric length, coordinate or angle: {exc}") from exc
    if not np.isfinite(numbers.to_numpy()).all():
        raise SourceError(f"{path}: empty length, coordinate or angle values")
    # Name and type of the street on the right-hand side, else the left-hand side.
    right = _text(raw, "NVia_D") != ""
    name = np.where(right, _text(raw, "NVia_D"), _text(raw, "NVia_E"))
    kind = [str(k).lower() for k in np.where(right, _text(raw, "TVia_D"), _text(raw, "TVia_E"))]
    return pd.DataFrame(
        {
            "tram": ids["C_Tram"],
            "i": ids["C_Nus_I"],
            "f": ids["C_Nus_F"],
            "longitud": numbers["LONGITUD"],
            "x": numbers["COORD_X"],
            "y": numbers["COORD_Y"],
            "angle": numbers["ANGLE"],
            "name": name,
            "highway": [k if k not in ("", "-") else "street" for k in kind],
        }
    )


def _text(raw: pd.DataFrame, column: str) -> StrArray:
    """A text column, stripped, "" when absent, with double-encoded UTF-8 repaired."""
    if column not in raw.columns:
        return np.full(len(raw), "", dtype=object)
    return raw[column].str.strip().map(_repair_mojibake).to_numpy(dtype=object)


def _repair_mojibake(text: str) -> str:
    """Undo UTF-8 bytes that were decoded as Latin-1 once too often (``PlaÃ§a``)."""
    if "\u00c3" not in text and "\u00c2" not in text:  # Ã and Â lead UTF-8 pairs
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _read_map(path: Path) -> pd.DataFrame:
    """One air-quality map as a frame indexed by section id: ``rang`` and ``geometry``."""
    if not path.is_file():
        raise SourceError(f"missing Barcelona air-quality map: {path}")
    try:
        layers = pyogrio.list_layers(path)
        layer = next(str(name) for name, kind in layers if kind is not None)
        meta, _, wkb, fields = pyogrio.raw.read(path, layer=layer, columns=["TRAM", "Rang"])
        geometry = shapely.from_wkb(wkb)
    except StopIteration:
        raise SourceError(f"{path}: no layer with geometry") from None
    except (OSError, RuntimeError, ValueError, shapely.errors.ShapelyError) as exc:
        raise SourceError(f"{path}: cannot read the air-quality map: {exc}") from exc
    if list(meta["fields"]) != ["TRAM", "Rang"]:
        raise SourceError(f"{path}: expected columns TRAM and Rang, found {list(meta['fields'])}")
    crs = meta.get("crs")
    if crs is not None and str(crs).upper() != SOURCE_CRS:
        raise SourceError(f"{path}: coordinates in {crs}, expected {SOURCE_CRS}")
    frame = pd.DataFrame({"rang": fields[1], "geometry": geometry}, index=fields[0])
    return frame[~frame.index.duplicated()]


def _priors(sections: pd.DataFrame, tram: StrArray, path: Path) -> FloatArray:
    """Class midpoints per section of ``tram`` (NaN when the map lacks it)."""
    rang = sections["rang"].astype(object).where(sections["rang"].notna(), "")
    rang = rang.astype(str).str.strip()  # a blank class is a missing value
    uniq = sorted(set(rang) - {""})
    widths = [_number(m[2]) - _number(m[1]) for lab in uniq if (m := _RANGE.match(lab)) is not None]
    width = Counter(widths).most_common(1)[0][0] if widths else DEFAULT_CLASS_WIDTH_UGM3
    try:
        midpoint = {lab: class_midpoint_ugm3(lab, width) for lab in uniq}
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from exc
    return np.asarray(rang.reindex(tram).map(midpoint), dtype=np.float64)


def _vote_junctions(
    n: int, u: IntArray, v: IntArray, has_line: BoolArray, first: FloatArray, last: FloatArray
) -> FloatArray:
    """Junction coordinates (UTM) that most map lines ending there agree on; NaN if none."""
    ends = pd.DataFrame(
        {
            "node": np.r_[u[has_line], v[has_line]],
            "x": np.r_[first[has_line, 0], last[has_line, 0]],
            "y": np.r_[first[has_line, 1], last[has_line, 1]],
        }
    )
    ends["xr"], ends["yr"] = ends["x"].round(2), ends["y"].round(2)  # 1 cm bins
    votes = ends.groupby(["node", "xr", "yr"], sort=False).agg(
        n=("x", "size"), x=("x", "first"), y=("y", "first")
    )
    best = votes.reset_index().sort_values(["node", "n"], ascending=[True, False], kind="stable")
    best = best.drop_duplicates("node")
    node_xy = np.full((n, 2), np.nan)
    node_xy[best["node"].to_numpy()] = best[["x", "y"]].to_numpy()
    return node_xy


def _rebuild_junctions(node_xy: FloatArray, u: IntArray, v: IntArray, rows: pd.DataFrame) -> None:
    """Fill NaN junctions in place from sections' midpoint, length and angle."""
    angle = np.radians(rows["angle"].to_numpy())
    length = rows["longitud"].to_numpy()
    half = 0.5 * length[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    mid = rows[["x", "y"]].to_numpy()
    ends = np.stack([mid + half, mid - half])  # (2, m, 2), order unknown
    for _ in range(len(rows) + 1):
        known = ~np.isnan(node_xy[:, 0])
        ku, kv = known[u], known[v]
        grow = np.flatnonzero(ku != kv)
        if len(grow) == 0:
            orphan = np.flatnonzero(~ku & ~kv)
            if len(orphan) == 0:
                return
            # A cluster no map line reaches: orient its first section as listed.
            s = orphan[0]
            node_xy[u[s]], node_xy[v[s]] = ends[0, s], ends[1, s]
            continue
        anchor = np.where(ku[grow], u[grow], v[grow])
        target = np.where(ku[grow], v[grow], u[grow])
        d0 = np.hypot(*(ends[0, grow] - node_xy[anchor]).T)
        d1 = np.hypot(*(ends[1, grow] - node_xy[anchor]).T)
        far = np.where((d0 <= d1)[:, None], ends[1, grow], ends[0, grow])
        # The shortest section wins: its chord is closest to its length, so its
        # reconstructed end is the least wrong on curved streets.
        order = np.lexsort((length[grow], target))
        first = order[np.r_[True, target[order][1:] != target[order][:-1]]]
        node_xy[target[first]] = far[first]


def _assemble(
    xy: FloatArray,
    owner: IntArray,
    use_line: BoolArray,
    node_xy: FloatArray,
    u: IntArray,
    v: IntArray,
) -> tuple[FloatArray, IntArray]:
    """Flat per-section coordinates from junction to junction, and their offsets."""
    keep = use_line[owner]
    kept_xy, kept_owner = xy[keep], owner[keep]
    count = np.bincount(kept_owner, minlength=len(u))
    count[~use_line] = 2  # a straight line between the junctions
    offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    out = np.empty((offsets[-1], 2))
    rank = np.arange(len(kept_owner)) - np.searchsorted(kept_owner, kept_owner)
    out[offsets[kept_owner] + rank] = kept_xy
    # Every section starts and ends exactly on its junctions.
    out[offsets[:-1]] = node_xy[u]
    out[offsets[1:] - 1] = node_xy[v]
    return out, offsets


def _polyline_lengths_m(lon: FloatArray, lat: FloatArray, offsets: IntArray) -> FloatArray:
    """Geodesic (WGS84) length of each polyline in a flat coordinate array, metres."""
    if len(lon) < 2:
        return np.zeros(len(offsets) - 1)
    _, _, step = _GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    step = np.asarray(step, dtype=np.float64)
    step[offsets[1:-1] - 1] = 0.0  # the hop from one polyline's end to the next one's start
    cum = np.concatenate([[0.0], np.cumsum(step)])
    lengths: FloatArray = cum[offsets[1:] - 1] - cum[offsets[:-1]]
    return lengths


def _numeric_ids(ids: StrArray) -> IntArray:
    """``T00001B`` → 1: the digits between the kind letter and the check letter."""
    return np.array([int(s[1:-1]) for s in ids], dtype=np.int64)
