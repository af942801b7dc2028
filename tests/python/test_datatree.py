"""An ISMIP6-like archive as a DataTree: path pattern → groups, per-variable files merged,
declared fixes applied per file.

The archive (archives.make_ismip6) has 5 models in 4 groups × 3 experiments × 4 variables on
two grids, with errors injected into identifiable models; archives.ISMIP6_FIXES undo them.
Expected values: each original file read with netCDF4-python, fixed by the test's own code
(reference.apply_fixes) and decoded by xarray; the error-free fields (archives.ismip6_truth)
check that the fixes really repair what was broken.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import warnings

import cftime
import numpy as np
import pytest
import xarray as xr

import archives
from conftest import REPO, run_atlasfs, write_config
from reference import (assert_equivalent, load_fixed, matching_rules, merge_union,
                       open_mounted)

FIX_NAME = archives.ISMIP6_FIX_FILE
LEAVES = [(m["group"], m["model"], e) for m in archives.ISMIP6_MODELS
          for e in archives.ISMIP6_EXPERIMENTS]
MODEL_RES = {(m["group"], m["model"]): m["res_km"] for m in archives.ISMIP6_MODELS}


@pytest.fixture(scope="module")
def ismip6(tmp_path_factory):
    return archives.make_ismip6(tmp_path_factory.mktemp("ismip6") / "archive")


def dataset_entry(ismip6, name="ismip6") -> dict:
    return {
        "name": name,
        "files": os.path.join(ismip6["root"], "**", "*.nc"),
        "pattern": ismip6["pattern"],
        "groups": ["group", "model", "experiment"],
        "merge": "variable",
        "fixes": ismip6["fix_file"],
    }


@pytest.fixture(scope="module", params=[3, 2], ids=lambda f: f"zarr{f}")
def mount(request, module_mounts, ismip6):
    return module_mounts.mount([dataset_entry(ismip6)], zarr_format=request.param)


@pytest.fixture(scope="module")
def tree(mount):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = xr.open_datatree(str(mount / "ismip6"), engine="zarr")
        dt.load()
    dt.close()  # the values stay loaded
    return dt


def leaf_files(ismip6, group, model, experiment) -> list[dict]:
    files = [f for f in ismip6["files"]
             if (f["group"], f["model"], f["experiment"]) == (group, model, experiment)]
    return sorted(files, key=lambda f: f["variable"])  # the merge key, in key order


def expected_leaf(ismip6, group, model, experiment):
    loaded = [load_fixed(f["path"], archives.ISMIP6_FIXES, f, f["relpath"])
              for f in leaf_files(ismip6, group, model, experiment)]
    return merge_union([d for d, _ in loaded], [h for _, h in loaded])


def test_tree_levels_are_the_pattern_keys(tree):
    """/ismip6/<group>/<model>/<experiment>, and nothing else."""
    assert set(tree.children) == {m["group"] for m in archives.ISMIP6_MODELS}
    assert set(tree["PIK"].children) == {"PISM1", "PISM2"}
    assert set(tree["JPL1"].children) == {"ISSM"} and set(tree["UCIJPL"].children) == {"ISSM"}
    leaves = {node.path.strip("/") for node in tree.subtree if node.has_data}
    assert leaves == {f"{g}/{m}/{e}" for g, m, e in LEAVES}
    for node in tree.subtree:
        if node.path.strip("/").count("/") < 2:
            assert not node.has_data, f"{node.path} is not a leaf but has variables"


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda l: "/".join(l))
def test_every_leaf_equals_the_files_fixed_independently(tree, ismip6, leaf):
    expected, hist = expected_leaf(ismip6, *leaf)
    got = tree["/".join(leaf)].to_dataset()
    assert_equivalent(expected, got, "/".join(leaf), hist=hist, fix_file=FIX_NAME)
    assert set(got.data_vars) >= set(archives.ISMIP6_VARIABLES), "the variables are merged"
    assert "mapping_old" not in got.variables and "thickness" not in got.variables


def test_a_leaf_opened_alone_with_open_zarr(mount, ismip6):
    expected, hist = expected_leaf(ismip6, "UCIJPL", "ISSM", "exp05")
    got = open_mounted(mount / "ismip6" / "UCIJPL" / "ISSM" / "exp05")
    assert_equivalent(expected, got, "UCIJPL/ISSM/exp05", hist=hist, fix_file=FIX_NAME)


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda l: "/".join(l))
def test_fixed_leaf_equals_the_error_free_fields(tree, leaf):
    """The declared fixes undo every injected error: the served leaf is what the model meant."""
    group, model, experiment = leaf
    res = MODEL_RES[(group, model)]
    got = tree["/".join(leaf)].to_dataset()
    x, y = archives.ismip6_grid(res)
    np.testing.assert_array_equal(got.x.values, x)
    np.testing.assert_array_equal(got.y.values, y)
    assert got.x.attrs["units"] == "m" and got.y.attrs["units"] == "m"
    want_time = cftime.num2date(archives.ismip6_time(), archives.ISMIP6_TIME_UNITS,
                                archives.ISMIP6_CALENDAR)
    assert list(got.time.values) == list(want_time)
    for var in archives.ISMIP6_VARIABLES:
        truth = archives.ismip6_truth(group, model, experiment, var, res)
        assert got[var].dims == ("time", "y", "x")
        np.testing.assert_array_equal(got[var].values, truth, err_msg=f"{leaf} {var}")
        assert "valid_range" not in got[var].attrs
    assert got["orog"].attrs["long_name"] == "surface elevation"


def same_grid_models(res):
    return [(g, m) for (g, m), r in MODEL_RES.items() if r == res]


@pytest.mark.parametrize("res", [16, 32], ids=lambda r: f"{r}km")
@pytest.mark.parametrize("var", ["lithk", "acabf"])
def test_multi_model_variance(tree, ismip6, res, var):
    """xr.concat([...], dim="m").var("m") over the models of one grid, per experiment."""
    models = same_grid_models(res)
    assert len(models) >= 2
    x, y = archives.ismip6_grid(res)
    for experiment in archives.ISMIP6_EXPERIMENTS:
        members = [tree[f"{g}/{m}/{experiment}"][var] for g, m in models]
        got = xr.concat(members, dim="m").var("m")
        # aligned exactly: an unfixed flip, km axis or time offset would outer-join
        assert got.shape == (archives.ISMIP6_NT, len(y), len(x)), got.shape
        ref_members = [expected_leaf(ismip6, g, m, experiment)[0][var] for g, m in models]
        want = xr.concat(ref_members, dim="m").var("m")
        np.testing.assert_allclose(got.values, want.values, rtol=1e-6, equal_nan=True)
        assert np.isfinite(got.values).sum() > got.size // 3
        assert np.isnan(got.values).any(), "ice-free cells are masked in every model"


def tree_fix_lines(stdout: str) -> set:
    pairs = set()
    for line in stdout.splitlines():
        m = re.match(r"^\s*fix (\d+) \((.+?)\) matched (.+?)\s*$", line)
        if m:
            assert m.group(2) == FIX_NAME, line
            assert os.path.isabs(m.group(3)), f"not an absolute path: {line}"
            pairs.add((int(m.group(1)), os.path.realpath(m.group(3))))
    return pairs


def test_tree_shows_the_fixes_that_matched_each_file(atlasfs_bin, ismip6, tmp_path):
    config = write_config(tmp_path / "c.toml", [dataset_entry(ismip6)], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    want = {(n, os.path.realpath(f["path"]))
            for f in ismip6["files"]
            for n in matching_rules(archives.ISMIP6_FIXES, f, f["relpath"])}
    assert len({n for n, _ in want}) == len(archives.ISMIP6_FIXES), "every rule matches a file"
    got = tree_fix_lines(res.stdout)
    assert got == want, (f"missing: {sorted(want - got)[:5]}\nunexpected: {sorted(got - want)[:5]}\n"
                         f"{res.stdout[:3000]}")


def test_index_reports_nothing_unmatched(atlasfs_bin, ismip6, tmp_path):
    config = write_config(tmp_path / "c.toml", [dataset_entry(ismip6)], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert not re.search(r"^(unmatched|skipped|missing) ", out, re.M), out
    assert re.search(rf"\b{len(ismip6['files'])} files\b", out), out


# --------------------------------------------------------------------------
# the example configs in mount-configs/ are documentation: they must work


def _example_tree(tmp_path):
    """A copy of mount-configs/ next to demo-data/examples written by the example script."""
    shutil.copytree(REPO / "mount-configs", tmp_path / "mount-configs")
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_example_archives.py"),
         str(tmp_path / "demo-data" / "examples")],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp_path / "mount-configs"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return _example_tree(tmp_path_factory.mktemp("examples"))


def test_example_fix_files_are_the_generators_fixes():
    """The commented fix files in mount-configs/fixes/ declare exactly the rules the generators'
    errors need (tests/python/archives.py)."""
    def norm(rules):
        return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in rules]
    for name, rules in (("ismip6.toml", archives.ISMIP6_FIXES),
                        ("cmip6.toml", archives.CMIP6_FIXES)):
        with open(REPO / "mount-configs" / "fixes" / name, "rb") as f:
            doc = tomllib.load(f)
        assert set(doc) == {"fix"}, name
        assert doc["fix"] == norm(rules), name


@pytest.mark.parametrize("config, expect", [
    ("ismip6.toml", ["JPL1", "ISSM", "exp05", "PISM1", "lithk", "acabf"]),
    ("cmip6.toml", ["AtlasESM1", "ssp585", "tas", "pr", "member_id"]),
    ("cases.toml", ["experiment", "counterfactual", "DIC", "ALK", "polygon_id", "injection_date"]),
])
def test_example_configs_work(atlasfs_bin, examples, config, expect):
    res = run_atlasfs(atlasfs_bin, "tree", examples / config, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for word in expect:
        assert re.search(rf"\b{re.escape(word)}\b", res.stdout), f"{word} not in tree:\n{out}"
    idx = run_atlasfs(atlasfs_bin, "index", examples / config, timeout=120)
    assert idx.returncode == 0, idx.stdout + idx.stderr
    assert "unmatched" not in idx.stdout, idx.stdout


def test_example_ismip6_mounts_and_matches(mounts, examples):
    """The documented ISMIP6 example (relative paths, its own fix file) serves fixed data."""
    with open(examples / "ismip6.toml", "rb") as f:
        cfg = tomllib.load(f)
    entry = dict(cfg["dataset"][0])
    base = examples
    entry["files"] = str((base / entry["files"]).resolve()) if not os.path.isabs(entry["files"]) \
        else entry["files"]
    entry["fixes"] = str((base / entry["fixes"]).resolve())
    m = mounts.mount([entry])
    got = open_mounted(m / entry["name"] / "ILTS" / "SICOPOLIS" / "exp06")
    x, y = archives.ismip6_grid(16)
    np.testing.assert_array_equal(got.y.values, y)
    truth = archives.ismip6_truth("ILTS", "SICOPOLIS", "exp06", "lithk", 16)
    np.testing.assert_array_equal(got.lithk.values, truth)
