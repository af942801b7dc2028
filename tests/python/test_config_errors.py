"""Config values that name nothing, datasets that cannot be served, and `check`.

Semantics under test:

- a config key whose value names something that does not exist (a dimension no file has, a
  key that is not a field of the pattern, a variable no file has in a fix rule, a layout key on
  an intake-esm catalog) is a CONFIG error: `index`, `check`, `tree` and `mount` fail, and the
  message names the dataset, the key, the value and the valid choices;
- a dataset whose data cannot be served (every file truncated or not NetCDF, a join that fails)
  is left out and reported (`left out <dataset>: <reason>`) while every other dataset is served;
  `index` and `mount` exit 0 unless no dataset at all can be served;
- `check` builds the whole tree and fails exactly when `mount` would;
- a single file's tiny native chunks are coalesced into a few served chunks.

Expected values come from netCDF4-python / xarray reading the original files.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

from conftest import (Mount, assert_same_dataset, open_mounted, daemon_pids, is_mounted, run_atlasfs,
                      write_config)

NY, NX = 3, 4
COMMANDS = ["index", "check", "tree", "mount"]
LINE_STATUS = re.compile(r"^(ok  |FAIL|skip)  \S")


# --------------------------------------------------------------------------
# source files


def write_series(path: Path, start: int, n: int = 4, *, calendar: str = "standard",
                 fmt: str = "NETCDF4") -> Path:
    """``n`` daily steps from day ``start``: time, lat, lon and sst."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start + 1000 * len(calendar))
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = f"series from day {start}"
        ds.createDimension("time", None)
        ds.createDimension("lat", NY)
        ds.createDimension("lon", NX)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        t.calendar = calendar
        t[:] = np.arange(start, start + n, dtype="f8")
        ds.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-10, 10, NY)
        ds.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 30, NX)
        v = ds.createVariable("sst", "f4", ("time", "lat", "lon"))
        v.units = "K"
        v[:] = (280 + rng.standard_normal((n, NY, NX))).astype("f4")
    return path


def truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def not_netcdf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("This is not a NetCDF file.\nIt only has a .nc name.\n")
    return path


def open_original(paths) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(paths, (str, Path)):
            with xr.open_dataset(paths) as ds:
                return ds.load()
        with xr.open_mfdataset(sorted(map(str, paths)), combine="by_coords",
                               data_vars="minimal", coords="minimal",
                               compat="override") as ds:
            return ds.load()


def datasets_served(mountpoint: Path) -> set[str]:
    return {n for n in os.listdir(mountpoint) if not n.startswith((".", "zarr"))}


# --------------------------------------------------------------------------
# running commands


def run_command(atlasfs_bin, command: str, config: Path, tmp_path: Path):
    """Runs ``command`` on ``config`` (``mount`` on a fresh mountpoint, unmounted at once)."""
    if command != "mount":
        return run_atlasfs(atlasfs_bin, command, config, timeout=120)
    mnt = tmp_path / f"mnt-{time.monotonic_ns()}"
    mnt.mkdir()
    try:
        res = run_atlasfs(atlasfs_bin, "mount", config, mnt, timeout=180)
        res.mounted = is_mounted(mnt)
        return res
    finally:
        if is_mounted(mnt):
            run_atlasfs(atlasfs_bin, "unmount", mnt, timeout=60)


def mount_for_test(mounts, config: Path, cache: Path):
    """``atlasfs mount`` of ``config`` (unmounted by the fixture); returns the mount and the
    command's result."""
    mountpoint = mounts.new_dir("mnt")
    m = Mount(mounts.bin, config, mountpoint, cache)
    mounts.mounts.append(m)
    res = run_atlasfs(mounts.bin, "mount", config, mountpoint, timeout=180)
    return m, res


