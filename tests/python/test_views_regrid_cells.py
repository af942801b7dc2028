"""Regrid views between grids of different kinds: lat/lon to a polar stereographic grid,
projected to lat/lon, and a curvilinear ocean grid to lat/lon — weights from cell polygons.

References (never atlasfs): pyproj for the projections; for conservative, the mean of the source
values at a dense raster of points spread evenly over each target cell (the area-weighted mean
in the limit); for bilinear, ``xarray.interp`` at the target centres mapped to lon/lat; for
nearest, a KD-tree of the source centres on the unit sphere (scipy).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import regrid_fixtures as rf
import view_fixtures as vf
from conftest import open_mounted

POLAR = {"crs": "EPSG:3031",
         "x": {"start": -3_000_000.0, "stop": 3_000_000.0, "step": 200_000.0},
         "y": {"start": 3_000_000.0, "stop": -3_000_000.0, "step": -200_000.0}}
SOUTH = {"lat": {"start": -89.75, "stop": -75.25, "step": 0.5},
         "lon": {"start": -179.5, "stop": 179.5, "step": 1.0}}
TROPICS = {"lat": {"start": -30.0, "stop": 30.0, "step": 2.0},
           "lon": {"start": 130.0, "stop": 230.0, "step": 2.0}}


def views():
    return [
        {"name": "c/ll-polar-cons", "from": "globe", "variables": ["const", "smooth"],
         "regrid": {"method": "conservative", "grid": POLAR}},
        {"name": "c/ll-polar-bil", "from": "globe", "variables": ["smooth"],
         "regrid": {"method": "bilinear", "grid": POLAR}},
        {"name": "c/polar-ll", "from": "polar", "regrid": {"method": "conservative", "grid": SOUTH}},
        {"name": "c/ocean-nearest", "from": "ocean",
         "regrid": {"method": "nearest", "grid": TROPICS}},
        {"name": "c/ocean-cons", "from": "ocean",
         "regrid": {"method": "conservative", "grid": TROPICS}},
    ]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    base = tmp_path_factory.mktemp("cells")
    return {"globe": rf.make_globe(base / "globe"), "polar": rf.make_polar(base / "polar"),
            "ocean": rf.make_ocean(base / "ocean")}


@pytest.fixture(scope="module")
def mount(module_mounts, archives):
    datasets = [
        {"name": "globe", "files": str(archives["globe"][0].parent / "*.nc"),
         "concat_dim": "time"},
        {"name": "polar", "files": str(archives["polar"])},
        {"name": "ocean", "files": str(archives["ocean"])},
    ]
    return vf.mount_views(module_mounts, datasets, views())


@pytest.fixture(scope="module")
def globe(archives):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset([str(p) for p in archives["globe"]], combine="by_coords") as ds:
            return ds.load()


def axis(r):
    return np.arange(r["start"], r["stop"] + r["step"] * 1e-9, r["step"])


def raster(lo, hi, n=16):
    """n points spread evenly over [lo, hi] (cell-centred)."""
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def to_lonlat(x, y, crs="EPSG:3031"):
    import pyproj

    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)


def globe_lookup(field, lon, lat):
    """The value of the 4-degree globe cell containing each point (cells centred on the
    centres, pole cells clipped)."""
    row = np.clip(np.round((90 - lat) / rf.GLOBE_STEP).astype(int), 0, len(rf.GLOBE_LAT) - 1)
    col = np.round((lon % 360) / rf.GLOBE_STEP).astype(int) % len(rf.GLOBE_LON)
    return field[row, col]


def test_latlon_to_polar_conservative(mount, globe):
    got = open_mounted(mount / "c" / "ll-polar-cons")
    x, y = axis(POLAR["x"]), axis(POLAR["y"])
    assert got["smooth"].dims == ("time", "y", "x")
    np.testing.assert_allclose(got.x.values, x)
    np.testing.assert_allclose(got.y.values, y)
    const = got["const"].values
    assert np.isfinite(const).all()
    np.testing.assert_allclose(const, 7.0, rtol=1e-9)
    field = globe["smooth"].values[0]
    want = np.empty((len(y), len(x)))
    for j, yc in enumerate(y):
        for i, xc in enumerate(x):
            px, py = np.meshgrid(raster(xc - 1e5, xc + 1e5), raster(yc - 1e5, yc + 1e5))
            lon, lat = to_lonlat(px.ravel(), py.ravel())
            want[j, i] = globe_lookup(field, np.asarray(lon), np.asarray(lat)).mean()
    span = field.max() - field.min()
    err = np.abs(got["smooth"].values[0] - want)
    assert np.median(err) < 0.01 * span and err.max() < 0.06 * span, (np.median(err), err.max())


def test_latlon_to_polar_bilinear_equals_interp(mount, globe):
    got = open_mounted(mount / "c" / "ll-polar-bil")["smooth"].values[0]
    x, y = axis(POLAR["x"]), axis(POLAR["y"])
    xx, yy = np.meshgrid(x, y)
    lon, lat = to_lonlat(xx, yy)
    lon = np.asarray(lon) % 360
    want = globe["smooth"].isel(time=0).interp(
        lat=xr.DataArray(np.asarray(lat), dims=("y", "x")),
        lon=xr.DataArray(lon, dims=("y", "x")), method="linear").values
    inside = np.isfinite(want)  # xarray does not wrap past the last longitude (356)
    assert inside.mean() > 0.9
    span = np.nanmax(want) - np.nanmin(want)
    np.testing.assert_allclose(got[inside], want[inside], rtol=0, atol=2e-3 * span)
    assert np.isfinite(got).all(), "a global source covers every target cell"


def test_polar_to_latlon_conservative(mount, archives):
    got = open_mounted(mount / "c" / "polar-ll")
    lat, lon = axis(SOUTH["lat"]), axis(SOUTH["lon"])
    assert got["thk"].dims == ("time", "lat", "lon")
    with xr.open_dataset(archives["polar"]) as src:
        thk = src["thk"].values[0].astype("f8")
    import pyproj

    fwd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True)
    values = got["thk"].values[0]
    checked = 0
    for j in range(0, len(lat), 3):
        for i in range(0, len(lon), 7):
            plon, plat = np.meshgrid(raster(lon[i] - 0.5, lon[i] + 0.5),
                                     raster(lat[j] - 0.25, lat[j] + 0.25))
            # equal-area raster: weight each point by the cosine of its latitude
            w = np.cos(np.radians(plat.ravel()))
            px, py = fwd.transform(plon.ravel(), plat.ravel())
            col = np.round((np.asarray(px) - rf.POLAR_X[0]) / rf.POLAR_STEP).astype(int)
            row = np.round((rf.POLAR_Y[0] - np.asarray(py)) / rf.POLAR_STEP).astype(int)
            ok = (col >= 0) & (col < len(rf.POLAR_X)) & (row >= 0) & (row < len(rf.POLAR_Y))
            if not ok.all():
                continue  # partly outside the source: not compared
            samples = thk[row, col]
            if np.isnan(samples).any():
                if np.isnan(samples).all():
                    assert np.isnan(values[j, i]), (lat[j], lon[i])
                continue
            want = np.sum(samples * w) / np.sum(w)
            assert abs(values[j, i] - want) <= 0.01 * abs(want) + 5, (lat[j], lon[i], values[j, i], want)
            checked += 1
    assert checked > 20, checked
    assert np.isnan(values[-1]).all(), "latitudes beyond the source are NaN"


def ocean_unit(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def test_curvilinear_nearest_equals_a_kd_tree(mount, archives):
    from scipy.spatial import cKDTree

    got = open_mounted(mount / "c" / "ocean-nearest")
    lat, lon = axis(TROPICS["lat"]), axis(TROPICS["lon"])
    assert got["sst"].dims == ("lat", "lon")
    with xr.open_dataset(archives["ocean"]) as src:
        sst = src["sst"].values
        slat, slon = src["nav_lat"].values, src["nav_lon"].values
    tree = cKDTree(ocean_unit(slat, slon).reshape(-1, 3))
    tlat, tlon = np.meshgrid(lat, lon, indexing="ij")
    dist, idx = tree.query(ocean_unit(tlat, tlon).reshape(-1, 3))
    want = sst.ravel()[idx].reshape(tlat.shape)
    spacing = np.radians(1.0)  # well inside: nearer than half the smallest source spacing
    inside = (dist.reshape(tlat.shape) < spacing) & np.isfinite(want)
    assert inside.sum() > 200
    np.testing.assert_allclose(got["sst"].values[inside], want[inside], rtol=1e-6)
    far = dist.reshape(tlat.shape) > np.radians(8)
    assert far.any() and np.isnan(got["sst"].values[far]).all(), "outside the grid is NaN"


def test_curvilinear_conservative_keeps_a_constant_and_the_mask(mount):
    got = open_mounted(mount / "c" / "ocean-cons")
    one = got["one"].values
    finite = np.isfinite(one)
    assert finite.sum() > 200
    np.testing.assert_allclose(one[finite], 1.0, rtol=1e-9)
    lat, lon = got.lat.values, got.lon.values
    j, i = np.argmin(np.abs(lat - 5)), np.argmin(np.abs(lon - 170))
    assert np.isnan(got["sst"].values[j, i]), "a cell inside the land mask is NaN"
    assert np.isfinite(got["sst"].values[np.argmin(np.abs(lat - 0)), np.argmin(np.abs(lon - 190))])
