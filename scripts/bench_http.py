#!/usr/bin/env python3
"""Benchmark `atlasfs serve` against xpublish serving the same files over HTTP, every figure
measured in one run on one machine.

Normally started by scripts/bench (after scripts/bench.py and the others; `scripts/bench
--http-only` runs only this), which prepares .venv-bench.

The archive is the standard 365-file one (360x720 grid, variable `sst`), generated with the shared
make_archive.py when missing. Two servers on loopback, each in its own process:

- atlasfs: `atlasfs serve CONFIG --listen 127.0.0.1:PORT` over a config naming the 365 files as
  dataset `sst` (Zarr v3, `[cache] memory` at its default), read at `http://…/sst`.
- xpublish (with the xpublish-zarr plugin, under uvicorn) serving
  `xr.open_mfdataset(files, combine="by_coords", data_vars="minimal", coords="minimal",
  compat="override")` rechunked to atlasfs's chunk grid of `sst` (so both serve the same chunk
  keys), read at `http://…/datasets/sst/zarr`. Its response cache is xpublish's default (1 MB,
  which holds no 4 MiB chunk): every chunk request is computed from the files. A second xpublish
  with a response cache as large as atlasfs's memory tier (512 MiB) is measured for information:
  with every chunk cached on both sides, the load measures the HTTP client.

Measured (server start-up never timed; every load in a fresh interpreter, imports not timed;
rounds alternate atlasfs and xpublish, which one goes first alternating too; medians):

- Cold: each server restarted before its round (atlasfs with an empty cache dir), the OS page
  cache dropped, then `xr.open_zarr(URL, consolidated=True)` and `.load()`.
- Warm: the servers kept running after one untimed load each (atlasfs: every chunk in its disk
  cache and memory tier; xpublish: the dataset open, the sources in the OS page cache), then the
  same open + load. The loaded values of both are compared once (not timed).
- One-chunk GET latency, warm: GETs over one keep-alive connection per server (http.client),
  alternating servers GET by GET: the same chunk key repeatedly, then distinct chunks in a random
  order; p50 and p99.

Prints a table and adds the figures to results.json under "http".
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import VAR, BenchError, ratio, run_main, say, table, tail  # noqa: E402
from bench_views import ViewsBench  # noqa: E402

GOAL_LOAD = 5.0  # open + full load: atlasfs at least 5x faster than xpublish
GOAL_P50 = 10.0  # one-chunk GET p50: at least 10x lower
XPUBLISH_DEFAULT_CACHE = 1e6  # xpublish.Rest's default cachey size (bytes)
XPUBLISH_BIG_CACHE = 512 * 2**20  # as atlasfs's default memory tier
READY_TIMEOUT_S = 300

# One xpublish server: argv archive dir, port, response-cache bytes, JSON chunk sizes by dimension.
CHILD_XPUBLISH = r"""
import glob, json, os, sys, warnings
warnings.filterwarnings("ignore")
import xarray as xr, xpublish, uvicorn
d, port, cache_bytes, chunks = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
files = sorted(glob.glob(os.path.join(d, "*.nc")))
ds = xr.open_mfdataset(files, combine="by_coords", data_vars="minimal", coords="minimal", compat="override")
ds = ds.chunk(chunks)
rest = xpublish.Rest({"sst": ds}, cache_kws={"available_bytes": cache_bytes})
uvicorn.run(rest.app, host="127.0.0.1", port=port, log_level="warning")
"""

# Open + load of a dataset over HTTP; imports (including fsspec's HTTP filesystem) before the clock.
CHILD_HTTP_LOAD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask.array, fsspec, aiohttp
from fsspec.implementations import http
t = time.perf_counter()
ds = xr.open_zarr(sys.argv[1], consolidated=True)
open_s = time.perf_counter() - t
t = time.perf_counter()
ds = ds.load()
load_s = time.perf_counter() - t
v = np.asarray(ds[sys.argv[2]].values, dtype="f8")
print(json.dumps({"open_s": open_s, "load_s": load_s, "total_s": open_s + load_s, "shape": list(v.shape),
                  "nansum": float(np.nansum(v)), "finite": int(np.isfinite(v).sum())}))
"""

