"""Pyramid views: groups "0".."levels-1", level k the 2**(levels-1-k) block reduction of the
source along two dims, trailing partial blocks trimmed.

Expected levels: xarray's ``ds.coarsen({lat: f, lon: f}, boundary="trim").<method>()`` on the
original files (``nearest``: the values of ``ds.isel(lat=slice(0, n//f*f, f), ...)``), and the multiscales
attributes as ndpyramid's ``pyramid_coarsen`` writes them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import view_fixtures as vf
from view_fixtures import daily, source  # noqa: F401 (fixtures)
from conftest import open_mounted

DIMS = ("lat", "lon")
# name -> (levels, method, more pyramid keys)
VIEWS = {
    "pyr/mean": (4, "mean", {"dims": list(DIMS)}),
    "pyr/min": (3, "min", {"dims": list(DIMS)}),
    "pyr/max": (3, "max", {"dims": list(DIMS)}),
    "pyr/sum": (3, "sum", {"dims": list(DIMS)}),
    "pyr/nearest": (3, "nearest", {"dims": list(DIMS)}),
    "pyr/chunked": (3, "mean", {"chunk": 8, "codec": "gzip"}),  # default dims: the last two
    # several days per chunk, a partial last one; lon overridden apart from lat
    "pyr/days": (3, "mean", {"dims": list(DIMS), "chunk": 16, "chunks": {"time": 3, "lon": 10}}),
}
LEVEL_CASES = [(name, k) for name, (levels, _, _) in VIEWS.items() for k in range(levels)]
DATA_VARS = ("sst", "sal", "chl", "depth")


def view_tables():
    return [{"name": name, "from": "daily",
             "pyramid": {"levels": levels, "method": method, **more}}
            for name, (levels, method, more) in VIEWS.items()]


@pytest.fixture(scope="module")
def mount(module_mounts, daily):
    return vf.mount_views(module_mounts, [vf.daily_entry(daily)], view_tables())


@pytest.fixture(scope="module")
def mount2(module_mounts, daily):
    return vf.mount_views(module_mounts, [vf.daily_entry(daily)], view_tables(), zarr_format=2)


def reference_level(source: xr.Dataset, method: str, f: int) -> xr.Dataset:
    """The expected level: xarray's coarsen; for nearest, each block's first element with its
    own coordinates (ndpyramid's `sel_coarsen`: `isel(slice(0, None, f))`, trimmed), so every
    value keeps the coordinate it was sampled at."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN blocks
        coarse = source.coarsen({d: f for d in DIMS}, boundary="trim")
        if method != "nearest":
            return getattr(coarse, method)()
    return source.isel({d: slice(0, source.sizes[d] // f * f, f) for d in DIMS})


def factor(name: str, k: int) -> int:
    return 2 ** (VIEWS[name][0] - 1 - k)


def level_and_reference(mount, source, name, k):
    """(method, factor, the expected level, the level as served) of view ``name``."""
    method = VIEWS[name][1]
    f = factor(name, k)
    return method, f, reference_level(source, method, f), open_mounted(mount / name / str(k))


def assert_close(got: xr.DataArray, want: xr.DataArray, where: str) -> None:
    assert got.dims == want.dims, f"{where}: dims {got.dims} vs {want.dims}"
    assert got.shape == want.shape, f"{where}: shape {got.shape} vs {want.shape}"
    assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} vs {want.dtype}"
    rtol = 1e-5 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.values, want.values, rtol=rtol, atol=0, equal_nan=True,
                               err_msg=where)


@pytest.mark.parametrize("name,k", LEVEL_CASES, ids=lambda x: str(x))
def test_level_equals_xarray_coarsen(mount, source, name, k):
    method, f, want, got = level_and_reference(mount, source, name, k)
    where = f"{name}/{k} (factor {f}, {method})"
    assert dict(got.sizes) == dict(want.sizes), f"{where}: {dict(got.sizes)} vs {dict(want.sizes)}"
    assert set(got.data_vars) == set(want.data_vars), f"{where}: {sorted(got.data_vars)}"
    for var in DATA_VARS:
        assert_close(got[var], want[var], f"{where} {var}")
        assert np.isfinite(got[var].values).any(), f"{where} {var}: all NaN"
    if method == "sum":  # an all-NaN block sums to 0, and there are such blocks at f >= 4
        assert not np.isnan(got["sst"].values).any()
    elif f >= 4:
        assert np.isnan(got["sst"].values).any(), f"{where}: all-land blocks must be NaN"
    # a variable without both dims passes through unchanged
    np.testing.assert_array_equal(got["nobs"].values, source["nobs"].values)
    assert got["nobs"].dtype == source["nobs"].dtype


@pytest.mark.parametrize("name,k", LEVEL_CASES, ids=lambda x: str(x))
def test_level_coordinates(mount, source, name, k):
    _, _, want, got = level_and_reference(mount, source, name, k)
    for coord in ("time", "lat", "lon"):
        assert coord in got.coords, f"{name}/{k}: no coordinate {coord}"
        assert got[coord].dtype == want[coord].dtype, f"{name}/{k} {coord}: {got[coord].dtype}"
        if coord == "time":
            np.testing.assert_array_equal(got.time.values, want.time.values)
        else:
            np.testing.assert_allclose(got[coord].values, want[coord].values, rtol=1e-6,
                                       err_msg=f"{name}/{k} {coord}")
    assert got.lat.values[0] > got.lat.values[-1], "latitude stays descending"


def test_levels_are_groups_0_to_n(mount):
    for name, (levels, _, _) in VIEWS.items():
        children = {p.name for p in (mount / name).iterdir() if p.is_dir()}
        assert children == {str(k) for k in range(levels)}, f"{name}: {sorted(children)}"


@pytest.mark.parametrize("fmt", [3, 2])
def test_multiscales_attributes(request, fmt):
    m = request.getfixturevalue("mount" if fmt == 3 else "mount2")
    for name, (levels, method, more) in VIEWS.items():
        attrs = vf.group_attrs(m / name)
        ms = attrs.get("multiscales")
        assert isinstance(ms, list) and len(ms) == 1, f"{name}: {attrs}"
        ms = ms[0]
        assert [(d["path"], d["level"]) for d in ms["datasets"]] == [
            (str(k), k) for k in range(levels)], ms["datasets"]
        assert ms["type"] == "reduce"
        meta = ms["metadata"]
        assert meta["method"] == "pyramid_coarsen"
        assert "version" in meta and meta["args"] == []
        kw = meta["kwargs"]
        assert kw["dims"] == list(DIMS), kw
        assert kw["factors"] == [2 ** (levels - 1 - k) for k in range(levels)], kw
        assert kw["boundary"] == "trim" and kw["method"] == method, kw
        for k in range(levels):
            level_ms = vf.group_attrs(m / name / str(k)).get("multiscales")
            assert isinstance(level_ms, list) and len(level_ms) == 1, f"{name}/{k}: {level_ms}"
            assert [d["path"] for d in level_ms[0]["datasets"]] == ["."], level_ms


@pytest.mark.parametrize("fmt", [3, 2])
def test_open_datatree_on_the_view(request, source, fmt):
    m = request.getfixturevalue("mount" if fmt == 3 else "mount2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = xr.open_datatree(str(m / "pyr/mean"), engine="zarr")
        dt.load()
    dt.close()
    assert set(dt.children) == {"0", "1", "2", "3"}
    for k in range(4):
        got = dt[str(k)].to_dataset()
        want = reference_level(source, "mean", 2 ** (3 - k))
        for var in DATA_VARS:
            assert_close(got[var], want[var], f"datatree {k} {var}")
    assert dict(dt["0"].sizes)["lat"] == vf.NLAT // 8 and dict(dt["0"].sizes)["lon"] == vf.NLON // 8


def test_chunks_are_square_along_the_two_dims(mount):
    levels = VIEWS["pyr/chunked"][0]
    for k in range(levels):
        for var in ("sst", "sal"):
            meta = vf.array_meta(mount / "pyr/chunked" / str(k) / var)
            assert meta["chunks"] == [1, 8, 8], f"pyr/chunked/{k}/{var}: {meta['chunks']}"
        assert vf.array_meta(mount / "pyr/chunked" / str(k) / "depth")["chunks"] == [8, 8]


def test_chunks_override_the_side_and_the_one_step_per_chunk(mount):
    for k, (lat, lon) in enumerate([(vf.NLAT // 4, 10), (16, 10), (16, 10)]):
        for var in ("sst", "sal"):
            meta = vf.array_meta(mount / "pyr/days" / str(k) / var)
            assert meta["chunks"] == [3, lat, lon], f"pyr/days/{k}/{var}: {meta['chunks']}"


def test_codec_is_the_configured_one(mount):
    for k in range(VIEWS["pyr/chunked"][0]):
        codecs = vf.array_meta(mount / "pyr/chunked" / str(k) / "sst")["codecs"]
        assert len(codecs) == 1 and "gzip" in codecs[0], codecs
    assert vf.array_meta(mount / "pyr/mean" / "0" / "sst")["codecs"] == []  # default none


def test_data_variables_are_served_as_floats_with_nan_fill(mount):
    for var, dtype in (("sst", "float32"), ("sal", "float64"), ("chl", "float64"),
                       ("depth", "float32")):
        meta = vf.array_meta(mount / "pyr/mean" / "0" / var)
        assert meta["dtype"] == dtype, f"{var}: {meta['dtype']}"
        for key in ("scale_factor", "add_offset", "missing_value"):
            assert key not in meta["attrs"], f"{var}: {meta['attrs']}"
        assert meta["fill"] is not None and np.isnan(meta["fill"]), f"{var}: fill {meta['fill']!r}"
    assert vf.array_meta(mount / "pyr/mean" / "0" / "sst")["attrs"].get("units") == "K"
