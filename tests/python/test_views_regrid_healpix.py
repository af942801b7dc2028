"""Regrid views to nested HEALPix cells: one ``cell`` dimension with xdggs's coordinates.

References come from healpy (``ang2pix``/``pix2ang`` with ``nest=True, lonlat=True``) and
numpy on the original files, never from atlasfs: statistics bin the source centres by the
cell healpy assigns them; nearest and bilinear sample the source at healpy's cell centres
along each axis (a global grid wraps in longitude; a centre half-way between two source
centres takes the lower one, as ``xarray.interp``).
"""

from __future__ import annotations

import warnings

import healpy
import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

import regrid_fixtures as rf
import view_fixtures as vf
from conftest import open_mounted, run_atlasfs

STATS = ("mean", "min", "max", "std", "median", "count")
STAT_LEVEL, POINT_LEVEL = 3, 2


def healpix(level, method, **extra):
    return {"method": method, "grid": {"healpix": {"level": level}}, **extra}


def view_tables():
    tables = [{"name": f"hp/stat/{s}", "from": "globe", "variables": ["t2m"],
               "regrid": healpix(STAT_LEVEL, s, **({"chunk": 100} if s == "count" else {}))}
              for s in STATS]
    tables += [
        {"name": "hp/nearest", "from": "globe", "regrid": healpix(POINT_LEVEL, "nearest", chunk=50)},
        {"name": "hp/bilinear", "from": "globe", "variables": ["smooth"],
         "regrid": healpix(POINT_LEVEL, "bilinear")},
        {"name": "hp/models", "from": "models", "regrid": healpix(POINT_LEVEL, "mean")},
        {"name": "hp/polar", "from": "polar", "regrid": healpix(4, "mean")},
        # the cells of another HEALPix view, by `like`
        {"name": "hp/like", "from": "globe", "variables": ["t2m"],
         "regrid": {"method": "max", "grid": {"like": "hp/stat/mean"}}},
    ]
    return tables


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    base = tmp_path_factory.mktemp("healpix")
    return {"globe": rf.make_globe(base / "globe"), "models": rf.make_models(base / "models"),
            "polar": rf.make_polar(base / "polar")}


def datasets(archives):
    return rf.dataset_entries(archives)


@pytest.fixture(scope="module")
def mount(module_mounts, archives):
    return vf.mount_views(module_mounts, datasets(archives), view_tables())


@pytest.fixture(scope="module")
def globe(archives) -> xr.Dataset:
    return rf.open_globe(archives["globe"])


def binned(field, lat, lon, level, stat, lat2=None, lon2=None):
    """``stat`` of the non-NaN values of (..., lat, lon) per cell healpy assigns each centre
    (centres given as 2-d ``lat2``/``lon2`` for a projected grid)."""
    nside, n = 2**level, 12 * 4**level
    if lat2 is None:
        lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    pix = healpy.ang2pix(nside, lon2.ravel(), lat2.ravel(), nest=True, lonlat=True)
    flat = field.reshape(field.shape[:-2] + (-1,)).astype("f8")
    out = np.full(field.shape[:-2] + (n,), 0.0 if stat == "count" else np.nan)
    funcs = {"mean": np.mean, "min": np.min, "max": np.max, "std": np.std,
             "median": np.median, "count": len}
    for cell in np.unique(pix):
        members = flat[..., pix == cell]
        for index in np.ndindex(flat.shape[:-1]):
            values = members[index]
            values = values[~np.isnan(values)]
            if len(values) or stat == "count":
                out[index + (cell,)] = funcs[stat](values)
    return out


def centres(level):
    ids = np.arange(12 * 4**level)
    lon, lat = healpy.pix2ang(2**level, ids, nest=True, lonlat=True)
    return ids, lon, lat


def nearest_index(axis, points, periodic):
    """Index of the nearest of ascending ``axis`` centres (half-way: the lower), -1 outside."""
    axis = np.asarray(axis, dtype="f8")
    if periodic:
        axis = np.append(axis, axis[0] + 360.0)
    i = np.clip(np.searchsorted(axis, points, side="right") - 1, 0, len(axis) - 2)
    upper = (points - axis[i]) > (axis[i + 1] - points)
    out = np.where(upper, i + 1, i)
    out[(points < axis[0]) | (points > axis[-1])] = -1
    return out % (len(axis) - 1) if periodic else out


