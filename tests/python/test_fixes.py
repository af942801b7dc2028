"""Declared fixes, one action at a time, on small files.

Every case is a dataset of one or two files and a fix file, all served by one mount.  The
expected dataset is the original file(s) read with netCDF4-python, fixed by the test's own code
(reference.apply_fixes) and decoded by xarray; each case also asserts the specific effect of its
action directly, so a reference bug cannot hide a product bug.  ``history`` must record, per
changed variable, ``atlasfs fix <rule> (<fix file>): <action> ...``.  An unknown key or action in
a fix file fails index/tree/mount with the fix file's path and the line number.
"""

from __future__ import annotations

import os
import re
import time

import cftime
import numpy as np
import pytest

from archives import write_fixes, write_nc
from conftest import force_unmount, is_mounted, run_atlasfs, write_config
from reference import (assert_equivalent, history_rules, join_along, load_fixed, open_mounted,
                       read_raw)

NT, NY, NX = 3, 4, 5
RNG_SEED = 11


def _grid():
    return np.linspace(-60, 60, NY), np.linspace(0, 288, NX)


def _field(seed, shape=(NT, NY, NX), dtype="f4", base=280.0):
    rng = np.random.default_rng(seed)
    return (base + 10 * rng.standard_normal(shape)).astype(dtype)


def std_file(path, *, time_name="time", time_values=None, time_units="days since 2000-01-01",
             calendar="standard", time_attrs=None, extra=None, gattrs=None, temp_name="temp",
             temp_attrs=None, fill=np.float32(-999.0), seed=0, drop=()):
    """time/lat/lon with a masked float32 ``temp``; ``extra`` adds or replaces variables."""
    lat, lon = _grid()
    temp = _field(seed)
    temp[:, 0, 0] = -999.0
    tv = np.arange(NT, dtype="f8") if time_values is None else np.asarray(time_values, "f8")
    variables = {
        time_name: {"dims": (time_name,), "dtype": "f8", "values": tv,
                    "attrs": {"units": time_units, "calendar": calendar, "standard_name": "time",
                              **(time_attrs or {})}},
        "lat": {"dims": ("lat",), "dtype": "f8", "values": lat, "attrs": {"units": "degrees_north"}},
        "lon": {"dims": ("lon",), "dtype": "f8", "values": lon, "attrs": {"units": "degrees_east"}},
        temp_name: {"dims": (time_name, "lat", "lon"), "dtype": "f4", "values": temp, "fill": fill,
                    "attrs": temp_attrs or {"units": "K", "long_name": "temperature"}},
    }
    variables.update(extra or {})
    for name in drop:
        variables.pop(name)
    dims = {time_name: None, "lat": NY, "lon": NX}
    for spec in (extra or {}).values():
        for d, n in zip(spec["dims"], np.shape(spec.get("values", 0))):
            dims.setdefault(d, n)
    return write_nc(path, dims, variables, gattrs or {"title": "fix test", "Conventions": "CF-1.7"})


# --------------------------------------------------------------------------
# the cases: name -> builder(dir) -> dict(entry extras, files [(path, keys, relpath)], rules)


CASES = {}


def case(fn):
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


@case
def case_rename(d):
    std_file(d / "f.nc", time_name="t", temp_name="temp_", extra={
        "lat_bounds": {"dims": ("lat", "nv"), "dtype": "f8",
                       "values": np.stack([_grid()[0] - 1, _grid()[0] + 1], axis=1)}})
    return {"rules": [{"rename": {"temp_": "temp", "t": "time", "nv": "bnds"}}]}


@case
def case_set_attrs(d):
    std_file(d / "f.nc")
    return {"rules": [{"set_attrs": {
        "temp": {"units": "degC", "answer": 42, "weight": 0.5, "long_name": "air temperature"},
        ".": {"Conventions": "CF-1.8", "title": "fixed title"}}}]}


