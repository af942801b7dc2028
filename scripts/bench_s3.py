#!/usr/bin/env python3
"""Benchmark atlasfs on granules in object storage against the anchors that read the same granules
over S3, everything measured in one run on one machine.

Normally started by scripts/bench (after scripts/bench.py and scripts/bench_tree.py;
`scripts/bench --s3-only` runs only this), which builds target/release/atlasfs and prepares
.venv-bench.

The 365-file standard archive (the one scripts/bench.py uses, generated with the shared
make_archive.py when missing) is uploaded to an S3-protocol server on loopback: moto's
ThreadedMotoServer, running in this process, with every request counted on the server side
(requests by kind, response body bytes), whoever makes it, and the server's CPU time taken for
each step: moto is Python and uses one core at most, so a step it kept busy most of the time is
paced by the server rather than by the client.

Latency (--latency-ms, default 20): every client, atlasfs and the anchors alike, is pointed at
scripts/latency_proxy.py (a process of its own in front of the server), which holds every request
that long before forwarding it, as a store 10-30 ms away would. --latency-ms 0 reads the loopback
server directly (results key "s3_loopback" instead of "s3").

Measured:
- the server itself (not with --quick): fetching every object whole (s3fs `cat`, concurrent),
  1,000 ranged 4 KiB reads concurrently and 200 one at a time, so that a load can be compared with
  what the server can deliver at all;
- index, --repeat rounds, kerchunk and atlasfs alternating (who goes first alternates): kerchunk
  `SingleHdf5ToZarr` over s3fs on every granule and `MultiZarrToZarr` along time (listing
  included), against `atlasfs index` of the same granules named by an `s3://` glob (empty cache
  dir), with its `remote:` line (requests and bytes per granule) against what the server saw;
  then, for information (not with --quick), the combined references opened with xarray and `sst`
  loaded;
- cold load, --repeat rounds alternating: `xr.open_mfdataset` of s3fs file objects with
  `engine="h5netcdf"`, then `.load()` of `sst`, against a fresh atlasfs mount with the chunk
  cache cleared and `xr.open_zarr(MOUNT/sst).sst.load()`, both as open + load (s3fs's default
  read-ahead fetches each granule whole while the anchor opens it), the OS page cache dropped
  before each, values checked against the sources and the anchor.

Every client runs in a fresh interpreter; figures are medians of the rounds. A sample set's
epoch 1 over an object-store Zarr source at the same latency is measured by
scripts/bench_samples.py.

Prints a table and adds the figures to results.json (key "s3") next to the archives.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Shared with the other benchmark parts in the same directory.
from bench import CHILD_LOAD, VAR, Bench, BenchError, add_results, ratio, run_main, say, table, tail

BUCKET = "bench"
PREFIX = "sst365"
REGION = "us-east-1"
# moto accepts any credentials; atlasfs and the anchors read these from the environment.
ACCESS_KEY = "atlasfs-bench"
SECRET_KEY = "atlasfs-bench-secret"
GOAL_INDEX_SPEEDUP = 20.0
GOAL_REQUESTS_PER_GRANULE = 3.0
GOAL_LOAD_SPEEDUP = 2.0
# Issue rows: every request of every client goes through a proxy holding it this long, as a store
# 10-30 ms away would; 0 (--latency-ms 0) reads the loopback server directly.
DEFAULT_LATENCY_MS = 20.0
GOAL_LOAD_SPEEDUP_AT_LATENCY = 3.0
# atlasfs index prints, for a dataset in object storage:
#   remote: 365 granules indexed, 402 requests, 12897280 bytes (1.10 requests and 35335 bytes per granule)
REMOTE_LINE = re.compile(
    r"remote: (?P<granules>\d+) granules indexed, (?P<requests>\d+) requests, (?P<bytes>\d+) bytes "
    r"\((?P<req_per>[\d.]+) requests and (?P<bytes_per>\d+) bytes per granule\)")

# Children run in fresh interpreters of this same environment; imports are done before the clock
# starts. Each reads the credentials from the environment and prints one JSON line.
CHILD_PRELUDE = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
ep, root = sys.argv[1], sys.argv[2]
so = {"endpoint_url": ep, "key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"]}
"""

# What the server delivers: every object whole (concurrent), then small ranged reads.
CHILD_SERVER = CHILD_PRELUDE + r"""
import random
import s3fs
fs = s3fs.S3FileSystem(**so)
paths = sorted(fs.glob(root + "/*.nc"))
sizes = {p: fs.info(p)["size"] for p in paths}  # from the listing
t = time.perf_counter()
data = fs.cat(paths)
whole_s = time.perf_counter() - t
nbytes = sum(len(v) for v in data.values())
rng = random.Random(0)
picks = [(p, rng.randrange(0, sizes[p] - 4096)) for p in (rng.choice(paths) for _ in range(1000))]
t = time.perf_counter()
fs.cat_ranges([p for p, _ in picks], [o for _, o in picks], [o + 4096 for _, o in picks])
ranged_s = time.perf_counter() - t
lat = []
for p, o in picks[:200]:
    t = time.perf_counter()
    fs.cat_file(p, start=o, end=o + 4096)
    lat.append(time.perf_counter() - t)
lat.sort()
print(json.dumps({"objects": len(paths), "whole_s": whole_s, "whole_bytes": nbytes, "ranged_n": len(picks),
                  "ranged_s": ranged_s, "serial_n": len(lat), "serial_s": sum(lat), "serial_p50_s": lat[len(lat) // 2],
                  "serial_p99_s": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]}))
"""