def close(got, want, where, rtol=1e-6, atol=0.0):
    rf.close(got, want, where, rtol=rtol, atol=atol)


def test_cells_carry_xdggs_coordinates(mount):
    got = open_mounted(mount / "hp" / "stat" / "mean")
    ids, lon, lat = centres(STAT_LEVEL)
    assert got["t2m"].dims == ("time", "cell")
    assert got.sizes["cell"] == 12 * 4**STAT_LEVEL == 768
    assert set(got.coords) >= {"cell_ids", "latitude", "longitude", "time"}
    cell_ids = got["cell_ids"]
    assert cell_ids.dims == ("cell",) and cell_ids.dtype == np.uint64
    np.testing.assert_array_equal(cell_ids.values, ids)
    assert cell_ids.attrs["grid_name"] == "healpix"
    assert int(cell_ids.attrs["level"]) == STAT_LEVEL
    assert cell_ids.attrs["indexing_scheme"] == "nested"
    for name, want in (("latitude", lat), ("longitude", lon)):
        assert got[name].dims == ("cell",) and got[name].dtype == np.float64
        np.testing.assert_allclose(got[name].values, want, rtol=0, atol=1e-9, err_msg=name)
    assert got["latitude"].attrs["units"] == "degrees_north"
    assert got["longitude"].attrs["units"] == "degrees_east"
    # the default chunk of level 3 is 4**3 cells; `chunk` sets another
    meta = vf.array_meta(mount / "hp" / "stat" / "mean" / "t2m")
    assert meta["chunks"] == [1, 64]
    assert vf.array_meta(mount / "hp" / "stat" / "count" / "t2m")["chunks"] == [1, 100]
    assert vf.array_meta(mount / "hp" / "stat" / "count" / "cell_ids")["chunks"] == [100]


@pytest.mark.parametrize("stat", STATS)
def test_statistics_bin_centres_as_healpy_assigns_them(mount, globe, stat):
    got = open_mounted(mount / "hp" / "stat" / stat)["t2m"].values
    want = binned(globe["t2m"].values, rf.GLOBE_LAT, rf.GLOBE_LON, STAT_LEVEL, stat)
    close(got, want, stat, rtol=1e-5, atol=1e-3 if stat == "std" else 0.0)
    if stat == "count":
        # every source centre lands in exactly one cell, the masked ones counted nowhere
        assert got.sum() == np.isfinite(globe["t2m"].values).sum()


def sample(field, lon, lat, how):
    """``field`` (..., lat, lon) on the globe's grid sampled at points along each axis."""
    lat_axis = rf.GLOBE_LAT[::-1]  # ascending
    field = field[..., ::-1, :].astype("f8")
    if how == "nearest":
        iy = nearest_index(lat_axis, lat, periodic=False)
        ix = nearest_index(rf.GLOBE_LON, lon, periodic=True)
        return field[..., iy, ix]
    padded = np.concatenate([field, field[..., :1]], axis=-1)
    lon_axis = np.append(rf.GLOBE_LON, 360.0)
    out = np.empty(field.shape[:-2] + (len(lon),))
    for index in np.ndindex(field.shape[:-2]):
        f = RegularGridInterpolator((lat_axis, lon_axis), padded[index], method="linear")
        out[index] = f(np.stack([lat, lon], axis=-1))
    return out


def test_nearest_samples_the_source_at_healpy_centres(mount, globe):
    got = open_mounted(mount / "hp" / "nearest")
    _, lon, lat = centres(POINT_LEVEL)
    for var in ("t2m", "sp", "smooth"):
        assert got[var].dims == ("time", "cell")
        close(got[var].values, sample(globe[var].values, lon, lat, "nearest"), f"nearest {var}",
              rtol=1e-7)
    assert np.isnan(got["t2m"].values).any() and np.isfinite(got["t2m"].values).any()
    assert got["t2m"].dtype == np.float32
    assert vf.array_meta(mount / "hp" / "nearest" / "t2m")["chunks"] == [1, 50]