@case
def case_drop_attrs(d):
    std_file(d / "f.nc", temp_attrs={"units": "K", "valid_range": np.array([0, 400], "f4"),
                                     "comment": "obsolete", "long_name": "temperature"})
    return {"rules": [{"drop_attrs": {"temp": ["valid_range", "comment"]}}]}


@case
def case_scale(d):
    rng = np.random.default_rng(5)
    write_nc(d / "f.nc", {"y": 3, "x": 4}, {
        "y": {"dims": ("y",), "dtype": "f8", "values": [-16.0, 0.0, 16.0], "attrs": {"units": "km"}},
        "x": {"dims": ("x",), "dtype": "f8", "values": [-24.0, -8.0, 8.0, 24.0],
              "attrs": {"units": "km"}},
        "count": {"dims": ("y", "x"), "dtype": "i2", "values": rng.integers(0, 100, (3, 4)),
                  "attrs": {"long_name": "count"}},
        "height": {"dims": ("y", "x"), "dtype": "f4", "values": rng.uniform(0, 3, (3, 4)),
                   "attrs": {"units": "km"}},
    })
    return {"rules": [{"scale": {"x": 1000.0, "y": 1000.0, "count": 2.5, "height": 1000.0}}]}


@case
def case_fill_value(d):
    rng = np.random.default_rng(6)
    a = rng.uniform(0, 10, (NT, NY, NX)).astype("f4")
    a[:, 1, :2] = -9999.0
    b = rng.uniform(0, 10, (NT, NY, NX)).astype("f4")
    b[0, :, 3] = -999.0   # really missing
    b[1, 2, :] = -1.0     # declared fill, but a valid value in fact
    std_file(d / "f.nc", extra={
        "a": {"dims": ("time", "lat", "lon"), "dtype": "f4", "values": a, "fill": False},
        "b": {"dims": ("time", "lat", "lon"), "dtype": "f4", "values": b, "fill": np.float32(-1.0)},
    })
    return {"rules": [{"fill_value": {"a": -9999.0, "b": -999.0}}]}


def _time_bnds(values):
    v = np.asarray(values, "f8")
    return np.stack([v - 15, v + 15], axis=1)


@case
def case_time(d):
    tv = [15.0, 45.0, 75.0]
    std_file(d / "f.nc", time_values=tv, time_units="days since 1850-01-01", calendar="standard",
             time_attrs={"bounds": "time_bnds"},
             extra={"time_bnds": {"dims": ("time", "nv"), "dtype": "f8", "values": _time_bnds(tv),
                                  "attrs": {"units": "days since 1850-01-01",
                                            "calendar": "standard"}}})
    return {"rules": [{"time": {"units": "days since 2000-01-01", "calendar": "360_day"}}]}


@case
def case_time_join(d):
    """a.nc claims "standard" and the wrong epoch; b.nc is right (360_day).  Without the fix the
    calendars differ (an error); the fix applies to a.nc before the join."""
    std_file(d / "a.nc", time_values=[15.0, 45.0, 75.0], time_units="days since 1850-01-01",
             calendar="standard", seed=1)
    std_file(d / "b.nc", time_values=[105.0, 135.0, 165.0], time_units="days since 2000-01-01",
             calendar="360_day", seed=2)
    return {"entry": {"concat_dim": "time"},
            "rules": [{"match_path": "a.nc",
                       "time": {"units": "days since 2000-01-01", "calendar": "360_day"}}]}


@case
def case_drop_vars(d):
    std_file(d / "f.nc", extra={
        "mapping_old": {"dims": (), "dtype": "i4", "attrs": {"grid_mapping_name": "latitude_longitude"}},
        "junk": {"dims": ("lat",), "dtype": "f8", "values": np.arange(NY, dtype="f8")},
    })
    return {"rules": [{"drop_vars": ["mapping_old", "junk"]}]}


