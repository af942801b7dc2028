"""Expression views: new variables computed from a leaf's variables, with xarray's
broadcasting by dimension name and numpy's types; band views stacking expressions along a new
``band`` dimension.

Expected values: numpy on the variables as xarray decodes them from the original files.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import view_fixtures as vf
from view_fixtures import daily, cases, source  # noqa: F401 (fixtures)
from conftest import open_mounted

F32 = np.float32

# name -> (expression, reference on the decoded source, expected dtype, expected dims)
EXPRESSIONS = {
    "anomaly": ("sst - 273.15", lambda s: s.sst.values - 273.15, "float32",
                ("time", "lat", "lon")),
    "ratio": ("sal / (sst + 1)", lambda s: s.sal.values / (s.sst.values + F32(1)), "float64",
              ("time", "lat", "lon")),
    "warm": ("where(sst > 290, sst, -1)",
             lambda s: np.where(s.sst.values > 290, s.sst.values, F32(-1)), "float32",
             ("time", "lat", "lon")),
    "bounded": ("max(min(sst, 295), 285.5)",
                lambda s: np.maximum(np.minimum(s.sst.values, F32(295)), F32(285.5)), "float32",
                ("time", "lat", "lon")),
    "shallow": ("min(sst, depth / 10)",  # (time, lat, lon) with (lat, lon)
                lambda s: np.minimum(s.sst.values, s.depth.values[None] / F32(10)), "float32",
                ("time", "lat", "lon")),
    "mag": ("sqrt(abs(sst - 290)) * 2", lambda s: np.sqrt(np.abs(s.sst.values - F32(290))) * F32(2),
            "float32", ("time", "lat", "lon")),
    "mixed": ("-sal * 2 + exp(log(chl))",
              lambda s: -s.sal.values * 2 + np.exp(np.log(s.chl.values)), "float64",
              ("time", "lat", "lon")),
    "per_obs": ("sst * nobs", lambda s: s.sst.values * s.nobs.values[:, None, None],
                "float64", ("time", "lat", "lon")),  # float32 * int32 is float64 in numpy
    "nobs_int": ("nobs * 2 + 1", lambda s: s.nobs.values * 2 + 1, "int32", ("time",)),
    "nobs_div": ("nobs / 4", lambda s: s.nobs.values / 4, "float64", ("time",)),
    "chl_filled": ("where(chl == chl, chl, 0)",  # NaN == NaN is false
                   lambda s: np.where(s.chl.values == s.chl.values, s.chl.values, 0.0),
                   "float64", ("time", "lat", "lon")),
    "salty": ("where(sal <= 35, sal, (sal - 35) * -1 + 35)",
              lambda s: np.where(s.sal.values <= 35, s.sal.values, (s.sal.values - 35) * -1 + 35),
              "float64", ("time", "lat", "lon")),
    "depth_km": ("(depth) / 1000", lambda s: s.depth.values / F32(1000), "float32",
                 ("lat", "lon")),
}

CASES_BANDS = {"experimental": "DIC", "delta": "DIC - DIC_ALT_CO2"}


@pytest.fixture(scope="module")
def mount(module_mounts, daily, cases):
    views = [
        {"name": "derived", "from": "daily", "variables": ["sst"],
         "expr": {k: e for k, (e, _, _, _) in EXPRESSIONS.items()}},
        {"name": "bands", "from": "cases", "expr": {"band": CASES_BANDS}},
        {"name": "bands-named", "from": "cases/south",
         "expr": {"delta_DIC": "DIC - DIC_ALT_CO2",
                  "band": {"zz_alt": "DIC_ALT_CO2", "a_ratio": "DIC / DIC_ALT_CO2"},
                  "band_variable": "stack"}},
    ]
    return vf.mount_views(module_mounts, [vf.daily_entry(daily), vf.cases_entry(cases)], views)


@pytest.fixture(scope="module")
def derived(mount):
    return open_mounted(mount / "derived")


@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_new_variable_equals_numpy(derived, source, name):
    _, ref, dtype, dims = EXPRESSIONS[name]
    want = ref(source)
    assert want.dtype == np.dtype(dtype), f"reference {name} is {want.dtype}"
    got = derived[name]
    assert got.dims == dims, f"{name}: dims {got.dims}"
    assert got.dtype == np.dtype(dtype), f"{name}: dtype {got.dtype}, numpy gives {dtype}"
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got.values, want, err_msg=name)
        return
    rtol = 2e-7 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(got.values, want, rtol=rtol, atol=0, equal_nan=True,
                               err_msg=name)
    assert np.array_equal(np.isnan(got.values), np.isnan(want)), f"{name}: NaN mask"


def test_where_replaces_nan_by_the_else_branch(derived, source):
    """NaN > 290 is false, so land gets -1 (numpy's and xarray's where)."""
    land = np.isnan(source.sst.values)
    assert land.any()
    assert np.all(derived["warm"].values[land] == -1)


def test_output_is_coordinates_new_variables_and_listed_sources(derived, source):
    assert set(derived.data_vars) == set(EXPRESSIONS) | {"sst"}, sorted(derived.data_vars)
    for coord in ("time", "lat", "lon"):
        xr.testing.assert_identical(derived[coord].reset_coords(drop=True),
                                    source[coord].reset_coords(drop=True))
    np.testing.assert_array_equal(derived.sst.values, source.sst.values)
    assert derived.sst.dtype == np.float32


@pytest.mark.parametrize("leaf", ["north/m1", "north/m2", "south/m3"])
def test_band_view_stacks_the_expressions(mount, cases, leaf):
    src = vf.open_file(cases["leaves"][leaf])
    got = open_mounted(mount / "bands" / leaf)
    da = got["band_data"]
    assert da.dims == ("band", "time", "y", "x"), da.dims
    assert list(got["band"].values) == sorted(CASES_BANDS) == ["delta", "experimental"]
    assert da.dtype == np.float32
    want = {"experimental": src.DIC.values, "delta": src.DIC.values - src.DIC_ALT_CO2.values}
    for i, label in enumerate(got["band"].values):
        np.testing.assert_allclose(da.values[i], want[str(label)], rtol=2e-7, equal_nan=True,
                                   err_msg=f"{leaf} band {label}")
    for coord in ("time", "y", "x"):
        np.testing.assert_array_equal(got[coord].values, src[coord].values)


def test_band_view_mirrors_the_subtree(mount, cases):
    leaves = {str(p.parent.relative_to(mount / "bands"))
              for p in (mount / "bands").rglob("band_data")}
    assert leaves == set(cases["leaves"]), leaves


def test_band_variable_name_and_other_new_variables(mount, cases):
    src = vf.open_file(cases["leaves"]["south/m3"])
    got = open_mounted(mount / "bands-named" / "m3")
    assert "band_data" not in got
    assert list(got["band"].values) == ["a_ratio", "zz_alt"]
    assert got["stack"].dims == ("band", "time", "y", "x")
    np.testing.assert_allclose(got["stack"].values[0], src.DIC.values / src.DIC_ALT_CO2.values,
                               rtol=2e-7, equal_nan=True)
    np.testing.assert_array_equal(got["stack"].values[1], src.DIC_ALT_CO2.values)
    np.testing.assert_allclose(got["delta_DIC"].values, src.DIC.values - src.DIC_ALT_CO2.values,
                               rtol=2e-7, equal_nan=True)
    assert got["delta_DIC"].dtype == np.float32
