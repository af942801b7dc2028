"""Pack views: float variables served as 8/16-bit integers with CF scale_factor/add_offset.

Expected encodings come from the contract's formula applied, in the test, to the minimum and
maximum of the source as xarray decodes it from the original files; expected codes from
numpy (and numcodecs' BitRound for ``keepbits``). Both Zarr formats.
"""

from __future__ import annotations

import json
import warnings

import numcodecs
import numpy as np
import pytest
import xarray as xr

import view_fixtures as vf
from view_fixtures import daily, source  # noqa: F401 (fixtures)
from conftest import open_mounted

CODES = {  # dtype -> (lo, hi, fill)
    "int16": (-32767, 32767, -32768),
    "uint16": (0, 65534, 65535),
    "int8": (-127, 127, -128),
    "uint8": (0, 254, 255),
}
FLOATS = ("sst", "sal", "chl", "depth", "const")
# not carried over: the encoding, and the valid range, which CF states in packed units
DROPPED_ATTRS = ("_FillValue", "missing_value", "scale_factor", "add_offset",
                 "valid_min", "valid_max", "valid_range")

# name -> (view table, {variable: range}) ; range None = "data"
VIEWS = {
    # no `variables`: every variable that decodes to floats (chl is stored as packed int16)
    "packed/i16": ({"pack": {"dtype": "int16", "range": "data"}},
                   {v: None for v in FLOATS}),
    "packed/u8-attrs": ({"variables": ["sst", "sal"],  # valid_min/valid_max; valid_range
                         "pack": {"dtype": "uint8", "range": "attrs", "codec": "gzip",
                                  "level": 5}},
                        {"sst": vf.SST_VALID, "sal": vf.SAL_VALID_RANGE}),
    "packed/i16-fixed": ({"variables": ["sal"],
                          "pack": {"dtype": "int16", "range": [33.0, 37.0], "codec": "none"}},
                         {"sal": (33.0, 37.0)}),
    "packed/u16": ({"variables": ["chl", "depth"],
                    "pack": {"dtype": "uint16", "range": "data", "codec": "zstd", "level": 9}},
                   {"chl": None, "depth": None}),
    "packed/i8": ({"variables": ["sal"], "pack": {"dtype": "int8", "range": "data"}},
                  {"sal": None}),
    "packed/blosc": ({"variables": ["depth"],
                      "pack": {"dtype": "int16", "range": "data", "codec": "blosc-zstd"}},
                     {"depth": None}),
}
KEEPBITS = 7
KEEP_RANGE = (275.0, 305.0)
VIEWS["packed/keepbits"] = ({"variables": ["sst"],
                             "pack": {"dtype": "int16", "range": list(KEEP_RANGE),
                                      "keepbits": KEEPBITS}},
                            {"sst": KEEP_RANGE})
CODEC = {"packed/i16": "zstd", "packed/u8-attrs": "gzip", "packed/i16-fixed": None,
         "packed/u16": "zstd", "packed/i8": "zstd", "packed/keepbits": "zstd",
         "packed/blosc": "blosc"}
DTYPE = {name: table["pack"]["dtype"] for name, (table, _) in VIEWS.items()}


@pytest.fixture(scope="module", params=[3, 2], ids=lambda f: f"zarr{f}")
def mount(request, module_mounts, daily):
    views = [{"name": name, "from": "daily", **table} for name, (table, _) in VIEWS.items()]
    return vf.mount_views(module_mounts, [vf.daily_entry(daily)], views,
                          zarr_format=request.param)


def encoding(x: np.ndarray, dtype: str, rng) -> tuple[float, float]:
    """(scale_factor, add_offset) by the contract's formula; rng None = the data's range."""
    lo, hi, _ = CODES[dtype]
    if rng is None:
        vmin, vmax = float(np.nanmin(x)), float(np.nanmax(x))
    else:
        vmin, vmax = map(float, rng)
    if vmin == vmax:
        return 1.0, vmin
    scale = (vmax - vmin) / (hi - lo)
    return scale, vmin - lo * scale