@case
def case_flip(d):
    y = np.array([30.0, 10.0, -10.0, -30.0])
    rng = np.random.default_rng(8)
    write_nc(d / "f.nc", {"time": None, "y": 4, "x": 3}, {
        "time": {"dims": ("time",), "dtype": "f8", "values": [0.0, 1.0],
                 "attrs": {"units": "days since 2000-01-01"}},
        "y": {"dims": ("y",), "dtype": "f8", "values": y, "attrs": {"units": "m"}},
        "x": {"dims": ("x",), "dtype": "f8", "values": [0.0, 1.0, 2.0], "attrs": {"units": "m"}},
        "v2": {"dims": ("y", "x"), "dtype": "f4", "values": rng.uniform(size=(4, 3))},
        "v3": {"dims": ("time", "y", "x"), "dtype": "f8", "values": rng.uniform(size=(2, 4, 3))},
        "w": {"dims": ("x",), "dtype": "i4", "values": [7, 8, 9]},
    })
    return {"rules": [{"flip": ["y"]}]}


@case
def case_coords(d):
    std_file(d / "f.nc", extra={
        "lat": {"dims": ("lat",), "dtype": "f8", "values": np.arange(NY, dtype="f8"),
                "attrs": {"units": "m"}},
        "lon": {"dims": ("lon",), "dtype": "f8", "values": np.arange(NX, dtype="f8"),
                "attrs": {"units": "m"}},
    })
    return {"rules": [{"coords": {"lon": {"start": -3040000.0, "step": 16000.0},
                                  "lat": [10.0, 20.0, 30.0, 45.5]}}]}


@case
def case_cast(d):
    rng = np.random.default_rng(9)
    std_file(d / "f.nc", extra={
        "dbl": {"dims": ("time", "lat", "lon"), "dtype": "f8",
                "values": rng.standard_normal((NT, NY, NX)) * 1e3},
        "level": {"dims": ("lat",), "dtype": "i8", "values": [1, -2, 300000, 4]},
    })
    return {"rules": [{"cast": {"dbl": "float32", "level": "int32"}}]}


@case
def case_promote_join(d):
    std_file(d / "a.nc", time_values=[0.0, 1.0, 2.0], seed=3,
             gattrs={"source_id": "ModelA", "realization": np.int32(1)})
    std_file(d / "b.nc", time_values=[3.0, 4.0, 5.0], seed=4,
             gattrs={"source_id": "ModelB", "realization": np.int32(2)})
    return {"entry": {"concat_dim": "time"},
            "rules": [{"promote_attrs": {"source_id": "source", "realization": "member"}}]}


@case
def case_promote_scalar(d):
    std_file(d / "f.nc", gattrs={"source_id": "ModelA"})
    return {"rules": [{"promote_attrs": {"source_id": "source"}}]}


@case
def case_history(d):
    std_file(d / "f.nc", temp_attrs={"units": "K", "comment": "raw",
                                     "history": "2020-01-01 created by the model"})
    return {"rules": [
        {"match_path": "other_*.nc", "set_attrs": {"temp": {"units": "degC"}}},  # matches nothing
        {"set_attrs": {"temp": {"units": "kelvin"}}},
        {"drop_attrs": {"temp": ["comment"]}},
    ]}


@case
def case_match(d):
    """`match` on pattern keys: only site b's files are fixed."""
    for site in ("a", "b"):
        for i, year in enumerate((2000, 2001)):
            std_file(d / site / f"{year}.nc", time_values=np.arange(NT) + 365.0 * i,
                     seed=ord(site) * 10 + i, extra={
                         "count": {"dims": ("time",), "dtype": "i4", "values": [1, 2, 3]}})
    return {"entry": {"pattern": "{site}/{year:d}.nc", "groups": ["site"], "concat_dim": "time"},
            "glob": "*/*.nc",
            "rules": [{"match": {"site": "b"}, "scale": {"count": 10.0},
                       "set_attrs": {"temp": {"comment": "site b"}}}]}


# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixcases")
    out = {}
    for name, builder in CASES.items():
        d = root / name
        d.mkdir()
        spec = builder(d)
        fix = write_fixes(root / f"{name}.toml", spec["rules"])
        entry = {"name": name, "files": str(d / spec.get("glob", "*.nc")), **spec.get("entry", {}),
                 "fixes": str(fix)}
        out[name] = {"dir": d, "entry": entry, "rules": spec["rules"], "fix_name": fix.name,
                     "concat_dim": spec.get("entry", {}).get("concat_dim")}
    return out


