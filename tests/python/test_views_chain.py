"""Views of views and of DataTree groups, configuration errors, views in `atlasfs tree`, and
recomputing only what a rewritten source file changes.

Expected values: xarray / numpy on the original files; expected recomputation: chunk counts
from the served arrays' geometry (shapes and chunk shapes) and the one file's time step.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import view_fixtures as vf
from view_fixtures import daily, cases, source  # noqa: F401 (fixtures)
from conftest import is_mounted, open_mounted, run_atlasfs

PACK = {"int16": (-32767, 32767, -32768), "uint8": (0, 254, 255)}


CHAIN_VIEWS = [
    {"name": "chain/delta", "from": "cases/north", "expr": {"delta": "DIC - DIC_ALT_CO2"}},
    {"name": "chain/delta-pyr", "from": "chain/delta",
     "pyramid": {"levels": 3, "method": "mean", "dims": ["y", "x"]}},
    {"name": "chain/delta-packed", "from": "chain/delta",
     "pack": {"dtype": "uint8", "range": [20.0, 40.0]}},
    {"name": "chain/src-pyr", "from": "daily",
     "pyramid": {"levels": 3, "method": "mean", "dims": ["lat", "lon"]}},
    {"name": "chain/level-packed", "from": "chain/src-pyr/1", "variables": ["sst"],
     "pack": {"dtype": "int16", "range": "data"}},
]


@pytest.fixture(scope="module")
def datasets(daily, cases):
    return [vf.daily_entry(daily), vf.cases_entry(cases)]


@pytest.fixture(scope="module")
def mount(module_mounts, datasets):
    return vf.mount_views(module_mounts, datasets, CHAIN_VIEWS)


def delta_of(cases, leaf) -> xr.Dataset:
    src = vf.open_file(cases["leaves"][leaf])
    return (src.DIC - src.DIC_ALT_CO2).to_dataset(name="delta")


def coarsen_mean(ds: xr.Dataset, dims, f: int, method: str = "mean") -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(ds.coarsen({d: f for d in dims}, boundary="trim"), method)()


# --------------------------------------------------------------------------
# chains


@pytest.mark.parametrize("model", ["m1", "m2"])
def test_pyramid_of_an_expression_of_a_datatree_group(mount, cases, model):
    want_full = delta_of(cases, f"north/{model}")
    assert not (mount / "chain/delta-pyr" / "m3").exists(), "south is not under cases/north"
    for k in range(3):
        f = 2 ** (2 - k)
        want = coarsen_mean(want_full, ("y", "x"), f)
        got = open_mounted(mount / "chain/delta-pyr" / model / str(k))
        assert got.delta.dims == ("time", "y", "x")
        assert got.delta.dtype == np.float32
        assert got.delta.shape == want.delta.shape, (k, got.delta.shape, want.delta.shape)
        np.testing.assert_allclose(got.delta.values, want.delta.values, rtol=1e-5,
                                   equal_nan=True, err_msg=f"{model} level {k}")
        np.testing.assert_allclose(got.y.values, want.y.values, rtol=1e-12)
        np.testing.assert_allclose(got.x.values, want.x.values, rtol=1e-12)
    ms = vf.group_attrs(mount / "chain/delta-pyr" / model)["multiscales"][0]
    assert ms["metadata"]["kwargs"]["dims"] == ["y", "x"], ms
    assert ms["metadata"]["kwargs"]["factors"] == [4, 2, 1], ms


def test_expression_view_mirrors_the_group(mount, cases):
    for model in ("m1", "m2"):
        got = open_mounted(mount / "chain/delta" / model)
        want = delta_of(cases, f"north/{model}")
        np.testing.assert_array_equal(got.delta.values, want.delta.values)
    assert not (mount / "chain/delta" / "m3").exists()
    assert not (mount / "chain/delta" / "north").exists(), "leaves sit directly under the view"


def test_pack_of_a_pyramid_level(mount, source):
    level = coarsen_mean(source, ("lat", "lon"), 2)
    x = level.sst.values.astype("f8")
    lo, hi, fill = PACK["int16"]
    vmin, vmax = np.nanmin(x), np.nanmax(x)
    scale = (vmax - vmin) / (hi - lo)
    meta = vf.array_meta(mount / "chain/level-packed" / "sst")
    assert meta["dtype"] == "int16" and meta["shape"] == list(level.sst.shape)
    np.testing.assert_allclose(meta["attrs"]["scale_factor"], scale, rtol=1e-6)
    np.testing.assert_allclose(meta["attrs"]["add_offset"], vmin - lo * scale, rtol=1e-6)
    assert meta["attrs"]["_FillValue"] == fill
    got = open_mounted(mount / "chain/level-packed")
    g = got.sst.values.astype("f8")
    assert np.array_equal(np.isnan(g), np.isnan(x))
    assert np.nanmax(np.abs(g - x)) <= scale / 2 + 1e-4 * scale + 4e-7 * np.nanmax(np.abs(x))
    np.testing.assert_allclose(got.lat.values, level.lat.values, rtol=1e-6)


def test_pack_of_an_expression_view(mount, cases):
    lo, hi, fill = PACK["uint8"]
    scale = 20.0 / (hi - lo)
    for model in ("m1", "m2"):
        want = np.clip(delta_of(cases, f"north/{model}").delta.values.astype("f8"), 20.0, 40.0)
        got = open_mounted(mount / "chain/delta-packed" / model).delta.values.astype("f8")
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.nanmax(np.abs(got - want)) <= scale / 2 * (1 + 1e-6) + 1e-5
        raw = vf.raw_values(mount / "chain/delta-packed" / model / "delta")
        assert raw.dtype == np.uint8 and np.all(raw[np.isnan(want)] == fill)


def test_history_is_the_source_history_plus_the_operation(mount, source):
    hist = vf.group_attrs(mount / "chain/src-pyr").get("history", "")
    lines = hist.strip().splitlines()
    assert lines[:-1] == source.attrs["history"].strip().splitlines(), hist
    assert "chain/src-pyr" in lines[-1] and "pyramid" in lines[-1], hist


def test_history_follows_a_chain_through_a_pyramid_level(mount, source):
    """A view of a pyramid level: the source's history, the pyramid's line, the pack's line."""
    hist = vf.group_attrs(mount / "chain/level-packed").get("history", "")
    lines = hist.strip().splitlines()
    assert lines[0] == source.attrs["history"].strip(), hist
    assert len(lines) == 3 and "chain/src-pyr" in lines[1] and "pack" in lines[2], hist