def test_bilinear_interpolates_at_healpy_centres(mount, globe):
    got = open_mounted(mount / "hp" / "bilinear")["smooth"].values
    _, lon, lat = centres(POINT_LEVEL)
    close(got, sample(globe["smooth"].values, lon, lat, "linear"), "bilinear", rtol=1e-9,
          atol=1e-9)


def test_a_datatree_of_models_goes_to_one_set_of_cells(mount, archives):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = xr.open_datatree(str(mount / "hp" / "models"), engine="zarr", consolidated=True,
                                chunks=None)
    models = sorted(rf.MODEL_GRIDS)
    stacked = xr.concat([tree[m]["lithk"] for m in models], "m")
    assert stacked.dims == ("m", "time", "cell")
    for m in models:
        lat, lon = rf.MODEL_GRIDS[m]
        with xr.open_dataset(archives["models"]["root"] / f"{m}.nc") as src:
            want = binned(src["lithk"].values, lat, lon, POINT_LEVEL, "mean")
        close(tree[m]["lithk"].values, want, f"model {m}", rtol=1e-5)
        np.testing.assert_array_equal(tree[m]["cell_ids"].values, np.arange(192))
    spread = stacked.var("m").values
    assert np.isfinite(spread).all()


def test_a_projected_source_bins_its_centres_in_lon_lat(mount, archives):
    import pyproj

    got = open_mounted(mount / "hp" / "polar")["thk"].values
    with xr.open_dataset(archives["polar"]) as src:
        thk = src["thk"].values
    y2, x2 = np.meshgrid(rf.POLAR_Y, rf.POLAR_X, indexing="ij")
    lon2, lat2 = pyproj.Transformer.from_crs("EPSG:3031", "EPSG:4326", always_xy=True).transform(
        x2, y2)
    want = binned(thk, None, None, 4, "mean", lat2=lat2, lon2=lon2)
    close(got, want, "polar mean", rtol=1e-5)
    assert np.isfinite(got).sum() > 40 and np.isnan(got).any()


def test_like_a_group_of_cells_targets_its_level(mount, globe):
    got = open_mounted(mount / "hp" / "like")
    assert got["t2m"].dims == ("time", "cell") and got.sizes["cell"] == 12 * 4**STAT_LEVEL
    ids, _, _ = centres(STAT_LEVEL)
    np.testing.assert_array_equal(got["cell_ids"].values, ids)
    assert got["cell_ids"].attrs["level"] == STAT_LEVEL
    want = binned(globe["t2m"].values, rf.GLOBE_LAT, rf.GLOBE_LON, STAT_LEVEL, "max")
    close(got["t2m"].values, want, "like max", rtol=1e-6)


def test_like_a_group_of_cells_refuses_conservative(tmp_path, archives, atlasfs_bin):
    views = [{"name": "cells", "from": "globe", "variables": ["t2m"],
              "regrid": healpix(POINT_LEVEL, "mean")},
             {"name": "bad-like", "from": "globe",
              "regrid": {"method": "conservative", "grid": {"like": "cells"}}}]
    config = vf.write_views_config(tmp_path / "c.toml", datasets(archives), views,
                                   cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "bad-like" in out, out
    assert "conservative regridding to HEALPix cells is not supported" in out, out


@pytest.mark.parametrize("regrid,needle", [
    (healpix(21, "mean"), "level 21"),
    (healpix(-1, "nearest"), "level -1"),
    (healpix(2, "conservative"), "conservative regridding to HEALPix cells is not supported"),
])
def test_bad_levels_and_conservative_are_refused(tmp_path, archives, atlasfs_bin, regrid, needle):
    config = vf.write_views_config(tmp_path / "c.toml", datasets(archives),
                                   [{"name": "bad-cells", "from": "globe", "regrid": regrid}],
                                   cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config)
    assert res.returncode != 0, (regrid, res.stdout)
    out = res.stdout + res.stderr
    assert "bad-cells" in out and needle in out, (needle, out)
