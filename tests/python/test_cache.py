"""The chunk cache, through real mounts and the CLI: the disk tier's bound, reuse across
remounts, damaged entries, `kill -9` in the middle of `warm`, concurrent readers, a read-only or
full cache dir, and two processes pointed at one cache dir.

Expected values come from netCDF4-python reading the original files (raw stored values, so a
chunk file's bytes can be compared exactly), never from atlasfs. Cache behaviour is observed
with `atlasfs cache stats --json` (the running mount's counters) and by looking at the entry
files under `<cache dir>/chunks/`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import Mount, daemon_pids, is_mounted, run_atlasfs, write_config

NY, NX = 40, 50
DAYS = 30
CHUNK_BYTES = NY * NX * 4  # one day of float32
ENTRY_BYTES = CHUNK_BYTES  # an entry file holds the chunk's bytes alone
HEADER_XATTR = "user.atlasfs.entry"  # the entry's 64-byte header: key, length, checksums
TOTAL_CHUNKS = 2 * DAYS + 2  # sst and time (one chunk a day), lat, lon


# --------------------------------------------------------------------------
# fixtures and helpers


def write_days(directory: Path, days: int, ny: int, nx: int, seed: int) -> list[Path]:
    """One NetCDF-4 file per day: time, lat, lon and a zlib-compressed sst with masked land."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for d in range(days):
        path = directory / f"day{d:03d}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("time", None)
            ds.createDimension("lat", ny)
            ds.createDimension("lon", nx)
            t = ds.createVariable("time", "f8", ("time",))
            t.units = "days since 2000-01-01"
            t.calendar = "standard"
            t[:] = [d]
            ds.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-80, 80, ny)
            ds.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 359, nx)
            v = ds.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                                  chunksizes=(1, ny, nx), fill_value=np.float32(-999.0))
            v.units = "K"
            data = (290 + 5 * rng.standard_normal((1, ny, nx))).astype("f4")
            mask = np.zeros_like(data, dtype=bool)
            mask[0, : ny // 4, : nx // 5] = True
            v[:] = np.ma.masked_array(data, mask=mask)
        paths.append(path)
    return paths


def raw_sst(paths) -> np.ndarray:
    """sst as stored (fill values in place of masked data), joined along time, from netCDF4."""
    out = []
    for p in sorted(paths):
        with netCDF4.Dataset(p) as ds:
            ds.set_auto_maskandscale(False)
            out.append(ds["sst"][:])
    return np.concatenate(out).astype("<f4")


def decoded_sst(paths) -> np.ndarray:
    """sst as xarray decodes it (NaN where masked), from netCDF4 via xarray."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(sorted(map(str, paths)), combine="by_coords") as ds:
            return ds.sst.values


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    return write_days(tmp_path_factory.mktemp("days"), DAYS, NY, NX, seed=4)


@pytest.fixture(scope="module")
def expected(days) -> dict:
    raw = raw_sst(days)
    return {
        "raw": raw,
        "decoded": decoded_sst(days),
        "chunks": {i: raw[i].tobytes() for i in range(DAYS)},
    }


def dataset(paths) -> dict:
    return {"name": "sst", "files": str(Path(paths[0]).parent / "*.nc"), "concat_dim": "time",
            "chunks": {"time": 1}}


def cache_config(path: Path, paths, cache_dir: Path, **cache) -> Path:
    """A mount config with a [cache] table (dir plus the given keys, e.g. max_size)."""
    write_config(path, [dataset(paths)])
    lines = ["", "[cache]", f"dir = {json.dumps(str(cache_dir))}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in cache.items()]
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")
    return path


def chunk_path(mount_root: Path, day: int) -> Path:
    return mount_root / "sst" / "sst" / "c" / str(day) / "0" / "0"


def entries(cache_dir: Path) -> list[Path]:
    root = cache_dir / "chunks"
    if not root.is_dir():
        return []
    return [p for shard in root.iterdir() if shard.name != "tmp" and shard.is_dir()
            for p in shard.iterdir() if p.is_file()]


def sst_entries(cache_dir: Path) -> list[Path]:
    """Entries holding one day of sst (recognised by their size)."""
    return [p for p in entries(cache_dir) if p.stat().st_size == ENTRY_BYTES]


def stats(bin_path, config) -> dict:
    res = run_atlasfs(bin_path, "cache", "stats", config, "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def mount_stats(bin_path, config, predicate, timeout=10.0) -> dict:
    """The mount's counters once ``predicate(counters)`` holds (stats.json is rewritten about
    once a second); the last counters seen otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(bin_path, config)
        m = s.get("mount")
        if m and predicate(m):
            return m
        if time.monotonic() > deadline:
            return m or {}
        time.sleep(0.2)


