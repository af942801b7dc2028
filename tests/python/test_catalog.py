"""An intake-esm catalog (ESM collection spec: JSON + CSV, or JSON + gzip-compressed CSV) as a
DataTree.

archives.make_cmip6 writes a CMIP6-like DRS tree (3 models × 2 experiments × 2 members × 2
variables, each series split in two files along time) and the catalogs.  Its
aggregation_control says: groupby_attrs [source_id, experiment_id] → tree levels; union over
variable_id → variables merged; join_existing over time_range → joined along time; join_new over
member_id → a new leading dimension ``member_id`` with string coordinates.  One fix matches on
catalog columns (NorthCM2's pr lacks units).

Expected values: every file read with netCDF4-python, fixed and decoded independently, joined,
merged and stacked by the test (reference.py).
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
import xarray as xr

import archives
from conftest import run_atlasfs, write_config
from reference import (assert_equivalent, history_rules, join_along, load_fixed, merge_union,
                       open_mounted, stack_new_dims)

GROUPS = [(m["source_id"], e) for m in archives.CMIP6_MODELS for e in archives.CMIP6_EXPERIMENTS]
VARIANTS = ("cmip6", "cmip6gz")


@pytest.fixture(scope="module")
def cmip6(tmp_path_factory):
    return archives.make_cmip6(tmp_path_factory.mktemp("cmip6") / "archive")


def entries(cmip6):
    return [
        {"name": "cmip6", "catalog": cmip6["json"], "fixes": cmip6["fix_file"]},
        {"name": "cmip6gz", "catalog": cmip6["json_gz"], "fixes": cmip6["fix_file"]},
    ]


@pytest.fixture(scope="module")
def mount(module_mounts, cmip6):
    return module_mounts.mount(entries(cmip6))


def expected_group(cmip6, source_id, experiment_id):
    files = [f for f in cmip6["files"]
             if f["source_id"] == source_id and f["experiment_id"] == experiment_id]
    members = sorted({f["member_id"] for f in files})
    cells = {}
    for member in members:
        per_var = []
        for var in sorted({f["variable_id"] for f in files}):  # union, in key order
            parts = [load_fixed(f["path"], archives.CMIP6_FIXES, f, f["relpath"], "time")[0]
                     for f in files if f["member_id"] == member and f["variable_id"] == var]
            assert len(parts) == 2
            per_var.append(join_along(parts, "time")[0])
        cells[(member,)] = merge_union(per_var)[0]
    coords = {"member_id": np.array(members, dtype=object)}
    return stack_new_dims(cells, ["member_id"], coords, cells[(members[0],)])


@pytest.mark.parametrize("variant", VARIANTS)
def test_tree_levels_are_the_groupby_attrs(mount, variant):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = xr.open_datatree(str(mount / variant), engine="zarr")
    try:
        assert set(dt.children) == {m["source_id"] for m in archives.CMIP6_MODELS}
        for m in archives.CMIP6_MODELS:
            assert set(dt[m["source_id"]].children) == set(archives.CMIP6_EXPERIMENTS)
            assert not dt[m["source_id"]].has_data
        leaves = {n.path.strip("/") for n in dt.subtree if n.has_data}
        assert leaves == {f"{s}/{e}" for s, e in GROUPS}
    finally:
        dt.close()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "/".join(g))
def test_group_equals_the_files_joined_merged_and_stacked(mount, cmip6, variant, group):
    got = open_mounted(mount / variant / group[0] / group[1])
    expected = expected_group(cmip6, *group)
    expected["member_id"].attrs = dict(got["member_id"].attrs)  # the product's choice
    assert_equivalent(expected, got, f"{variant}/{'/'.join(group)}", global_attrs=False)
    # the structure, spelled out
    nt = 6 * len(archives.CMIP6_TIME_RANGES)
    spec = next(m for m in archives.CMIP6_MODELS if m["source_id"] == group[0])
    assert set(got.data_vars) >= {"tas", "pr"}, "variables unioned"
    assert got.tas.dims == ("member_id", "time", "lat", "lon")
    assert got.tas.shape == (2, nt, spec["nlat"], spec["nlon"])
    assert [str(m) for m in got.member_id.values] == list(archives.CMIP6_MEMBERS)
    assert got.time_bnds.dims == ("time", "bnds"), "bounds of a coordinate do not gain member_id"
    assert got.lat_bnds.dims == ("lat", "bnds")
    t = got.time.values
    assert all(b > a for a, b in zip(t[:-1], t[1:])), "joined in time order"
    assert np.isnan(got.pr.values).any(), "missing values are masked"
    if spec["calendar"] != "standard":
        assert t[0].calendar == spec["calendar"]
    # the fix matched on catalog columns
    assert got.pr.attrs.get("units") == "kg m-2 s-1"
    if group[0] == "NorthCM2":
        assert history_rules(got.pr.attrs) == {1}
    else:
        assert not history_rules(got.pr.attrs)
    assert not history_rules(got.tas.attrs)


def test_csv_and_gzip_catalogs_serve_the_same(mount):
    for s, e in GROUPS[:2]:
        a = open_mounted(mount / "cmip6" / s / e)
        b = open_mounted(mount / "cmip6gz" / s / e)
        xr.testing.assert_identical(a, b)


def test_tree_shows_the_catalog_fix_matches(atlasfs_bin, cmip6, tmp_path):
    config = write_config(tmp_path / "c.toml", entries(cmip6)[:1], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    got = set()
    for line in res.stdout.splitlines():
        m = re.match(r"^\s*fix (\d+) \((.+?)\) matched (.+?)\s*$", line)
        if m:
            assert m.group(2) == archives.CMIP6_FIX_FILE
            got.add(os.path.realpath(m.group(3)))
    want = {os.path.realpath(f["path"]) for f in cmip6["files"]
            if f["source_id"] == "NorthCM2" and f["variable_id"] == "pr"}
    assert got == want, res.stdout[:3000]
