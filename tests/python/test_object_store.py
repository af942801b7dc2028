"""Object storage: NetCDF granules and Zarr stores on S3, served through the mount.

Everything runs against a real S3 protocol server on loopback (moto, s3server.py), reached
through a fault-injecting proxy (faulty_proxy.py) that records every request, so the tests can
see how atlasfs reads and can make the store misbehave.  The configs name objects as
``files = "s3://bucket/prefix/*.nc"`` (or ``zarr = "s3://bucket/store.zarr"``) with a
``[dataset.storage]`` table naming the proxy as an ``http://`` endpoint; the fake credentials of
s3server.CREDENTIALS come from the standard AWS environment variables.

What is checked:

* fidelity: every single-file fixture, an aggregation along time and a ``**`` glob with a path
  pattern read exactly as xarray/netCDF4 read the local originals (the same comparisons as
  test_fidelity.py and test_aggregation.py);
* ``atlasfs index`` reports ``remote: N granules indexed, R requests, B bytes (r requests and b
  bytes per granule)``, with few requests per granule and far fewer bytes than the granules
  hold; a chunk read issues ranged GETs only, for about the chunk's bytes;
* transient faults (500, 503 SlowDown, connection resets, truncated bodies, delays) are retried
  and give the right bytes; persistent ones, a 403 and an object deleted after indexing fail
  that chunk with EIO, never partial data, with a daemon log line naming ``s3://bucket/key``
  and the chunk key, while cached chunks and other objects keep working;
* granules added to the prefix are indexed alone on the next ``atlasfs index`` and a new mount
  shows the longer time axis; a deleted granule leaves the tree;
* existing Zarr stores (v2 consolidated, v3 consolidated, v3 unconsolidated) re-exposed
  unchanged;
* anonymous access to a public bucket sends unsigned requests; credentials come from the
  environment (session token included) or from a profile file;
* the credentials appear nowhere: not in the trace-level daemon log, the CLI's output, the
  tree's metadata or the cache dir.

Expected values always come from xarray / netCDF4 reading the local originals.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
import warnings
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import assert_same_dataset, daemon_pids, is_eio, is_mounted, run_atlasfs, write_config
from fixtures import AGGREGATION_KINDS, SINGLE_FILE_KINDS
from s3server import CREDENTIALS, atlasfs_env, s3_url, storage_table
from test_aggregation import assert_same_joined, reference, time_length
from test_bad_input import wait_for
from test_fidelity import CASE_IDS, CASES, float32_packed, open_mounted, open_original

# A persistently failing chunk must fail (EIO) within this many seconds: retries are bounded.
READ_TIMEOUT = 120
# `atlasfs index` on remote granules: at most this many requests per granule.
MAX_REQUESTS_PER_GRANULE = 8
NO_READ_AHEAD = ("--read-ahead-chunks", "0")

REMOTE_LINE = re.compile(
    r"^remote: (\d+) granules indexed, (\d+) requests, (\d+) bytes "
    r"\((\d+(?:\.\d+)?) requests and (\d+) bytes per granule\)$", re.M)


# --------------------------------------------------------------------------
# helpers


def load_zarr(path, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), chunks=None, **kw) as ds:
            return ds.load()


def remote_report(out: str) -> dict:
    """The ``remote:`` line of `atlasfs index`, parsed; exactly one is required."""
    found = REMOTE_LINE.findall(out)
    assert len(found) == 1, f"expected one `remote: …` line, got {len(found)}:\n{out}"
    g, r, b, rpg, bpg = found[0]
    return {"granules": int(g), "requests": int(r), "bytes": int(b),
            "requests_per_granule": float(rpg), "bytes_per_granule": int(bpg)}


def index_counts(out: str) -> tuple[int, int]:
    """(files read now, files unchanged) from the summary line of `atlasfs index`."""
    m = re.search(r"\((\d+) read now, (\d+) unchanged", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def read_strict(path) -> tuple[bytes, OSError | None]:
    """Reads a whole file with os.read; returns (bytes read, the OSError that stopped it or
    None).  Bytes read before an error are returned too, so a test can tell partial data."""
    got = bytearray()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        return bytes(got), e
    try:
        while True:
            try:
                block = os.read(fd, 1 << 20)
            except OSError as e:
                return bytes(got), e
            if not block:
                return bytes(got), None
            got += block
    finally:
        os.close(fd)


def read_in_thread(path) -> threading.Thread:
    """Starts read_strict(path) in a daemon thread; ``thread.result`` holds its return value."""
    def run():
        t.result = read_strict(path)

    t = threading.Thread(target=run, daemon=True)
    t.result = None
    t.start()
    return t


def read_within(path, timeout=READ_TIMEOUT) -> tuple[bytes, OSError | None]:
    t = read_in_thread(path)
    t.join(timeout)
    assert not t.is_alive(), f"reading {path} did not finish within {timeout} s"
    return t.result


def assert_eio_without_data(path, timeout=READ_TIMEOUT) -> None:
    data, err = read_within(path, timeout)
    assert err is not None, f"{path}: read {len(data)} bytes and no error"
    assert err.errno == errno.EIO, f"{path}: {err!r}"
    assert data == b"", f"{path}: {len(data)} bytes (partial data) before {err!r}"


def assert_logged(mount, *needles, timeout=10.0) -> None:
    """Some line of the daemon log contains every one of ``needles``."""
    def found():
        return [line for line in mount.log_text().splitlines()
                if all(n in line for n in needles)]
    assert wait_for(found, timeout), (
        f"no daemon log line names all of {needles}:\n{mount.log_text()[-4000:]}")


def write_granule(path, *, t0: int, nt: int, ny: int, nx: int, seed: int) -> None:
    """One NetCDF-4 granule: v(time, y, x) float32, chunked one time step per chunk, not
    compressed (so chunk bytes and sizes are predictable), times ``t0 …`` days."""
    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "object storage granule"
        ds.Conventions = "CF-1.8"
        ds.createDimension("time", None)
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2001-01-01"
        t.calendar = "standard"
        t.standard_name = "time"
        y = ds.createVariable("y", "f4", ("y",))
        y.units = "m"
        y[:] = np.arange(ny, dtype="f4") * 1000
        x = ds.createVariable("x", "f4", ("x",))
        x.units = "m"
        x[:] = np.arange(nx, dtype="f4") * 1000
        v = ds.createVariable("v", "f4", ("time", "y", "x"), chunksizes=(1, ny, nx),
                              fill_value=np.float32(-9999.0))
        v.units = "K"
        v.long_name = "granule values"
        t[:] = t0 + np.arange(nt, dtype="f8")
        v[:] = (250 + 50 * rng.random((nt, ny, nx))).astype("f4")


def first_time(path):
    """The first time of a file, decoded (netCDF4 + cftime)."""
    with netCDF4.Dataset(path) as ds:
        t = ds["time"]
        return cftime.num2date(t[0], t.units, getattr(t, "calendar", "standard"))


def raw_step(path, step: int) -> bytes:
    """The stored values of v at one time step of a granule, as a served chunk holds them
    (little-endian, C order), read with netCDF4."""
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        return np.ascontiguousarray(ds["v"][step], dtype="<f4").tobytes()


# --------------------------------------------------------------------------
# module fixtures: environment, the core fixtures in a bucket, their mount


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return atlasfs_env(config_dir=tmp_path_factory.mktemp("aws"))


@pytest.fixture(scope="module")
def storage(s3_proxy_session):
    return storage_table(s3_proxy_session.endpoint)


@pytest.fixture(scope="module")
def core_bucket(s3_server, fixture_files):
    """single/<kind>.nc, <agg kind>/<file>.nc, and tree/<agg kind>/part<i>/<file>.nc."""
    bucket = s3_server.create_bucket("core")
    for kind in SINGLE_FILE_KINDS:
        s3_server.upload_file(bucket, f"single/{kind}.nc", fixture_files[kind])
    for kind in AGGREGATION_KINDS:
        for i, path in enumerate(sorted(fixture_files[kind])):
            name = os.path.basename(path)
            s3_server.upload_file(bucket, f"{kind}/{name}", path)
            s3_server.upload_file(bucket, f"tree/{kind}/part{i}/{name}", path)
    return bucket


TREE_PATTERN = "{set}/{part}/{name}.nc"


@pytest.fixture(scope="module")
def core_mount(module_mounts, core_bucket, storage, env):
    datasets = [{"name": kind, "files": s3_url(core_bucket, f"single/{kind}.nc"),
                 "storage": storage} for kind in SINGLE_FILE_KINDS]
    datasets += [{"name": kind, "files": s3_url(core_bucket, f"{kind}/*.nc"),
                  "concat_dim": "time", "storage": storage} for kind in AGGREGATION_KINDS]
    datasets.append({"name": "tree", "files": s3_url(core_bucket, "tree/**/*.nc"),
                     "pattern": TREE_PATTERN, "groups": ["set"], "concat_dim": "time",
                     "storage": storage})
    return module_mounts.mount(datasets, env=env)


# --------------------------------------------------------------------------
# fidelity


@pytest.mark.parametrize("mode", ["decoded", "decode_cf_false"])
@pytest.mark.parametrize("kind,group", CASES, ids=CASE_IDS)
def test_s3_granule_equals_local_original(core_mount, fixture_files, kind, group, mode):
    kw = {"decode_cf": False} if mode == "decode_cf_false" else {}
    path = fixture_files[kind]
    orig = open_original(path, group, **kw)
    got = open_mounted(core_mount / kind, group, **kw)
    width_ok = float32_packed(path, group) if mode == "decoded" else set()
    assert_same_dataset(orig, got, f"s3 {kind}/{group} {mode}", float_width_ok=width_ok)


@pytest.mark.parametrize("kind", AGGREGATION_KINDS)
def test_s3_aggregation_equals_open_mfdataset(core_mount, fixture_files, kind):
    ref = reference(fixture_files[kind])
    got = load_zarr(core_mount / kind, consolidated=True)
    assert_same_joined(ref, got, f"s3 {kind}")
    assert got.sizes["time"] == sum(time_length(f) for f in fixture_files[kind])


def test_s3_recursive_glob_with_pattern_and_groups(core_mount, fixture_files):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = xr.open_datatree(str(core_mount / "tree"), engine="zarr")
    try:
        assert set(dt.children) == set(AGGREGATION_KINDS)
    finally:
        dt.close()
    for kind in AGGREGATION_KINDS:
        got = load_zarr(core_mount / "tree" / kind)
        assert_same_joined(reference(fixture_files[kind]), got, f"s3 tree/{kind}")


# --------------------------------------------------------------------------
# request economy: the index report, ranged reads


LARGE = {"granules": 3, "nt": 4, "ny": 768, "nx": 512}  # 1.5 MiB per step, 6 MiB per granule


@pytest.fixture(scope="module")
def large(s3_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("large")
    bucket = s3_server.create_bucket("large")
    files, keys = [], []
    for g in range(LARGE["granules"]):
        path = d / f"large_{g}.nc"
        write_granule(path, t0=g * LARGE["nt"], nt=LARGE["nt"], ny=LARGE["ny"], nx=LARGE["nx"],
                      seed=100 + g)
        keys.append(s3_server.upload_file(bucket, f"granules/large_{g}.nc", path))
        files.append(str(path))
    return {"bucket": bucket, "files": files, "keys": keys,
            "sizes": [os.path.getsize(f) for f in files]}


def large_entry(large, endpoint) -> dict:
    return {"name": "large", "files": s3_url(large["bucket"], "granules/*.nc"),
            "concat_dim": "time", "chunks": {"time": 1}, "storage": storage_table(endpoint)}


def test_index_reports_remote_requests_and_bytes(atlasfs_bin, large, s3_proxy, tmp_path, env):
    config = write_config(tmp_path / "c.toml", [large_entry(large, s3_proxy.endpoint)],
                          cache_dir=tmp_path / "cache")
    t0 = time.monotonic()
    res = run_atlasfs(atlasfs_bin, "index", config, env=env, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert index_counts(res.stdout) == (LARGE["granules"], 0)
    rep = remote_report(res.stdout)
    n = LARGE["granules"]
    assert rep["granules"] == n, rep
    assert n <= rep["requests"] <= MAX_REQUESTS_PER_GRANULE * n, rep
    assert rep["requests_per_granule"] == pytest.approx(rep["requests"] / n, abs=0.01), rep
    assert abs(rep["bytes_per_granule"] - rep["bytes"] / n) <= 1, rep
    total = sum(large["sizes"])
    assert rep["bytes"] < total / 3, f"indexing read {rep['bytes']} of {total} bytes"

    # what the store saw agrees with the report
    seen = s3_proxy.requests(bucket=large["bucket"], since=t0)
    on_granules = [r for r in seen if r.key in large["keys"]]
    gets = [r for r in on_granules if r.method == "GET"]
    assert gets, "no GET of any granule"
    assert all(r.ranged for r in gets), f"whole-object GETs while indexing: {gets}"
    assert len(gets) <= rep["requests"] <= len(seen), (rep, seen)
    got_bytes = sum(r.body_bytes for r in gets)
    assert got_bytes <= rep["bytes"] <= sum(r.body_bytes for r in seen), (rep, got_bytes)
    assert got_bytes < total / 3


@pytest.fixture(scope="module")
def large_mount(module_mounts, large, s3_proxy_session, env):
    return module_mounts.mount([large_entry(large, s3_proxy_session.endpoint)], env=env,
                               args=NO_READ_AHEAD)


def test_large_granules_equal_open_mfdataset(large_mount, large):
    ref = reference(large["files"])
    got = load_zarr(large_mount / "large", consolidated=True)
    assert_same_dataset(ref, got, "s3 large")


def test_chunk_read_issues_ranged_gets_for_its_bytes_only(mounts, large, s3_proxy, env):
    # A mount of its own: its cache holds no chunk yet.
    fresh = mounts.mount([large_entry(large, s3_proxy.endpoint)], env=env, args=NO_READ_AHEAD)
    g, step = 1, 2
    t = g * LARGE["nt"] + step
    chunk = fresh / "large" / "v" / "c" / str(t) / "0" / "0"
    expected = raw_step(large["files"][g], step)
    assert os.stat(chunk).st_size == len(expected)
    t0 = time.monotonic()
    data, err = read_within(chunk)
    assert err is None and data == expected
    reqs = [r for r in s3_proxy.requests(bucket=large["bucket"], since=t0) if r.key]
    gets = [r for r in reqs if r.method == "GET"]
    assert gets, "the chunk read reached no object"
    assert all(r.ranged for r in gets), f"whole-object GETs: {gets}"
    assert {r.key for r in reqs} == {large["keys"][g]}, reqs
    fetched = sum(r.body_bytes for r in gets)
    assert len(expected) <= fetched < large["sizes"][g] / 2, (fetched, len(expected))


# --------------------------------------------------------------------------
# faults


FAULTS = {"granules": 14, "nt": 4, "ny": 128, "nx": 256}  # 128 KiB per chunk


@pytest.fixture(scope="module")
def faults(s3_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    bucket = s3_server.create_bucket("faults")
    files, keys = [], []
    for g in range(FAULTS["granules"]):
        path = d / f"g{g:02d}.nc"
        write_granule(path, t0=g * FAULTS["nt"], nt=FAULTS["nt"], ny=FAULTS["ny"],
                      nx=FAULTS["nx"], seed=200 + g)
        keys.append(s3_server.upload_file(bucket, f"faults/g{g:02d}.nc", path))
        files.append(str(path))
    return {"bucket": bucket, "files": files, "keys": keys}


@pytest.fixture(scope="module")
def fault_mount(module_mounts, faults, s3_proxy_session, env):
    m = module_mounts.mount(
        [{"name": "faults", "files": s3_url(faults["bucket"], "faults/*.nc"),
          "concat_dim": "time", "chunks": {"time": 1},
          "storage": storage_table(s3_proxy_session.endpoint)}],
        env=env, args=NO_READ_AHEAD + ("--threads", "8"))
    # opened once, before any fault: its coordinates are read (and cached) now
    m.ds = xr.open_zarr(str(m / "faults"), consolidated=True, chunks=None)
    assert m.ds.v.encoding["chunks"] == (1, FAULTS["ny"], FAULTS["nx"])
    return m


def fault_chunk(mount, g: int, step: int) -> Path:
    return mount / "faults" / "v" / "c" / str(g * FAULTS["nt"] + step) / "0" / "0"


def chunk_key(g: int, step: int) -> str:
    return f"c/{g * FAULTS['nt'] + step}/0/0"


def assert_chunk_reads(mount, faults, g: int, step: int) -> None:
    data, err = read_within(fault_chunk(mount, g, step))
    assert err is None, f"granule {g} step {step}: {err!r}"
    assert data == raw_step(faults["files"][g], step), f"granule {g} step {step}: wrong bytes"


# each case: the faults, applied in turn to the ranged GETs of one granule's object
TRANSIENT = {
    "500": [("error", {"status": 500})] * 2,
    "503_slowdown": [("error", {"status": 503})] * 2,
    "reset": [("reset", {})] * 2,
    "truncated_body": [("truncate", {"keep": 0.5})] * 2,
    "delay": [("delay", {"seconds": 1.0})],  # slow, not failed: one request
    "mixed": [("error", {"status": 503}), ("reset", {}), ("truncate", {"keep": 0.25}),
              ("delay", {"seconds": 0.5})],
}
TRANSIENT_GRANULE = {case: 1 + i for i, case in enumerate(TRANSIENT)}  # granules 1..6


@pytest.mark.parametrize("case", list(TRANSIENT))
def test_transient_faults_are_retried(fault_mount, faults, s3_proxy, case):
    g = TRANSIENT_GRANULE[case]
    key = faults["keys"][g]
    applied = [s3_proxy.inject(kind, times=1, method="GET", ranged=True,
                               bucket=faults["bucket"], key=key, **kw)
               for kind, kw in TRANSIENT[case]]
    t0 = time.monotonic()
    assert_chunk_reads(fault_mount, faults, g, 3)
    assert [f.applied for f in applied] == [1] * len(applied), (
        "a fault was never applied: the chunk was not read from its object")
    gets = s3_proxy.requests(bucket=faults["bucket"], key=key, method="GET", since=t0)
    assert len(gets) > sum(kind != "delay" for kind, _ in TRANSIENT[case]), gets
    assert all(r.ranged for r in gets), gets
    # the same object's other chunks are right too, and the daemon is unharmed
    assert_chunk_reads(fault_mount, faults, g, 1)
    assert is_mounted(fault_mount.path)


PERSISTENT = {  # granule -> fault
    7: ("error", {"status": 500}),
    8: ("error", {"status": 503}),
    9: ("reset", {}),
    10: ("truncate", {"keep": 0.5}),
}


def test_persistent_faults_fail_those_chunks_with_eio_only(fault_mount, faults, s3_proxy):
    m = fault_mount
    for g in PERSISTENT:  # one chunk of each object cached before the store fails
        assert_chunk_reads(m, faults, g, 0)
    injected = {g: s3_proxy.inject(kind, times=None, method="GET", ranged=True,
                                   bucket=faults["bucket"], key=faults["keys"][g], **kw)
                for g, (kind, kw) in PERSISTENT.items()}
    readers = {g: read_in_thread(fault_chunk(m, g, 3)) for g in PERSISTENT}
    # meanwhile, cached chunks of the failing objects and other objects' chunks read fine
    for g in PERSISTENT:
        assert_chunk_reads(m, faults, g, 0)
    assert_chunk_reads(m, faults, 0, 3)
    assert_chunk_reads(m, faults, 13, 2)
    deadline = time.monotonic() + READ_TIMEOUT
    for g, t in readers.items():
        t.join(max(0.0, deadline - time.monotonic()))
        assert not t.is_alive(), f"granule {g}: the read did not fail within {READ_TIMEOUT} s"
        data, err = t.result
        kind = PERSISTENT[g]
        assert err is not None and err.errno == errno.EIO, f"{kind}: {err!r}, {len(data)} bytes"
        assert data == b"", f"{kind}: {len(data)} bytes of partial data before the error"
        assert injected[g].applied >= 2, f"{kind}: not retried ({injected[g].applied} request)"
    for g in PERSISTENT:
        assert_logged(m, s3_url(faults["bucket"], faults["keys"][g]), chunk_key(g, 3))
    assert is_mounted(m.path) and daemon_pids(m.path)

    # the store recovers: the failed chunks were not cached as failures
    s3_proxy.clear_faults()
    for g in PERSISTENT:
        assert_chunk_reads(m, faults, g, 3)


def test_access_denied_fails_with_eio_naming_the_object(fault_mount, faults, s3_proxy):
    g = 11
    fault = s3_proxy.inject("error", status=403, times=None, method="GET", ranged=True,
                            bucket=faults["bucket"], key=faults["keys"][g])
    t0 = time.monotonic()
    assert_eio_without_data(fault_chunk(fault_mount, g, 3))
    assert fault.applied >= 1
    assert fault.applied <= 2, f"403 is not worth retrying: {fault.applied} requests"
    assert time.monotonic() - t0 < 10
    with pytest.raises(Exception) as info:  # through xarray + zarr-python too
        fault_mount.ds.v.isel(time=g * FAULTS["nt"] + 2).values
    assert is_eio(info.value), repr(info.value)
    assert_logged(fault_mount, s3_url(faults["bucket"], faults["keys"][g]), chunk_key(g, 3))
    assert_chunk_reads(fault_mount, faults, 13, 3)


def test_object_deleted_after_indexing_fails_with_eio(fault_mount, faults, s3_server):
    g = 12
    assert_chunk_reads(fault_mount, faults, g, 0)
    s3_server.delete(faults["bucket"], faults["keys"][g])
    assert_eio_without_data(fault_chunk(fault_mount, g, 3), timeout=60)
    with pytest.raises(Exception) as info:
        fault_mount.ds.v.isel(time=g * FAULTS["nt"] + 2).values
    assert is_eio(info.value), repr(info.value)
    assert_logged(fault_mount, s3_url(faults["bucket"], faults["keys"][g]), chunk_key(g, 3))
    # other objects keep working, through xarray as well
    assert_chunk_reads(fault_mount, faults, 0, 0)
    with netCDF4.Dataset(faults["files"][0]) as ds:
        want = ds["v"][1]
    np.testing.assert_array_equal(fault_mount.ds.v.isel(time=1).values, want)
    assert is_mounted(fault_mount.path) and daemon_pids(fault_mount.path)


# --------------------------------------------------------------------------
# a prefix that gains and loses granules


def test_new_granules_are_indexed_alone_and_deleted_ones_leave(
        atlasfs_bin, mounts, s3_server, s3_proxy, fixture_files, tmp_path, env):
    files = sorted(fixture_files["agg_standard"])
    assert len(files) == 6
    bucket = s3_server.create_bucket("append")
    keys = [f"sst/{os.path.basename(f)}" for f in files]
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml", [{
        "name": "sst", "files": s3_url(bucket, "sst/*.nc"), "concat_dim": "time",
        "storage": storage_table(s3_proxy.endpoint)}], cache_dir=cache)

    def index():
        res = run_atlasfs(atlasfs_bin, "index", config, env=env, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def mounted_equals(members):
        m = mounts.mount_config(config, cache, env=env)
        try:
            got = load_zarr(m / "sst", consolidated=True)
            assert_same_joined(reference(members), got, f"{len(members)} granules")
            assert got.sizes["time"] == sum(time_length(f) for f in members)
        finally:
            m.unmount()

    for f, k in zip(files[:4], keys[:4]):
        s3_server.upload_file(bucket, k, f)
    out = index()
    assert index_counts(out) == (4, 0)
    assert remote_report(out)["granules"] == 4
    mounted_equals(files[:4])

    for f, k in zip(files[4:], keys[4:]):
        s3_server.upload_file(bucket, k, f)
    t0 = time.monotonic()
    out = index()
    assert index_counts(out) == (2, 4), out
    assert remote_report(out)["granules"] == 2
    reread = {r.key for r in s3_proxy.requests(bucket=bucket, method="GET", since=t0)
              if r.key in keys[:4]}
    assert not reread, f"unchanged granules read again: {sorted(reread)}"
    mounted_equals(files)

    gone = 2
    s3_server.delete(bucket, keys[gone])
    out = index()
    assert re.search(r"^5 files", out, re.M), out
    assert index_counts(out) == (0, 5), out
    remaining = files[:gone] + files[gone + 1:]
    mounted_equals(remaining)


def test_sighup_picks_up_new_granules_without_a_remount(mounts, s3_server, s3_proxy,
                                                       fixture_files, tmp_path, env):
    """A running mount re-lists the bucket on SIGHUP: granules uploaded since it mounted join
    the tree, and only they are read."""
    from test_refresh import reload
    files = sorted(fixture_files["agg_standard"])
    bucket = s3_server.create_bucket("reload")
    keys = [f"sst/{os.path.basename(f)}" for f in files]
    for f, k in zip(files[:3], keys[:3]):
        s3_server.upload_file(bucket, k, f)
    m = mounts.mount([{"name": "sst", "files": s3_url(bucket, "sst/*.nc"), "concat_dim": "time",
                       "storage": storage_table(s3_proxy.endpoint)}], env=env)
    assert load_zarr(m / "sst", consolidated=True).sizes["time"] == \
        sum(time_length(f) for f in files[:3])
    for f, k in zip(files[3:], keys[3:]):
        s3_server.upload_file(bucket, k, f)
    t0 = time.monotonic()
    line = reload(m)
    assert "(3 new, 0 removed, 0 skipped)" in line, line
    got = load_zarr(m / "sst", consolidated=True)
    assert_same_joined(reference(files), got, "after SIGHUP")
    index_gets = {r.key for r in s3_proxy.requests(bucket=bucket, method="GET", since=t0)
                  if r.key in keys[:3] and r.range and r.range.startswith("bytes=0-")}
    assert not index_gets, f"unchanged granules indexed again: {sorted(index_gets)}"


def test_the_example_config_works(atlasfs_bin, s3_server, s3_proxy, fixture_files, tmp_path,
                                  env):
    """mount-configs/granules-s3.toml is documentation: with its bucket and endpoint pointed
    at the test server, it indexes and builds the tree its comments describe."""
    import tomllib
    from conftest import REPO
    text = (REPO / "mount-configs" / "granules-s3.toml").read_text()
    doc = tomllib.loads(text)
    url = doc["dataset"][0]["files"]
    bucket = s3_server.create_bucket("example")
    files = sorted(fixture_files["agg_standard"])
    for i, f in enumerate(files):
        s3_server.upload_file(bucket, f"sst/{2000 + i % 2}/{os.path.basename(f)}", f)
    text = text.replace(url.split("/")[2], bucket)
    text = text.replace(doc["dataset"][0]["storage"]["endpoint"], s3_proxy.endpoint)
    text = text.replace(doc["cache"]["dir"], str(tmp_path / "cache"))
    config = tmp_path / "granules-s3.toml"
    config.write_text(text)
    res = run_atlasfs(atlasfs_bin, "tree", config, env=env, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    total = sum(time_length(f) for f in files)
    assert re.search(rf"\bsst\b.*\b{total}\b", res.stdout), res.stdout


def test_https_granule_list(mounts, s3_server, s3_proxy, fixture_files, tmp_path):
    """Plain HTTP(S) has no listing: `files` names a text file of granule URLs, read with
    ranged GETs and no credentials."""
    bucket = s3_server.create_bucket("http", public=True)
    files = sorted(fixture_files["agg_standard"])
    urls = []
    for f in files:
        key = f"granules/{os.path.basename(f)}"
        s3_server.upload_file(bucket, key, f)
        urls.append(f"{s3_proxy.endpoint}/{bucket}/{key}")
    listing = tmp_path / "granules.txt"
    listing.write_text("# one granule a line\n" + "\n".join(reversed(urls)) + "\n")
    t0 = time.monotonic()
    m = mounts.mount([{"name": "sst", "files": str(listing), "concat_dim": "time"}],
                     env=atlasfs_env(credentials=False, config_dir=tmp_path / "aws"))
    got = load_zarr(m / "sst", consolidated=True)
    assert_same_joined(reference(files), got, "granule list")
    reqs = s3_proxy.requests(bucket=bucket, since=t0)
    assert not [r for r in reqs if r.signed], "plain HTTP requests are never signed"
    gets = [r for r in reqs if r.method == "GET"]
    assert gets and all(r.ranged for r in gets), gets


def test_a_granule_list_naming_a_missing_object_is_a_clear_error(atlasfs_bin, s3_server,
                                                                 s3_proxy, tmp_path):
    bucket = s3_server.create_bucket("http-missing", public=True)
    listing = tmp_path / "granules.txt"
    listing.write_text(f"{s3_proxy.endpoint}/{bucket}/nothing-here.nc\n")
    config = write_config(tmp_path / "c.toml", [{"name": "x", "files": str(listing)}],
                          cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config,
                      env=atlasfs_env(credentials=False, config_dir=tmp_path / "aws"))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert f"{bucket}/nothing-here.nc" in out and "gone" in out, out


# --------------------------------------------------------------------------
# existing Zarr stores


ZARR_STORES = {  # name -> (zarr_format, consolidated)
    "v2_consolidated": (2, True),
    "v3_consolidated": (3, True),
    "v3_unconsolidated": (3, False),
}


def zarr_source() -> tuple[xr.Dataset, dict]:
    rng = np.random.default_rng(31)
    nt, ny, nx = 10, 6, 8
    t2m = (280 + 10 * rng.standard_normal((nt, ny, nx))).astype("f4")
    t2m[0, 0, 0] = np.nan
    t2m[3, 2, :] = np.nan
    precip = rng.gamma(1.0, 2.0, (nt, ny, nx))
    precip[5, :, 0] = np.nan
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 m temperature"}),
            "precip": (("time", "lat", "lon"), precip, {"units": "mm day-1"}),
            "flag": (("lat", "lon"), rng.integers(0, 5, (ny, nx)).astype("u1"),
                     {"flag_values": [0, 1, 2, 3, 4], "flag_meanings": "a b c d e"}),
        },
        coords={
            "time": pd.date_range("2001-01-01", periods=nt, freq="D"),
            "lat": ("lat", np.linspace(-30, 30, ny), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(nx) * 45.0, {"units": "degrees_east"}),
        },
        attrs={"title": "an existing zarr store", "version": 3, "scale": 0.5,
               "tags": ["a", "b"]},
    )
    encoding = {
        "t2m": {"chunks": (4, 3, 8)},
        "precip": {"dtype": "int16", "scale_factor": 0.01, "_FillValue": -32768,
                   "chunks": (5, 6, 8)},
        "time": {"units": "days since 2001-01-01", "calendar": "proleptic_gregorian"},
    }
    return ds, encoding


@pytest.fixture(scope="module")
def zarr_stores(s3_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("zarr")
    bucket = s3_server.create_bucket("zarr")
    ds, encoding = zarr_source()
    local = {}
    for name, (fmt, consolidated) in ZARR_STORES.items():
        path = d / f"{name}.zarr"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.to_zarr(path, zarr_format=fmt, consolidated=consolidated, encoding=encoding,
                       mode="w")
        s3_server.upload_tree(bucket, f"stores/{name}.zarr", path)
        local[name] = path
    # the stores are what they claim to be
    assert (local["v2_consolidated"] / ".zmetadata").is_file()
    assert (local["v2_consolidated"] / "t2m" / ".zarray").is_file()
    assert "consolidated_metadata" in (local["v3_consolidated"] / "zarr.json").read_text()
    assert "consolidated_metadata" not in (local["v3_unconsolidated"] / "zarr.json").read_text()
    return {"bucket": bucket, "local": local}


@pytest.fixture(scope="module")
def zarr_mount(module_mounts, zarr_stores, storage, env):
    datasets = [{"name": name, "zarr": s3_url(zarr_stores["bucket"], f"stores/{name}.zarr"),
                 "storage": storage} for name in ZARR_STORES]
    return module_mounts.mount(datasets, env=env)


@pytest.mark.parametrize("mode", ["decoded", "decode_cf_false"])
@pytest.mark.parametrize("name", list(ZARR_STORES))
def test_zarr_store_is_re_exposed_unchanged(zarr_mount, zarr_stores, name, mode):
    kw = {"decode_cf": False} if mode == "decode_cf_false" else {}
    consolidated = ZARR_STORES[name][1]
    orig = load_zarr(zarr_stores["local"][name], consolidated=consolidated, **kw)
    got = load_zarr(zarr_mount / name, consolidated=None, **kw)
    assert_same_dataset(orig, got, f"zarr store {name} {mode}")
    for var in orig.variables:
        assert got[var].encoding.get("chunks") == orig[var].encoding.get("chunks"), var
    if mode == "decoded":
        assert np.isnan(got.t2m.values).sum() == 9 and np.isnan(got.precip.values).sum() == 6


# --------------------------------------------------------------------------
# anonymous access, check and tree, credentials


def test_anonymous_access_sends_unsigned_requests(mounts, s3_server, s3_proxy, fixture_files,
                                                  tmp_path):
    bucket = s3_server.create_bucket("public", public=True)
    path = fixture_files["nc4_chunked_zlib"]
    s3_server.upload_file(bucket, "open/data.nc", path)
    t0 = time.monotonic()
    m = mounts.mount([{"name": "data", "files": s3_url(bucket, "open/*.nc"),
                       "storage": storage_table(s3_proxy.endpoint, anonymous=True)}],
                     env=atlasfs_env(credentials=False, config_dir=tmp_path / "aws"))
    assert_same_dataset(open_original(path, ""), open_mounted(m / "data", ""), "anonymous")
    reqs = s3_proxy.requests(bucket=bucket, since=t0)
    assert any(r.key == "open/data.nc" and r.method == "GET" for r in reqs), reqs
    assert not [r for r in reqs if r.signed], "signed requests with anonymous = true"
    assert all(r.status in (200, 206) for r in reqs), reqs


def test_credentials_from_a_profile_file(mounts, s3_server, s3_proxy, fixture_files,
                                        tmp_path):
    bucket = s3_server.create_bucket("profile")
    path = fixture_files["nc4_masked"]
    s3_server.upload_file(bucket, "p/data.nc", path)
    env = atlasfs_env(credentials=False, config_dir=tmp_path / "aws")
    akid = "AKIAATLASFSPROFILE01"
    Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[default]\naws_access_key_id = {akid}\n"
        "aws_secret_access_key = atlasfsProfileSecret/Qm3Tz8Wc1Xv6Bn0Lk4Jh7Gf2\n")
    t0 = time.monotonic()
    m = mounts.mount([{"name": "data", "files": s3_url(bucket, "p/*.nc"),
                       "storage": storage_table(s3_proxy.endpoint)}], env=env)
    assert_same_dataset(open_original(path, ""), open_mounted(m / "data", ""), "profile")
    reqs = s3_proxy.requests(bucket=bucket, since=t0)
    assert reqs and all(f"Credential={akid}/" in r.headers.get("authorization", "")
                        for r in reqs), reqs
    m.unmount()
    assert "atlasfsProfileSecret" not in m.log_text() + m.output


def test_check_and_tree_accept_s3_sources(atlasfs_bin, core_bucket, storage, env, tmp_path):
    config = write_config(tmp_path / "c.toml", [
        {"name": "sst", "files": s3_url(core_bucket, "agg_standard/*.nc"), "concat_dim": "time",
         "storage": storage}], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_atlasfs(atlasfs_bin, "tree", config, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("sst", "time", "time_bnds", "land_mask"):
        assert re.search(rf"\b{name}\b", res.stdout), res.stdout


def test_credentials_never_leak(atlasfs_bin, mounts, s3_server, s3_proxy, fixture_files,
                                tmp_path):
    secrets = list(CREDENTIALS.values())
    bucket = s3_server.create_bucket("secret")
    files = sorted(fixture_files["agg_noleap"], key=first_time)  # in time order
    for f in files:
        s3_server.upload_file(bucket, f"tas/{os.path.basename(f)}", f)
    env = atlasfs_env(config_dir=tmp_path / "aws", log="trace")
    datasets = [{"name": "tas", "files": s3_url(bucket, "tas/*.nc"), "concat_dim": "time",
                 "chunks": {"time": 1}, "storage": storage_table(s3_proxy.endpoint)}]
    config = write_config(tmp_path / "c.toml", datasets, cache_dir=tmp_path / "cache")
    outputs = {}
    for cmd in ("check", "index", "tree"):
        res = run_atlasfs(atlasfs_bin, cmd, config, env=env, timeout=180)
        outputs[f"output of `atlasfs {cmd}`"] = res.stdout + res.stderr
    assert remote_report(outputs["output of `atlasfs index`"])["granules"] == len(files)

    m = mounts.mount(datasets, env=env, args=NO_READ_AHEAD)
    outputs["output of `atlasfs mount`"] = m.output
    # a retried request, and an object that is denied: the error paths log too
    victim = 2
    key = f"tas/{os.path.basename(files[victim])}"
    retried = s3_proxy.inject("error", status=500, times=1, method="GET", ranged=True,
                              bucket=bucket)
    s3_proxy.inject("error", status=403, times=None, method="GET", ranged=True, bucket=bucket,
                    key=key)
    t = 0
    for i, f in enumerate(files):
        for step in range(time_length(f)):
            chunk = m / "tas" / "tas" / "c" / str(t) / "0" / "0"
            data, err = read_within(chunk)
            if i == victim:
                assert err is not None and err.errno == errno.EIO and not data, (t, err)
            else:
                with netCDF4.Dataset(f) as ds:
                    ds.set_auto_maskandscale(False)
                    want = np.ascontiguousarray(ds["tas"][step], dtype="<f4").tobytes()
                assert err is None and data == want, (t, err)
            t += 1
    assert retried.applied == 1
    s3_proxy.clear_faults()
    # every request was signed with the credentials of the environment
    reqs = s3_proxy.requests(bucket=bucket)
    akid = CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert reqs and all(f"Credential={akid}/" in r.headers.get("authorization", "")
                        for r in reqs), reqs
    assert all(r.headers.get("x-amz-security-token") == CREDENTIALS["AWS_SESSION_TOKEN"]
               for r in reqs), "the session token is not sent"
    got = load_zarr(m / "tas", consolidated=True)
    assert_same_joined(reference(files), got, "tas")
    metadata = [p.read_text() for p in (m / "tas").rglob("*")
                if p.name in ("zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata")]
    assert metadata
    m.unmount()

    log = m.log_text()
    assert_logged(m, s3_url(bucket, key))
    assert len(log.splitlines()) > 20, "ATLASFS_LOG=trace logs little"
    texts = {**outputs, "daemon log": log, "served metadata": "\n".join(metadata)}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a credential ({secret[:8]}…) appears in the {where}"
    # nor in the cache dirs (catalog, stats, chunks)
    for root in (m.cache_dir, tmp_path / "cache"):
        for p in Path(root).rglob("*"):
            if p.is_file():
                blob = p.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in blob, f"a credential in {p}"