# Loads both URLs whole and compares every variable and coordinate (not timed).
CHILD_HTTP_EQUAL = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr
a = xr.open_zarr(sys.argv[1], consolidated=True).load()
b = xr.open_zarr(sys.argv[2], consolidated=True).load()
out = {"vars": {}}
for name in sorted(set(a.variables) | set(b.variables)):
    if name not in a.variables or name not in b.variables:
        out["vars"][name] = {"equal": False, "why": "missing on one side"}
        continue
    x, y = a[name].values, b[name].values
    same = x.shape == y.shape and x.dtype.kind == y.dtype.kind and bool(
        np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    out["vars"][name] = {"equal": same, "shape": list(x.shape), "dims": list(a[name].dims) == list(b[name].dims)}
out["equal"] = all(v["equal"] and v.get("dims", False) for v in out["vars"].values())
print(json.dumps(out))
"""

# Chunk GET latency over keep-alive connections. argv: JSON {server: [host, port, prefix]},
# JSON list of chunk keys (paths under the dataset), number of GETs. Each GET goes to every
# server in turn (which one goes first alternates), the whole body read.
CHILD_GET_LATENCY = r"""
import http.client, json, sys, time
servers = json.loads(sys.argv[1])
keys = json.loads(sys.argv[2])
n = int(sys.argv[3])
conns = {s: http.client.HTTPConnection(h, p, timeout=120) for s, (h, p, _) in servers.items()}
lat = {s: [] for s in servers}
size = {s: 0 for s in servers}
names = list(servers)
def get(s, key):
    c = conns[s]
    c.request("GET", servers[s][2] + "/" + key, headers={"Connection": "keep-alive"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"{s}: GET {key}: HTTP {r.status}: {body[:200]!r}")
    return len(body)
for s in names:  # connect (not timed)
    get(s, keys[0])
for i in range(n):
    key = keys[i % len(keys)]
    for s in (names if i % 2 == 0 else names[::-1]):
        t = time.perf_counter()
        b = get(s, key)
        lat[s].append(time.perf_counter() - t)
        size[s] += b
def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print(json.dumps({s: {"p50_s": q(v, 0.5), "p99_s": q(v, 0.99), "mean_s": sum(v) / len(v), "n": len(v),
                      "mean_bytes": size[s] / len(v)} for s, v in lat.items()}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process this benchmark started (atlasfs serve or xpublish), with its URL."""

    def __init__(self, name: str, argv: list[str], port: int, prefix: str, ready_path: str, log: Path):
        self.name, self.argv, self.port, self.prefix, self.ready_path, self.log = name, argv, port, prefix, ready_path, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self) -> float:
        """Starts the process and waits until `ready_path` answers 200; returns the seconds taken."""
        self.stop()
        t = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}) before serving:\n"
                                 f"{tail(self.log.read_text(errors='replace'))}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer {url} within {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class HttpBench(ViewsBench):
    bin_dirname = "bin-http"

    def __init__(self, args):
        super().__init__(args)  # rounds: 1 with --quick, else --repeat
        self.gets = 40 if args.quick else args.gets
        self.http_results: dict = {}
        self.servers: list[Server] = []

    # --- servers -------------------------------------------------------------------------------
    def atlas_server(self, config: Path) -> Server:
        port = free_port()
        s = Server("atlasfs serve", [str(self.bin), "serve", str(config), "--listen", f"127.0.0.1:{port}"], port,
                   f"/{VAR}", f"/{VAR}/zarr.json", self.work / "http-atlasfs.log")
        self.servers.append(s)
        return s

    def xpublish_server(self, archive: Path, cache_bytes: float, chunks: dict, tag: str) -> Server:
        port = free_port()
        argv = [sys.executable, "-c", CHILD_XPUBLISH, str(archive), str(port), str(cache_bytes), json.dumps(chunks)]
        s = Server(f"xpublish ({tag})", argv, port, f"/datasets/{VAR}/zarr", "/datasets",
                   self.work / f"http-xpublish-{tag}.log")
        self.servers.append(s)
        return s

    def chunk_grid(self, config: Path) -> dict:
        """The shape and chunk shape of `sst` by dimension, from `atlasfs tree`."""
        text = self.atlas("tree", str(config), f"{VAR}/{VAR}").stdout
        m = re.search(r"\((time: \d+, lat: \d+, lon: \d+)\)\s+\S+\s+chunks \[(\d+), (\d+), (\d+)\]", text)
        if not m:
            raise BenchError(f"no shape and chunks for {VAR}/{VAR} in `atlasfs tree`:\n{tail(text)}")
        shape = {k: int(v) for k, v in (x.split(": ") for x in m.group(1).split(", "))}
        chunks = dict(zip(shape, (int(m.group(i)) for i in (2, 3, 4))))
        return {"shape": shape, "chunks": chunks}

    # --- steps ---------------------------------------------------------------------------------
    def load(self, server: Server) -> dict:
        return self.child(CHILD_HTTP_LOAD, server.url, VAR, what=f"loading {server.url}")

    def cold(self, r: dict, atlas: Server, xp: Server, cache: Path) -> None:
        say("cold: each server restarted before its round (atlasfs with an empty cache dir; start-up not timed), "
            "OS page cache dropped, then open + load")

        def restart_and_load(i: int, server: Server, label: str) -> dict:
            server.stop()
            if server is atlas:
                shutil.rmtree(cache, ignore_errors=True)
            start = server.start()
            self.prepare_cache(self.files)
            ld = self.load(server)
            ld["start_s"] = start
            say(f"  round {i + 1}: {label} {ld['total_s']:.3f} s (open {ld['open_s']:.3f} + load {ld['load_s']:.3f}; "
                f"server start {start:.1f} s, not timed)")
            return ld

        mine, theirs = self.alternate(lambda i: restart_and_load(i, atlas, "atlasfs"),
                                      lambda i: restart_and_load(i, xp, "xpublish"))
        r["cold"] = self.load_summary(mine, theirs)

    def warm(self, r: dict, atlas: Server, xp: Server, xp_big: Server) -> None:
        say("warm: servers kept running, one untimed load each first, then open + load")
        for s in (atlas, xp, xp_big):
            if s.proc is None:
                s.start()
            ld = self.load(s)
            say(f"  warm-up of {s.name}: {ld['total_s']:.3f} s (not timed)")
        r["values"] = self.child(CHILD_HTTP_EQUAL, atlas.url, xp.url, what="comparing atlasfs and xpublish values")
        say(f"  values equal between atlasfs and xpublish: {r['values']['equal']} (not timed)")
        runs = {s.name: [] for s in (atlas, xp, xp_big)}
        order = [atlas, xp, xp_big]
        for i in range(self.rounds):
            for s in order if i % 2 == 0 else order[::-1]:
                runs[s.name].append(self.load(s))
            say(f"  round {i + 1}: " + "; ".join(f"{n} {v[-1]['total_s']:.3f} s" for n, v in runs.items()))
        r["warm"] = self.load_summary(runs[atlas.name], runs[xp.name])
        r["warm_big_cache"] = self.load_summary(runs[atlas.name], runs[xp_big.name])
        sums = {n: (v[-1]["nansum"], v[-1]["finite"]) for n, v in runs.items()}
        r["checksums"] = {n: {"nansum": a, "finite": b} for n, (a, b) in sums.items()}

    def latency(self, r: dict, grid: dict, servers: dict[str, Server]) -> None:
        import random

        nt = [-(-grid["shape"][d] // grid["chunks"][d]) for d in ("time", "lat", "lon")]
        keys = [f"{VAR}/c/{a}/{b}/{c}" for a in range(nt[0]) for b in range(nt[1]) for c in range(nt[2])]
        random.Random(0).shuffle(keys)
        spec = {k: ["127.0.0.1", s.port, s.prefix] for k, s in servers.items()}
        for variant, ks in (("same", [f"{VAR}/c/0/0/0"]), ("distinct", keys)):
            say(f"one-chunk GET latency, warm, {variant} chunk{'s' if variant == 'distinct' else ''}: "
                f"{self.gets} GETs per server over one keep-alive connection each, servers alternating")
            res = self.child(CHILD_GET_LATENCY, json.dumps(spec), json.dumps(ks), str(self.gets),
                             what="timing chunk GETs", timeout=3600)
            for k, v in res.items():
                say(f"  {k}: p50 {v['p50_s'] * 1e3:.2f} ms, p99 {v['p99_s'] * 1e3:.2f} ms ({v['mean_bytes'] / 2**20:.2f} MiB "
                    "per chunk)")
            r[f"latency_{variant}"] = res
        r["chunk_keys"] = len(keys)

    # --- the benchmark -------------------------------------------------------------------------
    @staticmethod
    def load_summary(mine: list[dict], theirs: list[dict]) -> dict:
        return {"atlasfs_s": statistics.median(x["total_s"] for x in mine),
                "anchor_s": statistics.median(x["total_s"] for x in theirs),
                "atlasfs_runs": [x["total_s"] for x in mine], "anchor_runs": [x["total_s"] for x in theirs],
                "atlasfs_open_s": statistics.median(x["open_s"] for x in mine),
                "anchor_open_s": statistics.median(x["open_s"] for x in theirs)}

    def bench_http(self) -> dict:
        r: dict = {"rounds": self.rounds, "gets": self.gets}
        archive = self.archive("a365")
        self.files = sorted(archive.glob("*.nc"))
        config, cache = self.config("http", archive)
        grid = self.chunk_grid(config)
        r["grid"] = grid
        say(f"atlasfs serves {VAR} in chunks {grid['chunks']}; xpublish serves open_mfdataset rechunked to the same")
        atlas = self.atlas_server(config)
        xp = self.xpublish_server(archive, XPUBLISH_DEFAULT_CACHE, grid["chunks"], "default-cache")
        xp_big = self.xpublish_server(archive, XPUBLISH_BIG_CACHE, grid["chunks"], "512MiB-cache")
        self.cold(r, atlas, xp, cache)
        self.warm(r, atlas, xp, xp_big)
        self.latency(r, grid, {"atlasfs": atlas, "xpublish": xp, "xpublish_512MiB": xp_big})
        r["atlasfs_daemon_memory"] = self.memory(atlas.pid()) if atlas.pid() else None
        return r

    # --- report --------------------------------------------------------------------------------
    def ratios(self) -> None:
        v = self.http_results
        lst = v["ratios"] = []
        for key, what, goal in (("warm", "open + full load over HTTP, servers warm", GOAL_LOAD),
                                ("cold", "open + full load over HTTP, cold (info)", None),
                                ("warm_big_cache", "open + full load, xpublish's cache 512 MiB (info)", None)):
            s = v[key]
            anchor = "xpublish" + (" (response cache 512 MiB)" if key == "warm_big_cache" else "")
            if goal is None:
                lst.append(ratio(key, what, s["atlasfs_s"], s["anchor_s"], anchor))
            else:
                f = s["anchor_s"] / s["atlasfs_s"]
                lst.append(ratio(key, what, s["atlasfs_s"], s["anchor_s"], anchor, f"≥{goal}× faster", f >= goal))
        for variant in ("same", "distinct"):
            lat = v[f"latency_{variant}"]
            a, x = lat["atlasfs"], lat["xpublish"]
            f = x["p50_s"] / a["p50_s"]
            ok = f >= GOAL_P50
            lst.append({"key": f"latency_{variant}", "met": ok, "p50_factor": f, "text": (
                f"one-chunk GET, warm, {variant} chunk{'s' if variant == 'distinct' else ''}: atlasfs p50 "
                f"{a['p50_s'] * 1e3:.2f} ms / p99 {a['p99_s'] * 1e3:.2f} ms against xpublish's {x['p50_s'] * 1e3:.2f} / "
                f"{x['p99_s'] * 1e3:.2f} ms: p50 {f:.1f}× lower; goal: p50 ≥{GOAL_P50:g}× lower — {'met' if ok else 'NOT MET'}")})
        ok = v["values"]["equal"]
        lst.append({"key": "values", "met": ok, "text": f"values equal between atlasfs and xpublish: {'yes' if ok else 'NO'}"})

    def report(self) -> str:
        v = self.http_results
        env = v["environment"]
        g = v["grid"]
        out = ["", f"atlasfs HTTP benchmark  {v['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']}, xpublish {env['packages']['xpublish']}, "
                   f"xpublish-zarr {env['packages']['xpublish-zarr']})",
               f"  OS page cache: {self.mode_note} (cold rounds)",
               f"  load average (1 min) at start {env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}",
               f"  medians of {v['rounds']} round(s), servers alternating; every load in a fresh interpreter "
               "(xr.open_zarr(URL, consolidated=True).load()), imports and server start-up not timed",
               f"  {VAR} ({dims(g['shape'])}) served by both in chunks ({dims(g['chunks'])}): atlasfs uncompressed, xpublish "
               "with zarr's default zstd; xpublish's response cache 1 MB (its default) unless said",
               "  warm: atlasfs every chunk in its disk cache and memory tier; xpublish dataset open, sources "
               "in the OS page cache; cold: servers restarted (atlasfs empty cache dir), page cache dropped"]
        rows: list[tuple[str, str, str]] = []

        def runs(xs):
            return "runs " + ", ".join(f"{x:.3f}" for x in xs)

        for key, label, anchor in (("warm", "open + load, warm", "xpublish"),
                                   ("cold", "open + load, cold", "xpublish"),
                                   ("warm_big_cache", "open + load, warm, xpublish cache 512 MiB (info)",
                                    "xpublish (512 MiB)")):
            s = v[key]
            rows.append((label, "", ""))
            rows.append(("  atlasfs", f"{s['atlasfs_s']:.3f}", f"{runs(s['atlasfs_runs'])}; open {s['atlasfs_open_s']:.3f}"))
            rows.append((f"  {anchor}", f"{s['anchor_s']:.3f}", f"{runs(s['anchor_runs'])}; open {s['anchor_open_s']:.3f}"))
            rows.append(("  speed-up", f"{s['anchor_s'] / s['atlasfs_s']:.2f}×", f"goal ≥{GOAL_LOAD:g}×" if key == "warm" else ""))
        for variant in ("same", "distinct"):
            lat = v[f"latency_{variant}"]
            n = lat["atlasfs"]["n"]
            rows.append((f"one-chunk GET, warm, {variant} chunk{'s' if variant == 'distinct' else ''} (ms)", "",
                         f"{n} GETs each" + (f" over {v['chunk_keys']} chunk keys" if variant == "distinct" else "")))
            for k, label in (("atlasfs", "atlasfs"), ("xpublish", "xpublish"), ("xpublish_512MiB", "xpublish, cache 512 MiB")):
                x = lat[k]
                rows.append((f"  {label} p50 / p99", f"{x['p50_s'] * 1e3:.2f} / {x['p99_s'] * 1e3:.2f}",
                             f"{x['mean_bytes'] / 2**20:.2f} MiB per chunk"))
            rows.append(("  p50 lower by", f"{lat['xpublish']['p50_s'] / lat['atlasfs']['p50_s']:.1f}×", f"goal ≥{GOAL_P50:g}×"))
        mem = v.get("atlasfs_daemon_memory")
        if mem:
            rows.append(("atlasfs serve RSS / peak (MiB)", f"{mem['rss_mib']:.0f} / {mem['peak_rss_mib']:.0f}", "at the end"))
        out.append("")
        out.extend(table(rows))
        out += ["", "ratios"] + ["  " + x["text"] for x in v["ratios"]] + [""]
        return "\n".join(out)

    def run(self) -> int:
        self.preflight()
        env = self.environment("xpublish", "xpublish-zarr", "uvicorn", "aiohttp")
        missing = [p for p in ("xpublish", "xpublish-zarr", "uvicorn", "aiohttp") if env["packages"][p] is None]
        if missing:
            raise BenchError(f"not installed in this environment (scripts/bench-requirements.txt): {', '.join(missing)}")
        v = self.http_results
        v.update({"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "cache_mode": self.mode, "quick": self.args.quick, "environment": env})
        try:
            v.update(self.bench_http())
        finally:
            for s in self.servers:
                s.stop()
        self.publish("http", v)
        return 0 if v["values"]["equal"] else 1


def dims(sizes: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sizes.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round and 40 GETs (a smoke test)")
    p.add_argument("--warm", action="store_true", help="cold rounds with the sources in the OS page cache instead of dropping it")
    p.add_argument("--repeat", type=int, default=3, help="rounds of each load (median; default 3)")
    p.add_argument("--gets", type=int, default=200, help="GETs per server for each latency variant (default 200)")
    args, _unknown = p.parse_known_args()  # scripts/bench passes every script the same options
    if args.repeat < 1 or args.gets < 1:
        p.error("--repeat and --gets must be at least 1")
    return run_main("bench_http", lambda: HttpBench(args).run(), "servers were stopped")


if __name__ == "__main__":
    sys.exit(main())
