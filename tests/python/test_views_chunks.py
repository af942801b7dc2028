"""A view's ``chunks``: several elements of the other dimensions per chunk (e.g. days), and
chunk lengths by dimension name, for regrid and native pyramid views.

Expected values come from references written from the formulas (``regrid_fixtures``) and from
``xarray.interp`` / ``coarsen`` on the original files, never from atlasfs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import regrid_fixtures as rf
import view_fixtures as vf
from conftest import open_mounted, run_atlasfs

DEG10 = {"lat": {"start": -85.0, "stop": 85.0, "step": 10.0},
         "lon": {"start": -175.0, "stop": 175.0, "step": 10.0}}
DEG10_LAT = np.arange(-85.0, 85.0 + 1e-9, 10.0)
DEG10_LON = np.arange(-175.0, 175.0 + 1e-9, 10.0)
INNER = {"lat": {"start": 81.3, "stop": -81.7, "step": -3.26},
         "lon": {"start": 1.1, "stop": 353.9, "step": 3.7}}
# more days than one chunk holds, not a multiple of it: the last chunk is partial
DAYS = 4
assert rf.GLOBE_FILES * rf.GLOBE_DAYS % DAYS != 0


def view_tables():
    return [
        {"name": "ck/cons", "from": "globe",
         "regrid": {"method": "conservative", "grid": DEG10, "chunks": {"time": DAYS}}},
        {"name": "ck/bilinear", "from": "globe",
         "regrid": {"method": "bilinear", "grid": INNER, "nan_threshold": 0.0, "chunk": 16,
                    "chunks": {"time": DAYS, "lon": 40}}},
        {"name": "ck/stat", "from": "globe", "variables": ["t2m"],
         "regrid": {"method": "mean", "grid": DEG10, "chunks": {"time": 1000}}},
        {"name": "ck/models", "from": "models",
         "regrid": {"method": "conservative", "grid": DEG10, "chunks": {"time": 2}}},
        {"name": "ck/pyramid", "from": "globe",
         "pyramid": {"levels": 3, "chunks": {"time": DAYS}}},
    ]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    base = tmp_path_factory.mktemp("chunks")
    return {"globe": rf.make_globe(base / "globe"), "models": rf.make_models(base / "models")}


def datasets(archives):
    return rf.dataset_entries(archives)


@pytest.fixture(scope="module")
def mount(module_mounts, archives):
    return vf.mount_views(module_mounts, datasets(archives), view_tables())


@pytest.fixture(scope="module")
def globe(archives) -> xr.Dataset:
    return rf.open_globe(archives["globe"])


def test_regrid_chunks_hold_several_days(mount):
    ntime = rf.GLOBE_FILES * rf.GLOBE_DAYS
    assert vf.array_meta(mount / "ck/cons/t2m")["chunks"] == [DAYS, 18, 36]
    assert vf.array_meta(mount / "ck/bilinear/t2m")["chunks"] == [DAYS, 16, 40]
    # longer than the dimension: the whole dimension
    assert vf.array_meta(mount / "ck/stat/t2m")["chunks"] == [ntime, 18, 36]


@pytest.mark.parametrize("var", ["t2m", "sp", "smooth"])
def test_conservative_in_several_day_chunks_equals_exact_overlap(mount, globe, var):
    got = open_mounted(mount / "ck" / "cons")
    want = rf.conservative(globe[var].values, rf.GLOBE_LAT, rf.GLOBE_LON, DEG10_LAT, DEG10_LON)
    rf.close(got[var].values, want, f"cons {var}", rtol=1e-5 if var != "smooth" else 1e-6)
    np.testing.assert_array_equal(got.time.values, globe.time.values)


def test_bilinear_in_several_day_chunks_equals_xarray_interp(mount, globe):
    got = open_mounted(mount / "ck" / "bilinear")
    want = globe.interp(lat=got.lat.values, lon=got.lon.values, method="linear")
    for var in ("t2m", "smooth"):
        rf.close(got[var].values, want[var].values, f"bilinear {var}",
                 rtol=1e-12 if var == "smooth" else 2e-6)
    assert np.isnan(got["t2m"].values).any()


def test_statistic_in_one_chunk_of_every_day_equals_binning(mount, globe):
    got = open_mounted(mount / "ck" / "stat")["t2m"].values
    want = rf.binned(globe["t2m"].values.astype("f8"), rf.GLOBE_LAT, rf.GLOBE_LON, DEG10_LAT,
                     DEG10_LON, "mean")
    rf.close(got, want, "mean", rtol=1e-5)


def test_a_datatree_regridded_in_two_day_chunks(mount, archives):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = xr.open_datatree(str(mount / "ck" / "models"), engine="zarr", consolidated=True,
                                chunks=None)
    for m in sorted(rf.MODEL_GRIDS):
        lat, lon = rf.MODEL_GRIDS[m]
        with xr.open_dataset(archives["models"]["root"] / f"{m}.nc") as src:
            want = rf.conservative(src["lithk"].values, lat, lon, DEG10_LAT, DEG10_LON)
        rf.close(tree[m]["lithk"].values, want, f"model {m}", rtol=1e-5)
        assert vf.array_meta(mount / "ck/models" / m / "lithk")["chunks"][0] == min(
            2, want.shape[0])


def test_pyramid_levels_in_several_day_chunks_equal_coarsen(mount, globe):
    for k in range(3):
        f = 2 ** (2 - k)
        got = open_mounted(mount / "ck" / "pyramid" / str(k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = globe.coarsen({"lat": f, "lon": f}, boundary="trim").mean()
        for var in ("t2m", "smooth"):
            rf.close(got[var].values, want[var].values, f"level {k} {var}", rtol=1e-5)
        assert vf.array_meta(mount / "ck/pyramid" / str(k) / "t2m")["chunks"][0] == DAYS


@pytest.mark.parametrize("operation,needle", [
    ({"regrid": {"method": "conservative", "grid": DEG10, "chunks": {"tim": 4}}}, "tim"),
    ({"regrid": {"method": "conservative", "grid": DEG10, "chunks": {"time": 0}}}, "time"),
    ({"pyramid": {"levels": 2, "chunks": {"depth": 4}}}, "depth"),
    ({"pyramid": {"levels": 2, "crs": "EPSG:3857", "chunks": {"x": 4}}}, "tile axis"),
    ({"pyramid": {"levels": 2, "crs": "EPSG:3857", "chunks": {"tim": 4}}}, "tim"),
])
def test_chunks_naming_nothing_or_zero_is_an_error(tmp_path, archives, atlasfs_bin, operation,
                                                     needle):
    config = vf.write_views_config(tmp_path / "c.toml", datasets(archives),
                                   [{"name": "bad", "from": "globe", **operation}],
                                   cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config)
    assert res.returncode != 0, (operation, res.stdout)
    out = res.stdout + res.stderr
    assert "bad" in out and "chunks" in out and needle in out, out
