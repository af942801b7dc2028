"""``[mount] open = "kernel"``: the kernel opens files without asking the daemon (no round
trip per open, as ML loaders opening thousands of sample files want). What it reads is still
what the sources hold: the values equal xarray's and netCDF4-python's reading of the original
files; pages the kernel keeps are served until a reload retires the file; a chunk the kernel
has no pages of is checked against its sources when read, and fails with EIO once they changed.
Expected values come from the files, never from atlasfs.
"""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from conftest import assert_same_dataset, open_mounted, run_atlasfs, write_config
from test_cache import (DAYS, chunk_path, cmounts, dataset, days, expected, mount_stats, read_sst,
                        sst_entries)
from test_refresh import DAY_BYTES, raw_sst, reference, reload, sst_dataset, write_day

__all__ = ["cmounts", "days", "expected"]  # fixtures shared with test_cache


def day_bytes(files, day: int) -> bytes:
    """Day ``day`` of sst as stored, from the files."""
    return raw_sst(files)[day * DAY_BYTES:(day + 1) * DAY_BYTES]


def rewrite_day(src, day: int):
    """Day ``day`` written again with other values (same shape and coordinates)."""
    path = write_day(src, day)
    import netCDF4

    with netCDF4.Dataset(path, "a") as ds:
        ds["sst"][:] = ds["sst"][:] + np.float32(10)
    return path


def test_kernel_opens_serve_the_sources_and_kept_pages_until_a_reload(tmp_path, mounts):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(3)]
    m = mounts.mount([sst_dataset(src, chunks={"time": 1})], mount={"open": "kernel"})
    assert "passthrough: off (the kernel opens files itself" in m.log_text()
    chunk = lambda day: m / "sst" / "sst" / "c" / str(day) / "0" / "0"  # noqa: E731

    old = {d: day_bytes(files, d) for d in range(3)}
    for d in (0, 1):
        assert chunk(d).read_bytes() == old[d], f"day {d}"
        assert chunk(d).read_bytes() == old[d], f"day {d}, read again"

    rewrite_day(src, 1)
    rewrite_day(src, 2)
    new = {d: day_bytes(files, d) for d in range(3)}
    assert new[1] != old[1] and new[2] != old[2]

    # Day 1's pages are the kernel's: served as they were, without asking the daemon (with
    # the default, the open would find the source changed and the read fail).
    assert chunk(1).read_bytes() == old[1]
    # Day 2 was never read: its read reaches the daemon, which finds the source changed.
    with pytest.raises(OSError) as failed:
        chunk(2).read_bytes()
    assert failed.value.errno == errno.EIO
    assert "sst_002.nc" in m.log_text()

    # A reload retires the changed chunks: every read now gives the new values.
    reload(m)
    for d in range(3):
        assert chunk(d).read_bytes() == new[d], f"day {d} after the reload"
    assert_same_dataset(reference(files), open_mounted(m / "sst"), "after the reload")


def test_kernel_opens_read_every_array_as_xarray_does(tmp_path, mounts):
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(4)]
    m = mounts.mount([sst_dataset(src, chunks={"time": 3})], mount={"open": "kernel"})
    for attempt in ("first read", "from the kernel's pages"):
        assert_same_dataset(reference(files), open_mounted(m / "sst"), attempt)


def test_cached_chunks_are_read_from_their_entries(atlasfs_bin, tmp_path, days, expected, cmounts):
    """After a remount the kernel has no pages: each read is served from the chunk's disk-cache
    entry, without computing, hashing or keeping the chunk in memory."""
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml", [dataset(days)], mount={"open": "kernel"})
    with open(config, "a") as f:
        f.write(f"\n[cache]\ndir = {json.dumps(str(cache))}\n")
    res = run_atlasfs(atlasfs_bin, "warm", config, "/", timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(sst_entries(cache)) == DAYS

    m = cmounts.mount(config, cache)
    for day in range(DAYS):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day], f"day {day}"
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["hits"] >= DAYS)
    disk = counters["cache"]["disk"]
    assert disk["hits"] >= DAYS and disk["passthrough"] == 0, counters
    assert counters["cache"]["computed"] == 0 and disk["corrupt"] == 0, counters
    # Nothing went through the daemon's chunk path: the memory tier was never consulted.
    assert counters["cache"]["memory"]["hits"] + counters["cache"]["memory"]["misses"] == 0, \
        counters


def test_a_file_held_open_across_a_reload_that_retires_it_fails_with_estale(tmp_path, mounts):
    """The kernel opened it, so the daemon cannot know which snapshot the reader opened: once
    a reload retired the file, a read the kernel asks for fails with ESTALE instead of mixing
    bytes of two snapshots; a new open reads the new bytes."""
    src = tmp_path / "src"
    files = [write_day(src, d) for d in range(2)]
    m = mounts.mount([sst_dataset(src, chunks={"time": 1})], mount={"open": "kernel"})
    chunk = m / "sst" / "sst" / "c" / "1" / "0" / "0"
    fd = os.open(chunk, os.O_RDONLY)
    try:
        assert os.pread(fd, DAY_BYTES, 0) == day_bytes(files, 1)
        rewrite_day(src, 1)
        reload(m)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the kernel forgets its pages
        with pytest.raises(OSError) as stale:
            os.pread(fd, DAY_BYTES, 0)
        assert stale.value.errno == errno.ESTALE
    finally:
        os.close(fd)
    assert chunk.read_bytes() == day_bytes(files, 1)