# Anchor A: kerchunk references of every granule over s3fs, combined along time.
CHILD_KERCHUNK = CHILD_PRELUDE + r"""
import s3fs
from kerchunk.hdf import SingleHdf5ToZarr
from kerchunk.combine import MultiZarrToZarr
out = sys.argv[3]
# As kerchunk's documentation does it: one filesystem lists the granules and opens each for
# SingleHdf5ToZarr. It is an instance of its own (not fsspec's cached one), because the combine reads
# every granule's time values through zarr's event loop with the cached instance for `so`, and an
# s3fs instance cannot serve two event loops.
t = time.perf_counter()
fs = s3fs.S3FileSystem(**so, skip_instance_cache=True)
urls = ["s3://" + p for p in sorted(fs.glob(root + "/*.nc"))]
list_s = time.perf_counter() - t
t = time.perf_counter()
refs = []
for u in urls:
    with fs.open(u, "rb") as f:
        refs.append(SingleHdf5ToZarr(f, u, inline_threshold=300).translate())
refs_s = time.perf_counter() - t
t = time.perf_counter()
comb = MultiZarrToZarr(refs, concat_dims=["time"], identical_dims=["lat", "lon"], remote_protocol="s3",
                       remote_options=so).translate()
combine_s = time.perf_counter() - t
with open(out, "w") as f:
    json.dump(comb, f)
print(json.dumps({"files": len(urls), "list_s": list_s, "refs_s": refs_s, "combine_s": combine_s,
                  "refs_json_bytes": os.path.getsize(out)}))
"""

# The combined kerchunk references opened with xarray, the variable loaded over S3 (information).
CHILD_KERCHUNK_LOAD = CHILD_PRELUDE + r"""
import numpy as np
import xarray as xr, zarr, dask.array, s3fs
var = sys.argv[3]
t = time.perf_counter()
ds = xr.open_dataset("reference://", engine="zarr", backend_kwargs={"consolidated": False, "storage_options": {
    "fo": root, "remote_protocol": "s3", "remote_options": {**so, "asynchronous": True}}})
open_s = time.perf_counter() - t
t = time.perf_counter()
a = ds[var].load()
load_s = time.perf_counter() - t
v = np.asarray(a.values, dtype="f8")
print(json.dumps({"open_s": open_s, "load_s": load_s, "shape": list(a.shape),
                  "nansum": float(np.nansum(v)), "finite": int(np.isfinite(v).sum())}))
"""

# Anchor B: open_mfdataset of s3fs file objects with h5netcdf, then load.
CHILD_MF = CHILD_PRELUDE + r"""
import numpy as np
import xarray as xr, dask.array, h5netcdf, s3fs
var = sys.argv[3]
t = time.perf_counter()
fs = s3fs.S3FileSystem(**so)
files = [fs.open(p, "rb") for p in sorted(fs.glob(root + "/*.nc"))]
ds = xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords")
open_s = time.perf_counter() - t
t = time.perf_counter()
a = ds[var].load()
load_s = time.perf_counter() - t
v = np.asarray(a.values, dtype="f8")
print(json.dumps({"files": len(files), "open_s": open_s, "load_s": load_s, "shape": list(a.shape),
                  "nansum": float(np.nansum(v)), "finite": int(np.isfinite(v).sum()),
                  "s3fs_block_size": fs.default_block_size, "s3fs_cache_type": fs.default_cache_type}))
"""


# --- the loopback S3 server ------------------------------------------------------------------
class RequestCounter:
    """WSGI middleware counting every request the server answers, by kind, and the response body
    bytes it sends (what went over the wire to clients, headers aside)."""

    KINDS = ("get", "ranged_get", "head", "list", "put", "other", "errors", "requests", "bytes_out")

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()

    def snapshot(self) -> dict:
        with self.lock:
            return {k: self.counts[k] for k in self.KINDS}

    @staticmethod
    def delta(after: dict, before: dict) -> dict:
        return {k: after[k] - before[k] for k in after}

    def wrap(self, app):
        counter = self

        def counted(environ, start_response):
            method = environ.get("REQUEST_METHOD", "")
            key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
            if method == "HEAD":
                kinds = ["head"]
            elif method == "GET" and not key:
                kinds = ["list"]
            elif method == "GET":
                kinds = ["get"] + (["ranged_get"] if environ.get("HTTP_RANGE") else [])
            elif method in ("PUT", "POST"):
                kinds = ["put"]
            else:
                kinds = ["other"]
            status = []

            def start(st, headers, exc_info=None):
                status.append(st)
                return start_response(st, headers, exc_info)

            return CountedBody(app(environ, start), counter, kinds, status)

        return counted

    def record(self, kinds: list[str], status: list[str], nbytes: int) -> None:
        with self.lock:
            self.counts["requests"] += 1
            for k in kinds:
                self.counts[k] += 1
            if status and not status[-1].startswith(("2", "3")):
                self.counts["errors"] += 1
            self.counts["bytes_out"] += nbytes