def read_sst(mount_root: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(str(mount_root / "sst"), consolidated=True, chunks=None).sst.values


class Mounts:
    """Mounts started with explicit arguments (log file, shared cache dirs), unmounted at the end."""

    def __init__(self, bin_path: str, base: Path):
        self.bin = bin_path
        self.base = base
        self.mounts: list[Mount] = []

    def mount(self, config: Path, cache_dir: Path, *, log: Path | None = None,
              expect_ok: bool = True):
        mp = self.base / f"mnt{len(self.mounts)}"
        mp.mkdir(parents=True, exist_ok=True)
        m = Mount(self.bin, config, mp, cache_dir)
        args = ["mount", config, mp]
        if log is not None:
            args += ["--log-file", log]
            m.log_path = log
        self.mounts.append(m)
        res = run_atlasfs(self.bin, *args, timeout=180)
        if expect_ok:
            assert res.returncode == 0 and is_mounted(mp), (
                f"mount failed ({res.returncode}): {res.stderr}\n{m.log_text()[-2000:]}")
            return m
        return m, res

    def cleanup(self):
        for m in reversed(self.mounts):
            m.unmount()


@pytest.fixture
def cmounts(atlasfs_bin, tmp_path):
    mgr = Mounts(atlasfs_bin, tmp_path / "mounts")
    yield mgr
    mgr.cleanup()


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts a tmpfs / bind mount)")


# --------------------------------------------------------------------------
# the bound


