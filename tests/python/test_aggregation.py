"""Aggregation: a directory of files joined along ``time`` (``concat_dim``)
equals ``xr.open_mfdataset(files, combine="by_coords")``.

The reference is open_mfdataset with the combine options that mean "join
along the existing dimension, take everything else once":
``data_vars="minimal", coords="minimal", compat="override", join="exact"``
(xarray's announced new defaults; its current default ``data_vars="all"``
would stack the time-less ``land_mask``/``orog`` along time, which is not the
product's semantics — variables without the concat dimension come from the
first file).  The sets' time units differ between files, and one set's file
names do not sort in time order; after decoding, both must be invisible.
Comparison as in test_fidelity (conftest.assert_same_dataset).
"""

from __future__ import annotations

import json
import os
import warnings

import cftime
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import assert_same_dataset

FORMATS = (2, 3)
SETS = {"agg_standard": "sst", "agg_noleap": "tas"}


def reference(files) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(
            sorted(files), combine="by_coords", data_vars="minimal", coords="minimal",
            compat="override", join="exact",
        ) as ds:
            return ds.load()


def open_mounted(path, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(str(path), consolidated=True, chunks=None, **kw).load()


def time_length(path) -> int:
    with netCDF4.Dataset(path) as ds:
        return ds.dimensions["time"].size


def first_file_in_time(files) -> str:
    """The file holding the earliest time (read with netCDF4)."""
    def start(f):
        with netCDF4.Dataset(f) as ds:
            t = ds["time"]
            return cftime.num2date(t[0], t.units, t.calendar)
    return min(files, key=start)


def assert_same_joined(ref: xr.Dataset, got: xr.Dataset, where: str) -> None:
    """assert_same_dataset, allowing re-encoded times a microsecond of float64 rounding.

    A value that was "33.9993 days since 2000-02-01" is "64.9993 days since 2000-01-01" to
    within an ulp, i.e. a nanosecond or so once decoded. Such variables must agree to a
    microsecond; then everything is compared exactly.
    """
    got = got.copy()
    for name in ("time", "time_bnds"):
        if name in ref.variables and ref[name].dtype.kind == "M":
            gap = np.abs(got[name].values - ref[name].values).max()
            assert gap <= np.timedelta64(1, "us"), f"{where}: {name} re-encoded times off by {gap}"
            got[name] = got[name].copy(data=ref[name].values)
    assert_same_dataset(ref, got, where)


@pytest.fixture(scope="module", params=FORMATS, ids=lambda f: f"zarr{f}")
def agg_mount(request, module_mounts, fixture_files):
    def glob_of(kind):
        return os.path.join(os.path.dirname(fixture_files[kind][0]), "*.nc")

    datasets = [{"name": kind, "files": glob_of(kind), "concat_dim": "time"} for kind in SETS]
    datasets.append({"name": "sst_t2", "files": glob_of("agg_standard"), "concat_dim": "time",
                     "chunks": {"time": 2}})
    return module_mounts.mount(datasets, zarr_format=request.param), request.param


@pytest.mark.parametrize("kind", list(SETS))
def test_aggregation_equals_open_mfdataset(agg_mount, fixture_files, kind):
    mount, fmt = agg_mount
    ref = reference(fixture_files[kind])
    got = open_mounted(mount / kind)
    assert_same_joined(ref, got, f"zarr{fmt} {kind}")
    var = SETS[kind]
    assert np.isnan(ref[var].values).any(), "the fixture has masked values"
    # the files really are joined, in time order
    assert got.sizes["time"] == sum(time_length(f) for f in fixture_files[kind])
    t = list(got.time.values)
    assert all(b > a for a, b in zip(t[:-1], t[1:])), "time is not increasing"


@pytest.mark.parametrize("kind", list(SETS))
def test_time_is_reencoded_to_the_first_files_units(agg_mount, fixture_files, kind):
    """Raw time values use the units and calendar of the file that comes first
    in time, and encode exactly the decoded reference times."""
    mount, fmt = agg_mount
    first = first_file_in_time(fixture_files[kind])
    with netCDF4.Dataset(first) as ds:
        units, calendar = ds["time"].units, ds["time"].calendar
    raw = open_mounted(mount / kind, decode_cf=False)
    assert raw.time.attrs["units"] == units
    assert raw.time.attrs["calendar"] == calendar
    dates = []
    for f in fixture_files[kind]:
        with netCDF4.Dataset(f) as ds:
            t = ds["time"]
            dates += list(cftime.num2date(t[:], t.units, t.calendar))
    dates.sort()
    expected = cftime.date2num(dates, units, calendar)
    np.testing.assert_allclose(raw.time.values.astype("f8"), np.asarray(expected, dtype="f8"),
                               rtol=0, atol=1e-6)


def _zarr_chunks(array_dir, fmt):
    if fmt == 3:
        meta = json.loads((array_dir / "zarr.json").read_bytes())
        return meta["chunk_grid"]["configuration"]["chunk_shape"]
    return json.loads((array_dir / ".zarray").read_bytes())["chunks"]


def test_chunks_override(agg_mount, fixture_files):
    mount, fmt = agg_mount
    got = open_mounted(mount / "sst_t2")
    assert got.sst.encoding["chunks"][0] == 2
    assert _zarr_chunks(mount / "sst_t2" / "sst", fmt)[0] == 2
    assert _zarr_chunks(mount / "sst_t2" / "time", fmt)[0] == 2
    # a chunk of 2 along time straddles the Jan/Feb file boundary (31 days)
    ref = reference(fixture_files["agg_standard"])
    assert_same_joined(ref, got, f"zarr{fmt} sst_t2")
    np.testing.assert_array_equal(got.sst.isel(time=slice(30, 32)).values,
                                  ref.sst.isel(time=slice(30, 32)).values)


def test_nan_fill_values_in_every_file_keep_the_type(mounts, tmp_path):
    """xarray writes ``_FillValue = NaN`` for floats by default; files that all say so encode
    the variable alike (NaN equals NaN here), so the join keeps float32 as xarray does."""
    files = []
    for i in range(2):
        t = np.arange(3) + 3 * i
        ds = xr.Dataset(
            {"t2m": (("time", "y"), np.where(t[:, None] % 2, np.nan, t[:, None] + np.arange(4.0)).astype("f4"))},
            coords={"time": ("time", t, {"units": "hours since 2000-01-01"})},
        )
        path = tmp_path / f"nanfill_{i}.nc"
        ds.to_netcdf(path, encoding={"t2m": {"_FillValue": np.nan}})
        files.append(str(path))
    mount = mounts.mount([{"name": "nanfill", "files": str(tmp_path / "nanfill_*.nc"),
                           "concat_dim": "time"}])
    got = open_mounted(mount / "nanfill")
    ref = reference(files)
    assert got["t2m"].dtype == np.float32 == ref["t2m"].dtype
    np.testing.assert_array_equal(got["t2m"].values, ref["t2m"].values)