@pytest.fixture(scope="module")
def mount(module_mounts, built):
    return module_mounts.mount([c["entry"] for c in built.values()])


def expected(c, files=None, keys=None):
    """The case's files fixed and decoded independently (joined along concat_dim if any)."""
    files = files or sorted(c["dir"].glob("*.nc"))
    loaded = [load_fixed(f, c["rules"], keys or {}, os.path.relpath(f, c["dir"]), c["concat_dim"])
              for f in files]
    if len(loaded) == 1:
        return loaded[0]
    return join_along([d for d, _ in loaded], c["concat_dim"], [h for _, h in loaded])


def check(mount, built, name, **kw):
    c = built[name]
    exp, hist = expected(c)
    got = open_mounted(mount / name)
    assert_equivalent(exp, got, name, hist=hist, fix_file=c["fix_name"], **kw)
    return exp, got




def test_rename_variable_and_dimensions(mount, built):
    exp, got = check(mount, built, "rename")
    assert "temp" in got and "temp_" not in got.variables and "t" not in got.variables
    assert got.temp.dims == ("time", "lat", "lon")
    assert got.lat_bounds.dims == ("lat", "bnds")
    assert "time" in got.coords and got.time.dtype.kind == "M"
    assert 1 in history_rules(got.temp.attrs)
    raw = read_raw(built["rename"]["dir"] / "f.nc")
    np.testing.assert_array_equal(
        got.temp.values, np.where(raw["temp_"].values == -999.0, np.nan, raw["temp_"].values))


def test_set_attrs_on_a_variable_and_globally(mount, built):
    exp, got = check(mount, built, "set_attrs")
    assert got.temp.attrs["units"] == "degC" and got.temp.attrs["answer"] == 42
    assert isinstance(got.temp.attrs["answer"], (int, np.integer))
    assert got.temp.attrs["weight"] == 0.5
    assert got.attrs["Conventions"] == "CF-1.8" and got.attrs["title"] == "fixed title"
    assert 1 in history_rules(got.temp.attrs)


def test_drop_attrs(mount, built):
    exp, got = check(mount, built, "drop_attrs")
    assert "valid_range" not in got.temp.attrs and "comment" not in got.temp.attrs
    assert got.temp.attrs["long_name"] == "temperature"
    assert 1 in history_rules(got.temp.attrs)


def test_scale_multiplies_values_and_integers_become_float64(mount, built):
    exp, got = check(mount, built, "scale")
    np.testing.assert_array_equal(got.x.values, [-24000.0, -8000.0, 8000.0, 24000.0])
    np.testing.assert_array_equal(got.y.values, [-16000.0, 0.0, 16000.0])
    raw = read_raw(built["scale"]["dir"] / "f.nc")
    assert got["count"].dtype == np.float64
    np.testing.assert_array_equal(got["count"].values, raw["count"].values.astype("f8") * 2.5)
    assert got["height"].dtype == np.float32
    np.testing.assert_array_equal(got["height"].values, raw["height"].values * np.float32(1000))
    for v in ("x", "y", "count", "height"):
        assert 1 in history_rules(got[v].attrs), v


def test_fill_value_declares_or_overrides(mount, built):
    exp, got = check(mount, built, "fill_value")
    raw = read_raw(built["fill_value"]["dir"] / "f.nc")
    np.testing.assert_array_equal(np.isnan(got.a.values), raw["a"].values == -9999.0)
    np.testing.assert_array_equal(np.isnan(got.b.values), raw["b"].values == -999.0)
    assert not np.isnan(got.b.values[1, 2, :]).any(), "-1 is no longer the fill value"
    rawm = open_mounted(mount / "fill_value", decode_cf=False)
    assert float(rawm.a.attrs.get("_FillValue", rawm.a.encoding.get("_FillValue"))) == -9999.0
    for v in ("a", "b"):
        assert 1 in history_rules(got[v].attrs), v


