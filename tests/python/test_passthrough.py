"""FUSE passthrough of disk-cache entries, through real mounts: a chunk whose entry is on disk
(and whose sources are unchanged) is handed to the kernel, which reads the entry's file
directly. Needs root (CAP_SYS_ADMIN) and kernel 6.9 or later; skipped otherwise.

Expected values come from netCDF4-python and xarray reading the original files, never from
atlasfs. Passthrough is observed through the mount's counters (`cache.disk.passthrough`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_atlasfs
from test_cache import (DAYS, ENTRY_BYTES, HEADER_XATTR, cache_config, chunk_path, cmounts,
                        days, entries, expected, mount_stats, read_sst, sst_entries)

__all__ = ["cmounts", "days", "expected"]  # fixtures shared with test_cache


def kernel_at_least(major: int, minor: int) -> bool:
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (major, minor)
    except (IndexError, ValueError):
        return False


@pytest.fixture(autouse=True)
def passthrough_possible():
    if os.geteuid() != 0:
        pytest.skip("passthrough needs CAP_SYS_ADMIN (root)")
    if not kernel_at_least(6, 9):
        pytest.skip("passthrough needs kernel 6.9 or later")


def warmed(atlasfs_bin, tmp_path, days, **cache):
    """A config whose cache dir holds every chunk."""
    cache_dir = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache_dir, **cache)
    res = run_atlasfs(atlasfs_bin, "warm", config, "/", timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(sst_entries(cache_dir)) == DAYS
    return config, cache_dir


def passthrough_log_line(log: Path) -> str:
    lines = [l for l in log.read_text().splitlines() if "passthrough: " in l]
    assert len(lines) == 1, log.read_text()[-3000:]
    return lines[0]


def test_warm_chunks_are_passed_through_and_read_the_original_values(atlasfs_bin, tmp_path,
                                                                     days, expected, cmounts):
    config, cache = warmed(atlasfs_bin, tmp_path, days)
    log = tmp_path / "daemon.log"
    m = cmounts.mount(config, cache, log=log)
    assert "passthrough: on" in passthrough_log_line(log)
    for day in range(DAYS):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day], f"day {day}"
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    counters = mount_stats(atlasfs_bin, config,
                           lambda c: c["cache"]["disk"]["passthrough"] >= 2 * DAYS)
    disk = counters["cache"]["disk"]
    assert disk["passthrough"] >= 2 * DAYS, counters
    assert disk["corrupt"] == 0 and counters["cache"]["computed"] == 0, counters
    # `warm` sealed every entry as it wrote it: none is hashed again before being handed out.
    assert disk["checks"] == 0, counters
    # Nothing went through the daemon's read path: the memory tier was never consulted.
    assert counters["cache"]["memory"]["hits"] + counters["cache"]["memory"]["misses"] == 0, \
        counters


def test_damaged_entries_are_never_passed_through(atlasfs_bin, tmp_path, days, expected,
                                                  cmounts):
    config, cache = warmed(atlasfs_bin, tmp_path, days)
    by_day = {}
    for p in sst_entries(cache):
        for day, chunk in expected["chunks"].items():
            if p.read_bytes() == chunk:
                by_day[day] = p
    assert len(by_day) == DAYS
    # Day 3: a flipped data byte; day 7: truncated; day 11: a flipped header byte; day 13: no
    # header at all (as an entry of the old format).
    data = bytearray(by_day[3].read_bytes())
    data[100] ^= 0x08
    by_day[3].write_bytes(bytes(data))
    os.truncate(by_day[7], ENTRY_BYTES - 4)
    header = bytearray(os.getxattr(by_day[11], HEADER_XATTR))
    header[50] ^= 0x01
    os.setxattr(by_day[11], HEADER_XATTR, bytes(header))
    os.removexattr(by_day[13], HEADER_XATTR)

    log = tmp_path / "daemon.log"
    m = cmounts.mount(config, cache, log=log)
    assert "passthrough: on" in passthrough_log_line(log)
    for day in range(DAYS):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day], f"day {day}"
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["computed"] >= 4)
    assert counters["cache"]["disk"]["corrupt"] == 4, counters
    assert counters["cache"]["computed"] == 4, counters
    assert counters["cache"]["disk"]["passthrough"] == DAYS - 4, counters
    # Only the changed entries lost their seals and were hashed; the others were trusted.
    assert counters["cache"]["disk"]["checks"] == 4, counters
    damaged = [l for l in log.read_text().splitlines() if " is damaged (" in l]
    assert len(damaged) == 4, log.read_text()[-3000:]
    m.unmount()
    for day in (3, 7, 11, 13):  # dropped, recomputed and written again
        assert by_day[day].read_bytes() == expected["chunks"][day]
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode == 0 and " 0 damaged" in res.stdout, res.stdout + res.stderr


def test_verify_hashes_every_entry_even_one_whose_seal_still_holds(atlasfs_bin, tmp_path, days):
    """A byte changed with the file's mtime put back exactly keeps the entry's seal (what a seal
    cannot see, see README), so `cache verify`, the full pass, must not rely on seals."""
    config, cache = warmed(atlasfs_bin, tmp_path, days)
    victim = sorted(sst_entries(cache))[0]
    st = os.stat(victim)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x10
    with open(victim, "r+b") as f:
        f.write(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(victim).st_mtime_ns == st.st_mtime_ns
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode != 0 and " 1 damaged" in res.stdout, res.stdout + res.stderr
    assert str(victim) in res.stdout and not victim.exists()


def test_an_entry_evicted_while_open_still_reads_correctly(atlasfs_bin, tmp_path, days,
                                                           expected, cmounts):
    cache = tmp_path / "cache"
    # No memory tier: computed chunks go to disk at once, and the disk holds three days.
    config = cache_config(tmp_path / "c.toml", days, cache, max_size=3 * ENTRY_BYTES, memory=0)
    m = cmounts.mount(config, cache)
    for day in (2, 1, 0):  # descending: no read-ahead
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
    f = open(chunk_path(m.path, 0), "rb")
    try:
        counters = mount_stats(atlasfs_bin, config,
                               lambda c: c["cache"]["disk"]["passthrough"] >= 1)
        assert counters["cache"]["disk"]["passthrough"] == 1, counters
        for day in (9, 8, 7):  # evicts days 2, 1 and 0
            assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
        counters = mount_stats(atlasfs_bin, config,
                               lambda c: c["cache"]["disk"]["evictions"] >= 3)
        assert counters["cache"]["disk"]["evictions"] >= 3, counters
        held = {p.read_bytes() for p in entries(cache)}
        assert expected["chunks"][0] not in held, "day 0 was not evicted"
        # The open file still reads its whole chunk; so does a second open of the same file
        # while the first is open (it shares the first one's backing file).
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        assert f.read() == expected["chunks"][0]
        assert chunk_path(m.path, 0).read_bytes() == expected["chunks"][0]
    finally:
        f.close()
    # Closed and evicted: served by computing it again. The kernel sends the release of a
    # closed file after close() returns, so an open that overtakes it still shares the old
    # backing file; the value is right either way, and an open after the release computes.
    deadline = time.monotonic() + 10
    while True:
        assert chunk_path(m.path, 0).read_bytes() == expected["chunks"][0]
        counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["computed"] >= 7,
                               timeout=1.5)
        if counters["cache"]["computed"] >= 7 or time.monotonic() > deadline:
            break
    assert counters["cache"]["computed"] == 7, counters


def test_a_file_open_through_the_daemon_keeps_later_opens_readable(atlasfs_bin, tmp_path, days,
                                                                   expected, cmounts):
    """The kernel refuses to mix passed-through and daemon-read files on one inode: while a
    file opened before its entry reached the disk is open, later opens are read the same way;
    once it is closed, they are passed through."""
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    m = cmounts.mount(config, cache)
    f = open(chunk_path(m.path, 5), "rb")
    try:
        assert f.read() == expected["chunks"][5]  # computed; its disk write is deferred
        counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["writes"] >= 1,
                               timeout=30)
        assert counters["cache"]["disk"]["writes"] >= 1, counters
        assert chunk_path(m.path, 5).read_bytes() == expected["chunks"][5]
        time.sleep(1.2)
        counters = mount_stats(atlasfs_bin, config, lambda c: True)
        assert counters["cache"]["disk"]["passthrough"] == 0, counters
    finally:
        f.close()
    # An open that overtakes the (asynchronous) release of the closed file is still read
    # through the daemon; one after it is passed through.
    deadline = time.monotonic() + 10
    while True:
        assert chunk_path(m.path, 5).read_bytes() == expected["chunks"][5]
        counters = mount_stats(atlasfs_bin, config,
                               lambda c: c["cache"]["disk"]["passthrough"] >= 1, timeout=1.5)
        if counters["cache"]["disk"]["passthrough"] >= 1 or time.monotonic() > deadline:
            break
    assert counters["cache"]["disk"]["passthrough"] == 1, counters