# --------------------------------------------------------------------------
# `atlasfs tree`


def parse_tree(text: str) -> dict:
    """`atlasfs tree` output -> {array path: (shape, dtype)} (groups end with "/")."""
    arrays, stack = {}, []
    for line in text.splitlines():
        m = re.match(r"^(\s*)(\S*)/\s*$", line)
        if m:  # a group; the root "/" is depth 0
            depth = len(m.group(1)) // 2
            stack = stack[:depth] + [m.group(2)]
            continue
        m = re.match(r"^(\s*)(\S+)\s+\(([^)]*)\)\s+(\w+)", line)
        if m:
            depth = len(m.group(1)) // 2
            sizes = tuple(int(s.split(":")[1]) for s in m.group(3).split(",") if ":" in s)
            arrays["/".join([p for p in stack[:depth] if p] + [m.group(2)])] = (
                sizes, m.group(4).lower())
    return arrays


def test_tree_lists_the_views(atlasfs_bin, datasets, tmp_path):
    config = vf.write_views_config(tmp_path / "c.toml", datasets, CHAIN_VIEWS,
                                   cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    arrays = parse_tree(res.stdout)
    want = {
        "chain/delta/m1/delta": ((3, 21, 30), "f32"),
        "chain/delta-pyr/m2/0/delta": ((3, 5, 7), "f32"),
        "chain/delta-pyr/m2/2/delta": ((3, 21, 30), "f32"),
        "chain/delta-packed/m1/delta": ((3, 21, 30), "u8"),
        "chain/src-pyr/0/sst": ((vf.NTIME, vf.NLAT // 4, vf.NLON // 4), "f32"),
        "chain/src-pyr/1/sal": ((vf.NTIME, vf.NLAT // 2, vf.NLON // 2), "f64"),
        "chain/level-packed/sst": ((vf.NTIME, vf.NLAT // 2, vf.NLON // 2), "i16"),
        "daily/sst": ((vf.NTIME, vf.NLAT, vf.NLON), "f32"),
    }
    for path, (shape, dtype) in want.items():
        assert path in arrays, f"{path} not in tree:\n{res.stdout}"
        assert arrays[path] == (shape, dtype), f"{path}: {arrays[path]}"
    assert not any(p.startswith("chain/delta/m3") for p in arrays)


# --------------------------------------------------------------------------
# configuration errors


ERRORS = {
    "unknown-from": ([{"name": "bad-from", "from": "nowhere",
                       "pack": {"dtype": "int16", "range": "data"}}], ["bad-from", "nowhere"]),
    "cycle": ([{"name": "cyc-a", "from": "cyc-b", "pack": {"dtype": "int16", "range": "data"}},
               {"name": "cyc-b", "from": "cyc-a", "pyramid": {"levels": 2}}],
              ["cyc-a", "cyc-b"]),
    "unknown-variable": ([{"name": "bad-expr", "from": "daily",
                           "expr": {"x": "sst + bogus_var"}}], ["bad-expr", "bogus_var"]),
    "two-operations": ([{"name": "two-ops", "from": "daily", "pack": {"dtype": "int16", "range": "data"},
                         "pyramid": {"levels": 2}}], ["two-ops"]),
    "no-operation": ([{"name": "no-op", "from": "daily"}], ["no-op"]),
    "bad-dtype": ([{"name": "bad-dtype", "from": "daily",
                    "pack": {"dtype": "float16", "range": "data"}}], ["bad-dtype", "float16"]),
    "unknown-selected-variable": ([{"name": "bad-var", "from": "daily",
                                    "variables": ["no_such_var"],
                                    "pack": {"dtype": "int16", "range": "data"}}],
                                  ["bad-var", "no_such_var"]),
    "bad-range": ([{"name": "bad-range", "from": "daily",
                    "pack": {"dtype": "int16", "range": "median"}}], ["bad-range", "median"]),
}


@pytest.mark.parametrize("command", ["check", "tree"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_config_error_names_the_view(atlasfs_bin, daily, tmp_path, case, command):
    views, names = ERRORS[case]
    ok = [{"name": "fine", "from": "daily", "pack": {"dtype": "int16", "range": "data"}}]
    config = vf.write_views_config(tmp_path / "c.toml", [vf.daily_entry(daily)], ok + views,
                                   cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, command, config, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f"`atlasfs {command}` accepted {case}:\n{out}"
    for name in names:
        assert name in out, f"{case}: {name!r} not in the message:\n{out}"


def test_mount_refuses_a_bad_view(atlasfs_bin, daily, tmp_path):
    views, names = ERRORS["unknown-variable"]
    config = vf.write_views_config(tmp_path / "c.toml", [vf.daily_entry(daily)], views,
                                   cache_dir=tmp_path / "cache")
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        res = run_atlasfs(atlasfs_bin, "mount", config, mp, timeout=120)
        assert res.returncode != 0 and not is_mounted(mp), res.stdout + res.stderr
        assert all(n in res.stdout + res.stderr for n in names), res.stdout + res.stderr
    finally:
        if is_mounted(mp):
            run_atlasfs(atlasfs_bin, "unmount", mp, timeout=30)


# --------------------------------------------------------------------------
# recompute after one source file changes

REC_DAYS = 4
CHANGED_DAY = 2
REC_VIEWS = [
    {"name": "rec/pyr", "from": "rec",
     "pyramid": {"levels": 3, "method": "max", "dims": ["lat", "lon"], "chunk": 8}},
    {"name": "rec/x", "from": "rec", "expr": {"double": "sst * 2 + 1"}},
]


def chunk_counts(meta: dict) -> tuple[int, int]:
    """(all chunks, chunks holding the changed day) of an array, from its geometry."""
    grid = [math.ceil(s / c) for s, c in zip(meta["shape"], meta["chunks"])]
    total = math.prod(grid)
    dims = meta["dims"] or []
    if "time" not in dims:
        return total, 0
    return total, total // grid[dims.index("time")]


# What the views compute: the expression's variable, every level of the pyramid's data, and
# the block-mean coordinates of the coarser levels. Everything else in them (time, and lat/lon
# where they are not coarsened) passes through: the source's own arrays, computed once.
COMPUTED = ["rec/x/double", "rec/pyr/0/sst", "rec/pyr/1/sst", "rec/pyr/2/sst",
            "rec/pyr/0/lat", "rec/pyr/0/lon", "rec/pyr/1/lat", "rec/pyr/1/lon"]
SOURCE = ["rec/sst", "rec/time", "rec/lat", "rec/lon"]


def read_all(mount) -> dict:
    got = {"x": open_mounted(mount / "rec/x")}
    for k in range(3):
        got[k] = open_mounted(mount / "rec/pyr" / str(k))
    return got


def rec_source(paths) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(sorted(map(str, paths)), combine="by_coords") as ds:
            return ds.load()


def rec_reference_sst(paths) -> np.ndarray:
    return rec_source(paths).sst.values.astype("f8")


def rec_reference(paths) -> dict:
    src = rec_source(paths)
    ref = {"x": src.sst * np.float32(2) + np.float32(1)}
    for k in range(3):
        ref[k] = coarsen_mean(src, ("lat", "lon"), 2 ** (2 - k), "max").sst
    return ref


def assert_matches(got: dict, ref: dict, when: str) -> None:
    np.testing.assert_allclose(got["x"].double.values, ref["x"].values, rtol=2e-7,
                               equal_nan=True, err_msg=f"{when}: rec/x")
    for k in range(3):
        np.testing.assert_allclose(got[k].sst.values, ref[k].values, rtol=1e-5, equal_nan=True,
                                   err_msg=f"{when}: rec/pyr/{k}")


def final_counters(atlasfs_bin, config) -> dict:
    res = run_atlasfs(atlasfs_bin, "cache", "stats", config, "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    counters = json.loads(res.stdout)["mount"]
    assert counters["finished"], counters
    return counters["cache"]


def test_rewriting_one_file_recomputes_only_what_depends_on_it(atlasfs_bin, mounts, tmp_path):
    paths = vf.write_day_files(tmp_path / "rec", REC_DAYS)
    cache = tmp_path / "cache"
    entry = {"name": "rec", "files": str(tmp_path / "rec" / "*.nc"), "concat_dim": "time",
             "chunks": {"time": 1}}
    config = vf.write_views_config(tmp_path / "c.toml", [entry], REC_VIEWS, cache_dir=cache)

    m = mounts.mount_config(config, cache)
    assert_matches(read_all(m.path), rec_reference(paths), "first mount")
    arrays = [vf.array_meta(m.path / p) for p in COMPUTED + SOURCE]  # the geometry
    m.unmount()
    first = final_counters(atlasfs_bin, config)
    every = sum(chunk_counts(a)[0] for a in arrays)
    assert first["computed"] == every, (
        f"first mount computed {first['computed']}, the views and sources have {every} "
        f"chunks: {first}")

    time.sleep(0.05)
    vf.rewrite_day(paths[CHANGED_DAY], CHANGED_DAY, seed=99)
    m = mounts.mount_config(config, cache)
    got = read_all(m.path)
    m.unmount()
    assert_matches(got, rec_reference(paths), "after rewriting one file")
    again = final_counters(atlasfs_bin, config)
    changed = sum(chunk_counts(a)[1] for a in arrays)
    assert changed < every // 3
    assert again["computed"] == changed, (
        f"after rewriting one file {again['computed']} chunks were computed; the chunks that "
        f"hold its time step number {changed} (of {every}): {again}")


def test_data_range_is_scanned_again_when_a_source_changes(atlasfs_bin, mounts, tmp_path):
    """range = "data" is persisted with the source versions: after one file gets values above
    the old maximum, the view's encoding follows the new range (nothing is clipped)."""
    paths = vf.write_day_files(tmp_path / "rec", REC_DAYS, seed=8)
    cache = tmp_path / "cache"
    entry = {"name": "rec", "files": str(tmp_path / "rec" / "*.nc"), "concat_dim": "time",
             "chunks": {"time": 1}}
    view = {"name": "rec-packed", "from": "rec", "pack": {"dtype": "int16", "range": "data"}}
    config = vf.write_views_config(tmp_path / "c.toml", [entry], [view], cache_dir=cache)
    lo, hi, _ = PACK["int16"]

    for when in ("before", "after"):
        if when == "after":
            vf.rewrite_day(paths[CHANGED_DAY], CHANGED_DAY, seed=5)
        m = mounts.mount_config(config, cache)
        got = open_mounted(m.path / "rec-packed").sst.values.astype("f8")
        attrs = vf.array_meta(m.path / "rec-packed" / "sst")["attrs"]
        m.unmount()
        want = rec_reference_sst(paths)
        vmin, vmax = np.nanmin(want), np.nanmax(want)
        scale = (vmax - vmin) / (hi - lo)
        np.testing.assert_allclose(attrs["scale_factor"], scale, rtol=1e-12, err_msg=when)
        assert np.array_equal(np.isnan(got), np.isnan(want)), when
        assert np.nanmax(np.abs(got - want)) <= scale / 2 * (1 + 1e-6) + 1e-12, when