def packed_codes(x: np.ndarray, dtype: str, scale: float, offset: float) -> np.ndarray:
    lo, hi, fill = CODES[dtype]
    x64 = np.asarray(x, dtype="f8")
    with np.errstate(invalid="ignore"):
        codes = np.clip(np.rint((x64 - offset) / scale), lo, hi)
    codes[np.isnan(x64)] = fill
    return codes.astype(dtype)


def bitround(x: np.ndarray, keepbits: int) -> np.ndarray:
    """numcodecs' BitRound of the values (NaN stays NaN)."""
    rounded = numcodecs.BitRound(keepbits=keepbits).encode(x.copy()).view(x.dtype)
    return np.where(np.isnan(x), x, rounded.reshape(x.shape))


CASES = [(name, var) for name, (_, ranges) in VIEWS.items() for var in ranges]


@pytest.mark.parametrize("name,var", CASES, ids=lambda x: str(x))
def test_packed_attrs_are_the_formula_on_the_source_range(mount, source, daily, name, var):
    table, ranges = VIEWS[name]
    dtype = DTYPE[name]
    meta = vf.array_meta(mount / name / var)
    assert meta["dtype"] == dtype, f"{name}/{var}: stored as {meta['dtype']}"
    scale, offset = encoding(source[var].values, dtype, ranges[var])
    attrs = meta["attrs"]
    assert isinstance(attrs.get("scale_factor"), float), attrs
    assert isinstance(attrs.get("add_offset"), float), attrs
    np.testing.assert_allclose(attrs["scale_factor"], scale, rtol=1e-12, err_msg=f"{name}/{var}")
    np.testing.assert_allclose(attrs["add_offset"], offset, rtol=1e-12, atol=1e-12 * scale,
                               err_msg=f"{name}/{var}")
    assert meta["fill"] == CODES[dtype][2], meta
    for key in ("missing_value", "valid_min", "valid_max", "valid_range"):
        assert key not in attrs, f"{name}/{var}: {key} left in {attrs}"
    # the source's other attributes are kept
    for key, value in source[var].attrs.items():
        if key in DROPPED_ATTRS:
            continue
        assert key in attrs, f"{name}/{var} lost attribute {key!r}: {attrs}"
        np.testing.assert_array_equal(np.asarray(attrs[key]), np.asarray(value),
                                      err_msg=f"{name}/{var}.{key}")


@pytest.mark.parametrize("name,var", CASES, ids=lambda x: str(x))
def test_xarray_decodes_within_half_a_step(mount, source, name, var):
    _, ranges = VIEWS[name]
    dtype = DTYPE[name]
    got = open_mounted(mount / name)
    x = source[var].values
    if "keepbits" in VIEWS[name][0]["pack"]:
        x = bitround(x, VIEWS[name][0]["pack"]["keepbits"])
    x = x.astype("f8")
    scale, offset = encoding(source[var].values, dtype, ranges[var])
    vmin, vmax = offset + CODES[dtype][0] * scale, offset + CODES[dtype][1] * scale
    assert got[var].dims == source[var].dims
    assert got[var].dtype.kind == "f", got[var].dtype
    g = got[var].values.astype("f8")
    assert np.array_equal(np.isnan(g), np.isnan(x)), f"{name}/{var}: NaN masks differ"
    want = np.clip(x, vmin, vmax)
    tol = scale / 2 + 4 * np.finfo("f4").eps * np.abs(want) + 1e-12
    err = np.abs(g - want)
    valid = ~np.isnan(x)
    assert np.all(err[valid] <= tol[valid]), (
        f"{name}/{var}: max error {np.nanmax(err)} > scale_factor/2 = {scale / 2}")
    # the encoding is used, not wasted: values spread over the codes
    raw = vf.raw_values(mount / name / var)
    lo, hi, fill = CODES[dtype]
    assert np.all(raw[~valid] == fill)
    assert raw[valid].min() >= lo and raw[valid].max() <= hi
    if ranges[var] is None and np.nanmin(x) == np.nanmax(x):  # one value: every code 0
        assert np.all(raw[valid] == 0) and scale == 1.0
    elif ranges[var] is None:  # the data's own range reaches both ends
        assert raw[valid].min() == lo and raw[valid].max() == hi


