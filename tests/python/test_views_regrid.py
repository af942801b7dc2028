"""Regrid views: every data variable on a target grid, computed per output chunk.

Expected values come from references written in ``regrid_fixtures`` from the formulas (exact
spherical overlaps, numpy binning, the NaN rule) and from ``xarray.interp`` on the original
files, never from atlasfs.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import regrid_fixtures as rf
import view_fixtures as vf
from conftest import open_mounted, run_atlasfs

# target grids
DEG10 = {"lat": {"start": -85.0, "stop": 85.0, "step": 10.0},
         "lon": {"start": -175.0, "stop": 175.0, "step": 10.0}}  # -180..180 from a 0..360 source
DEG10_LAT = np.arange(-85.0, 85.0 + 1e-9, 10.0)
DEG10_LON = np.arange(-175.0, 175.0 + 1e-9, 10.0)
INNER = {"lat": {"start": 81.3, "stop": -81.7, "step": -3.26},  # descending, inside the domain
         "lon": {"start": 1.1, "stop": 353.9, "step": 3.7}}
INNER_LAT = np.arange(81.3, -81.7 - 1e-9, -3.26)
INNER_LON = np.arange(1.1, 353.9 + 1e-9, 3.7)
STAT8 = {"lat": {"start": -86.0, "stop": 86.0, "step": 8.0},
         "lon": {"start": 2.0, "stop": 358.0, "step": 8.0}}
STAT8_LAT = np.arange(-86.0, 86.0 + 1e-9, 8.0)
STAT8_LON = np.arange(2.0, 358.0 + 1e-9, 8.0)
STATS = ("mean", "min", "max", "std", "median", "count")
POLAR_TARGET = {"crs": "EPSG:3031",
                "x": {"start": -950_000.0, "stop": 950_000.0, "step": 100_000.0},
                "y": {"start": -1_150_000.0, "stop": 1_150_000.0, "step": 100_000.0}}


def view_tables():
    tables = [
        {"name": "rg/cons", "from": "globe", "regrid": {"method": "conservative", "grid": DEG10}},
        {"name": "rg/cons-strict", "from": "globe",
         "regrid": {"method": "conservative", "grid": DEG10, "nan_threshold": 0.0, "chunk": 7}},
        {"name": "rg/cons-half", "from": "globe",
         "regrid": {"method": "conservative", "grid": DEG10, "nan_threshold": 0.5,
                    "codec": "zstd"}},
        {"name": "rg/bilinear", "from": "globe",
         "regrid": {"method": "bilinear", "grid": INNER, "nan_threshold": 0.0, "chunk": 16}},
        {"name": "rg/nearest", "from": "globe", "regrid": {"method": "nearest", "grid": INNER}},
        {"name": "rg/like", "from": "globe", "variables": ["t2m"],
         "regrid": {"method": "conservative", "grid": {"like": "models/m1"}}},
        {"name": "rg/polar", "from": "polar",
         "regrid": {"method": "conservative", "grid": POLAR_TARGET}},
        {"name": "rg/models", "from": "models",
         "regrid": {"method": "conservative", "grid": DEG10}},
    ]
    tables += [{"name": f"rg/stat/{s}", "from": "globe", "variables": ["t2m"],
                "regrid": {"method": s, "grid": STAT8}} for s in STATS]
    return tables


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    base = tmp_path_factory.mktemp("regrid")
    globe = rf.make_globe(base / "globe")
    polar = rf.make_polar(base / "polar")
    models = rf.make_models(base / "models")
    return {"globe": globe, "polar": polar, "models": models}


def datasets(archives):
    return rf.dataset_entries(archives)


@pytest.fixture(scope="module")
def mount(module_mounts, archives):
    return vf.mount_views(module_mounts, datasets(archives), view_tables())


@pytest.fixture(scope="module")
def globe(archives) -> xr.Dataset:
    return rf.open_globe(archives["globe"])


def close(got, want, where, rtol=1e-5, atol=0.0):
    rf.close(got, want, where, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# conservative


@pytest.mark.parametrize("name,threshold", [("cons", 1.0), ("cons-strict", 0.0),
                                            ("cons-half", 0.5)])
@pytest.mark.parametrize("var", ["t2m", "sp", "smooth"])
def test_conservative_equals_exact_spherical_overlap(mount, globe, name, threshold, var):
    got = open_mounted(mount / "rg" / name)
    want = rf.conservative(globe[var].values, rf.GLOBE_LAT, rf.GLOBE_LON, DEG10_LAT, DEG10_LON,
                           threshold)
    assert got[var].dims == ("time", "lat", "lon")
    close(got[var].values, want, f"{name} {var}", rtol=1e-5 if var != "smooth" else 1e-6)
    np.testing.assert_allclose(got.lat.values, DEG10_LAT)
    np.testing.assert_allclose(got.lon.values, DEG10_LON)
    np.testing.assert_array_equal(got.time.values, globe.time.values)


def test_conservative_thresholds_differ_where_land_is_partial(mount):
    loose = open_mounted(mount / "rg" / "cons")["t2m"].values
    strict = open_mounted(mount / "rg" / "cons-strict")["t2m"].values
    half = open_mounted(mount / "rg" / "cons-half")["t2m"].values
    n_loose, n_half, n_strict = (int(np.isnan(a).sum()) for a in (loose, half, strict))
    assert n_loose < n_half < n_strict, (n_loose, n_half, n_strict)


def test_conservative_conserves_the_area_integral(mount, globe):
    got = open_mounted(mount / "rg" / "cons")["sp"].values.astype("f8")
    src_area = rf.cell_areas(rf.GLOBE_LAT, rf.GLOBE_LON)
    dst_area = rf.cell_areas(DEG10_LAT, DEG10_LON)
    # the target covers -90..90 fully (its end cells extrapolate to the poles)
    for t in range(got.shape[0]):
        src = np.sum(globe["sp"].values[t].astype("f8") * src_area)
        dst = np.sum(got[t] * dst_area)
        assert abs(dst - src) <= 1e-6 * abs(src), (t, src, dst)


def test_values_are_float32_for_float32_and_packed_sources(mount, globe):
    got = open_mounted(mount / "rg" / "cons")
    assert got["t2m"].dtype == np.float32
    assert got["sp"].dtype == globe["sp"].dtype  # xarray decodes int16 + float32 scale to f32
    assert got["smooth"].dtype == np.float64
    assert got["t2m"].attrs.get("units") == "K"
    assert got.lat.attrs.get("units") == "degrees_north"
    assert "regrid" in got.attrs.get("history", "")


# --------------------------------------------------------------------------------------------
# bilinear and nearest


def test_bilinear_equals_xarray_interp(mount, globe):
    got = open_mounted(mount / "rg" / "bilinear")
    np.testing.assert_allclose(got.lat.values, INNER_LAT, rtol=1e-12)
    np.testing.assert_allclose(got.lon.values, INNER_LON, rtol=1e-12)
    # at the served centres exactly, so a centre half-way between two source centres is
    # decided by the same numbers on both sides
    want = globe.interp(lat=got.lat.values, lon=got.lon.values, method="linear")
    for var in ("t2m", "smooth"):
        close(got[var].values, want[var].values, f"bilinear {var}",
              rtol=1e-12 if var == "smooth" else 2e-6)
    assert np.isnan(got["t2m"].values).any() and not np.isnan(got["smooth"].values).any()


def test_nearest_equals_xarray_interp(mount, globe):
    got = open_mounted(mount / "rg" / "nearest")
    want = globe.interp(lat=got.lat.values, lon=got.lon.values, method="nearest")
    for var in ("t2m", "sp", "smooth"):
        close(got[var].values, want[var].values, f"nearest {var}", rtol=1e-7)


# --------------------------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize("stat", STATS)
def test_statistics_bin_source_centres(mount, globe, stat):
    got = open_mounted(mount / "rg" / "stat" / stat)["t2m"].values
    want = rf.binned(globe["t2m"].values.astype("f8"), rf.GLOBE_LAT, rf.GLOBE_LON, STAT8_LAT,
                     STAT8_LON, stat)
    close(got, want, stat, rtol=2e-5 if stat == "std" else 1e-5, atol=1e-3 if stat == "std" else 0)


# --------------------------------------------------------------------------------------------
# grids from the tree, projections, DataTrees


def test_like_takes_another_groups_grid(mount, globe):
    got = open_mounted(mount / "rg" / "like")
    lat, lon = rf.MODEL_GRIDS["m1"]
    assert set(got.data_vars) == {"t2m"}
    np.testing.assert_allclose(got.lat.values, lat)
    np.testing.assert_allclose(got.lon.values, lon)
    want = rf.conservative(globe["t2m"].values, rf.GLOBE_LAT, rf.GLOBE_LON, lat, lon)
    close(got["t2m"].values, want, "like m1")


def test_projected_source_regrids_in_its_plane(mount, archives):
    got = open_mounted(mount / "rg" / "polar")
    with xr.open_dataset(archives["polar"]) as src:
        thk = src["thk"].load()
    x = np.arange(-950_000.0, 950_000.0 + 1, 100_000.0)
    y = np.arange(-1_150_000.0, 1_150_000.0 + 1, 100_000.0)
    wy = rf.overlap_1d(rf.cell_bounds(rf.POLAR_Y, False), rf.cell_bounds(y, False), "y")
    wx = rf.overlap_1d(rf.cell_bounds(rf.POLAR_X, False), rf.cell_bounds(x, False), "x")
    want = rf.nan_rule(wy, wx, thk.values, 1.0)
    assert got["thk"].dims == ("time", "y", "x")
    close(got["thk"].values, want, "polar thk")
    # the target's grid mapping describes EPSG:3031 to PROJ
    import pyproj

    assert got["thk"].attrs.get("grid_mapping") == "spatial_ref"
    crs = pyproj.CRS.from_cf(got["spatial_ref"].attrs)
    lon, lat = np.array([0.0, 45.0, -120.0, 170.0]), np.array([-60.0, -75.0, -85.0, -89.0])
    served = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    epsg = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True).transform(lon, lat)
    np.testing.assert_allclose(served, epsg, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got.x.values, x)
    np.testing.assert_allclose(got.y.values, y)


def test_a_datatree_of_models_on_three_grids_gives_their_variance(mount, archives):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = xr.open_datatree(str(mount / "rg" / "models"), engine="zarr", consolidated=True,
                                chunks=None)
    models = sorted(rf.MODEL_GRIDS)
    stacked = xr.concat([tree[m]["lithk"] for m in models], "m")
    got = stacked.var("m").values
    wants = []
    for m in models:
        lat, lon = rf.MODEL_GRIDS[m]
        with xr.open_dataset(archives["models"]["root"] / f"{m}.nc") as src:
            wants.append(rf.conservative(src["lithk"].values, lat, lon, DEG10_LAT, DEG10_LON))
    want = np.var(np.stack(wants), axis=0)
    close(got, want, "variance", rtol=1e-4, atol=1e-3)
    assert np.isfinite(got).all()


# --------------------------------------------------------------------------------------------
# weights and errors


def test_weights_are_persisted_keyed_by_grids(mount):
    open_mounted(mount / "rg" / "cons")
    files = list((mount.cache_dir / "weights").glob("*.bin"))
    assert files, "no weights persisted under the cache directory"


def test_config_errors_name_the_view(tmp_path, archives, atlasfs_bin):
    cases = [
        ({"method": "conservative", "grid": {"crs": "EPSG:9999", "x": DEG10["lon"],
                                             "y": DEG10["lat"]}}, "EPSG:9999"),
        ({"method": "conservative", "grid": DEG10, "nan_threshold": 2.0}, "nan_threshold"),
        ({"method": "cubic", "grid": DEG10}, "cubic"),
        ({"method": "conservative", "grid": {"like": "nowhere"}}, "nowhere"),
        ({"method": "conservative", "grid": {"lat": {"start": 0.0, "stop": 10.0, "step": -1.0},
                                             "lon": DEG10["lon"]}}, "step"),
    ]
    for i, (regrid, needle) in enumerate(cases):
        config = vf.write_views_config(tmp_path / f"c{i}.toml", datasets(archives),
                                       [{"name": "bad", "from": "globe", "regrid": regrid}],
                                       cache_dir=tmp_path / "cache")
        res = run_atlasfs(atlasfs_bin, "check", config)
        assert res.returncode != 0, (regrid, res.stdout)
        out = res.stdout + res.stderr
        assert "bad" in out and needle in out, (needle, out)


def test_tree_lists_regrid_views(mount):
    assert (mount / "rg" / "cons" / "t2m").is_dir()
    listed = {p.name for p in (mount / "rg" / "stat").iterdir() if p.is_dir()}
    assert listed == set(STATS)


def _write_small(path, lat, values):
    import netCDF4

    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", len(lat))
        ds.createDimension("lon", 8)
        la = ds.createVariable("lat", "f8", ("lat",))
        la.units = "degrees_north"
        la[:] = lat
        lo = ds.createVariable("lon", "f8", ("lon",))
        lo.units = "degrees_east"
        lo[:] = np.arange(8) * 45.0
        v = ds.createVariable("v", "f4", ("lat", "lon"))
        v[:] = values.astype("f4")


def test_weights_follow_the_grid_not_the_values(mounts, tmp_path):
    """A changed value keeps the persisted weights; a changed grid gets new ones."""
    lat = np.linspace(-80.0, 80.0, 9)
    rng = np.random.default_rng(2)
    path = tmp_path / "small.nc"
    _write_small(path, lat, rng.uniform(0, 10, (9, 8)))
    grid = {"lat": {"start": -75.0, "stop": 75.0, "step": 30.0},
            "lon": {"start": 10.0, "stop": 340.0, "step": 30.0}}
    cache = tmp_path / "cache"
    config = vf.write_views_config(tmp_path / "c.toml", [{"name": "s", "files": str(path)}],
                                   [{"name": "r", "from": "s",
                                     "regrid": {"method": "conservative", "grid": grid}}],
                                   cache_dir=cache)
    dst_lat, dst_lon = np.arange(-75.0, 76.0, 30.0), np.arange(10.0, 341.0, 30.0)

    def read_and_check(src_lat):
        m = mounts.mount_config(config, cache)
        got = open_mounted(m / "r")["v"].values
        with xr.open_dataset(path) as src:
            want = rf.conservative(src["v"].values, src_lat, np.arange(8) * 45.0, dst_lat, dst_lon)
        close(got, want, "small")
        m.unmount()
        # a recomputed file is written anew (temp file + rename): a new inode; loading it
        # only marks it as used (its mtime)
        return {p.name: p.stat().st_ino for p in (cache / "weights").glob("*.bin")}

    first = read_and_check(lat)
    assert len(first) == 1, first
    time.sleep(0.05)
    _write_small(path, lat, rng.uniform(0, 10, (9, 8)))  # new values, same grid
    assert read_and_check(lat) == first, "new values must not recompute the weights"
    shifted = np.linspace(-84.0, 76.0, 9)
    _write_small(path, shifted, rng.uniform(0, 10, (9, 8)))  # a new grid
    third = read_and_check(shifted)
    assert set(first) < set(third), "a new grid gets new weights"



def test_weights_stay_within_their_share_of_max_size(mounts, tmp_path, archives, globe,
                                                      atlasfs_bin):
    """The weights dir is bounded by max_size / 8: with room for one pair's weights, the
    second view's weights evict the first's, and both views still serve the right values."""
    views = [{"name": "a", "from": "globe",
              "regrid": {"method": "conservative", "grid": DEG10}},
             {"name": "b", "from": "globe",
              "regrid": {"method": "bilinear", "grid": INNER, "nan_threshold": 0.0,
                         "chunk": 16}}]
    cache = tmp_path / "cache"
    config = vf.write_views_config(tmp_path / "c.toml", datasets(archives)[:1], views,
                                   cache_dir=cache)
    max_size = 25 * 1024
    budget = max_size // 8
    config.write_text(config.read_text().replace("[cache]\n", '[cache]\nmax_size = "25KiB"\n'))
    weights = cache / "weights"

    def on_disk():
        return {p.name: p.stat().st_size for p in weights.iterdir()}

    def check_a(m):
        got = open_mounted(m / "a")["t2m"].values
        want = rf.conservative(globe["t2m"].values, rf.GLOBE_LAT, rf.GLOBE_LON, DEG10_LAT,
                               DEG10_LON, 1.0)
        close(got, want, "a t2m")

    def check_b(m):
        got = open_mounted(m / "b")
        want = globe.interp(lat=got.lat.values, lon=got.lon.values, method="linear")
        close(got["t2m"].values, want["t2m"].values, "b t2m", rtol=2e-6)

    m = mounts.mount_config(config, cache)
    check_a(m)
    first = on_disk()
    assert len(first) == 1, first
    check_b(m)
    second = on_disk()
    (a_name, a_size), = first.items()
    b_size = sum(v for k, v in second.items() if k != a_name)
    # two pairs' weights do not fit the budget, one does
    assert max(a_size, b_size) <= budget < a_size + b_size, (a_size, b_size, budget)
    assert sum(second.values()) <= budget, (second, budget)
    assert a_name not in second, "the weights used longest ago are evicted"
    m.unmount()
    # after a remount (weights recomputed where evicted) the values and the bound hold
    m = mounts.mount_config(config, cache)
    check_a(m)
    check_b(m)
    assert sum(on_disk().values()) <= budget, (on_disk(), budget)
    res = run_atlasfs(atlasfs_bin, "cache", "stats", config, "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)["regrid_weights"]
    assert shown == {"files": len(on_disk()), "bytes": sum(on_disk().values()),
                     "budget": budget}, shown