def test_time_override_reinterprets_values_and_bounds(mount, built):
    exp, got = check(mount, built, "time")
    want = cftime.num2date([15.0, 45.0, 75.0], "days since 2000-01-01", "360_day")
    assert list(got.time.values) == list(want)
    assert got.time.values[0].calendar == "360_day"
    want_b = cftime.num2date(_time_bnds([15.0, 45.0, 75.0]), "days since 2000-01-01", "360_day")
    assert [list(r) for r in got.time_bnds.values] == [list(r) for r in want_b]
    raw = open_mounted(mount / "time", decode_cf=False)
    assert raw.time.attrs["units"] == "days since 2000-01-01"
    assert raw.time.attrs["calendar"] == "360_day"
    np.testing.assert_array_equal(raw.time.values, [15.0, 45.0, 75.0])
    assert 1 in history_rules(got.time.attrs)


def test_time_fix_applies_before_the_join(mount, built):
    exp, got = check(mount, built, "time_join", close=("time",))
    assert got.sizes["time"] == 6
    want = cftime.num2date([15.0, 45.0, 75.0, 105.0, 135.0, 165.0], "days since 2000-01-01",
                           "360_day")
    assert list(got.time.values) == list(want)


def test_time_join_without_the_fix_fails_naming_both_files(atlasfs_bin, built, tmp_path):
    c = built["time_join"]
    entry = {k: v for k, v in c["entry"].items() if k != "fixes"}
    config = write_config(tmp_path / "c.toml", [entry], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "a.nc" in out and "b.nc" in out, out


def test_drop_vars(mount, built):
    exp, got = check(mount, built, "drop_vars")
    assert "mapping_old" not in got.variables and "junk" not in got.variables
    assert "temp" in got


def test_flip_reverses_the_axis_and_every_variable_on_it(mount, built):
    exp, got = check(mount, built, "flip")
    raw = read_raw(built["flip"]["dir"] / "f.nc")
    np.testing.assert_array_equal(got.y.values, [-30.0, -10.0, 10.0, 30.0])
    np.testing.assert_array_equal(got.v2.values, raw["v2"].values[::-1, :])
    np.testing.assert_array_equal(got.v3.values, raw["v3"].values[:, ::-1, :])
    np.testing.assert_array_equal(got.w.values, raw["w"].values)
    for v in ("y", "v2", "v3"):
        assert 1 in history_rules(got[v].attrs), v
    for v in ("x", "w"):
        assert not history_rules(got[v].attrs), v


def test_coords_list_and_start_step(mount, built):
    exp, got = check(mount, built, "coords")
    np.testing.assert_array_equal(got.lon.values, -3040000.0 + 16000.0 * np.arange(NX))
    np.testing.assert_array_equal(got.lat.values, [10.0, 20.0, 30.0, 45.5])
    assert 1 in history_rules(got.lon.attrs)


def test_cast(mount, built):
    exp, got = check(mount, built, "cast")
    raw = read_raw(built["cast"]["dir"] / "f.nc")
    assert got.dbl.dtype == np.float32 and got.level.dtype == np.int32
    np.testing.assert_array_equal(got.dbl.values, raw["dbl"].values.astype("f4"))
    np.testing.assert_array_equal(got.level.values, [1, -2, 300000, 4])
    assert 1 in history_rules(got.dbl.attrs)


def test_promote_attrs_along_the_join_dimension(mount, built):
    c = built["promote_join"]
    exp, hist = expected(c)
    got = open_mounted(mount / "promote_join")
    assert got.source.dims == ("time",)
    assert [str(s) for s in got.source.values] == ["ModelA"] * 3 + ["ModelB"] * 3
    assert got.member.dims == ("time",) and got.member.dtype.kind in "iu"
    assert list(got.member.values) == [1, 1, 1, 2, 2, 2]
    # everything else as the reference; the promoted integer's width is the product's choice
    assert_equivalent(exp.drop_vars("member"), got.drop_vars("member"), "promote_join",
                      hist=hist, fix_file=c["fix_name"])


def test_promote_attrs_without_a_join_is_a_scalar(mount, built):
    exp, got = check(mount, built, "promote_scalar")
    assert got.source.dims == () and str(got.source.values[()]) == "ModelA"


def test_history_appends_to_the_original_and_counts_rules(mount, built):
    exp, got = check(mount, built, "history")
    hist = got.temp.attrs["history"]
    lines = hist.split("\n")
    assert lines[0] == "2020-01-01 created by the model", hist
    assert all(re.match(r"atlasfs fix \d+ \(history\.toml\): ", l) for l in lines[1:]), hist
    assert history_rules(got.temp.attrs) == {2, 3}, hist
    assert got.temp.attrs["units"] == "kelvin" and "comment" not in got.temp.attrs
    assert "history" not in got.lat.attrs


def test_match_on_pattern_keys(mount, built):
    c = built["match"]
    for site in ("a", "b"):
        files = sorted((c["dir"] / site).glob("*.nc"))
        loaded = [load_fixed(f, c["rules"], {"site": site, "year": f.stem},
                             os.path.relpath(f, c["dir"]), "time") for f in files]
        exp, hist = join_along([d for d, _ in loaded], "time", [h for _, h in loaded])
        got = open_mounted(mount / "match" / site)
        assert_equivalent(exp, got, f"match/{site}", hist=hist, fix_file=c["fix_name"])
        if site == "a":
            assert got["count"].dtype.kind == "i" and "comment" not in got.temp.attrs
            assert list(got["count"].values) == [1, 2, 3] * 2
        else:
            assert got["count"].dtype == np.float64 and got.temp.attrs["comment"] == "site b"
            assert list(got["count"].values) == [10.0, 20.0, 30.0] * 2


# --------------------------------------------------------------------------
# errors in fix files


BAD_FIX_FILES = {
    # (text, line of the error)
    "unknown_action": ("""# fixes with a typo
[[fix]]
match_path = "*.nc"
scale = { lat = 1.0 }

[[fix]]
renmae = { temp = "t2" }
""", 7),
    "unknown_rule_key": ("""[[fix]]
set_attrs = { temp = { units = "K" } }

[[fix]]
mach = { site = "b" }
scale = { lat = 2.0 }
""", 5),
    "unknown_time_key": ("""[[fix]]
drop_attrs = { temp = ["comment"] }
[[fix]]
time = { untis = "days since 2000-01-01", calendar = "noleap" }
""", 4),
}


@pytest.mark.parametrize("command", ["index", "tree", "mount"])
@pytest.mark.parametrize("kind", list(BAD_FIX_FILES))
def test_unknown_key_or_action_fails_with_path_and_line(atlasfs_bin, tmp_path, kind, command):
    text, line = BAD_FIX_FILES[kind]
    d = tmp_path / "data"
    d.mkdir()
    std_file(d / "f.nc")
    fix = tmp_path / "bad-fixes.toml"
    fix.write_text(text)
    assert text.splitlines()[line - 1].split("=")[0].strip() in ("renmae", "mach", "time")
    config = write_config(tmp_path / "c.toml",
                          [{"name": "x", "files": str(d / "*.nc"), "fixes": str(fix)}],
                          cache_dir=tmp_path / "cache")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = [command, config] + ([mnt] if command == "mount" else [])
    try:
        res = run_atlasfs(atlasfs_bin, *args, timeout=60)
        out = res.stdout + res.stderr
        assert res.returncode != 0, out
        assert str(fix) in out or os.path.realpath(fix) in out, f"fix file path not named:\n{out}"
        assert re.search(rf"\bline {line}\b", out), f"line {line} not named:\n{out}"
        if command == "mount":
            assert not is_mounted(mnt)
    finally:
        if is_mounted(mnt):
            run_atlasfs(atlasfs_bin, "unmount", mnt, timeout=30)
            time.sleep(0.2)
            force_unmount(mnt)
