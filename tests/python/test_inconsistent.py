"""Members of one aggregation that disagree.

- different native chunking along the join (leap years: 366 vs 365 days) works;
- different calendars fail naming both files, unless a fix sets the calendar;
- a variable whose scale_factor/add_offset or _FillValue differs between the files joined
  (along concat_dim, or as cells of a new dimension) is served with correct *decoded* values, or
  the mount fails naming both files — either is accepted, silently wrong values never are;
- a dtype mismatch fails naming both files.

Expected values: each file decoded by xarray (netCDF4 engine) and concatenated by the test.
"""

from __future__ import annotations

import warnings

import netCDF4
import numpy as np
import pytest
import xarray as xr

from archives import write_fixes, write_nc
from reference import assert_equivalent, decode, join_along, open_mounted, read_raw

NY, NX = 2, 3


def open_file(path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()


def try_mount(mounts, entry):
    """(Mount, None) or (None, message) if `atlasfs mount` failed."""
    try:
        return mounts.mount([entry]), None
    except AssertionError as e:
        text = str(e)
        if "`atlasfs mount` exited" not in text:
            raise
        # what atlasfs said, without the config echoed back
        return None, text.split("stdout:", 1)[-1]


def series_file(path, t0, nt, var_spec, *, calendar="standard", chunks=None, seed=0):
    rng = np.random.default_rng(seed)
    spec = {"dims": ("time", "y", "x"), **var_spec}
    if "values" not in spec:
        spec["values"] = (280 + 10 * rng.standard_normal((nt, NY, NX))).astype(spec["dtype"])
    if chunks:
        spec["chunks"] = chunks
    return write_nc(path, {"time": None, "y": NY, "x": NX}, {
        "time": {"dims": ("time",), "dtype": "f8", "values": t0 + np.arange(nt, dtype="f8"),
                 "attrs": {"units": "days since 2000-01-01", "calendar": calendar}},
        "y": {"dims": ("y",), "dtype": "f8", "values": [10.0, 20.0]},
        "x": {"dims": ("x",), "dtype": "f8", "values": [1.0, 2.0, 3.0]},
        "v": spec,
    })


# --------------------------------------------------------------------------


def test_different_native_chunking_along_the_join(mounts, tmp_path):
    d = tmp_path / "leap"
    a = series_file(d / "v_2000.nc", 0, 366, {"dtype": "f4", "fill": np.float32(-999)},
                    chunks=(366, NY, NX), seed=1)
    b = series_file(d / "v_2001.nc", 366, 365, {"dtype": "f4", "fill": np.float32(-999)},
                    chunks=(365, NY, NX), seed=2)
    for f, n in ((a, 366), (b, 365)):
        with netCDF4.Dataset(f) as nc:
            assert nc["v"].chunking() == [n, NY, NX]
    m = mounts.mount([{"name": "leap", "files": str(d / "*.nc"), "concat_dim": "time"}])
    got = open_mounted(m / "leap")
    want, _ = join_along([open_file(a), open_file(b)], "time")
    assert_equivalent(want, got, "leap")
    assert got.sizes["time"] == 731


def _calendar_files(d):
    a = series_file(d / "cal_standard.nc", 0, 31, {"dtype": "f4"}, calendar="standard", seed=3)
    b = series_file(d / "cal_noleap.nc", 59, 3, {"dtype": "f4"}, calendar="noleap", seed=4)
    return a, b


def test_different_calendars_fail_naming_both_files(mounts, tmp_path):
    d = tmp_path / "cal"
    _calendar_files(d)
    m, err = try_mount(mounts, {"name": "cal", "files": str(d / "*.nc"), "concat_dim": "time"})
    assert m is None, "files with different calendars were joined"
    assert "cal_standard.nc" in err and "cal_noleap.nc" in err, err


def test_different_calendars_join_when_a_fix_sets_the_calendar(mounts, tmp_path):
    d = tmp_path / "cal"
    a, b = _calendar_files(d)
    rules = [{"match_path": "cal_noleap.nc",
              "time": {"units": "days since 2000-01-01", "calendar": "standard"}}]
    fix = write_fixes(tmp_path / "cal.toml", rules)
    m = mounts.mount([{"name": "cal", "files": str(d / "*.nc"), "concat_dim": "time",
                       "fixes": str(fix)}])
    got = open_mounted(m / "cal")
    raw_b = read_raw(b)
    raw_b["time"].attrs["calendar"] = "standard"
    want, _ = join_along([open_file(a), decode(raw_b)], "time")
    assert_equivalent(want, got, "cal")  # (history: checked in test_fixes)
    # day 59 since 2000-01-01 is 29 February in the standard calendar (1 March in noleap)
    assert str(got.time.values[31])[:10] == "2000-02-29"


# --------------------------------------------------------------------------
# encodings that differ between the files joined


def _packed(scale, offset, fill, seed):
    rng = np.random.default_rng(seed)
    decoded = 280 + 10 * rng.standard_normal((4, NY, NX))
    raw = np.round((decoded - offset) / scale).astype("i2")
    raw[0, 0, :] = fill
    return {"dtype": "i2", "values": raw, "fill": fill,
            "attrs": {"scale_factor": np.float64(scale), "add_offset": np.float64(offset),
                      "units": "K"}}


def _filled(fill, seed, trap):
    rng = np.random.default_rng(seed)
    vals = (rng.uniform(0, 5, (4, NY, NX))).astype("f4")
    vals[1, :, 0] = fill
    vals[2, 1, :] = trap  # the other file's fill value, valid here
    return {"dtype": "f4", "values": vals, "fill": np.float32(fill), "attrs": {"units": "1"}}


ENCODINGS = {
    "scale_offset": (lambda: _packed(0.01, 0.0, -32768, 5), lambda: _packed(0.02, 10.0, -1, 6)),
    "fill_value": (lambda: _filled(-999.0, 7, -1.0), lambda: _filled(-1.0, 8, -999.0)),
}


@pytest.mark.parametrize("mode", ["concat", "new_dims"])
@pytest.mark.parametrize("kind", list(ENCODINGS))
def test_differing_encodings_are_decoded_per_file_or_refused(mounts, tmp_path, kind, mode):
    d = tmp_path / kind
    spec_a, spec_b = ENCODINGS[kind]
    t0b = 4 if mode == "concat" else 0
    a = series_file(d / "first.nc", 0, 4, spec_a())
    b = series_file(d / "second.nc", t0b, 4, spec_b())
    entry = {"name": kind, "files": str(d / "*.nc")}
    if mode == "concat":
        entry["concat_dim"] = "time"
    else:
        entry.update(pattern="{member}.nc", new_dims=["member"])
    m, err = try_mount(mounts, entry)
    if m is None:
        assert "first.nc" in err and "second.nc" in err, err
        return
    got = open_mounted(m / kind)
    fa, fb = open_file(a), open_file(b)
    if mode == "concat":
        want = np.concatenate([fa.v.values, fb.v.values], axis=0)
    else:
        want = np.stack([fa.v.values, fb.v.values])
        assert [str(x) for x in got.member.values] == ["first", "second"]
    assert got.v.dtype.kind == "f", got.v.dtype
    assert got.v.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got.v.values), np.isnan(want),
                                  err_msg=f"{kind}/{mode}: masked cells differ")
    np.testing.assert_allclose(got.v.values.astype("f8"), want.astype("f8"), rtol=1e-6,
                               atol=0, equal_nan=True, err_msg=f"{kind}/{mode}")
    assert np.isnan(want).any() and np.isfinite(want).any()


def test_dtype_mismatch_fails_naming_both_files(mounts, tmp_path):
    d = tmp_path / "dtype"
    series_file(d / "single.nc", 0, 3, {"dtype": "f4"})
    series_file(d / "double.nc", 3, 3, {"dtype": "f8"})
    m, err = try_mount(mounts, {"name": "dtype", "files": str(d / "*.nc"), "concat_dim": "time"})
    assert m is None, "files whose variable differs in dtype were joined"
    assert "single.nc" in err and "double.nc" in err, err
