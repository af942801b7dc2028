"""Fixture archives and independent references for the regrid view tests.

Archives (netCDF4-python, fixed seeds):

- ``globe``: three files of two days each on a global 4-degree grid with cells centred on
  the poles and descending latitude (90, 86, ..., -90) and longitudes 0..356: ``t2m`` float32
  with a land mask (``_FillValue``), ``sp`` int16 packed with ``scale_factor``/``add_offset``,
  ``smooth`` float64 without missing values (a smooth field for interpolation checks),
  ``const`` float64, 7 everywhere.
- ``polar``: one file on a 25 km polar stereographic grid (EPSG:3031's parameters in a CF
  ``grid_mapping`` variable), ``thk`` float32 with NaN outside an ice disc.
- ``models``: a DataTree ``<model>.nc`` of three models on three lat/lon grids.
- ``ocean``: a curvilinear grid (2-d ``nav_lat``/``nav_lon``, a rotated and stretched lat/lon
  mesh like a tripolar ocean grid's southern part) with a land mask.

References are written from the formulas here, never from atlasfs: exact spherical
(latitude-circle) overlaps for conservative, numpy binning of source centres for statistics,
and the NaN rule of the design (valid = W.notnan; NaN when valid < 1 - clip(t, 1e-6, 1-1e-6)).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import netCDF4
import numpy as np

GLOBE_STEP = 4.0
GLOBE_LAT = np.arange(90.0, -90.0 - 1e-9, -GLOBE_STEP)  # 46 centres, pole-centred, descending
GLOBE_LON = np.arange(0.0, 360.0, GLOBE_STEP)  # 90 centres, 0..356
GLOBE_FILES, GLOBE_DAYS = 3, 2
SP_SCALE, SP_OFFSET = 0.5, 100000.0


def _time(ds, start: int, n: int):
    ds.createDimension("time", n)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = "days since 2000-01-01"
    t.calendar = "standard"
    t[:] = np.arange(start, start + n, dtype="f8")


def _latlon(ds, lat, lon, dtype="f8"):
    ds.createDimension("lat", len(lat))
    ds.createDimension("lon", len(lon))
    la = ds.createVariable("lat", dtype, ("lat",))
    la.units = "degrees_north"
    la.standard_name = "latitude"
    la[:] = lat
    lo = ds.createVariable("lon", dtype, ("lon",))
    lo.units = "degrees_east"
    lo.standard_name = "longitude"
    lo[:] = lon


def globe_land() -> np.ndarray:
    lat2, lon2 = np.meshgrid(GLOBE_LAT, GLOBE_LON, indexing="ij")
    land = (np.abs(lat2 - 20) < 14) & (np.abs(lon2 - 100) < 30)
    land |= lat2 < -70  # an ice cap around the south pole
    return land


def make_globe(directory: Path, seed: int = 21) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    land = globe_land()
    lat2, lon2 = np.meshgrid(np.radians(GLOBE_LAT), np.radians(GLOBE_LON), indexing="ij")
    paths = []
    for f in range(GLOBE_FILES):
        path = directory / f"globe_{f}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            _time(ds, f * GLOBE_DAYS, GLOBE_DAYS)
            _latlon(ds, GLOBE_LAT, GLOBE_LON)
            t2m = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), fill_value=np.float32(-999.0))
            t2m.units = "K"
            values = 280 + 20 * rng.standard_normal((GLOBE_DAYS, len(GLOBE_LAT), len(GLOBE_LON)))
            t2m[:] = np.ma.masked_array(values.astype("f4"), np.broadcast_to(land, values.shape))
            sp = ds.createVariable("sp", "i2", ("time", "lat", "lon"), fill_value=np.int16(-32768))
            sp.scale_factor = np.float32(SP_SCALE)
            sp.add_offset = np.float32(SP_OFFSET)
            sp.set_auto_maskandscale(True)
            sp[:] = 100000 + 3000 * rng.uniform(-1, 1, (GLOBE_DAYS, len(GLOBE_LAT), len(GLOBE_LON)))
            smooth = ds.createVariable("smooth", "f8", ("time", "lat", "lon"))
            day = np.arange(f * GLOBE_DAYS, (f + 1) * GLOBE_DAYS)[:, None, None]
            smooth[:] = 10 * np.cos(lat2)[None] * np.sin(lon2)[None] + day + 2 * np.sin(2 * lat2)[None]
            const = ds.createVariable("const", "f8", ("time", "lat", "lon"))
            const[:] = np.full((GLOBE_DAYS, len(GLOBE_LAT), len(GLOBE_LON)), 7.0)
        paths.append(path)
    return paths


# Antarctic polar stereographic (EPSG:3031): WGS84, latitude of true scale -71, lon0 0.
POLAR_STEP = 25_000.0
POLAR_X = np.arange(-1_000_000.0, 1_000_000.0 + 1, POLAR_STEP)  # 81 centres
POLAR_Y = np.arange(1_200_000.0, -1_200_000.0 - 1, -POLAR_STEP)  # 97 centres, descending


def dataset_entries(archives: dict) -> list[dict]:
    """``[[dataset]]`` entries of the archives made here, by key: ``globe`` (``make_globe``),
    ``polar`` (``make_polar``) and ``models`` (``make_models``)."""
    entries = []
    if "globe" in archives:
        entries.append({"name": "globe", "files": str(archives["globe"][0].parent / "*.nc"),
                        "concat_dim": "time"})
    if "polar" in archives:
        entries.append({"name": "polar", "files": str(archives["polar"])})
    if "models" in archives:
        models = archives["models"]
        entries.append({"name": "models", "files": str(models["root"] / "*.nc"),
                        "pattern": models["pattern"], "groups": models["groups"]})
    return entries


def open_globe(paths) -> "xr.Dataset":
    """The globe archive as xarray joins it from the files (the tests' reference)."""
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset([str(p) for p in paths], combine="by_coords") as ds:
            return ds.load()


def close(got, want, where, rtol=1e-5, atol=0.0):
    """``got`` equals ``want`` within the tolerances, NaN where ``want`` is NaN."""
    got, want = np.asarray(got, dtype="f8"), np.asarray(want, dtype="f8")
    assert got.shape == want.shape, f"{where}: shape {got.shape} vs {want.shape}"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{where}: NaN pattern")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=where)


def make_polar(directory: Path, seed: int = 8) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = directory / "polar.nc"
    with netCDF4.Dataset(path, "w") as ds:
        _time(ds, 0, 2)
        ds.createDimension("y", len(POLAR_Y))
        ds.createDimension("x", len(POLAR_X))
        y = ds.createVariable("y", "f8", ("y",))
        y.standard_name = "projection_y_coordinate"
        y.units = "m"
        y[:] = POLAR_Y
        x = ds.createVariable("x", "f8", ("x",))
        x.standard_name = "projection_x_coordinate"
        x.units = "m"
        x[:] = POLAR_X
        crs = ds.createVariable("mapping", "i4", ())
        crs.grid_mapping_name = "polar_stereographic"
        crs.straight_vertical_longitude_from_pole = 0.0
        crs.latitude_of_projection_origin = -90.0
        crs.standard_parallel = -71.0
        crs.false_easting = 0.0
        crs.false_northing = 0.0
        crs.semi_major_axis = 6378137.0
        crs.inverse_flattening = 298.257223563
        thk = ds.createVariable("thk", "f4", ("time", "y", "x"), fill_value=np.float32(np.nan))
        thk.grid_mapping = "mapping"
        thk.units = "m"
        yy, xx = np.meshgrid(POLAR_Y, POLAR_X, indexing="ij")
        r = np.hypot(xx, yy)
        values = 3000 * np.clip(1 - r / 900_000, 0, None) + rng.uniform(0, 50, (2,) + r.shape)
        values[:, r > 900_000] = np.nan
        thk[:] = values.astype("f4")
    return path


MODEL_GRIDS = {  # model -> (lat centres, lon centres)
    "m1": (np.arange(-88.5, 89, 3.0), np.arange(1.5, 360, 3.0)),
    "m2": (np.arange(87.5, -88, -5.0), np.arange(-177.5, 180, 5.0)),
    "m3": (np.linspace(-89.0, 89.0, 60), np.arange(0.0, 360, 2.5)),
}


def make_models(root: Path, seed: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for model, (lat, lon) in MODEL_GRIDS.items():
        with netCDF4.Dataset(root / f"{model}.nc", "w") as ds:
            _time(ds, 0, 2)
            _latlon(ds, lat, lon)
            lithk = ds.createVariable("lithk", "f4", ("time", "lat", "lon"))
            lat2, lon2 = np.meshgrid(np.radians(lat), np.radians(lon), indexing="ij")
            base = 1000 + 500 * np.cos(lat2) * np.cos(lon2)
            lithk[:] = (base + rng.normal(0, 30, (2,) + base.shape)).astype("f4")
    return {"root": root, "pattern": "{model}.nc", "groups": ["model"]}


# ---------------------------------------------------------------------------------------------
# references


def cell_bounds(centres: np.ndarray, latitude: bool) -> np.ndarray:
    """[n, 2] (lower, upper) bounds: midpoints between centres, the ends extrapolated by half
    the neighbouring spacing, latitude clipped to +-90."""
    c = np.asarray(centres, dtype="f8")
    edges = np.empty(len(c) + 1)
    edges[1:-1] = (c[1:] + c[:-1]) / 2
    edges[0] = c[0] - (c[1] - c[0]) / 2
    edges[-1] = c[-1] + (c[-1] - c[-2]) / 2
    if latitude:
        edges = np.clip(edges, -90, 90)
    return np.sort(np.stack([edges[:-1], edges[1:]], axis=1), axis=1)


def overlap_1d(src: np.ndarray, dst: np.ndarray, kind: str) -> np.ndarray:
    """[n_dst, n_src] overlap of cells divided by the target cell's size: sin-latitude lengths
    (exact spherical area fraction along latitude), plain lengths otherwise; longitudes compared
    modulo 360."""
    w = np.zeros((len(dst), len(src)))
    for i, (d0, d1) in enumerate(dst):
        size = np.sin(np.radians(d1)) - np.sin(np.radians(d0)) if kind == "lat" else d1 - d0
        for j, (s0, s1) in enumerate(src):
            shifts = (-720, -360, 0, 360, 720) if kind == "lon" else (0,)
            total = 0.0
            for k in shifts:
                lo, hi = max(d0, s0 + k), min(d1, s1 + k)
                if hi > lo:
                    total += (np.sin(np.radians(hi)) - np.sin(np.radians(lo))
                              if kind == "lat" else hi - lo)
            w[i, j] = total / size
    return w


def nan_rule(weights_y, weights_x, field: np.ndarray, threshold: float) -> np.ndarray:
    """Separable weights applied to a (..., ny, nx) field with the design's NaN rule."""
    valid_mask = (~np.isnan(field)).astype("f8")
    filled = np.where(np.isnan(field), 0.0, field.astype("f8"))
    num = np.einsum("ij,...jk,lk->...il", weights_y, filled, weights_x)
    valid = np.einsum("ij,...jk,lk->...il", weights_y, valid_mask, weights_x)
    t = np.clip(threshold, 1e-6, 1 - 1e-6)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / valid
    out[valid < 1 - t] = np.nan
    out[valid <= 0] = np.nan
    return out


def conservative(field, src_lat, src_lon, dst_lat, dst_lon, threshold=1.0):
    wy = overlap_1d(cell_bounds(src_lat, True), cell_bounds(dst_lat, True), "lat")
    wx = overlap_1d(cell_bounds(src_lon, False), cell_bounds(dst_lon, False), "lon")
    return nan_rule(wy, wx, field, threshold)


def cell_areas(lat, lon) -> np.ndarray:
    """Exact spherical areas (unit sphere) of the cells of a lat/lon grid."""
    lb, xb = cell_bounds(lat, True), cell_bounds(lon, False)
    dy = np.sin(np.radians(lb[:, 1])) - np.sin(np.radians(lb[:, 0]))
    dx = np.radians(xb[:, 1] - xb[:, 0])
    return dy[:, None] * dx[None, :]


def binned(field, src_lat, src_lon, dst_lat, dst_lon, stat: str) -> np.ndarray:
    """Statistics of the source values whose centres fall in each target cell (lower bound
    closed, upper open, but a cell ending at the north pole takes a centre on it; longitudes
    modulo 360), NaN skipped; count of an empty cell is 0."""
    lb, xb = cell_bounds(dst_lat, True), cell_bounds(dst_lon, False)
    out = np.full(field.shape[:-2] + (len(dst_lat), len(dst_lon)), np.nan)
    for i, (y0, y1) in enumerate(lb):
        # a cell ending at the north pole also takes a centre on it (xarray-regrid's last
        # interval reaches half a step past the last target centre)
        rows = np.nonzero((src_lat >= y0) & ((src_lat < y1) | ((y1 == 90) & (src_lat == 90))))[0]
        for j, (x0, x1) in enumerate(xb):
            rel = (src_lon - x0) % 360
            cols = np.nonzero(rel < x1 - x0)[0]
            block = field[..., rows[:, None], cols[None, :]].reshape(field.shape[:-2] + (-1,))
            n = np.sum(~np.isnan(block), axis=-1)
            if stat == "count":
                out[..., i, j] = n
                continue
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells
                value = {"mean": np.nanmean, "min": np.nanmin, "max": np.nanmax,
                         "std": np.nanstd, "median": np.nanmedian}[stat](block, axis=-1) \
                    if block.shape[-1] else np.full(block.shape[:-1], np.nan)
            out[..., i, j] = np.where(n > 0, value, np.nan)
    return out


OCEAN_SHAPE = (40, 60)


def ocean_coords():
    """2-d lat/lon of a curvilinear grid: a lat/lon mesh rotated by 20 degrees in the plane of
    its indices and stretched in latitude."""
    j, i = np.meshgrid(np.arange(OCEAN_SHAPE[0]), np.arange(OCEAN_SHAPE[1]), indexing="ij")
    u, v = i - OCEAN_SHAPE[1] / 2, j - OCEAN_SHAPE[0] / 2
    a = np.radians(20)
    lon = 180 + 2.0 * (u * np.cos(a) - v * np.sin(a))
    lat = 1.5 * (u * np.sin(a) + v * np.cos(a))
    return lat, lon


def make_ocean(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ocean.nc"
    lat, lon = ocean_coords()
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", OCEAN_SHAPE[0])
        ds.createDimension("x", OCEAN_SHAPE[1])
        la = ds.createVariable("nav_lat", "f8", ("y", "x"))
        la.units = "degrees_north"
        la.standard_name = "latitude"
        la[:] = lat
        lo = ds.createVariable("nav_lon", "f8", ("y", "x"))
        lo.units = "degrees_east"
        lo.standard_name = "longitude"
        lo[:] = lon
        sst = ds.createVariable("sst", "f4", ("y", "x"), fill_value=np.float32(1e20))
        sst.coordinates = "nav_lat nav_lon"
        land = (np.abs(lat - 5) < 6) & (np.abs(lon - 170) < 8)
        values = 15 + 10 * np.cos(np.radians(lat)) + 0.05 * (lon - 180)
        sst[:] = np.ma.masked_array(values.astype("f4"), land)
        one = ds.createVariable("one", "f8", ("y", "x"))
        one.coordinates = "nav_lat nav_lon"
        one[:] = np.ones(OCEAN_SHAPE)
    return path