class CountedBody:
    def __init__(self, body, counter: RequestCounter, kinds: list[str], status: list[str]):
        self.body, self.counter, self.kinds, self.status = body, counter, kinds, status
        self.nbytes = 0

    def __iter__(self):
        for chunk in self.body:
            self.nbytes += len(chunk)
            yield chunk

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close:
                close()
        finally:
            self.counter.record(self.kinds, self.status, self.nbytes)


class S3Server:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port), its application wrapped in a
    RequestCounter."""

    def __init__(self):
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        self.counter = RequestCounter()
        counter = self.counter

        class CountingMotoServer(ThreadedMotoServer):
            # ThreadedMotoServer._server_entry, with the application wrapped.
            def _server_entry(self) -> None:
                app = counter.wrap(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(self._ip_address, self._port, app, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        # To route a request moto lists its own package directory (one stat per service, about 175)
        # every time; the list never changes while it runs, so it is listed once. This halves the
        # server's CPU per request (2.5 -> 1.1-1.9 ms measured on 2 cores).
        from moto import backends

        modules = tuple(backends.list_of_moto_modules())
        backends.list_of_moto_modules = lambda: iter(modules)
        # werkzeug logs every request at INFO (and installs a handler of its own for it): errors only.
        log = logging.getLogger("werkzeug")
        log.setLevel(logging.ERROR)
        log.addHandler(logging.NullHandler())
        self.server = CountingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        self.server.stop()


class LatencyProxy:
    """scripts/latency_proxy.py in a process of its own in front of the server: every request,
    whoever makes it, waits `latency_ms` before it is forwarded."""

    def __init__(self, upstream: str, latency_ms: float):
        port = upstream.rsplit(":", 1)[1]
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("latency_proxy.py")), port,
                                      "--latency-ms", str(latency_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self.proc.kill()
            raise BenchError(f"the latency proxy did not start (it said {' '.join(line)!r})")
        self.endpoint = f"http://127.0.0.1:{line[1]}"
        self.totals: dict = {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                out, _ = self.proc.communicate("", timeout=15)
                self.totals = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            except (subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()


def median_of(runs: list[dict], key: str) -> dict:
    """The median run by `key` (the upper one of an even count)."""
    return sorted(runs, key=lambda x: x[key])[len(runs) // 2]


def per_granule(server: dict, n: int, timed: float | None = None) -> str:
    parts = [f"{server[k]} {k.replace('_', ' ')}" for k in ("get", "head", "list") if server[k]]
    if server["ranged_get"]:
        parts.append(f"{server['ranged_get']} of the GETs ranged")
    if server["errors"]:
        parts.append(f"{server['errors']} errors")
    return (f"{server['requests']} requests ({', '.join(parts) or 'none'}), {server['bytes_out'] / 1e6:.1f} MB; "
            f"{server['requests'] / n:.2f} requests and {server['bytes_out'] / n / 1e3:.1f} kB per granule; "
            f"{server_busy(server, timed)}")


def server_busy(server: dict, timed: float | None = None) -> str:
    """The server's CPU time in a step, per request and as a share of the step's timed part (the
    clients' start-up, outside it, asks nothing of the server)."""
    cpu = server["cpu_s"]
    timed = timed or server["wall_s"]
    per = f", {1e3 * cpu / server['requests']:.1f} ms per request" if server["requests"] else ""
    return f"server CPU {cpu:.2f} s{per} = {100 * cpu / timed if timed > 0 else 0:.0f}% of the {timed:.2f} s timed"


class S3Bench(Bench):
    bin_dirname = "bin-s3"

    def __init__(self, args):
        super().__init__(args)
        self.server: S3Server | None = None
        self.proxy: LatencyProxy | None = None
        self.endpoint = ""  # what every client is pointed at: the proxy, or the server itself
        self.r: dict = {}
        self.mp = self.work / "mnt-s3"
        self.config_path = self.work / "s3.toml"
        self.cache = self.work / "cache-s3"

    # --- server and upload -------------------------------------------------------------------
    def measure(self, fn, *a, **k) -> dict:
        """Runs fn; adds to its result the requests and bytes the server saw meanwhile, and the CPU
        time the server used (this process's: the server's threads, the driver itself only waits)."""
        before = self.server.counter.snapshot()
        c0, w0 = time.process_time(), time.perf_counter()
        res = fn(*a, **k)
        res["server"] = RequestCounter.delta(self.server.counter.snapshot(), before)
        res["server"]["cpu_s"] = time.process_time() - c0
        res["server"]["wall_s"] = time.perf_counter() - w0
        return res

    def start_server(self, files: list[Path]) -> None:
        import boto3
        from botocore.config import Config

        self.server = S3Server()
        ep = self.server.start()
        say(f"S3 server: moto on {ep}; uploading {len(files)} granules to s3://{BUCKET}/{PREFIX}/")
        s3 = boto3.client("s3", endpoint_url=ep, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, config=Config(max_pool_connections=8))
        s3.create_bucket(Bucket=BUCKET)
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda f: s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{f.name}", Body=f.read_bytes()), files))
        up = time.perf_counter() - t
        nbytes = sum(f.stat().st_size for f in files)
        listed = sum(o["KeyCount"] for o in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"))
        if listed != len(files):
            raise BenchError(f"the S3 server lists {listed} objects under {PREFIX}/, expected {len(files)}")
        self.r["upload"] = {"s": up, "bytes": nbytes, "objects": len(files)}
        say(f"  {nbytes / 1e6:.0f} MB in {up:.1f} s ({nbytes / 1e6 / up:.0f} MB/s, 4 threads)")

    def child_s3(self, code: str, *argv: str, what: str, timeout: float = 900) -> dict:
        return self.measure(lambda: self.child(code, self.endpoint, *argv, what=what, timeout=timeout))

    def bench_server(self) -> None:
        say("S3 server: every object whole (s3fs cat, concurrent), 1,000 ranged 4 KiB reads concurrently, "
            "200 one at a time")
        s = self.r["server"] = self.child_s3(CHILD_SERVER, f"{BUCKET}/{PREFIX}", what="reading the S3 server")
        say(f"  whole objects: {s['whole_bytes'] / 1e6:.0f} MB in {s['whole_s']:.2f} s "
            f"({s['whole_bytes'] / 1e6 / s['whole_s']:.0f} MB/s); ranged 4 KiB: {s['ranged_n'] / s['ranged_s']:.0f} "
            f"requests/s concurrently, p50 {s['serial_p50_s'] * 1e3:.2f} ms one at a time; "
            f"{server_busy(s['server'], s['whole_s'] + s['ranged_s'] + s['serial_s'])}")

    # --- rounds: anchors alternating with atlasfs --------------------------------------------
    def kerchunk_index_run(self, i: int, refs: Path) -> dict:
        self.drop_if_cold()
        k = self.child_s3(CHILD_KERCHUNK, f"{BUCKET}/{PREFIX}", str(refs), what="the kerchunk anchor", timeout=1800)
        k["index_s"] = k["list_s"] + k["refs_s"] + k["combine_s"]
        say(f"  round {i + 1}: kerchunk list {k['list_s']:.3f} s + refs {k['refs_s']:.3f} s + combine "
            f"{k['combine_s']:.3f} s = {k['index_s']:.3f} s; {per_granule(k['server'], k['files'], k['index_s'])}")
        return k

    def atlas_index_run(self, i: int, n: int) -> dict:
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)
        self.drop_if_cold()
        ix = self.measure(self.atlas_index, n)
        rem, srv = ix["remote"], ix["server"]
        say(f"  round {i + 1}: atlasfs index {ix['s']:.3f} s wall; atlasfs: {rem['line']}")
        say(f"    the server saw {per_granule(srv, n, ix['s'])}")
        if srv["requests"] != rem["requests"] or srv["bytes_out"] != rem["bytes"]:
            say(f"    note: atlasfs counts {rem['requests']} requests and {rem['bytes']} bytes, the server "
                f"{srv['requests']} and {srv['bytes_out']} (the goal is judged on the server's count)")
        return ix

    def bench_index(self, want: dict, n: int) -> None:
        """--repeat rounds of the kerchunk anchor and `atlasfs index` (empty cache dir), alternating,
        the one that goes first alternating too; medians. Then, for information, the last round's
        kerchunk references opened and loaded."""
        refs = self.work / "s3-kerchunk-refs.json"
        a = self.r["atlasfs"] = {}
        self.write_config()
        a["config"] = self.config_path.read_text()
        say(f"index: kerchunk SingleHdf5ToZarr over s3fs on every granule + MultiZarrToZarr along time, against "
            f"atlasfs index (empty cache dir), {self.args.repeat} round(s) alternating")
        kruns: list[dict] = []
        aruns: list[dict] = []
        try:
            for i in range(self.args.repeat):
                steps = [lambda: kruns.append(self.kerchunk_index_run(i, refs)),
                         lambda: aruns.append(self.atlas_index_run(i, n))]
                for step in steps if i % 2 == 0 else steps[::-1]:
                    step()
        finally:
            if kruns:
                k = self.r["kerchunk"] = dict(median_of(kruns, "index_s"))
                k["runs"] = [x["index_s"] for x in kruns]
            if aruns:
                ix = a["index"] = dict(median_of(aruns, "s"))
                ix["runs"] = [x["s"] for x in aruns]
        if self.args.quick:
            say("kerchunk references opened and loaded: skipped (--quick)")
        else:
            say("anchor, for information: the combined kerchunk references opened with xarray, sst loaded over S3")
            self.drop_if_cold()
            ld = self.child_s3(CHILD_KERCHUNK_LOAD, str(refs), VAR, what="loading through the kerchunk references")
            ld["values_match"] = self.matches(ld, want)
            self.r["kerchunk"]["load"] = ld
            say(f"  open {ld['open_s']:.3f} s, load {ld['load_s']:.3f} s, values match the sources: "
                f"{ld['values_match']}; {per_granule(ld['server'], n, ld['open_s'] + ld['load_s'])}")
        refs.unlink(missing_ok=True)

    def mf_run(self, i: int, want: dict) -> dict:
        self.drop_if_cold()
        ld = self.child_s3(CHILD_MF, f"{BUCKET}/{PREFIX}", VAR, what="the open_mfdataset anchor")
        ld["values_match"] = self.matches(ld, want)
        say(f"  round {i + 1}: open_mfdataset open {ld['open_s']:.3f} s, load {ld['load_s']:.3f} s, values match "
            f"the sources: {ld['values_match']}; {per_granule(ld['server'], ld['files'], ld['open_s'] + ld['load_s'])}")
        return ld

    def atlas_load_run(self, i: int, want: dict, n: int) -> dict:
        if self.is_mounted(self.mp):
            self.unmount(self.mp)
        self.atlas("cache", "clear", str(self.config_path))
        self.drop_if_cold()
        mnt = self.measure(lambda: dict(zip(("s", "pid"), self.mount(self.config_path, self.mp))))
        pid = mnt["pid"]
        c0 = self.cpu(pid)
        ld = self.measure(lambda: self.child(CHILD_LOAD, str(self.mp / VAR), VAR))
        ld["daemon_cpu_s"] = self.cpu(pid) - c0
        ld["mount_s"], ld["mount_server"], ld["pid"] = mnt["s"], mnt["server"], pid
        ld["values_match"] = self.matches(ld, want)
        ld["memory"] = self.memory(pid)
        say(f"  round {i + 1}: atlasfs (fresh mount, chunk cache empty): mount {mnt['s']:.3f} s "
            f"({mnt['server']['requests']} requests), open {ld['open_s']:.3f} s, load {ld['load_s']:.3f} s, daemon "
            f"CPU {ld['daemon_cpu_s']:.2f} s, values match: {ld['values_match']}; "
            f"{per_granule(ld['server'], n, ld['open_s'] + ld['load_s'])}")
        return ld

    def bench_load(self, want: dict, n: int) -> None:
        """--repeat rounds of the open_mfdataset anchor and atlasfs's cold load, alternating; the
        median of each by open + load."""
        say(f"cold load: xr.open_mfdataset(s3fs file objects, engine='h5netcdf') + .load() of {VAR}, against "
            f"atlasfs open + load on a fresh mount with the chunk cache empty, {self.args.repeat} round(s) "
            "alternating, each client in a fresh process")
        mine: list[dict] = []
        theirs: list[dict] = []
        try:
            for i in range(self.args.repeat):
                steps = [lambda: theirs.append(self.mf_run(i, want)), lambda: mine.append(self.atlas_load_run(i, want, n))]
                for step in steps if i % 2 == 0 else steps[::-1]:
                    step()
        finally:
            if self.is_mounted(self.mp) or self.mp in self.mounts:
                self.unmount(self.mp)
            if theirs:
                self.r["mf"] = self.summarize(theirs)
        a = self.r["atlasfs"]
        a["memory"] = mine[-1]["memory"]
        a["load"] = self.summarize(mine)
        if self.r.get("mf"):
            a["load"]["matches_anchor"] = self.matches(a["load"], self.r["mf"])

    @staticmethod
    def summarize(runs: list[dict]) -> dict:
        """The median run by open + load (its figures, server counts included), with all runs."""
        for x in runs:
            x["total_s"] = x["open_s"] + x["load_s"]
        out = {k: v for k, v in median_of(runs, "total_s").items() if k != "pid"}
        out["runs"] = [{k: x[k] for k in ("open_s", "load_s", "total_s")} for x in runs]
        out["values_match"] = all(x["values_match"] for x in runs)
        return out

    # --- atlasfs -----------------------------------------------------------------------------
    def drop_if_cold(self) -> None:
        """The OS page cache is dropped before every measured step in cold mode; in warm mode it is
        left as it is (the granules live in the server's memory either way)."""
        if self.mode == "cold":
            self.drop_caches()

    def write_config(self) -> None:
        self.config_path.write_text(
            "# written by scripts/bench_s3.py\n"
            f"[cache]\ndir = {json.dumps(str(self.cache))}\n\n"
            f"[[dataset]]\nname = {json.dumps(VAR)}\n"
            f"files = {json.dumps(f's3://{BUCKET}/{PREFIX}/*.nc')}\n"
            'concat_dim = "time"\n\n'
            "[dataset.storage]\n"
            f"region = {json.dumps(REGION)}\n"
            f"endpoint = {json.dumps(self.endpoint)}   # http endpoint => plain HTTP, path-style\n"
        )

    def atlas_index(self, n: int) -> dict:
        t = time.perf_counter()
        try:
            proc = subprocess.run([str(self.bin), "index", str(self.config_path)], capture_output=True, text=True,
                                  timeout=600)
        except subprocess.TimeoutExpired:
            raise BenchError(f"atlasfs index {self.config_path} did not finish within 600 s")
        wall = time.perf_counter() - t
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise BenchError(
                f"atlasfs index rejected the object-storage config {self.config_path} (exit {proc.returncode}).\n"
                f"  This build of atlasfs may not support datasets in object storage yet: the benchmark needs\n"
                f"  `files = \"s3://{BUCKET}/{PREFIX}/*.nc\"` with a [dataset.storage] table (region, endpoint).\n"
                f"  atlasfs said:\n{tail(out)}")
        m = REMOTE_LINE.search(out)
        if not m:
            raise BenchError(
                "atlasfs index succeeded but printed no line like\n"
                "    remote: 365 granules indexed, 402 requests, 12897280 bytes "
                "(1.10 requests and 35335 bytes per granule)\n"
                f"  its output:\n{tail(out)}")
        if re.search(r"[1-9]\d* skipped|^skipped ", out, re.M):
            say(f"  warning: atlasfs reported granules it could not use:\n{tail(out, 5)}")
        rem = {"line": m.group(0), "granules": int(m.group("granules")), "requests": int(m.group("requests")),
               "bytes": int(m.group("bytes")), "requests_per_granule": float(m.group("req_per")),
               "bytes_per_granule": int(m.group("bytes_per"))}
        if rem["granules"] != n:
            raise BenchError(f"atlasfs indexed {rem['granules']} granules of {n}:\n{tail(out)}")
        return {"s": wall, "remote": rem, "output": out.strip().splitlines()[-5:]}

    # --- report ------------------------------------------------------------------------------
    def ratios(self) -> None:
        r = self.r
        lst = r["ratios"] = []
        k, mf, a = r.get("kerchunk"), r.get("mf"), r.get("atlasfs") or {}
        ix, ld = a.get("index"), a.get("load")
        if not (ix and ld):
            lst.append({"key": "s3_atlasfs", "met": False,
                        "text": "atlasfs on object storage: not measured — " + r.get("atlasfs_error", "?").splitlines()[0]})
            return
        n = r["granules"]
        lat = r["latency_ms"]
        at = f" at {lat:g} ms per request" if lat > 0 else " on loopback"
        goal_load = GOAL_LOAD_SPEEDUP_AT_LATENCY if lat > 0 else GOAL_LOAD_SPEEDUP
        if k:
            f = k["index_s"] / ix["s"]
            lst.append(ratio("s3_index_vs_kerchunk", f"index of 365 granules in object storage{at}", ix["s"],
                             k["index_s"], "kerchunk list + SingleHdf5ToZarr + MultiZarrToZarr over s3fs",
                             f"≥{GOAL_INDEX_SPEEDUP:.0f}× faster", f >= GOAL_INDEX_SPEEDUP))
        srv, rem = ix["server"], ix["remote"]
        per = srv["requests"] / n
        ok = per <= GOAL_REQUESTS_PER_GRANULE
        text = (f"requests per granule while indexing: {per:.2f} ({srv['requests']} requests, "
                f"{srv['bytes_out'] / n / 1e3:.1f} kB per granule, as the server counted; atlasfs reports "
                f"{rem['requests_per_granule']:.2f} and {rem['bytes_per_granule'] / 1e3:.1f} kB)")
        if k:
            text += (f"; kerchunk made {k['server']['requests'] / n:.2f} requests and "
                     f"{k['server']['bytes_out'] / n / 1e3:.1f} kB per granule")
        text += f"; goal: ≤ {GOAL_REQUESTS_PER_GRANULE:.0f} — {'met' if ok else 'NOT MET'}"
        lst.append({"key": "s3_index_requests_per_granule", "value": per, "atlasfs_reported": rem["requests_per_granule"],
                    "goal": f"≤ {GOAL_REQUESTS_PER_GRANULE:.0f}", "met": ok, "text": text})
        if mf:
            f = mf["total_s"] / ld["total_s"]
            lst.append(ratio("s3_cold_load_vs_open_mfdataset",
                             f"cold load of sst{at}, open + load (atlasfs: fresh mount, chunk cache empty)",
                             ld["total_s"], mf["total_s"], "xr.open_mfdataset(s3fs files, engine='h5netcdf') + .load()",
                             f"≥{goal_load:.0f}× faster", f >= goal_load))
            lst.append(ratio("s3_cold_load_only_vs_open_mfdataset", "cold .load() alone (info; s3fs fetched whole "
                             "granules during the anchor's open)", ld["load_s"], mf["load_s"], "the anchor's .load()"))
            whole = ix["s"] + ld["mount_s"] + ld["total_s"]
            lst.append(ratio("s3_index_mount_load_vs_open_mfdataset", "index + mount + open + load (info)", whole,
                             mf["total_s"], "open_mfdataset + .load()"))
        if k and "load" in k:
            kl = k["load"]["open_s"] + k["load"]["load_s"]
            lst.append(ratio("s3_cold_load_vs_kerchunk", "cold open + load (info)", ld["total_s"], kl,
                             "kerchunk references open + load"))
        # moto is Python: its threads share one core. A step during which it was busy most of the
        # time is paced by the server, not by the client.
        for key, what, srv, timed in (("index", "atlasfs's index", ix["server"], ix["s"]),
                                      ("cold_load", "atlasfs's cold load", ld["server"], ld["total_s"])):
            share = srv["cpu_s"] / timed
            text = (f"the S3 server's CPU was {share:.0%} of {what} ({srv['requests']} requests, "
                    f"{1e3 * srv['cpu_s'] / max(1, srv['requests']):.1f} ms each)")
            text += ("; at 70% or more the server (one core at most) sets the pace of that figure, so it "
                     "understates atlasfs" if share >= 0.7 else
                     "; the server is not saturated, but it takes that much of the machine's cores from the client")
            lst.append({"key": f"s3_server_share_of_{key}", "value": share, "text": text + " (info)"})

    def report(self) -> str:
        r, env = self.r, self.r["environment"]
        n = r["granules"]
        out = [""]
        out.append(f"atlasfs object-storage benchmark  {r['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB "
                   f"RAM, Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})")
        out.append(f"  archive: the 365-file standard archive ({r['upload']['bytes'] / 1e6:.0f} MB) in "
                   f"s3://{BUCKET}/{PREFIX}/ on moto {env['packages'].get('moto')} (ThreadedMotoServer on loopback, "
                   "in the benchmark's process, sharing the cores with the clients); requests, bytes (response "
                   "bodies) and the server's CPU time are counted by the server for each step")
        if r["latency_ms"] > 0:
            px = r.get("proxy") or {}
            out.append(f"  latency: every request of every client (atlasfs and the anchors alike) goes through a proxy "
                       f"(scripts/latency_proxy.py, a process of its own) that holds it {r['latency_ms']:g} ms before "
                       f"forwarding it ({px.get('requests', '?')} requests in all)")
        else:
            out.append("  latency: none (--latency-ms 0): every client talks to the loopback server directly")
        out.append(f"  OS page cache: {self.mode_note}")
        la0, la1 = env["load_average_start"], env.get("load_average_end", env["load_average_start"])
        out.append(f"  load average (1 min) at start {la0[0]:.2f}, at end {la1[0]:.2f}: anything else running on the "
                   "machine skews the figures")
        out.append("  every client runs in a fresh process (imports not timed); open = listing + opening, "
                   f"load = `.load()` of {VAR}; {self.args.repeat} round(s) of each comparison, anchor and atlasfs "
                   "alternating (who goes first alternates); medians (cold loads by open + load)")
        rows: list[tuple[str, str, str]] = []

        def row(what, secs, note=""):
            rows.append((what, secs if isinstance(secs, str) else f"{secs:.3f}", note))

        up, s = r["upload"], r.get("server")
        rows.append(("the loopback S3 server (moto)", "", ""))
        row("  upload of the archive (boto3, 4 threads)", up["s"], f"{up['bytes'] / 1e6 / up['s']:.0f} MB/s")
        if s:
            row("  every object whole (s3fs cat, concurrent)", s["whole_s"],
                f"{s['whole_bytes'] / 1e6 / s['whole_s']:.0f} MB/s, {s['objects']} objects")
            row(f"  {s['ranged_n']} ranged 4 KiB reads (s3fs cat_ranges)", s["ranged_s"],
                f"{s['ranged_n'] / s['ranged_s']:.0f} requests/s")
            row("  ranged 4 KiB read, one at a time, p50 / p99 (ms)",
                f"{s['serial_p50_s'] * 1e3:.2f} / {s['serial_p99_s'] * 1e3:.2f}", f"{s['serial_n']} reads")
            row("  server CPU in these reads", s["server"]["cpu_s"],
                server_busy(s["server"], s["whole_s"] + s["ranged_s"] + s["serial_s"]))
        k = r.get("kerchunk")
        rows.append(("index", "", ""))
        if k:
            row("  kerchunk list + refs + combine [anchor]", k["index_s"],
                f"list {k['list_s']:.3f} + refs {k['refs_s']:.3f} + combine {k['combine_s']:.3f}; runs "
                + ", ".join(f"{x:.3f}" for x in k["runs"]))
            row("    requests made", str(k["server"]["requests"]), per_granule(k["server"], n, k["index_s"]))
        a = r.get("atlasfs") or {}
        ix = a.get("index")
        if ix:
            row("  atlasfs index (empty cache dir)", ix["s"], "wall time of `atlasfs index`; runs "
                + ", ".join(f"{x:.3f}" for x in ix["runs"]))
            row("    requests made", str(ix["server"]["requests"]), per_granule(ix["server"], n, ix["s"]))
            row("    atlasfs reports", str(ix["remote"]["requests"]), ix["remote"]["line"])
        elif "atlasfs_error" in r:
            row("  atlasfs index", "failed", r["atlasfs_error"].splitlines()[0])
        rows.append(("cold load of sst (open + load)", "", ""))
        mf = r.get("mf")
        if mf:
            row("  open_mfdataset(h5netcdf, s3fs) [anchor]", mf["total_s"],
                f"open {mf['open_s']:.3f} + load {mf['load_s']:.3f}; runs "
                + ", ".join(f"{x['total_s']:.3f}" for x in mf["runs"]))
            row("    requests made", str(mf["server"]["requests"]),
                per_granule(mf["server"], n, mf["total_s"]) + f"; s3fs {mf['s3fs_cache_type']} cache, block "
                f"{mf['s3fs_block_size'] >> 20} MiB")
        if k and "load" in k:
            kl = k["load"]
            row("  kerchunk references open + load [anchor, info]", kl["open_s"] + kl["load_s"],
                f"open {kl['open_s']:.3f} + load {kl['load_s']:.3f}")
            row("    requests made", str(kl["server"]["requests"]), per_granule(kl["server"], n, kl["open_s"] + kl["load_s"]))
        ld = a.get("load")
        if ld:
            row("  atlasfs open + load (fresh mount, cache empty)", ld["total_s"],
                f"open {ld['open_s']:.3f} + load {ld['load_s']:.3f}; runs "
                + ", ".join(f"{x['total_s']:.3f}" for x in ld["runs"]) + f"; daemon CPU {ld['daemon_cpu_s']:.2f} s")
            row("    requests made", str(ld["server"]["requests"]), per_granule(ld["server"], n, ld["total_s"]))
            row("  atlasfs mount (catalog built)", ld["mount_s"], f"{ld['mount_server']['requests']} requests")
            m = a["memory"]
            row("  daemon RSS peak / after load (MiB)", f"{m['peak_rss_mib']:.0f} / {m['rss_mib']:.0f}")
        rows.append(("values", "", ""))
        if mf:
            row("  open_mfdataset anchor matches the sources", "yes" if mf["values_match"] else "NO")
        if k and "load" in k:
            row("  kerchunk anchor matches the sources", "yes" if k["load"]["values_match"] else "NO")
        if ld:
            row("  atlasfs matches the sources and the anchor",
                "yes" if ld["values_match"] and ld.get("matches_anchor", True) else "NO")
        out.append("")
        out.extend(table(rows))
        out.append("")
        out.append("ratios and goals")
        for x in r["ratios"]:
            out.append("  " + x["text"])
        out.append("")
        return "\n".join(out)

    # --- driver ------------------------------------------------------------------------------
    def run(self) -> int:
        import psutil
        from importlib.metadata import version, PackageNotFoundError

        def ver(pkg):
            try:
                return version(pkg)
            except PackageNotFoundError:
                return None

        self.preflight()
        # Credentials for every client (atlasfs reads them from the environment too); nothing here
        # may fall back to a profile or instance metadata.
        os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
                          AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
        for v in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            os.environ.pop(v, None)
        v = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        self.r.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cache_mode": self.mode,
            "repeat": self.args.repeat,
            "quick": self.args.quick,
            "latency_ms": self.args.latency_ms,
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": v[-1] if v else "?", "git": self.git(),
                "packages": {p: ver(p) for p in ("xarray", "zarr", "dask", "kerchunk", "fsspec", "s3fs", "h5netcdf",
                                                 "h5py", "moto", "boto3", "numpy")},
                "load_average_start": os.getloadavg(),
            },
        })
        archive = self.archive("a365")
        files = sorted(archive.glob("*.nc"))
        self.r["granules"] = n = len(files)
        say("expected values from the sources (fidelity check)")
        want = self.expected(files)
        failed = None
        try:
            self.start_server(files)
            self.endpoint = self.server.endpoint
            if self.args.latency_ms > 0:
                self.proxy = LatencyProxy(self.server.endpoint, self.args.latency_ms)
                self.endpoint = self.proxy.endpoint
                say(f"latency proxy on {self.endpoint}: every request of every client waits "
                    f"{self.args.latency_ms:g} ms, then goes to the server")
            if self.args.quick:
                say("the server's own figures: skipped (--quick)")
            else:
                self.bench_server()
            try:
                self.bench_index(want, n)
                self.bench_load(want, n)
            except BenchError as e:
                failed = str(e)
                self.r["atlasfs_error"] = failed
        finally:
            for mp in list(self.mounts):
                self.unmount(mp)
            if self.proxy:
                self.proxy.stop()
                self.r["proxy"] = self.proxy.totals
            if self.server:
                self.server.stop()
        self.r["environment"]["load_average_end"] = os.getloadavg()
        self.ratios()
        text = self.report()
        self.r["table"] = text
        key = "s3" if self.args.latency_ms > 0 else "s3_loopback"
        out = add_results(self.data, key, self.r)
        print(text)
        say(f"results added to {out} (key \"{key}\")")
        if failed:
            print(f"bench_s3: error: {failed}", file=sys.stderr)
            return 1
        ok = [self.r["mf"]["values_match"], self.r["kerchunk"].get("load", {}).get("values_match", True),
              self.r["atlasfs"]["load"]["values_match"], self.r["atlasfs"]["load"].get("matches_anchor", True)]
        return 0 if all(ok) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Environment: ATLASFS_BENCH_DIR (default: bench-data/ at the repository root), "
                                       "ATLASFS_SHARED_BENCH (default: ../shared/bench beside the checkout). Options "
                                       "of scripts/bench.py it does not know are ignored, so scripts/bench can pass "
                                       "its arguments to every part.")
    p.add_argument("--warm", action="store_true", help="do not drop the OS page cache before the measured steps")
    p.add_argument("--repeat", type=int, default=None,
                   help="rounds of the index (kerchunk and atlasfs, empty cache dir) and of the cold load "
                        "(open_mfdataset and atlasfs on a fresh mount with the chunk cache cleared), anchors "
                        "alternating with atlasfs, each in a fresh process; medians; default 3 (1 with --quick)")
    p.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS,
                   help="latency every request of every client gets from a proxy in front of the server "
                        f"(default {DEFAULT_LATENCY_MS:g}; 0: the loopback server directly, results key s3_loopback)")
    p.add_argument("--quick", action="store_true",
                   help="one round, no figures of the server alone, no load through the kerchunk references")
    args, unknown = p.parse_known_args()
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if unknown:
        print(f"bench_s3: ignoring options meant for scripts/bench.py: {' '.join(unknown)}", file=sys.stderr)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.latency_ms < 0:
        p.error("--latency-ms must not be negative")

    return run_main("bench_s3", lambda: S3Bench(args).run(),
                    "mounts were unmounted and the server stopped")


if __name__ == "__main__":
    sys.exit(main())