def test_bound_respected_after_warming_more_than_max_size(atlasfs_bin, tmp_path, days, expected,
                                                         cmounts):
    cache = tmp_path / "cache"
    max_size = 12 * ENTRY_BYTES  # room for 12 of the 30 days
    config = cache_config(tmp_path / "c.toml", days, cache, max_size=max_size)
    res = run_atlasfs(atlasfs_bin, "warm", config, "sst", timeout=120)
    assert res.returncode == 0, res.stderr
    on_disk = sum(p.stat().st_size for p in entries(cache))
    assert 0 < on_disk <= max_size, f"{on_disk} bytes on disk, max_size {max_size}"
    s = stats(atlasfs_bin, config)
    assert s["bytes"] == on_disk and s["max_size"] == max_size
    assert len(sst_entries(cache)) <= 12

    # Reading everything through a mount recomputes the evicted days and stays in bounds.
    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    for day in (0, DAYS // 2, DAYS - 1):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
    m.unmount()  # computed chunks still queued for the disk are written at unmount
    counters = stats(atlasfs_bin, config)["mount"]
    assert counters["finished"] and counters["cache"]["disk"]["evictions"] > 0, counters
    on_disk = sum(p.stat().st_size for p in entries(cache))
    assert on_disk <= max_size, f"{on_disk} bytes on disk after reading, max_size {max_size}"


def read_past_kernel_cache(path: Path) -> bytes:
    """The file's bytes, asking the daemon again rather than the kernel's page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def test_least_recently_used_entries_are_evicted_first(atlasfs_bin, tmp_path, days, expected,
                                                       cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache, max_size=6 * ENTRY_BYTES,
                          memory=0)
    m = cmounts.mount(config, cache)
    # Days 4, 3, 2, 1, 0 in that order (descending, so no read-ahead): day 4 is the least
    # recently used. Using it again (a disk hit: the memory tier is off) makes day 3 the least
    # recently used, and adding two more days evicts it, not day 4.
    for day in (4, 3, 2, 1, 0):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
    assert read_past_kernel_cache(chunk_path(m.path, 4)) == expected["chunks"][4]
    for day in (20, 10):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["evictions"] >= 1)
    assert counters["cache"]["disk"]["hits"] == 1, counters
    assert counters["cache"]["disk"]["evictions"] == 1, counters
    m.unmount()
    held = {p.read_bytes()[:CHUNK_BYTES] for p in sst_entries(cache)}
    assert len(held) == 6
    assert expected["chunks"][4] in held, "the recently used day 4 was evicted"
    assert expected["chunks"][3] not in held, "the least recently used day 3 was kept"


# --------------------------------------------------------------------------
# reuse across mounts


def test_remount_serves_cached_chunks_without_recomputing(atlasfs_bin, tmp_path, days, expected,
                                                          cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    first = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["computed"] >= DAYS)
    assert first["cache"]["computed"] >= DAYS, first
    m.unmount()
    last = stats(atlasfs_bin, config)
    assert last["mount"]["finished"] and not last["mount_running"]
    assert last["entries"] >= DAYS

    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    for day in range(DAYS):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
    again = mount_stats(atlasfs_bin, config,
                        lambda c: c["pid"] != first["pid"] and c["cache"]["disk"]["hits"] >= DAYS)
    assert again["pid"] != first["pid"]
    assert again["cache"]["computed"] == 0, again
    assert again["cache"]["disk"]["hits"] >= DAYS, again
    text = run_atlasfs(atlasfs_bin, "cache", "stats", config, timeout=60)
    assert text.returncode == 0 and "running" in text.stdout and "hits" in text.stdout, text.stdout


@pytest.mark.parametrize("memory,tier,decoded", [
    # a quarter for decoded inputs, an eighth (at most 64 MiB) for reused buffers: within the budget
    ("512MiB", (512 - 128 - 64) << 20, 128 << 20),
    ("1MiB", (1024 - 256 - 128) << 10, 64 << 20),  # decoded inputs keep at least 64 MiB
])
def test_memory_budget_is_shared_by_both_memory_tiers_and_reused_buffers(
        atlasfs_bin, tmp_path, days, expected, cmounts, memory, tier, decoded):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache, memory=memory)
    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    got = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["computed"] >= DAYS)["cache"]
    assert got["memory"]["capacity"] == tier, got
    assert got["decoded_memory"]["capacity"] == decoded, got
    assert got["memory"]["bytes"] <= tier, got
    text = run_atlasfs(atlasfs_bin, "cache", "stats", config, timeout=60)
    assert text.returncode == 0 and "decoded inputs in memory" in text.stdout, text.stdout


# --------------------------------------------------------------------------
# damaged entries


def damage(paths: list[Path]) -> None:
    """Flip a data byte of the first, truncate the second, flip a header byte of the third."""
    data = bytearray(paths[0].read_bytes())
    data[len(data) // 3] ^= 0x20
    paths[0].write_bytes(bytes(data))
    with open(paths[1], "r+b") as f:
        f.truncate(CHUNK_BYTES // 2)
    header = bytearray(os.getxattr(paths[2], HEADER_XATTR))
    assert len(header) == 64
    header[44] ^= 0x01  # inside the data checksum
    os.setxattr(paths[2], HEADER_XATTR, bytes(header))


def test_damaged_entries_are_detected_and_recomputed(atlasfs_bin, tmp_path, days, expected,
                                                     cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    assert run_atlasfs(atlasfs_bin, "warm", config, "sst", timeout=120).returncode == 0
    victims = sorted(sst_entries(cache))[:3]
    assert len(victims) == 3
    damage(victims)

    log = tmp_path / "daemon.log"
    m = cmounts.mount(config, cache, log=log)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    for day in range(DAYS):
        assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day], f"day {day}"
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["corrupt"] >= 3)
    assert counters["cache"]["disk"]["corrupt"] == 3, counters
    assert counters["cache"]["computed"] == 3, counters
    damaged_lines = [l for l in log.read_text().splitlines() if " is damaged (" in l]
    assert len(damaged_lines) == 3, log.read_text()[-3000:]
    m.unmount()

    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " 0 damaged" in res.stdout, res.stdout


def test_verify_reports_and_removes_damaged_entries(atlasfs_bin, tmp_path, days):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    assert run_atlasfs(atlasfs_bin, "warm", config, "sst", timeout=120).returncode == 0
    victims = sorted(sst_entries(cache))[:3]
    damage(victims)
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode != 0, res.stdout
    assert " 3 damaged" in res.stdout, res.stdout
    for v in victims:
        assert str(v) in res.stdout
        assert not v.exists(), f"{v} was not removed"
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode == 0 and " 0 damaged" in res.stdout, res.stdout
    # warm fills the gaps again
    res = run_atlasfs(atlasfs_bin, "warm", config, "sst", timeout=120)
    assert res.returncode == 0 and "3 computed" in res.stdout, res.stdout


# --------------------------------------------------------------------------
# kill -9


def test_kill_9_during_warm_then_mount_reads_correct_values(atlasfs_bin, tmp_path, cmounts):
    big = write_days(tmp_path / "big", 120, 200, 300, seed=8)
    raw = raw_sst(big)
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", big, cache)
    assert run_atlasfs(atlasfs_bin, "index", config, timeout=120).returncode == 0
    entry_bytes = 200 * 300 * 4

    proc = subprocess.Popen([atlasfs_bin, "warm", str(config), "sst", "--jobs", "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            done = [p for p in entries(cache) if p.stat().st_size == entry_bytes]
            if len(done) >= 10:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        rc = proc.wait()
    assert rc == -signal.SIGKILL, f"warm finished ({rc}) before it could be killed"
    written = len([p for p in entries(cache) if p.stat().st_size == entry_bytes])
    assert 0 < written < 120, written

    m = cmounts.mount(config, cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = xr.open_zarr(str(m.path / "sst"), consolidated=True, chunks=None,
                           mask_and_scale=False).sst.values
    np.testing.assert_array_equal(got, raw)
    counters = mount_stats(atlasfs_bin, config,
                           lambda c: c["cache"]["disk"]["hits"] + c["cache"]["computed"] >= 120)
    assert counters["cache"]["disk"]["hits"] >= written, counters
    assert counters["cache"]["disk"]["corrupt"] == 0, counters
    m.unmount()
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode == 0 and " 0 damaged" in res.stdout, res.stdout + res.stderr


def test_kill_9_of_a_caching_daemon_then_remount_reads_correct_values(atlasfs_bin, tmp_path,
                                                                        days, expected, cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    m = cmounts.mount(config, cache)
    stop = threading.Event()

    def reader():
        day = 0
        while not stop.is_set():
            try:
                chunk_path(m.path, day % DAYS).read_bytes()
            except OSError:
                return
            day += 1

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    for pid in daemon_pids(m.path):
        os.kill(pid, signal.SIGKILL)
    stop.set()
    t.join(timeout=30)
    m.unmount()  # the dead mount is cleaned up
    assert not is_mounted(m.path)

    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    m.unmount()
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=120)
    assert res.returncode == 0 and " 0 damaged" in res.stdout, res.stdout + res.stderr


# --------------------------------------------------------------------------
# concurrency


def _read_chunk_digests(args):
    root, order = args
    return [(day, hashlib.sha256(chunk_path(Path(root), day).read_bytes()).hexdigest())
            for day in order]


def test_concurrent_readers_get_correct_values(atlasfs_bin, tmp_path, days, expected, cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    m = cmounts.mount(config, cache)
    want = {day: hashlib.sha256(b).hexdigest() for day, b in expected["chunks"].items()}

    def same(_):  # every thread reads the same chunks in the same order
        return _read_chunk_digests((str(m.path), list(range(DAYS))))

    def different(i):  # each thread its own chunks, in its own order
        order = [d for d in range(DAYS) if d % 8 == i]
        random.Random(i).shuffle(order)
        return _read_chunk_digests((str(m.path), order))

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(same, range(8))) + list(pool.map(different, range(8)))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        orders = [list(range(DAYS)), list(reversed(range(DAYS)))] * 2
        results += pool.map(_read_chunk_digests, [(str(m.path), o) for o in orders])
    seen = 0
    for result in results:
        for day, digest in result:
            assert digest == want[day], f"day {day}: wrong bytes"
            seen += 1
    assert seen == 8 * DAYS + DAYS + 4 * DAYS

    # xarray in several processes at once, on a fresh mount reading from the disk tier (the
    # coordinates, not read above, are warmed first)
    m.unmount()
    assert run_atlasfs(atlasfs_bin, "warm", config, "/", timeout=120).returncode == 0
    m = cmounts.mount(config, cache)
    script = ("import sys, warnings, numpy as np, xarray as xr; warnings.simplefilter('ignore');"
              "v = xr.open_zarr(sys.argv[1], chunks=None).sst.values;"
              "np.save(sys.argv[2], v)")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(m.path / "sst"),
                               str(tmp_path / f"out{i}.npy")]) for i in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    for i in range(3):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), expected["decoded"])
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["hits"] >= DAYS)
    assert counters["cache"]["computed"] == 0, counters
    assert counters["cache"]["failed"] == 0, counters


def test_concurrent_first_reads_compute_each_chunk_once(atlasfs_bin, tmp_path, days, expected,
                                                        cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    m = cmounts.mount(config, cache)
    barrier = threading.Barrier(12)

    def hammer(i):
        barrier.wait()
        order = list(range(DAYS))
        random.Random(i).shuffle(order)
        return _read_chunk_digests((str(m.path), order))

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(hammer, range(12)))
    for result in results:
        for day, digest in result:
            assert digest == hashlib.sha256(expected["chunks"][day]).hexdigest(), f"day {day}"
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["computed"] >= DAYS)
    # Single flight: however many readers raced, each chunk was computed exactly once.
    assert counters["cache"]["computed"] == DAYS, counters


# --------------------------------------------------------------------------
# a cache dir that cannot be written


def test_read_only_cache_dir_degrades_to_uncached_reads(atlasfs_bin, tmp_path, days, expected,
                                                        cmounts):
    require_root()
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    # Half the days cached, then the directory turns read-only.
    res = run_atlasfs(atlasfs_bin, "warm", config, "sst/sst", "--shard", "0/2", timeout=120)
    assert res.returncode == 0, res.stderr
    cached_before = len(entries(cache))
    subprocess.run(["mount", "--bind", str(cache), str(cache)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(cache)], check=True)
        log = tmp_path / "daemon.log"
        m = cmounts.mount(config, cache, log=log)
        np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
        for day in range(DAYS):
            assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
        m.unmount()  # writes are deferred; at the latest they are tried at unmount
        text = log.read_text()
        assert "without caching them on disk" in text and "Read-only file system" in text, text
        assert len(entries(cache)) == cached_before
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_full_cache_disk_degrades_to_uncached_reads(atlasfs_bin, tmp_path, days, expected,
                                                    cmounts):
    require_root()
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(cache)], check=True)
    try:
        config = cache_config(tmp_path / "c.toml", days, cache)
        assert run_atlasfs(atlasfs_bin, "index", config, timeout=120).returncode == 0
        with open(cache / "filler", "wb") as f:  # another process fills the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        log = tmp_path / "daemon.log"
        m = cmounts.mount(config, cache, log=log)
        np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
        for day in range(DAYS):
            assert chunk_path(m.path, day).read_bytes() == expected["chunks"][day]
        m.unmount()  # writes are deferred; at the latest they are tried at unmount
        text = log.read_text()
        assert "No space left on device" in text and "serving chunks without" in text, text
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)


# --------------------------------------------------------------------------
# sharing a cache dir


# A stand-in for a mount daemon on its way out: its command line reads "<python> mount", it
# holds the cache dir's lock (and /dev/fuse when argv[2] says so) and lets go after argv[3] s.
LEAVING_DAEMON = """\
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
fuse = open("/dev/fuse", "rb") if sys.argv[2] == "fuse" else None
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def leaving_daemon(tmp_path: Path, cache: Path, fuse: bool, seconds: float) -> subprocess.Popen:
    (tmp_path / "mount").write_text(LEAVING_DAEMON)
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "mount", str(cache / "lock"), "fuse" if fuse else "-",
                             str(seconds)], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_mount_waits_for_an_unmounted_daemon_to_let_go_of_the_cache_dir(
        atlasfs_bin, tmp_path, days, expected, cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    leaving = leaving_daemon(tmp_path, cache, fuse=False, seconds=1.5)
    t = time.monotonic()
    m, res = cmounts.mount(config, cache, expect_ok=False)
    waited = time.monotonic() - t
    assert res.returncode == 0 and is_mounted(m.path), res.stderr
    assert f"waiting for the unmounted daemon (pid {leaving.pid})" in res.stderr, res.stderr
    assert leaving.wait(timeout=10) == 0 and waited >= 1.0, waited
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])


