"""A running mount picks up a new index without a restart: on SIGHUP and every
``[mount] refresh``, the daemon re-reads its config, re-indexes and swaps in a new
snapshot, while readers in flight keep the snapshot they opened.

Expected values come from xarray (``open_mfdataset``) and netCDF4-python reading
the original files, never from atlasfs. Each test waits for the daemon's
``reloaded:`` (or ``reload failed``) log line and then reads at once, so the
kernel's caches (24 h entry and attribute lifetimes, kept page caches) must
already have been invalidated by the swap.
"""

from __future__ import annotations

import json
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

from conftest import assert_same_dataset, daemon_pids, open_mounted, write_config

NY, NX = 40, 50
DAY_BYTES = NY * NX * 4  # one day of float32 sst
FILL = np.float32(-999.0)
COMMENT = "A long comment that makes every zarr.json span several pages. " * 120
RELOAD_TIMEOUT = 60


# --------------------------------------------------------------------------
# source files and references


def write_day(directory: Path, day: int, *, ny: int = NY) -> Path:
    """One NetCDF-4 file of day ``day``: time, lat, lon and a compressed sst."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sst_{day:03d}.nc"
    rng = np.random.default_rng(day)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", NX)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2001-01-01"
        t.calendar = "standard"
        t[:] = [day]
        ds.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-60, 60, ny)
        ds.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 355, NX)
        v = ds.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                              chunksizes=(1, ny, NX), fill_value=FILL)
        v.units = "K"
        v.comment = COMMENT
        v[:] = (285 + 4 * rng.standard_normal((1, ny, NX))).astype("f4")
    return path


def reference(files) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(
            sorted(map(str, files)), combine="by_coords", data_vars="minimal",
            coords="minimal", compat="override", join="exact",
        ) as ds:
            return ds.load()


def raw_sst(files) -> bytes:
    """sst as stored (little-endian float32, fill values in place), joined along time."""
    days = []
    for path in sorted(files):
        with netCDF4.Dataset(path) as ds:
            ds.set_auto_maskandscale(False)
            days.append(np.asarray(ds["sst"][:], dtype="<f4"))
    return np.concatenate(days).tobytes()


def time_length(files) -> int:
    total = 0
    for path in files:
        with netCDF4.Dataset(path) as ds:
            total += ds.dimensions["time"].size
    return total


# --------------------------------------------------------------------------
# the daemon


def daemon_pid(m) -> int:
    pids = daemon_pids(m.path)
    assert len(pids) == 1, f"expected one daemon serving {m.path}, found {pids}"
    return pids[0]


def log_count(m, pattern: str) -> int:
    return len(re.findall(pattern, m.log_text()))


def wait_for_log(m, pattern: str, count: int, timeout: float = RELOAD_TIMEOUT) -> str:
    """Waits until ``pattern`` occurs ``count`` times in the daemon's log; returns the log."""
    deadline = time.monotonic() + timeout
    while log_count(m, pattern) < count:
        if time.monotonic() > deadline:
            m.print_log_tail()
            raise AssertionError(f"no {count}th {pattern!r} in the log within {timeout} s")
        time.sleep(0.05)
    return m.log_text()


def reload(m, pattern: str = r"reloaded: ") -> str:
    """Sends SIGHUP and waits for the reload's log line; returns the last such line."""
    before = log_count(m, pattern)
    os.kill(daemon_pid(m), signal.SIGHUP)
    text = wait_for_log(m, pattern, before + 1)
    return [line for line in text.splitlines() if re.search(pattern, line)][-1]


def sst_dataset(src: Path, **extra) -> dict:
    return {"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time", **extra}


# --------------------------------------------------------------------------
# tests


def test_sighup_adds_new_granules(tmp_path, mounts):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(3)]
    m = mounts.mount([sst_dataset(src)])
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "before the reload")
    size_before = os.stat(m / "sst" / "zarr.json").st_size

    files += [write_day(src, d) for d in range(3, 12)]
    line = reload(m)
    assert "reloaded: 12 files (9 new, 0 removed, 0 skipped), 4 arrays" in line, line
    size_after = os.stat(m / "sst" / "zarr.json").st_size
    with open(m / "sst" / "zarr.json", "rb") as f:
        doc = f.read()
    assert json.loads(doc)["consolidated_metadata"]["metadata"]["sst"]["shape"] == [12, NY, NX]
    assert size_after == len(doc) > size_before, "the size grew with the consolidated metadata"
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "after the reload")
    assert is_alive(m)


def test_removed_files_and_datasets_leave_the_tree(tmp_path, mounts):
    src, other = tmp_path / "src", tmp_path / "other"
    files = [write_day(src, d) for d in range(4)]
    other_files = [write_day(other, d) for d in range(2)]
    datasets = [sst_dataset(src, chunks={"time": 1}),
                {"name": "other", "files": str(other / "*.nc"), "concat_dim": "time"}]
    m = mounts.mount(datasets)
    last_chunk = m / "sst" / "sst" / "c" / "3" / "0" / "0"
    assert os.stat(last_chunk).st_size == DAY_BYTES  # the kernel now holds its entry
    assert os.stat(m / "other" / "zarr.json").st_size > 0
    assert "other" in os.listdir(m.path)

    files[-1].unlink()
    write_config(m.config, datasets[:1], cache_dir=m.cache_dir)
    line = reload(m)
    assert "reloaded: 3 files (0 new, 3 removed, 0 skipped)" in line, line
    assert_same_dataset(reference(files[:-1]), open_mounted(m / "sst"), "after removing a file")
    with pytest.raises(FileNotFoundError):
        os.stat(last_chunk)
    with pytest.raises(FileNotFoundError):
        open(last_chunk, "rb")
    with pytest.raises(FileNotFoundError):
        os.stat(m / "other")
    with pytest.raises(FileNotFoundError):
        os.stat(m / "other" / "zarr.json")
    assert "other" not in os.listdir(m.path)
    assert other_files[0].exists()


