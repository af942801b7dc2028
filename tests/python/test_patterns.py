"""Path patterns and new dimensions.

- a file that does not match the pattern is reported by ``atlasfs index``
  (``unmatched <relative path>: does not match pattern <pattern> (matched against paths under
  <base>)``) and left out; the rest mounts;
- ``{key:d}`` gives int64 coordinates sorted numerically, ``{key:%Y%m}``-style gives CF time
  coordinates (int64 days since 1970-01-01, proleptic_gregorian) sorted chronologically;
- the case archive (archives.make_cases: polygon_id × injection_date × run, with gaps) with
  ``new_dims``: shapes, coordinate values and dtypes, gaps read as the fill value (NaN decoded)
  and reported as ``missing <dataset>[/<group>]: key=value, ...``; the run key either as a
  group level or as a third new dimension (string coordinate);
- keys used by nothing (no group, merge, new dim) whose files are not told apart by
  ``concat_dim`` are an error naming the files.

Expected values: each file read with netCDF4-python and decoded by xarray, stacked by the test.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import archives
from archives import write_fixes, write_nc
from conftest import run_atlasfs, write_config
from reference import assert_equivalent, decode, join_along, open_mounted, read_raw, stack_new_dims

DATE_COORDS = {"202001": "2020-01-01", "202004": "2020-04-01", "202007": "2020-07-01"}


def small_file(path, value, gattrs=None, nt=None, t0=0.0):
    """One float32 variable v(x); with ``nt``, also a time axis: v(time, x)."""
    if nt is None:
        return write_nc(path, {"x": 3}, {
            "x": {"dims": ("x",), "dtype": "f8", "values": [0.0, 1.0, 2.0]},
            "v": {"dims": ("x",), "dtype": "f4", "values": np.full(3, value, "f4") + np.arange(3),
                  "fill": np.float32(-999.0), "attrs": {"units": "1"}},
        }, gattrs or {"title": "pattern test"})
    return write_nc(path, {"time": None, "x": 3}, {
        "time": {"dims": ("time",), "dtype": "f8", "values": t0 + np.arange(nt),
                 "attrs": {"units": "days since 2000-01-01", "calendar": "standard"}},
        "x": {"dims": ("x",), "dtype": "f8", "values": [0.0, 1.0, 2.0]},
        "v": {"dims": ("time", "x"), "dtype": "f4",
              "values": value + np.arange(nt * 3, dtype="f4").reshape(nt, 3),
              "fill": np.float32(-999.0), "attrs": {"units": "1"}},
    }, gattrs or {"title": "pattern test"})


SITES_PATTERN = "{site}/{year:d}.nc"
# relative path -> matches SITES_PATTERN?
SITES_FILES = {
    "a/2000.nc": True,
    "a/2001.nc": True,
    "b/2000.nc": True,
    "a/notes.nc": False,        # not an integer
    "a/2001_extra.nc": False,   # literal ".nc" must follow the integer
    "c/sub/2000.nc": False,     # {site} does not span "/"
    "b.nc": False,              # too few segments
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("patterns")
    out = {"root": root}
    out["cases"] = archives.make_cases(root / "cases")
    # sites: joined along time per site, with files that do not match
    sites = root / "sites"
    for i, rel in enumerate(SITES_FILES):
        year = int(re.search(r"\d{4}", rel).group()) if re.search(r"\d{4}", rel) else 1999
        small_file(sites / rel, 10.0 * i, nt=2, t0=365.0 * (year - 2000))
    out["sites"] = sites
    # members: r1, r2, r10 (numeric, not lexical, order), each with a promoted global attribute
    members = root / "members"
    for m in (10, 1, 2):
        small_file(members / f"r{m}.nc", 100.0 * m, gattrs={"seed": np.int32(1000 + m)})
    out["members"] = members
    out["members_fix"] = write_fixes(root / "members.toml",
                                     [{"promote_attrs": {"seed": "seed"}}])
    # days: %Y%m%d, chronological (not lexical by name: all sort the same here, so the
    # files are also written out of order)
    days = root / "days"
    for d in ("20200301", "20191231", "20200105"):
        small_file(days / f"{d}.nc", float(d[-4:]))
    out["days"] = days
    return out


def entries(data):
    cases = data["cases"]
    return [
        {"name": "cases", "files": os.path.join(cases["root"], "**", "*.nc"),
         "pattern": cases["pattern"], "groups": ["run"],
         "new_dims": ["polygon_id", "injection_date"]},
        {"name": "cases_run", "files": os.path.join(cases["root"], "**", "*.nc"),
         "pattern": cases["pattern"], "new_dims": ["polygon_id", "injection_date", "run"]},
        {"name": "sites", "files": str(data["sites"] / "**" / "*.nc"), "pattern": SITES_PATTERN,
         "groups": ["site"], "concat_dim": "time"},
        {"name": "members", "files": str(data["members"] / "*.nc"), "pattern": "r{member:d}.nc",
         "new_dims": ["member"], "fixes": str(data["members_fix"])},
        {"name": "days", "files": str(data["days"] / "*.nc"), "pattern": "{day:%Y%m%d}.nc",
         "new_dims": ["day"]},
    ]


@pytest.fixture(scope="module")
def mount(module_mounts, data):
    return module_mounts.mount(entries(data))


@pytest.fixture(scope="module")
def index_output(atlasfs_bin, data, tmp_path_factory):
    d = tmp_path_factory.mktemp("index")
    config = write_config(d / "c.toml", entries(data), cache_dir=d / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


# --------------------------------------------------------------------------
# unmatched files


def test_unmatched_files_are_reported_and_left_out(index_output, data, mount):
    lines = [l.strip() for l in index_output.splitlines() if l.strip().startswith("unmatched ")]
    reported = {}
    for line in lines:
        # the path as the pattern saw it: relative to the glob's base directory
        m = re.match(r"^unmatched (.+): does not match pattern (.+) "
                     r"\(matched against paths under (.+)\)$", line)
        assert m, f"malformed line {line!r}"
        assert not os.path.isabs(m.group(1)), line
        assert os.path.realpath(m.group(3)) == os.path.realpath(data["sites"]), line
        reported[os.path.realpath(os.path.join(m.group(3), m.group(1)))] = m.group(2)
    want = {os.path.realpath(data["sites"] / rel) for rel, ok in SITES_FILES.items() if not ok}
    assert set(reported) == want, index_output
    assert set(reported.values()) == {SITES_PATTERN}, index_output
    # the rest mounts: site a joins its two matching files, b has one, c does not exist
    assert sorted(d for d in os.listdir(mount / "sites") if not d.startswith((".", "zarr"))) == ["a", "b"]
    a = open_mounted(mount / "sites" / "a")
    files = [data["sites"] / "a" / "2000.nc", data["sites"] / "a" / "2001.nc"]
    want_a, _ = join_along([decode(read_raw(f)) for f in files], "time")
    assert_equivalent(want_a, a, "sites/a")
    assert a.sizes["time"] == 4


# --------------------------------------------------------------------------
# typed keys


def test_integer_key_is_an_int64_coordinate_in_numeric_order(mount, data):
    got = open_mounted(mount / "members")
    assert got.member.dtype == np.int64
    assert list(got.member.values) == [1, 2, 10]
    assert got.v.dims == ("member", "x")
    want = np.stack([read_raw(data["members"] / f"r{m}.nc")["v"].values for m in (1, 2, 10)])
    np.testing.assert_array_equal(got.v.values, want)
    np.testing.assert_array_equal(got.x.values, [0.0, 1.0, 2.0])
    assert got.x.dims == ("x",), "coordinate variables do not gain the new dims"
    # a promoted global attribute is a scalar per file, and gains the new dims
    assert got.seed.dims == ("member",) and got.seed.dtype.kind in "iu"
    assert list(got.seed.values) == [1001, 1002, 1010]


def test_date_key_is_a_cf_time_coordinate_in_chronological_order(mount):
    got = open_mounted(mount / "days")
    assert got.day.dtype.kind == "M"
    assert [str(d)[:10] for d in got.day.values] == ["2019-12-31", "2020-01-05", "2020-03-01"]
    assert got.v.dims == ("day", "x")
    np.testing.assert_array_equal(got.v.values[:, 0], [1231.0, 105.0, 301.0])
    raw = open_mounted(mount / "days", decode_cf=False)
    assert raw.day.dtype == np.int64
    assert raw.day.attrs["units"] == "days since 1970-01-01"
    assert raw.day.attrs["calendar"] == "proleptic_gregorian"
    assert list(raw.day.values) == [18261, 18266, 18322]


# --------------------------------------------------------------------------
# the case archive


def case_cells(cases, run=None):
    """(polygon_id, injection_date datetime64) [+ run] -> decoded dataset of that file."""
    cells = {}
    for f in cases["files"]:
        if run is not None and f["run"] != run:
            continue
        key = (f["polygon_id"], np.datetime64(DATE_COORDS[f["injection_date"]], "ns"))
        if run is None:
            key += (f["run"],)
        cells[key] = decode(read_raw(f["path"]))
    return cells


def case_coords(cases, with_run=False):
    coords = {
        "polygon_id": np.array(sorted(cases["polygons"]), dtype="i8"),
        "injection_date": np.array([DATE_COORDS[d] for d in sorted(cases["dates"])],
                                   dtype="datetime64[ns]"),
    }
    if with_run:
        coords["run"] = np.array(sorted(cases["runs"]), dtype=object)
    return coords


def compare_new_dims(expected, got, where, new_dims):
    # the attributes of the added coordinate variables are the product's choice
    for d in new_dims:
        expected[d].attrs = dict(got[d].attrs)
    assert_equivalent(expected, got, where, global_attrs=False)


@pytest.mark.parametrize("run", archives.CASES_RUNS)
def test_case_archive_with_run_as_a_group(mount, data, run):
    cases = data["cases"]
    got = open_mounted(mount / "cases" / run)
    coords = case_coords(cases)
    cells = case_cells(cases, run)
    template = cells[(0, coords["injection_date"][0])]
    expected = stack_new_dims(cells, ["polygon_id", "injection_date"], coords, template)
    compare_new_dims(expected, got, f"cases/{run}", ["polygon_id", "injection_date"])
    shape = (3, 3, archives.CASES_NT, archives.CASES_NY, archives.CASES_NX)
    assert got.DIC.shape == shape and got.ALK.shape == shape
    assert got.DIC.dims == ("polygon_id", "injection_date", "time", "y", "x")
    assert got.polygon_id.dtype == np.int64 and list(got.polygon_id.values) == [0, 1, 2]
    assert got.injection_date.dtype.kind == "M"
    assert [str(d)[:10] for d in got.injection_date.values] == list(DATE_COORDS.values())
    assert got.crs.dims == () and got.time.dims == ("time",) and got.x.dims == ("x",)
    # gaps are NaN
    for (p, d), runs in archives.CASES_GAPS.items():
        i, j = [0, 1, 2].index(p), list(DATE_COORDS).index(d)
        assert np.isnan(got.DIC.values[i, j]).all() == (run in runs), (p, d)
    # and raw, they are the fill value
    raw = open_mounted(mount / "cases" / run, decode_cf=False)
    assert raw.DIC.values[1, 1].ravel()[0] == archives.CASES_FILL
    assert raw.injection_date.dtype == np.int64
    assert list(raw.injection_date.values) == [18262, 18353, 18444]
    assert raw.injection_date.attrs["units"] == "days since 1970-01-01"
    assert raw.injection_date.attrs["calendar"] == "proleptic_gregorian"


def test_case_archive_with_run_as_a_third_new_dim(mount, data):
    cases = data["cases"]
    got = open_mounted(mount / "cases_run")
    coords = case_coords(cases, with_run=True)
    cells = case_cells(cases)
    template = cells[(0, coords["injection_date"][0], "counterfactual")]
    dims = ["polygon_id", "injection_date", "run"]
    expected = stack_new_dims(cells, dims, coords, template)
    compare_new_dims(expected, got, "cases_run", dims)
    assert got.DIC.dims == ("polygon_id", "injection_date", "run", "time", "y", "x")
    assert [str(r) for r in got.run.values] == ["counterfactual", "experiment"]
    assert got.run.dtype.kind in "OUT"
    # the signal: experiment - counterfactual is positive where both exist
    delta = got.ALK.sel(run="experiment") - got.ALK.sel(run="counterfactual")
    assert (delta.isel(time=0).values[np.isfinite(delta.isel(time=0).values)] > 10).all()


def test_missing_cells_are_reported(index_output):
    """One line per missing cell.  A date value may be shown as matched ("202004") or as the
    date it means ("2020-04-01")."""
    lines = set()
    for line in index_output.splitlines():
        if line.strip().startswith("missing "):
            for raw, iso in DATE_COORDS.items():
                line = re.sub(rf"\binjection_date={iso}\b", f"injection_date={raw}", line)
            lines.add(line.strip())
    want = set()
    for (p, d), runs in archives.CASES_GAPS.items():
        for run in runs:
            want.add(f"missing cases/{run}: polygon_id={p}, injection_date={d}")
            want.add(f"missing cases_run: polygon_id={p}, injection_date={d}, run={run}")
    assert lines == want, index_output


# --------------------------------------------------------------------------


def test_keys_not_told_apart_are_an_error_naming_the_files(atlasfs_bin, tmp_path):
    """Two files differ in a key that is neither a group, the merge key nor a new dim, and there
    is no concat_dim to join them: which one to serve is undefined."""
    d = tmp_path / "data"
    small_file(d / "a" / "2000.nc", 1.0)
    small_file(d / "a" / "2001.nc", 2.0)
    config = write_config(tmp_path / "c.toml", [
        {"name": "ambiguous", "files": str(d / "**" / "*.nc"), "pattern": SITES_PATTERN,
         "groups": ["site"]}], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "2000.nc" in out and "2001.nc" in out, out