def test_a_mount_is_refused_at_once_while_the_holder_still_serves(atlasfs_bin, tmp_path, days,
                                                                    cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    serving = leaving_daemon(tmp_path, cache, fuse=True, seconds=30)
    try:
        t = time.monotonic()
        _, res = cmounts.mount(config, cache, expect_ok=False)
        assert res.returncode != 0 and time.monotonic() - t < 10
        assert "in use" in res.stderr and f"pid {serving.pid}" in res.stderr, res.stderr
        assert "waiting" not in res.stderr, res.stderr
    finally:
        serving.kill()
        serving.wait()


def test_a_second_process_on_a_mounted_cache_dir_is_refused(atlasfs_bin, tmp_path, days,
                                                            expected, cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    first = cmounts.mount(config, cache)
    [pid] = daemon_pids(first.path)

    _, res = cmounts.mount(config, cache, expect_ok=False)
    assert res.returncode != 0
    assert "in use" in res.stderr and f"pid {pid}" in res.stderr, res.stderr
    for verb in (["warm", config, "sst"], ["cache", "clear", config]):
        res = run_atlasfs(atlasfs_bin, *verb, timeout=60)
        assert res.returncode != 0, verb
        assert "in use" in res.stderr and f"pid {pid}" in res.stderr, res.stderr
    # verify still works beside the mount, read-only
    res = run_atlasfs(atlasfs_bin, "cache", "verify", config, timeout=60)
    assert res.returncode == 0 and "read-only pass" in res.stdout, res.stdout
    # and the first mount is unharmed
    np.testing.assert_array_equal(read_sst(first.path), expected["decoded"])
    first.unmount()


def test_warm_shards_share_a_cache_dir_and_a_mount_then_reuses_it(atlasfs_bin, tmp_path, days,
                                                                  expected, cmounts):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    assert run_atlasfs(atlasfs_bin, "index", config, timeout=120).returncode == 0
    procs = [subprocess.Popen([atlasfs_bin, "warm", str(config), "sst", "--shard", f"{k}/3"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    total = sum(int(out.split(": ")[1].split()[0]) for out, _ in outs)
    assert total == TOTAL_CHUNKS, [o for o, _ in outs]
    m = cmounts.mount(config, cache)
    np.testing.assert_array_equal(read_sst(m.path), expected["decoded"])
    counters = mount_stats(atlasfs_bin, config, lambda c: c["cache"]["disk"]["hits"] >= DAYS)
    assert counters["cache"]["computed"] == 0, counters


def test_clear_empties_the_cache(atlasfs_bin, tmp_path, days):
    cache = tmp_path / "cache"
    config = cache_config(tmp_path / "c.toml", days, cache)
    assert run_atlasfs(atlasfs_bin, "warm", config, "/", timeout=120).returncode == 0
    assert len(entries(cache)) == TOTAL_CHUNKS
    res = run_atlasfs(atlasfs_bin, "cache", "clear", config, timeout=60)
    assert res.returncode == 0 and f"removed {TOTAL_CHUNKS} entries" in res.stdout, res.stdout
    assert entries(cache) == []
    assert stats(atlasfs_bin, config)["entries"] == 0
    res = run_atlasfs(atlasfs_bin, "warm", config, "no/such/path", timeout=60)
    assert res.returncode != 0 and "no/such/path" in res.stderr, res.stderr