def test_keepbits_codes_equal_bitround_then_the_formula(mount, source):
    name = "packed/keepbits"
    x = source["sst"].values
    assert x.dtype == np.float32
    rounded = bitround(x, KEEPBITS)
    scale, offset = encoding(x, "int16", KEEP_RANGE)
    want = packed_codes(rounded, "int16", scale, offset)
    got = vf.raw_values(mount / name / "sst")
    assert got.dtype == np.int16
    diff = np.argwhere(got != want)
    assert diff.size == 0, (
        f"{len(diff)} codes differ, first at {tuple(diff[0])}: {got[tuple(diff[0])]} vs "
        f"{want[tuple(diff[0])]} (rounded {rounded[tuple(diff[0])]!r}, source {x[tuple(diff[0])]!r})")
    # and bit-rounding did happen: packing the unrounded values differs somewhere
    assert np.any(packed_codes(x, "int16", scale, offset) != want)


@pytest.mark.parametrize("name", list(VIEWS))
def test_coordinates_and_int_variables_pass_through(mount, source, name):
    got = open_mounted(mount / name)
    for coord in ("time", "lat", "lon"):
        assert coord in got.coords, f"{name}: no coordinate {coord}"
        xr.testing.assert_identical(got[coord].reset_coords(drop=True),
                                    source[coord].reset_coords(drop=True))
    _, ranges = VIEWS[name]
    for var in source.data_vars:
        if var in ranges or var not in got:
            continue
        # not packed: served as the source serves it (float variables a `variables` list leaves
        # out, and the int variable)
        assert got[var].dtype == source[var].dtype, f"{name}/{var}: {got[var].dtype}"
        np.testing.assert_array_equal(got[var].values, source[var].values,
                                      err_msg=f"{name}/{var}")
    if "variables" not in VIEWS[name][0]:
        assert "nobs" in got and got["nobs"].dtype == np.int32
        assert vf.array_meta(mount / name / "nobs")["dtype"] == "int32"


@pytest.mark.parametrize("name", list(VIEWS))
def test_codec_is_the_configured_one(mount, name):
    _, ranges = VIEWS[name]
    for var in ranges:
        codecs = vf.array_meta(mount / name / var)["codecs"]
        want = CODEC[name]
        if want is None:
            assert codecs == [], f"{name}/{var}: {codecs}"
        else:
            assert len(codecs) == 1 and want in codecs[0], f"{name}/{var}: {codecs}"


def test_zstd_chunks_are_smaller_than_raw(mount, source):
    """The compressed codes take less room than the raw int16 codes would."""
    var_dir = mount / "packed/i16" / "sst"
    sizes = [p.stat().st_size for p in var_dir.rglob("*")
             if p.is_file() and not p.name.startswith((".", "zarr.json"))]
    assert sizes, f"no chunk files under {var_dir}"
    assert sum(sizes) < source["sst"].size * 2, sizes


def test_views_are_in_the_consolidated_metadata_of_their_parent(mount, source):
    """xr.open_datatree on the group that holds the views (consolidated metadata)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = xr.open_datatree(str(mount / "packed"), engine="zarr")
        dt.load()
    dt.close()
    assert set(dt.children) == {name.split("/")[1] for name in VIEWS}
    parent = mount / "packed"
    if (parent / "zarr.json").exists():
        keys = set(json.loads((parent / "zarr.json").read_text())["consolidated_metadata"]
                   ["metadata"])
        want = {f"{name.split('/')[1]}/{var}" for name, (_, ranges) in VIEWS.items()
                for var in ranges}
    else:
        keys = set(json.loads((parent / ".zmetadata").read_text())["metadata"])
        want = {f"{name.split('/')[1]}/{var}/.zarray" for name, (_, ranges) in VIEWS.items()
                for var in ranges}
    assert want <= keys, sorted(want - keys)
    got = dt["i16"].to_dataset()
    assert got.sst.dtype.kind == "f"
    np.testing.assert_allclose(got.sst.values, source.sst.values, atol=0.01, equal_nan=True)