def reported(text: str, what: str) -> dict[str, str]:
    """``<what> <name>: <reason>`` lines of a command's output, reason by name."""
    found = {}
    for line in text.splitlines():
        m = re.search(rf"(?:^|: ){what} (\S+): (.*\S)", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def left_out_lines(stderr: str) -> dict[str, str]:
    """``left out <dataset>: <reason>`` warnings by dataset."""
    return reported(stderr, "left out")


# --------------------------------------------------------------------------
# 1. config values that name nothing


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("src")
    joined = [write_series(d / "joined" / f"s{i}.nc", 4 * i) for i in range(3)]
    sites = [write_series(d / "sites" / site / "2000.nc", 0) for site in ("a", "b")]
    good = write_series(d / "good" / "good.nc", 0)
    return {"dir": d, "joined": joined, "sites": sites, "good": good}


def bad_case(kind: str, sources: dict, tmp_path: Path) -> tuple[dict, list[str]]:
    """A dataset named ``bad`` whose ``kind`` key names nothing, and the fragments its error
    message must hold (the key, the value and the valid choices)."""
    joined = str(sources["dir"] / "joined" / "*.nc")
    sites = {"files": str(sources["dir"] / "sites" / "**" / "*.nc"),
             "pattern": "{site}/{year:d}.nc", "concat_dim": "time"}
    fixes = tmp_path / "fixes.toml"
    if kind == "concat_dim":
        return ({"files": joined, "concat_dim": "tiem"},
                ["concat_dim", '"tiem"', "time", "lat", "lon"])
    if kind == "chunks":
        return ({"files": joined, "concat_dim": "time", "chunks": {"tiem": 30}},
                ["chunks", '"tiem"', "time", "lat", "lon"])
    if kind == "groups":
        return ({**sites, "groups": ["stie"]}, ["groups", '"stie"', "site, year"])
    if kind == "new_dims":
        return ({**sites, "groups": ["site"], "new_dims": ["yeer"]},
                ["new_dims", '"yeer"', "site, year"])
    if kind == "merge":
        return ({**sites, "groups": ["site"], "merge": "vraible"},
                ["merge", '"vraible"', "site, year"])
    if kind == "groups_without_pattern":
        return ({"files": joined, "concat_dim": "time", "groups": ["site"]},
                ["groups", '"site"', "pattern"])
    if kind == "fix_variable":
        fixes.write_text('[[fix]]\nset_attrs = { sstt = { units = "degC" } }\n')
        return ({"files": joined, "concat_dim": "time", "fixes": str(fixes)},
                [str(fixes), "rule 1", "set_attrs", '"sstt"', "sst", "time"])
    if kind == "fix_match_key":
        fixes.write_text('[[fix]]\nmatch = { stie = "a" }\nscale = { sst = 2.0 }\n')
        return ({**sites, "groups": ["site"], "fixes": str(fixes)},
                [str(fixes), "rule 1", "match key", '"stie"', "site, year"])
    if kind == "fix_promoted_attr":
        fixes.write_text('[[fix]]\npromote_attrs = { sorce = "source" }\n')
        return ({"files": joined, "concat_dim": "time", "fixes": str(fixes)},
                [str(fixes), "rule 1", "promote_attrs", '"sorce"', "title"])
    if kind == "catalog_layout":
        return ({"catalog": str(tmp_path / "cat.json"), "concat_dim": "time"},
                ["concat_dim", "catalog", "aggregation_control"])
    raise ValueError(kind)


BAD_KEYS = ["concat_dim", "chunks", "groups", "new_dims", "merge", "groups_without_pattern",
            "fix_variable", "fix_match_key", "fix_promoted_attr", "catalog_layout"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", BAD_KEYS)
def test_a_key_naming_nothing_is_a_config_error(atlasfs_bin, sources, tmp_path, kind, command):
    bad, fragments = bad_case(kind, sources, tmp_path)
    config = write_config(tmp_path / "c.toml",
                          [{"name": "good", "files": str(sources["good"])},
                           {"name": "bad", **bad}],
                          cache_dir=tmp_path / "cache")
    res = run_command(atlasfs_bin, command, config, tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f"{command} accepted {kind}:\n{out}"
    if command == "mount":
        assert not res.mounted
    lines = [l for l in out.splitlines() if "bad" in l and all(f in l for f in fragments)]
    assert lines, f"no line naming dataset bad and {fragments}:\n{out}"


def test_without_the_typo_every_command_succeeds(atlasfs_bin, sources, tmp_path):
    """The control: the same datasets with the key spelled right are accepted."""
    fixes = tmp_path / "fixes.toml"
    fixes.write_text('[[fix]]\nmatch = { site = "a" }\nset_attrs = { sst = { units = "degC" } }\n')
    config = write_config(tmp_path / "c.toml", [
        {"name": "good", "files": str(sources["good"])},
        {"name": "joined", "files": str(sources["dir"] / "joined" / "*.nc"),
         "concat_dim": "time", "chunks": {"time": 5}},
        {"name": "sites", "files": str(sources["dir"] / "sites" / "**" / "*.nc"),
         "pattern": "{site}/{year:d}.nc", "groups": ["site"], "new_dims": ["year"],
         "concat_dim": "time", "fixes": str(fixes)},
    ], cache_dir=tmp_path / "cache")
    for command in COMMANDS:
        res = run_command(atlasfs_bin, command, config, tmp_path)
        assert res.returncode == 0, f"{command}:\n{res.stdout}{res.stderr}"


# --------------------------------------------------------------------------
# 2. one bad dataset never takes down the others


@pytest.fixture
def broken_files(tmp_path, sources) -> dict:
    d = tmp_path / "data"
    good4 = write_series(d / "good4.nc", 0)
    good3 = write_series(d / "good3.nc", 10, fmt="NETCDF3_CLASSIC")
    trunc = truncated(d / "trunc.nc", write_series(tmp_path / "whole.nc", 20))
    text = not_netcdf(d / "notes.nc")
    return {"good4": good4, "good3": good3, "trunc": trunc, "notnc": text}


def test_unusable_single_file_datasets_are_left_out(atlasfs_bin, tmp_path, mounts,
                                                    broken_files):
    datasets = [{"name": name, "files": str(path)} for name, path in broken_files.items()]
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml", datasets, cache_dir=cache)

    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    skipped = reported(res.stdout, "skipped")
    assert set(skipped) == {str(broken_files["trunc"]), str(broken_files["notnc"])}, res.stdout
    left_out = left_out_lines(res.stderr)
    assert set(left_out) == {"trunc", "notnc"}, res.stderr
    for name in ("trunc", "notnc"):
        path = str(broken_files[name])
        # the reason is the file's scan error
        assert path in left_out[name] and skipped[path] in left_out[name], left_out[name]

    m, res = mount_for_test(mounts, config, cache)
    assert res.returncode == 0 and is_mounted(m.path), res.stdout + res.stderr
    assert left_out_lines(res.stderr) == left_out, res.stderr
    assert datasets_served(m.path) == {"good4", "good3"}
    for name in ("good4", "good3"):
        assert_same_dataset(open_original(broken_files[name]), open_mounted(m / name), name)


def test_a_glob_matching_nothing_leaves_its_dataset_out(atlasfs_bin, tmp_path, broken_files):
    ghost = tmp_path / "no-such-dir"
    config = write_config(tmp_path / "c.toml", [
        {"name": "good4", "files": str(broken_files["good4"])},
        {"name": "ghost", "files": str(ghost / "*.nc")}], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    left_out = left_out_lines(res.stderr)
    assert set(left_out) == {"ghost"}, res.stderr
    assert f"{ghost} does not exist" in left_out["ghost"], left_out["ghost"]


def test_an_unreadable_zarr_store_leaves_its_dataset_out(atlasfs_bin, tmp_path, mounts,
                                                         broken_files):
    store = tmp_path / "nowhere.zarr"
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml", [
        {"name": "good4", "files": str(broken_files["good4"])},
        {"name": "z", "zarr": str(store)}], cache_dir=cache)
    m, res = mount_for_test(mounts, config, cache)
    assert res.returncode == 0, res.stdout + res.stderr
    left_out = left_out_lines(res.stderr)
    assert set(left_out) == {"z"} and str(store) in left_out["z"], res.stderr
    assert datasets_served(m.path) == {"good4"}
    assert_same_dataset(open_original(broken_files["good4"]), open_mounted(m / "good4"), "good4")


def test_a_failed_listing_leaves_its_dataset_out(atlasfs_bin, tmp_path, broken_files,
                                                 s3_server, s3_env):
    from s3server import s3_url, storage_table

    url = s3_url("no-such-bucket", "*.nc")
    config = write_config(tmp_path / "c.toml", [
        {"name": "good4", "files": str(broken_files["good4"])},
        {"name": "remote", "files": url, "storage": storage_table(s3_server.endpoint)}],
        cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120, env=s3_env)
    assert res.returncode == 0, res.stdout + res.stderr
    left_out = left_out_lines(res.stderr)
    assert set(left_out) == {"remote"} and "no-such-bucket" in left_out["remote"], res.stderr


def write_join_failures(d: Path) -> dict:
    cal = [write_series(d / "cal" / "a.nc", 0),
           write_series(d / "cal" / "b.nc", 4, calendar="noleap")]
    overlap = [write_series(d / "overlap" / "c.nc", 0), write_series(d / "overlap" / "d.nc", 2)]
    good = [write_series(d / "good" / f"g{i}.nc", 4 * i) for i in range(2)]
    return {"cal": cal, "overlap": overlap, "good": good}


def test_datasets_whose_join_fails_are_left_out(atlasfs_bin, tmp_path, mounts):
    files = write_join_failures(tmp_path / "data")
    datasets = [{"name": name, "files": str(paths[0].parent / "*.nc"), "concat_dim": "time"}
                for name, paths in files.items()]
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml", datasets, cache_dir=cache)
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    left_out = left_out_lines(res.stderr)
    assert set(left_out) == {"cal", "overlap"}, res.stderr
    for name in ("cal", "overlap"):
        assert all(p.name in left_out[name] for p in files[name]), left_out[name]
    assert "calendar" in left_out["cal"], left_out["cal"]
    assert "overlapping" in left_out["overlap"], left_out["overlap"]

    m, res = mount_for_test(mounts, config, cache)
    assert res.returncode == 0, res.stdout + res.stderr
    assert left_out_lines(res.stderr) == left_out, res.stderr
    assert datasets_served(m.path) == {"good"}
    assert_same_dataset(open_original(files["good"]), open_mounted(m / "good"), "good")


@pytest.mark.parametrize("command", ["index", "tree", "mount", "check"])
def test_no_usable_dataset_at_all_fails(atlasfs_bin, tmp_path, broken_files, command):
    datasets = [{"name": n, "files": str(broken_files[n])} for n in ("trunc", "notnc")]
    config = write_config(tmp_path / "c.toml", datasets, cache_dir=tmp_path / "cache")
    res = run_command(atlasfs_bin, command, config, tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "trunc" in out and "notnc" in out, out
    if command == "mount":
        assert not res.mounted


def test_a_reload_with_a_broken_dataset_keeps_serving_the_others(tmp_path, mounts):
    a = write_series(tmp_path / "data" / "a.nc", 0)
    b = write_series(tmp_path / "data" / "b.nc", 10)
    m = mounts.mount([{"name": "a", "files": str(a)}, {"name": "b", "files": str(b)}])
    assert datasets_served(m.path) == {"a", "b"}
    before = m.log_text().count("reloaded: ")
    b.write_text("not a NetCDF file any more\n")
    os.kill(daemon_pids(m.path)[0], signal.SIGHUP)
    deadline = time.monotonic() + 60
    while m.log_text().count("reloaded: ") <= before:
        assert time.monotonic() < deadline, m.log_text()
        time.sleep(0.05)
    log = m.log_text()
    assert re.search(rf"left out b: .*{re.escape(str(b))}", log), log
    assert datasets_served(m.path) == {"a"}
    assert_same_dataset(open_original(a), open_mounted(m / "a"), "a after the reload")


# --------------------------------------------------------------------------
# 3. check fails exactly when mount would


@pytest.mark.parametrize("case", ["good", "one_left_out", "all_left_out", "config_error"])
def test_check_fails_exactly_when_mount_would(atlasfs_bin, tmp_path, sources, broken_files,
                                              case):
    datasets = {
        "good": [{"name": "good4", "files": str(broken_files["good4"])}],
        "one_left_out": [{"name": "good4", "files": str(broken_files["good4"])},
                         {"name": "trunc", "files": str(broken_files["trunc"])}],
        "all_left_out": [{"name": "trunc", "files": str(broken_files["trunc"])}],
        "config_error": [{"name": "good4", "files": str(broken_files["good4"]),
                          "chunks": {"tiem": 2}}],
    }[case]
    config = write_config(tmp_path / "c.toml", datasets, cache_dir=tmp_path / "cache")
    check = run_atlasfs(atlasfs_bin, "check", config, timeout=120)
    mount = run_command(atlasfs_bin, "mount", config, tmp_path)
    assert (check.returncode == 0) == (mount.returncode == 0), (
        f"check exited {check.returncode}, mount {mount.returncode}\n"
        f"check:\n{check.stdout}{check.stderr}\nmount:\n{mount.stdout}{mount.stderr}")
    assert (mount.returncode == 0) == (case in ("good", "one_left_out"))
    lines = [l for l in check.stdout.splitlines() if l.strip()]
    misaligned = [l for l in lines if not LINE_STATUS.match(l)]
    assert not misaligned, check.stdout
    if case == "one_left_out":
        trunc = str(broken_files["trunc"])
        assert any(l.startswith("skip  ") and "trunc" in l and "0 usable, 1 skipped" in l
                   for l in lines), check.stdout
        assert any(l.startswith("skip  ") and trunc in l for l in lines), check.stdout
        assert any(l.startswith("ok    ") and "good4" in l and "1 usable, 0 skipped" in l
                   for l in lines), check.stdout


# --------------------------------------------------------------------------
# 4. a single file's tiny native chunks


STEPS = 1776


def write_tiny_chunks(path: Path) -> Path:
    rng = np.random.default_rng(7)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",), chunksizes=(1,))
        t.units = "hours since 2000-01-01"
        t[:] = np.arange(STEPS, dtype="f8")
        v = ds.createVariable("level", "f4", ("time",), chunksizes=(1,))
        v.units = "m"
        v[:] = rng.standard_normal(STEPS).astype("f4")
    with netCDF4.Dataset(path) as ds:
        assert ds["level"].chunking() == [1] and ds["time"].chunking() == [1]
    return path


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_tiny_chunks_of_a_single_file_are_coalesced(tmp_path, mounts, zarr_format):
    src = write_tiny_chunks(tmp_path / "series.nc")
    m = mounts.mount([{"name": "ts", "files": str(src)}], zarr_format=zarr_format)
    for name in ("time", "level"):
        array_dir = m / "ts" / name
        if zarr_format == 3:
            meta = json.loads((array_dir / "zarr.json").read_bytes())
            chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        else:
            chunks = json.loads((array_dir / ".zarray").read_bytes())["chunks"]
        assert len(chunks) == 1 and math.ceil(STEPS / chunks[0]) <= 8, (name, chunks)
        with netCDF4.Dataset(src) as ds:
            ds.set_auto_maskandscale(False)
            want = ds[name][:]
        got = zarr.open_array(str(array_dir), mode="r")[:]
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert_same_dataset(open_original(src), open_mounted(m / "ts"), "tiny chunks")