def test_open_files_keep_reading_the_snapshot_they_opened(tmp_path, mounts):
    """A chunk whose bytes and size change with the reload and the dataset's zarr.json,
    opened before the swap: read partly before, or not at all, they still give their full
    old bytes; a new open gives the new ones."""
    src = tmp_path / "src"
    old_files = [write_day(src, d) for d in range(3)]
    # Chunks of 4 days, at most the array's length: 3 days before the reload, 4 after.
    m = mounts.mount([sst_dataset(src, chunks={"time": 4})])
    chunk = m / "sst" / "sst" / "c" / "0" / "0" / "0"
    doc = m / "sst" / "zarr.json"
    expected_old = raw_sst(old_files)

    fds = []

    def open_unbuffered(path):
        fd = os.open(path, os.O_RDONLY)
        fds.append(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no kernel read-ahead
        return fd

    try:
        chunk_started, chunk_unread = open_unbuffered(chunk), open_unbuffered(chunk)
        doc_started, doc_unread = open_unbuffered(doc), open_unbuffered(doc)
        doc_size = os.fstat(doc_started).st_size
        assert doc_size > 2 * 4096, "zarr.json spans several pages"
        assert os.fstat(chunk_started).st_size == len(expected_old)
        chunk_head = os.pread(chunk_started, 4096, 0)
        doc_head = os.pread(doc_started, 4096, 0)

        new_files = old_files + [write_day(src, 3)]
        reload(m)

        # New opens see the new snapshot at once.
        with open(chunk, "rb") as f:
            assert f.read() == raw_sst(new_files)
        assert os.stat(chunk).st_size == 4 * DAY_BYTES
        with open(doc, "rb") as f:
            new_doc = json.loads(f.read())
        assert new_doc["consolidated_metadata"]["metadata"]["sst"]["shape"] == [4, NY, NX]

        # Files opened before keep the old snapshot, whole.
        def read_all(fd, start=b""):
            out = bytearray(start)
            while chunk_bytes := os.pread(fd, 1 << 20, len(out)):
                out += chunk_bytes
            return bytes(out)

        assert read_all(chunk_started, chunk_head) == expected_old
        assert read_all(chunk_unread) == expected_old
        for fd, head in ((doc_started, doc_head), (doc_unread, b"")):
            old_doc = read_all(fd, head)
            assert len(old_doc) == doc_size
            shape = json.loads(old_doc)["consolidated_metadata"]["metadata"]["sst"]["shape"]
            assert shape == [time_length(old_files), NY, NX]
    finally:
        for fd in fds:
            os.close(fd)
    assert_same_dataset(reference(new_files), open_mounted(m / "sst"), "after the reload")


def test_refresh_interval_picks_up_new_files_without_a_signal(tmp_path, mounts):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(2)]
    m = mounts.mount([sst_dataset(src)], mount={"refresh": "1s"})
    assert "refreshing every 1s" in m.log_text()
    files.append(write_day(src, 2))
    wait_for_log(m, r"reloaded: 3 files \(1 new, 0 removed, 0 skipped\)", 1)
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "after the refresh")


@pytest.mark.parametrize("breakage", ["config", "dataset"])
def test_a_failing_reload_keeps_serving_the_previous_tree(tmp_path, mounts, breakage):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(3)]
    datasets = [sst_dataset(src)]
    m = mounts.mount(datasets)
    before = reference(files)
    if breakage == "config":
        write_day(src, 3)
        text = m.config.read_text()
        m.config.write_text(text + "\n[[dataset]]\nname = \"more\"\nfilez = \"*.nc\"\n")
        named = "filez"
    else:
        # A new granule whose grid disagrees with the others: the join cannot be built.
        bad = write_day(src, 3, ny=NY + 1)
        named = bad.name
    line = reload(m, r"ERROR reload failed")
    assert "still serving the previous tree" in line, line
    log = m.log_text()
    failure = log[log.rindex("reload failed"):]
    assert named in failure, failure
    assert_same_dataset(before, open_mounted(m / "sst"), "after the failed reload")
    assert is_alive(m)

    # Once the cause is gone, the next reload goes through.
    if breakage == "config":
        m.config.write_text(text)
        files.append(src / "sst_003.nc")
    else:
        bad.unlink()
        files.append(write_day(src, 4))
    line = reload(m)
    assert "reloaded: 4 files" in line, line
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "after the repair")


def test_unusable_new_files_are_skipped_and_the_rest_refreshes(tmp_path, mounts):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(2)]
    m = mounts.mount([sst_dataset(src)])
    files.append(write_day(src, 2))
    truncated = src / "sst_099.nc"
    data = write_day(tmp_path / "whole", 99).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage = src / "notes.nc"
    garbage.write_text("not a NetCDF file\n")
    line = reload(m)
    assert "reloaded: 3 files (1 new, 0 removed, 2 skipped)" in line, line
    log = m.log_text()
    assert f"skipped {truncated}" in log and f"skipped {garbage}" in log, log
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "after the reload")


def is_alive(m) -> bool:
    try:
        os.kill(daemon_pid(m), 0)
    except ProcessLookupError:
        return False
    return True
