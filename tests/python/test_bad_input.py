"""Bad input: broken files in the glob, files that vanish or change after
indexing, and writes into the read-only mount.

Semantics under test (DESIGN.md "Never partial, never corrupt", "Read-only"):
a file that cannot be parsed is reported by `atlasfs index` and left out; a
chunk that cannot be computed fails that read with EIO and a log line naming
the source file and the chunk while every other chunk keeps working; a
changed source is never served stale; writes fail with EROFS.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import warnings

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

from conftest import (assert_same_dataset, daemon_pids, is_eio, is_mounted, run_atlasfs,
                      wait_for, write_config)


def open_original(path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(path) as ds:
            return ds.load()


def open_mounted(path, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(str(path), consolidated=True, chunks=None, **kw)


# --------------------------------------------------------------------------
# (a) unusable files in the glob


@pytest.fixture
def glob_with_bad_files(tmp_path, fixture_files):
    d = tmp_path / "src"
    d.mkdir()
    good = d / "good.nc"
    shutil.copy(fixture_files["agg_standard"][0], good)
    trunc4 = d / "truncated_nc4.nc"
    data = open(fixture_files["nc4_chunked_zlib"], "rb").read()
    trunc4.write_bytes(data[: len(data) // 2])
    trunc3 = d / "truncated_nc3.nc"
    data = open(fixture_files["nc3_classic"], "rb").read()
    trunc3.write_bytes(data[: len(data) * 2 // 3])
    text = d / "notes.nc"
    text.write_text("This is not a NetCDF file.\nIt only has a .nc name.\n")
    empty = d / "empty.nc"
    empty.write_bytes(b"")
    bad = {str(trunc4), str(trunc3), str(text), str(empty)}
    return d, good, bad


def test_index_reports_unusable_files_and_the_rest_mounts(tmp_path, atlasfs_bin, mounts,
                                                          glob_with_bad_files):
    src, good, bad = glob_with_bad_files
    datasets = [{"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time"}]
    config = write_config(tmp_path / "index.toml", datasets, cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    skipped = {}
    for line in out.splitlines():
        m = re.search(r"skipped (\S+): (.*\S)", line)
        if m:
            skipped[m.group(1)] = m.group(2)
    assert set(skipped) == bad, f"expected skipped {sorted(bad)}, output:\n{out}"
    assert str(good) not in skipped

    # the rest mounts (mount indexes by itself when needed) and reads exactly
    m = mounts.mount(datasets)
    assert_same_dataset(open_original(good), open_mounted(m / "sst").load(), "good file")


# --------------------------------------------------------------------------
# (b) a source deleted after the mount


def test_deleted_source_fails_its_chunks_with_eio_only(tmp_path, mounts, fixture_files):
    src = tmp_path / "src"
    src.mkdir()
    files = [shutil.copy(f, src) for f in fixture_files["agg_standard"]]
    lengths = []
    for f in files:
        with netCDF4.Dataset(f) as ds:
            lengths.append(ds.dimensions["time"].size)
    starts = np.cumsum([0] + lengths)
    victim = 2  # March: time indices starts[2] .. starts[3]-1
    first_bad, last_bad = int(starts[victim]), int(starts[victim + 1] - 1)
    before, after = first_bad - 1, last_bad + 1  # last day of Feb, first of Apr
    expected = {
        before: open_original(files[victim - 1]).sst.isel(time=-1).values,
        after: open_original(files[victim + 1]).sst.isel(time=0).values,
    }

    m = mounts.mount([{"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time",
                       "chunks": {"time": 1}}])
    ds = open_mounted(m / "sst")
    assert ds.sst.encoding["chunks"][0] == 1
    assert ds.sst.encoding["chunks"][1:] == ds.sst.shape[1:], "lat/lon in one chunk (native)"

    os.unlink(files[victim])

    for i in (first_bad, last_bad):
        key = m / "sst" / "sst" / "c" / str(i) / "0" / "0"
        with pytest.raises(OSError) as exc:
            with open(key, "rb") as f:
                f.read()
        assert exc.value.errno == errno.EIO, f"chunk {i}: {exc.value!r}"
        # through xarray + zarr-python too
        with pytest.raises(Exception) as exc:
            ds.sst.isel(time=i).values
        assert is_eio(exc.value), f"chunk {i}: {exc.value!r}"

    # other files' chunks still work, the daemon is alive
    for i, values in expected.items():
        np.testing.assert_array_equal(ds.sst.isel(time=i).values, values)
    assert is_mounted(m.path)
    assert daemon_pids(m.path), "the daemon is gone"
    assert "sst" in os.listdir(m.path)

    # the log names the source file and the chunk
    def logged():
        return [line for line in m.log_text().splitlines()
                if files[victim] in line and f"c/{first_bad}/0/0" in line]
    assert wait_for(logged), f"no log line naming {files[victim]} and c/{first_bad}/0/0:\n{m.log_text()[-3000:]}"


# --------------------------------------------------------------------------
# (c) a source rewritten after the mount


def _rewrite_with_new_values(path, workdir):
    """Same name, same structure, different values (and so different
    compressed chunk sizes and offsets), newer mtime."""
    new = workdir / "new.nc"
    shutil.copy(path, new)
    rng = np.random.default_rng(99)
    with netCDF4.Dataset(new, "a") as ds:
        for name in ("sst", "anom"):
            v = ds[name]
            v[:] = v[:] + 100 + rng.standard_normal(v.shape).astype(v.dtype)
        ds["raw"][:] = -ds["raw"][:] - 7
        ds["counts"][:] = ds["counts"][:] // 2 + 1
    old_mtime = os.stat(path).st_mtime
    shutil.copyfile(new, path)  # rewritten in place, like `cp` over it
    os.utime(path, (old_mtime + 10, old_mtime + 10))


@pytest.mark.parametrize("read_before", [False, True], ids=["unread", "cached"])
def test_rewritten_source_is_never_served_stale(tmp_path, mounts, fixture_files, read_before):
    """With read_before, every chunk was computed and read once before the change, so the
    daemon's memory cache and the kernel's page cache both hold the old bytes."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / "data.nc"
    shutil.copy(fixture_files["nc4_chunked_zlib"], path)
    names = ("sst", "anom", "raw", "counts")
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        old = {n: ds[n][:] for n in names}

    # sst's native time chunking, so that many chunks are read (small native chunks of a single
    # file are otherwise coalesced along time)
    m = mounts.mount([{"name": "data", "files": str(path), "chunks": {"time": 3}}])
    open_mounted(m / "data")  # metadata read before the change
    if read_before:
        for n in names:
            np.testing.assert_array_equal(zarr.open_array(str(m / "data" / n), mode="r")[:], old[n])

    _rewrite_with_new_values(path, tmp_path)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        new = {n: ds[n][:] for n in names}
    for n in names:
        assert not np.isclose(old[n], new[n]).any(), f"{n}: new values must all differ"

    outcomes = {"new": 0, "eio": 0}
    for n in names:
        arr = zarr.open_array(str(m / "data" / n), mode="r")
        assert tuple(arr.shape) == new[n].shape
        for idx in np.ndindex(*arr.cdata_shape):
            sel = tuple(slice(i * c, min((i + 1) * c, s))
                        for i, c, s in zip(idx, arr.chunks, arr.shape))
            try:
                got = arr[sel]
            except Exception as e:  # noqa: BLE001 - any failure must be an EIO
                assert is_eio(e), f"{n} chunk {idx}: expected EIO or new values, got {e!r}"
                outcomes["eio"] += 1
                continue
            assert not np.array_equal(got, old[n][sel]), f"{n} chunk {idx}: stale (old) values"
            np.testing.assert_array_equal(got, new[n][sel], err_msg=f"{n} chunk {idx}: wrong values")
            outcomes["new"] += 1
    print("outcomes", outcomes)  # shown when the test fails
    assert sum(outcomes.values()) > 20, outcomes
    assert is_mounted(m.path)


# --------------------------------------------------------------------------
# (d) writes


def test_writes_fail_with_erofs(mounts, fixture_files):
    m = mounts.mount([{"name": "ds", "files": fixture_files["nc4_chunked_zlib"]}])
    root = m / "ds"
    meta = root / "zarr.json"
    before = meta.read_bytes()

    def erofs(fn, *args, **kw):
        with pytest.raises(OSError) as exc:
            fn(*args, **kw)
        assert exc.value.errno == errno.EROFS, f"{fn.__name__}{args}: {exc.value!r}"

    erofs(open, root / "new_file", "wb")
    erofs(os.open, str(m / "top_level_file"), os.O_WRONLY | os.O_CREAT, 0o644)
    erofs(os.mkdir, root / "newdir")
    erofs(open, meta, "r+b")
    erofs(open, meta, "ab")
    erofs(os.unlink, meta)
    erofs(os.rename, meta, root / "renamed.json")
    assert meta.read_bytes() == before
    listing = set(os.listdir(root))
    assert not {"new_file", "newdir", "renamed.json"} & listing
    assert "top_level_file" not in os.listdir(m.path)


# --------------------------------------------------------------------------
# (e) an HDF5 filter atlasfs does not decode


def test_unsupported_filter_fails_that_variable_only(tmp_path, mounts):
    path = tmp_path / "zstd.nc"
    rng = np.random.default_rng(5)
    good = rng.standard_normal((4, 6)).astype("f4")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("y", 4)
        ds.createDimension("x", 6)
        ds.createVariable("plain", "f4", ("y", "x"), zlib=True)[:] = good
        ds.createVariable("squeezed", "f4", ("y", "x"), compression="zstd")[:] = good * 2
    with h5py.File(path) as f:  # independent check that the file has the filter we mean
        assert "32015" in f["squeezed"]._filters or "zstd" in str(f["squeezed"]._filters).lower()

    m = mounts.mount([{"name": "z", "files": str(path)}])
    ds = xr.open_zarr(m / "z")
    np.testing.assert_array_equal(ds["plain"].values, good)
    with pytest.raises(Exception) as info:
        ds["squeezed"].values
    assert is_eio(info.value), repr(info.value)
    np.testing.assert_array_equal(xr.open_zarr(m / "z")["plain"].values, good)
    log = (m.cache_dir / "atlasfs.log").read_text()
    lines = [l for l in log.splitlines() if "squeezed" in l and str(path) in l]
    assert lines, log
    assert any("unsupported HDF5 filter" in l for l in lines), lines
