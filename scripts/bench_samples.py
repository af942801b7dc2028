#!/usr/bin/env python3
"""Benchmark sample sets (ML training samples cut from an ARCO-like Zarr store) against the
loaders ML users run today, every figure measured in one run on one machine.

Normally started by scripts/bench (after the others; `scripts/bench --samples-only` runs only
this), which prepares .venv-bench.

The store and the anchors are the shared baseline_samples.py: `make DIR --steps 48 --samples 256`
writes an ERA5-like store laid out like ARCO-ERA5 (one global 721x1440 float32 time step per
chunk, zstd, Zarr v3) and 256 sodeda-style descriptors of 32x32-point boxes over 4 steps (16 KB
samples); this script derives 256 boxes of 128x128 points over 4 steps (256 KB samples) from the
same store. atlasfs serves the store as dataset `era5` with

    [[samples]]  name = "sets/boxes",    from = "era5", descriptors = "boxes.jsonl"
    [[samples]]  name = "sets/boxes128", from = "era5", descriptors = "boxes128.jsonl"

Every loader runs in a fresh interpreter with 2 worker processes (pool start-up not timed) over
the baseline's split: the sample indices shuffled with Random(9), worker w taking items[w::2].
The atlasfs loader reads each sample with `np.fromfile` of its chunk file (`t2m/c.<s>.0.0.0`).
The mount has `[mount] open = "kernel"`, the setting the README gives for training loaders: the
kernel opens sample files without a round trip to the daemon. Epoch 2 after a remount is also
measured with the default (`open = "daemon"`: each open asks the daemon, which checks the
sample's sources and passes cached entries through), for information.

The FUSE floor: examples/fuse_floor.rs, a FUSE filesystem that does no work per request, serves
the same sample files from memory with atlasfs's mount options and threads; the same loader reads
them in each atlasfs round, on a fresh mount and again on the same mount (the kernel opening files
itself, as with `open = "kernel"`), and on a fresh mount answering every open. What no FUSE daemon
can beat on this machine: a goal above it is reported as below the FUSE floor.
Rounds alternate atlasfs and the anchors (which goes first alternates too); figures are medians.

- Epoch 1 (cold): a fresh cache dir and a fresh mount (not timed; its time is reported), the OS
  page cache dropped. Anchors: `baseline_samples.py run` in the same round (sodeda-like epoch 1,
  xbatcher 0.4, and the local .npy limit), the OS page cache dropped before it.
- Epoch 1 from S3: the store uploaded to moto on loopback behind the fault-injecting proxy, every
  request delayed by 20 ms; anchor: the baseline's sodeda-like epoch 1 over s3fs through the same
  proxy. The bytes the proxy sent are compared with the chunk objects any sample touches.
- Epoch 2: the same loader again on the same mount, after a remount with the cache's entry files
  in the OS page cache (as the baseline's freshly written .npy files are), and after a remount
  with the OS page cache dropped, against the local .npy limit of the same round (the last one
  against the same .npy files read with the OS page cache dropped too); and the cost of one
  open + read + close of a cached sample file through the mount against a local copy.
- Read amplification of epoch 1: `decoded` of `atlasfs cache stats --json` over the distinct
  source chunks (time steps) the samples touch.
- Hit rate: `[cache] max_size` half the 16 KB set's bytes, epoch 1, remount, epoch 2, in
  sequential and in random order (epoch 2 of the random case reshuffled with another seed);
  hit rate = 1 - samples computed / reads of epoch 2 (`computed` less `decoded`: a local store's
  chunks are computed in memory only and counted in both), against an LRU of the same size
  simulated over the same order.

Prints a table and writes results_samples.json next to the archives.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
from bench import CHILD_CHUNK_LATENCY, REPO, BenchError, run_main, say, tail  # noqa: E402

FLOOR = REPO / "target" / "release" / "examples" / "fuse_floor"
from bench_views import ViewsBench, pkg_version  # noqa: E402

STEPS = 48
SAMPLES = 256
WORKERS = 2
VAR_T2M = "t2m"
SETS = {"16k": ("sets/boxes", "boxes.jsonl", 32), "256k": ("sets/boxes128", "boxes128.jsonl", 128)}
WINDOW = 4  # time steps per sample
S3_LATENCY_S = 0.020
BUCKET = "samples"
GOALS = {"epoch1": 10.0, "epoch1_s3": 10.0, "epoch2_16k": 0.5, "epoch2_256k": 0.8, "amplification": 1.1,
         "hit_slack": 0.05}
# Seeds: the baseline's shuffle, and the reshuffle of the second random epoch of the hit-rate rows.
SEED = 9
SEED_EPOCH2 = 10
SEED_BOXES128 = 6

# One epoch over a sample set with `np.fromfile` per sample. argv: scripts dir, shared dir, JSON of
# {root, dtype, count, n, order, seed}. The order is the baseline's (Random(seed) over the items,
# worker w takes items[w::workers]) or sequential (worker w takes a contiguous half).
CHILD_EPOCH = r"""
import json, random, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import numpy as np
from baseline_samples import timed_pool
from bench_samples import fromfile_part, split_items
a = json.loads(sys.argv[3])
split = split_items(a["n"], a["workers"], a["order"], a["seed"])
rate = timed_pool(fromfile_part, [(a["root"], a["dtype"], a["count"], s) for s in split], a["workers"])
print(json.dumps({"rate": rate, "seconds": a["n"] / rate}))
"""

# The baseline's sodeda-like epoch 1 over a store URL (s3fs through the proxy). argv: shared dir,
# store URL, pickle dir, descriptors, n, workers. The s3fs endpoint and credentials come from the
# environment (FSSPEC_S3_ENDPOINT_URL, AWS_*).
CHILD_SODEDA = r"""
import json, os, random, shutil, sys
sys.path[:0] = [sys.argv[1]]
import numpy as np, xarray as xr, s3fs
from baseline_samples import _epoch1, timed_pool
store, cache, desc, n, workers = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
items = list(enumerate(json.loads(l) for l in open(desc)))[:n]
random.Random(9).shuffle(items)
split = [items[w::workers] for w in range(workers)]
shutil.rmtree(cache, ignore_errors=True)
os.makedirs(cache)
rate = timed_pool(_epoch1, [(store, cache, s) for s in split], workers)
print(json.dumps({"rate": rate, "seconds": n / rate}))
"""

# The baseline's .npy limit over the .npy files its last run left (for the same limit with the OS
# page cache dropped first). argv: shared dir, .npy dir, n, workers.
CHILD_NPY = r"""
import json, random, sys
sys.path[:0] = [sys.argv[1]]
from baseline_samples import _npy, timed_pool
d, n, workers = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
items = [(k, None) for k in range(n)]
random.Random(9).shuffle(items)
rate = timed_pool(_npy, [(d, items[w::workers]) for w in range(workers)], workers)
print(json.dumps({"rate": rate, "seconds": n / rate}))
"""

# Every sample read through the mount against the baseline's own selection of it (the .npy files
# `baseline_samples.py run` writes, `_sel` of xarray on the store). argv: JSON of {root, dtype,
# shape, npy, n}.
CHILD_CHECK = r"""
import json, os, sys
import numpy as np
a = json.loads(sys.argv[1])
bad, worst = [], 0.0
for k in range(a["n"]):
    got = np.fromfile(os.path.join(a["root"], f"c.{k}.0.0.0"), dtype=a["dtype"])
    want = np.load(os.path.join(a["npy"], f"{k}.npy"))
    if got.size != want.size or not np.array_equal(got.reshape(want.shape), want, equal_nan=True):
        bad.append(k)
        if got.size == want.size:
            worst = max(worst, float(np.nanmax(np.abs(got.reshape(want.shape).astype("f8") - want))))
print(json.dumps({"checked": a["n"], "bad": bad[:20], "n_bad": len(bad), "max_abs_diff": worst}))
"""


# --- helpers imported by the children ------------------------------------------------------------
def split_items(n: int, workers: int, order: str, seed: int) -> list[list[int]]:
    """The sample indices each loader worker reads: the baseline's random split, or contiguous
    blocks (a sequential epoch)."""
    items = list(range(n))
    if order == "random":
        random.Random(seed).shuffle(items)
        return [items[w::workers] for w in range(workers)]
    per = -(-n // workers)
    return [items[w * per:(w + 1) * per] for w in range(workers)]


def read_order(n: int, workers: int, order: str, seed: int) -> list[int]:
    """The order the workers' reads interleave in (one item of each in turn), for the simulation."""
    parts = split_items(n, workers, order, seed)
    out = []
    for i in range(max(len(p) for p in parts)):
        out.extend(p[i] for p in parts if i < len(p))
    return out


def fromfile_part(args) -> int:
    """One loader worker: `np.fromfile` of each of its samples' chunk files."""
    import numpy as np

    root, dtype, count, items = args
    for k in items:
        a = np.fromfile(f"{root}/c.{k}.0.0.0", dtype=dtype)
        if a.size != count:
            raise RuntimeError(f"sample {k}: {a.size} values, expected {count}")
    return len(items)


def simulate_lru(capacity: int, epochs: list[list[int]]) -> float:
    """Hit rate of the last epoch of an LRU cache holding `capacity` samples over the epochs."""
    cache: collections.OrderedDict = collections.OrderedDict()
    hits = 0
    for e, order in enumerate(epochs):
        hits = 0
        for k in order:
            if k in cache:
                cache.move_to_end(k)
                hits += 1
            else:
                cache[k] = True
                if len(cache) > capacity:
                    cache.popitem(last=False)
    return hits / len(epochs[-1])


def boxes(lat, lon, times, n: int, side: int, seed: int) -> list[dict]:
    """sodeda-style descriptors of side x side boxes over WINDOW steps, as the baseline writes its
    32x32 ones (latitude given in either order)."""
    pick = random.Random(seed)
    out = []
    for _ in range(n):
        i, j, k = pick.randrange(len(lat) - side), pick.randrange(len(lon) - side), pick.randrange(len(times) - WINDOW)
        la = [float(lat[i]), float(lat[i + side - 1])]
        if pick.random() < 0.5:
            la.reverse()
        out.append({"time": {"start": str(times[k]), "end": str(times[k + WINDOW - 1])},
                    "latitude": {"start": la[0], "end": la[1]},
                    "longitude": {"start": float(lon[j]), "end": float(lon[j + side - 1])},
                    "variable": [VAR_T2M]})
    return out


def find_key(d, key: str):
    """The first value of `key` anywhere in nested dicts (breadth first), or None."""
    queue = [d]
    while queue:
        x = queue.pop(0)
        if isinstance(x, dict):
            if key in x and not isinstance(x[key], dict):
                return x[key]
            queue.extend(v for v in x.values() if isinstance(v, dict))
    return None


class SamplesBench(ViewsBench):
    bin_dirname = "bin-samples"

    def __init__(self, args):
        super().__init__(args)
        self.res: dict = {}
        self.mode_note = ""
        self.dir = self.data / "samples"
        self.dir128 = self.data / "samples-128"
        self.mp = self.work / "mnt-samples"

    @property
    def trash(self) -> Path:
        return self.work / "samples-trash"

    # --- data ----------------------------------------------------------------------------------
    def baseline(self) -> Path:
        p = self.shared / "baseline_samples.py"
        if not p.is_file():
            raise BenchError(f"{p} is missing (set ATLASFS_SHARED_BENCH to the shared bench/ directory)")
        return p

    def make_store(self) -> None:
        """`baseline_samples.py make DIR --steps 48 --samples 256` once (a marker records the
        parameters), and the 128x128 descriptors in a second directory over the same store."""
        marker = self.data / "samples.complete"
        params = json.dumps([STEPS, SAMPLES, SEED_BOXES128])
        if not (marker.is_file() and marker.read_text().strip() == params and (self.dir / "era5.zarr").is_dir()):
            say(f"store: baseline_samples.py make {self.dir} --steps {STEPS} --samples {SAMPLES} (once)")
            marker.unlink(missing_ok=True)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, str(self.baseline()), "make", str(self.dir), "--steps", str(STEPS),
                                   "--samples", str(SAMPLES)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BenchError(f"baseline_samples.py make failed:\n{tail(proc.stderr)}")
            self.write_boxes128()
            marker.write_text(params + "\n")
            say(f"  {time.perf_counter() - t:.0f} s")
        else:
            say(f"store: reusing {self.dir}")
        self.store_files = sorted(p for p in (self.dir / "era5.zarr").rglob("*") if p.is_file())

    def write_boxes128(self) -> None:
        import xarray as xr

        ds = xr.open_zarr(self.dir / "era5.zarr", chunks=None)
        lines = boxes(ds.latitude.values, ds.longitude.values, ds.time.values.astype("datetime64[h]"), SAMPLES, 128,
                      SEED_BOXES128)
        shutil.rmtree(self.dir128, ignore_errors=True)
        self.dir128.mkdir(parents=True)
        (self.dir128 / "era5.zarr").symlink_to(self.dir / "era5.zarr")
        text = "".join(json.dumps(x) + "\n" for x in lines)
        (self.dir128 / "boxes.jsonl").write_text(text)
        (self.dir / "boxes128.jsonl").write_text(text)

    def descriptors(self, kind: str) -> list[dict]:
        return [json.loads(l) for l in (self.dir / SETS[kind][1]).read_text().splitlines() if l.strip()][:SAMPLES]

    def touched_steps(self, kind: str) -> list[int]:
        """The time steps (source chunks) any sample of the set reads."""
        import numpy as np
        import xarray as xr

        t = xr.open_zarr(self.dir / "era5.zarr", chunks=None).time.values
        steps = set()
        for d in self.descriptors(kind):
            a, b = sorted((np.datetime64(d["time"]["start"]), np.datetime64(d["time"]["end"])))
            steps.update(int(i) for i in np.nonzero((t >= a) & (t <= b))[0])
        return sorted(steps)

    # --- configuration -------------------------------------------------------------------------
    def write_config(self, name: str, zarr: str, storage: str = "", memory: str | None = None,
                     max_size: int | None = None, kinds: tuple[str, ...] = ("16k", "256k"),
                     open_by: str = "kernel", cache_name: str | None = None) -> tuple[Path, Path]:
        cache = self.work / f"cache-{cache_name or name}"
        path = self.work / f"{name}.toml"
        sets = "".join(f"\n[[samples]]\nname = {json.dumps(SETS[k][0])}\nfrom = \"era5\"\n"
                       f"descriptors = {json.dumps(str(self.dir / SETS[k][1]))}\n" for k in kinds)
        path.write_text("# written by scripts/bench_samples.py\n"
                        f"[mount]\nopen = {json.dumps(open_by)}\n\n"
                        f"[cache]\ndir = {json.dumps(str(cache))}\nmemory = {json.dumps(memory or self.args.memory)}\n"
                        + (f"max_size = {max_size}\n" if max_size is not None else "")
                        + f"\n[[dataset]]\nname = \"era5\"\nzarr = {json.dumps(zarr)}\n{storage}{sets}")
        return path, cache

    def set_layout(self, kind: str) -> dict:
        """dtype, sample shape and values per sample of a set's `t2m`, from its zarr.json on the mount."""
        import numpy as np

        meta = json.loads((self.mp / SETS[kind][0] / VAR_T2M / "zarr.json").read_text())
        shape = meta["shape"]
        chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        endian = "<"
        for c in meta.get("codecs", []):
            if c.get("name") == "bytes":
                endian = "<" if (c.get("configuration") or {}).get("endian", "little") == "little" else ">"
        dtype = endian + np.dtype(meta["data_type"]).str[1:]
        want = [SAMPLES, WINDOW, SETS[kind][2], SETS[kind][2]]
        if shape != want or chunks != [1] + want[1:]:
            raise BenchError(f"{SETS[kind][0]}/{VAR_T2M}: shape {shape}, chunks {chunks}; expected {want}, "
                             f"chunks {[1] + want[1:]}")
        return {"root": str(self.mp / SETS[kind][0] / VAR_T2M), "dtype": dtype, "count": int(np.prod(want[1:])),
                "sample_bytes": int(np.prod(want[1:])) * np.dtype(dtype).itemsize}

    # --- steps ---------------------------------------------------------------------------------
    def fresh_mount(self, config: Path, cache: Path, empty: bool = True) -> tuple[float, int]:
        """A fresh mount (over an empty cache dir when `empty`), the OS page cache dropped (cold
        mode) or the store files read into it (warm mode)."""
        if self.is_mounted(self.mp):
            self.unmount(self.mp)
        if empty:
            self.discard(cache)
            cache.mkdir(parents=True)
        self.prepare_cache(self.store_files)
        return self.mount(config, self.mp)

    def epoch(self, layout: dict, order: str = "random", seed: int = SEED) -> dict:
        a = {k: layout[k] for k in ("root", "dtype", "count")}
        a.update(n=SAMPLES, workers=WORKERS, order=order, seed=seed)
        return self.child(CHILD_EPOCH, str(SCRIPTS), str(self.shared), json.dumps(a), what="a loader epoch",
                          timeout=1800)

    def settled_stats(self, config: Path) -> dict:
        """`cache stats --json` once the daemon's counters stopped moving (it rewrites them at most
        once a second)."""
        last = None
        for _ in range(8):
            time.sleep(1.1)
            s = self.cache_stats(config) or {}
            m = dict(s.get("mount") or {})
            m.pop("updated_unix", None)
            if last is not None and m == last:
                return s
            last = m
        return s

    @staticmethod
    def counters(stats: dict) -> dict:
        m = stats.get("mount") or {}
        out = {"computed": find_key(m, "computed"), "decoded": find_key(m, "decoded")}
        cache = m.get("cache") if isinstance(m.get("cache"), dict) else m
        out["memory_hits"] = (cache.get("memory") or {}).get("hits") if isinstance(cache.get("memory"), dict) else None
        out["disk_hits"] = (cache.get("disk") or {}).get("hits") if isinstance(cache.get("disk"), dict) else None
        out["passthrough"] = (cache.get("disk") or {}).get("passthrough") if isinstance(cache.get("disk"), dict) else None
        return out

    def anchor_run(self, kind: str) -> dict:
        """`baseline_samples.py run DIR` (the 16 KB set) or over the 128x128 descriptors, the OS
        page cache in the run's mode first."""
        d = self.dir if kind == "16k" else self.dir128
        self.prepare_cache(self.store_files)
        proc = subprocess.run([sys.executable, str(self.baseline()), "run", str(d), "--n", str(SAMPLES),
                               "--workers", str(WORKERS)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=3600)
        if proc.returncode != 0:
            raise BenchError(f"baseline_samples.py run {d} failed:\n{tail(proc.stderr)}")
        m = re.search(r"sodeda-like epoch1 ([\d.]+)/s\s+epoch2 ([\d.]+)/s\s+xbatcher ([\d.]+)/s\s+raw-npy-limit ([\d.]+)/s",
                      proc.stdout)
        if not m:
            raise BenchError(f"baseline_samples.py run printed no figures line:\n{tail(proc.stdout)}")
        out = {"sodeda_epoch1": float(m.group(1)), "sodeda_epoch2": float(m.group(2)), "xbatcher": float(m.group(3)),
               "npy_limit": float(m.group(4)), "npy": str(d / "npy")}
        if self.mode == "cold":
            self.drop_caches()
            out["npy_limit_cold"] = self.child(CHILD_NPY, str(self.shared), out["npy"], str(SAMPLES), str(WORKERS),
                                               what="the .npy limit, page cache dropped")["rate"]
        return out

    def floor_epochs(self, layout: dict, kind: str) -> dict:
        """The loader over the FUSE floor serving copies of the same sample files (copied from
        the mount at the first call): a fresh mount and the same mount again with the kernel
        opening files itself, and a fresh mount answering every open."""
        if not FLOOR.is_file():
            raise BenchError(f"{FLOOR} is missing: `cargo build --release --example fuse_floor` "
                             "(scripts/bench does)")
        src = self.work / f"floor-files-{kind}"
        if not src.is_dir():
            tmp = src.with_name(src.name + ".tmp")
            self.discard(tmp)
            tmp.mkdir(parents=True)
            for k in range(SAMPLES):
                name = f"c.{k}.0.0.0"
                (tmp / name).write_bytes(Path(layout["root"], name).read_bytes())
            tmp.rename(src)
        mp = self.work / "mnt-floor"
        out = {}
        for flags, epochs in ((["--no-open"], ("floor_fresh", "floor_same")), ([], ("floor_fresh_opens",))):
            if self.is_mounted(mp):
                subprocess.run(["umount", "-l", str(mp)], capture_output=True)
            mp.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen([str(FLOOR), str(src), str(mp), *flags])
            try:
                deadline = time.monotonic() + 20
                while not self.is_mounted(mp):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f"fuse_floor did not mount at {mp} (exit {proc.poll()})")
                    time.sleep(0.05)
                for name in epochs:
                    out[name] = self.epoch(dict(layout, root=str(mp)))["rate"]
            finally:
                subprocess.run(["umount", str(mp)], capture_output=True)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    subprocess.run(["umount", "-l", str(mp)], capture_output=True)
        return out

    def atlas_round(self, config: Path, cache: Path, kind: str, steps: int, daemon_open: Path) -> dict:
        """Epoch 1 cold (fresh cache dir and mount), epoch 2 on the same mount, epoch 2 after a
        remount with the cache's entries in the OS page cache (also with `daemon_open`, the same
        config but for `[mount] open = "daemon"`), epoch 2 after a remount with the OS page cache
        dropped."""
        r: dict = {}
        r["mount_s"], pid = self.fresh_mount(config, cache)
        layout = self.set_layout(kind)
        e1 = self.epoch(layout)
        r["epoch1"] = e1["rate"]
        r["epoch1_s"] = e1["seconds"]
        r["stats_epoch1"] = self.counters(self.settled_stats(config))
        dec = r["stats_epoch1"]["decoded"]
        r["amplification"] = None if dec is None else dec / steps
        r["epoch2_same_mount"] = self.epoch(layout)["rate"]
        self.unmount(self.mp)
        self.read_into_os_cache(self.cache_entries(cache))
        self.mount(daemon_open, self.mp)
        r["epoch2_remount_warm_daemon_open"] = self.epoch(layout)["rate"]
        self.unmount(self.mp)
        self.mount(config, self.mp)
        r["epoch2_remount_warm"] = self.epoch(layout)["rate"]
        self.unmount(self.mp)
        if self.mode == "cold":
            self.drop_caches()
        self.mount(config, self.mp)
        r["epoch2_remount"] = self.epoch(layout)["rate"]
        r["stats_epoch2_remount"] = self.counters(self.settled_stats(config))
        r.update(self.floor_epochs(layout, kind))
        r["layout"] = layout
        return r

    def check_values(self, config: Path, cache: Path, kind: str, npy: str) -> dict:
        """Every sample through the mount (over the last round's cache) against the baseline's .npy
        of it (not timed)."""
        if not self.is_mounted(self.mp):
            self.mount(config, self.mp)
        layout = self.set_layout(kind)
        a = {"root": layout["root"], "dtype": layout["dtype"], "npy": npy, "n": SAMPLES}
        return self.child(CHILD_CHECK, json.dumps(a), what="checking the samples' values")

    def open_cost(self, config: Path, cache: Path) -> dict:
        """One open + read + close of a cached 16 KB sample file through the mount against a local
        copy of the same files, interleaved (bench.py's one-chunk latency reader)."""
        if not self.is_mounted(self.mp):
            self.mount(config, self.mp)
        layout = self.set_layout("16k")
        files = [f"{layout['root']}/c.{k}.0.0.0" for k in range(SAMPLES)]
        local = self.work / "samples-local-copy"
        self.discard(local)
        local.mkdir(parents=True)
        copies = []
        for k, f in enumerate(files):
            p = local / f"{k}.bin"
            p.write_bytes(Path(f).read_bytes())
            copies.append(str(p))
        os.sync()
        for f in files + copies:  # both sets read once more, so both are in the OS page cache
            Path(f).read_bytes()
        out = self.child(CHILD_CHUNK_LATENCY, *files, *copies, what="timing single opens")
        self.discard(local)
        return out

    # --- parts ---------------------------------------------------------------------------------
    def local_epochs(self, v: dict) -> None:
        for kind in SETS:
            self.discard(self.work / f"floor-files-{kind}")  # copied from this run's mount
        config, cache = self.write_config("samples-local", str(self.dir / "era5.zarr"))
        daemon_open, _ = self.write_config("samples-local-daemon-open", str(self.dir / "era5.zarr"),
                                           open_by="daemon", cache_name="samples-local")
        self.atlas("check", str(config), timeout=300)
        tree = self.atlas("tree", str(config)).stdout
        v["tree_notes"] = [l.strip() for l in tree.splitlines() if "samples" in l and ("line" in l or "left out" in l)][:10]
        steps = {k: self.touched_steps(k) for k in SETS}
        v["touched_steps"] = {k: len(s) for k, s in steps.items()}
        for kind in SETS:
            side = SETS[kind][2]
            say(f"{side}x{side} boxes ({kind} samples): epoch 1 cold (fresh cache dir and mount, {self.mode} OS page "
                f"cache), epoch 2 on the same mount and after a remount, against baseline_samples.py run")

            def atlas_run(i: int, kind=kind) -> dict:
                r = self.atlas_round(config, cache, kind, len(steps[kind]), daemon_open)
                s1 = r["stats_epoch1"]
                say(f"  round {i + 1}: atlasfs epoch 1 {r['epoch1']:.0f}/s (mount {r['mount_s']:.2f} s; decoded "
                    f"{s1['decoded']}, computed {s1['computed']}), epoch 2 same mount {r['epoch2_same_mount']:.0f}/s, "
                    f"after a remount {r['epoch2_remount_warm']:.0f}/s (entries in the OS page cache; "
                    f"{r['epoch2_remount_warm_daemon_open']:.0f}/s with open = \"daemon\"), "
                    f"{r['epoch2_remount']:.0f}/s (page cache dropped); FUSE floor {r['floor_fresh']:.0f}/s fresh "
                    f"mount, {r['floor_same']:.0f}/s same mount, {r['floor_fresh_opens']:.0f}/s fresh answering opens")
                return r

            def anchor_run(i: int, kind=kind) -> dict:
                an = self.anchor_run(kind)
                cold = f", {an['npy_limit_cold']:.0f}/s page cache dropped" if "npy_limit_cold" in an else ""
                say(f"  round {i + 1}: sodeda-like epoch 1 {an['sodeda_epoch1']:.1f}/s, epoch 2 {an['sodeda_epoch2']:.0f}/s, "
                    f"xbatcher {an['xbatcher']:.1f}/s, .npy limit {an['npy_limit']:.0f}/s{cold}")
                return an

            mine, theirs = self.alternate(atlas_run, anchor_run)
            med = lambda xs, k: statistics.median(x[k] for x in xs if x.get(k) is not None) \
                if any(x.get(k) is not None for x in xs) else None  # noqa: E731
            v[kind] = {
                "atlasfs": {k: med(mine, k) for k in ("epoch1", "epoch2_same_mount", "epoch2_remount_warm",
                                                      "epoch2_remount_warm_daemon_open", "epoch2_remount",
                                                      "mount_s", "amplification", "floor_fresh", "floor_same",
                                                      "floor_fresh_opens")},
                "anchor": {k: med(theirs, k) for k in ("sodeda_epoch1", "sodeda_epoch2", "xbatcher", "npy_limit",
                                                       "npy_limit_cold")},
                "atlasfs_runs": [{k: x[k] for k in x if k != "layout"} for x in mine],
                "anchor_runs": [{k: x[k] for k in x if k != "npy"} for x in theirs],
                "sample_bytes": mine[-1]["layout"]["sample_bytes"], "dtype": mine[-1]["layout"]["dtype"],
            }
            # The baseline's last round left its .npy files: every sample against them.
            ver = self.check_values(config, cache, kind, theirs[-1]["npy"])
            v[kind]["values"] = ver
            differing = f" (differing: {ver['bad']})" if ver["n_bad"] else ""
            say(f"  values: {ver['checked'] - ver['n_bad']} of {ver['checked']} samples equal the baseline's "
                f"xarray .sel{differing}")
            if kind == "16k":
                say("one open + read + close of a cached 16 KB sample file, through the mount and from a local copy")
                v["open_cost"] = self.open_cost(config, cache)
                oc = v["open_cost"]
                say(f"  p50 mount {oc['mount']['p50_s'] * 1e3:.3f} ms, local {oc['local']['p50_s'] * 1e3:.3f} ms "
                    f"(p99 {oc['mount']['p99_s'] * 1e3:.3f} / {oc['local']['p99_s'] * 1e3:.3f} ms)")
            self.unmount(self.mp)

    def hit_rates(self, v: dict) -> None:
        sample_bytes = v["16k"]["sample_bytes"]
        set_bytes = sample_bytes * SAMPLES
        max_size = set_bytes // 2
        config, cache = self.write_config("samples-hit", str(self.dir / "era5.zarr"), memory=self.args.hit_memory,
                                          max_size=max_size, kinds=("16k",))
        h = v["hit"] = {"max_size": max_size, "set_bytes": set_bytes, "memory": self.args.hit_memory,
                        "goal": max_size / set_bytes - GOALS["hit_slack"]}
        for order in ("sequential", "random"):
            say(f"hit rate, {order}: [cache] max_size {max_size} bytes (half the set), memory {self.args.hit_memory}; "
                "epoch 1, remount, epoch 2")
            self.fresh_mount(config, cache)
            layout = self.set_layout("16k")
            self.epoch(layout, order, SEED)
            s1 = self.counters(self.settled_stats(config))
            self.unmount(self.mp)
            entries = [p for p in self.cache_entries(cache) if p.stat().st_size == sample_bytes]
            if self.mode == "cold":
                self.drop_caches()
            self.mount(config, self.mp)
            e2 = self.epoch(layout, order, SEED_EPOCH2 if order == "random" else SEED)
            s2 = self.counters(self.settled_stats(config))
            self.unmount(self.mp)
            # A local store's chunks are computed in memory only, each counted in `computed` and in
            # `decoded`: the samples computed are the difference.
            samples_computed = None if s2["computed"] is None else s2["computed"] - (s2["decoded"] or 0)
            rate = None if samples_computed is None else 1 - samples_computed / SAMPLES
            lru = simulate_lru(SAMPLES // 2, [read_order(SAMPLES, WORKERS, order, SEED),
                                              read_order(SAMPLES, WORKERS, order,
                                                         SEED_EPOCH2 if order == "random" else SEED)])
            h[order] = {"hit_rate": rate, "samples_computed": samples_computed, "lru_simulated": lru,
                        "epoch1_stats": s1, "epoch2_stats": s2,
                        "sample_entries_after_epoch1": len(entries), "epoch2_rate": e2["rate"]}
            say(f"  epoch 2: {samples_computed} samples computed of {SAMPLES} reads (computed {s2['computed']} - "
                f"decoded source chunks {s2['decoded']}): hit rate {'—' if rate is None else f'{rate:.3f}'} "
                f"(memory hits {s2['memory_hits']}, disk hits {s2['disk_hits']}); "
                f"{len(entries)} sample entries on disk after epoch 1; LRU (simulated) {lru:.3f}")

    def s3_epochs(self, v: dict) -> None:
        sys.path.insert(0, str(REPO / "tests" / "python"))
        from bench_s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
        from faulty_proxy import FaultyProxy
        import boto3

        os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
                          AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            os.environ.pop(k, None)
        server = S3Server()
        ep = server.start()
        proxy = None
        try:
            s3 = boto3.client("s3", endpoint_url=ep, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
            s3.create_bucket(Bucket=BUCKET)
            root = self.dir / "era5.zarr"
            sizes = {}
            for p in sorted(x for x in root.rglob("*") if x.is_file()):
                key = f"era5.zarr/{p.relative_to(root).as_posix()}"
                s3.put_object(Bucket=BUCKET, Key=key, Body=p.read_bytes())
                sizes[key] = p.stat().st_size
            host, port = ep.rsplit("//", 1)[1].split(":")
            proxy = FaultyProxy(host, int(port))
            proxy.inject("delay", times=None, seconds=S3_LATENCY_S)
            os.environ["FSSPEC_S3_ENDPOINT_URL"] = proxy.endpoint
            steps = self.touched_steps("16k")
            touched_bytes = sum(sizes[f"era5.zarr/t2m/c/{s}/0/0"] for s in steps if f"era5.zarr/t2m/c/{s}/0/0" in sizes)
            url = f"s3://{BUCKET}/era5.zarr"
            storage = (f"[dataset.storage]\nregion = {json.dumps(REGION)}\nendpoint = {json.dumps(proxy.endpoint)}\n")
            config, cache = self.write_config("samples-s3", url, storage=storage, kinds=("16k",))
            say(f"epoch 1 from S3 (moto on loopback behind a proxy adding {S3_LATENCY_S * 1e3:.0f} ms per request; "
                f"{len(sizes)} objects, {sum(sizes.values()) / 1e6:.0f} MB): atlasfs (fresh cache dir and mount) "
                "against the sodeda-like epoch 1 over s3fs")

            def traffic(since: float) -> dict:
                reqs = proxy.requests(since=since)
                gets = [r for r in reqs if r.method == "GET" and "/t2m/c/" in r.path]
                return {"requests": len(reqs), "chunk_gets": len(gets), "bytes": sum(r.body_bytes for r in reqs),
                        "chunk_bytes": sum(r.body_bytes for r in gets)}

            def atlas_run(i: int) -> dict:
                t0 = time.monotonic()
                mount_s, _ = self.fresh_mount(config, cache)
                t1 = time.monotonic()
                e = self.epoch(self.set_layout("16k"))
                st = self.counters(self.settled_stats(config))
                tr = traffic(t1)
                r = {"epoch1": e["rate"], "mount_s": mount_s, "mount_traffic": traffic(t0), "epoch_traffic": tr,
                     "stats": st, "fetch_amplification": tr["chunk_bytes"] / touched_bytes if touched_bytes else None}
                r["mount_traffic"] = {k: r["mount_traffic"][k] - tr[k] for k in tr}
                say(f"  round {i + 1}: atlasfs {e['rate']:.0f}/s (mount {mount_s:.2f} s, {r['mount_traffic']['requests']} "
                    f"requests); epoch: {tr['requests']} requests, {tr['chunk_gets']} chunk GETs, "
                    f"{tr['chunk_bytes'] / 1e6:.1f} MB of chunks ({r['fetch_amplification']:.2f}x the {len(steps)} touched "
                    f"chunk objects); decoded {st['decoded']}")
                return r

            def anchor_run(i: int) -> dict:
                self.prepare_cache(self.store_files)
                t0 = time.monotonic()
                an = self.child(CHILD_SODEDA, str(self.shared), url, str(self.work / "samples-sodeda-s3"),
                                str(self.dir / SETS["16k"][1]), str(SAMPLES), str(WORKERS),
                                what="the sodeda-like loader over s3fs", timeout=3600)
                an["traffic"] = traffic(t0)
                say(f"  round {i + 1}: sodeda-like over s3fs {an['rate']:.1f}/s ({an['traffic']['requests']} requests, "
                    f"{an['traffic']['chunk_bytes'] / 1e6:.0f} MB of chunks)")
                return an

            mine, theirs = self.alternate(atlas_run, anchor_run)
            ver = self.check_values(config, cache, "16k", str(self.dir / "npy"))
            self.unmount(self.mp)
            v["s3"] = {"latency_s": S3_LATENCY_S, "objects": len(sizes), "bytes": sum(sizes.values()),
                       "touched_chunk_bytes": touched_bytes,
                       "atlasfs": {"epoch1": statistics.median(x["epoch1"] for x in mine),
                                   "mount_s": statistics.median(x["mount_s"] for x in mine),
                                   "fetch_amplification": statistics.median(x["fetch_amplification"] for x in mine)},
                       "anchor": {"sodeda_epoch1": statistics.median(x["rate"] for x in theirs)},
                       "atlasfs_runs": mine, "anchor_runs": theirs, "values": ver}
            say(f"  values: {ver['checked'] - ver['n_bad']} of {ver['checked']} samples equal the baseline's xarray .sel")
        finally:
            if self.is_mounted(self.mp):
                self.unmount(self.mp)
            if proxy is not None:
                proxy.close()
            server.stop()
            os.environ.pop("FSSPEC_S3_ENDPOINT_URL", None)

    # --- report --------------------------------------------------------------------------------
    def goal_rows(self) -> list[dict]:
        v = self.res
        rows = []

        def add(work, atlas, anchor, ratio, goal, met, note="", limit=""):
            rows.append({"work": work, "atlasfs": atlas, "anchor": anchor, "ratio": ratio, "goal": goal, "met": met,
                         "note": note, "limit": limit})

        def speed(work, mine, theirs, anchor_name, goal, floor=None):
            """`floor`: what a FUSE daemon doing no work reads in the same conditions; a goal
            above it cannot be met through FUSE on this machine, and the row says so."""
            if mine is None or not theirs:
                add(work, "—", anchor_name, "—", goal, None)
                return
            f = mine / theirs
            limit = ""
            if floor and f < goal and floor < goal * theirs:
                limit = f"FUSE floor {floor / theirs:.2f}×"
            add(work, f"{mine:,.0f}/s", f"{theirs:,.1f}/s {anchor_name}", f"{f:.2f}×", f"≥ {goal}×", f >= goal,
                limit=limit)

        a16, n16 = v["16k"]["atlasfs"], v["16k"]["anchor"]
        faster = max(n16["sodeda_epoch1"], n16["xbatcher"])
        which = "sodeda-like" if n16["sodeda_epoch1"] >= n16["xbatcher"] else "xbatcher"
        speed("epoch 1 (cold), 16 KB, local store", a16["epoch1"], faster, which, GOALS["epoch1"])
        if "s3" in v:
            s = v["s3"]
            speed(f"epoch 1 (cold), 16 KB, S3 at {S3_LATENCY_S * 1e3:.0f} ms", s["atlasfs"]["epoch1"],
                  s["anchor"]["sodeda_epoch1"], "sodeda-like/s3fs", GOALS["epoch1_s3"])
        for kind, key in (("16k", "epoch2_16k"), ("256k", "epoch2_256k")):
            a, n = v[kind]["atlasfs"], v[kind]["anchor"]
            label = "16 KB" if kind == "16k" else "256 KB"
            speed(f"epoch 2 (warm), {label}, same mount", a["epoch2_same_mount"], n["npy_limit"], ".npy limit", GOALS[key])
            speed(f"epoch 2 (warm), {label}, remount, entries in page cache", a["epoch2_remount_warm"], n["npy_limit"],
                  ".npy limit", GOALS[key], a.get("floor_fresh"))
            if n.get("npy_limit_cold"):
                speed(f"epoch 2 (warm), {label}, remount, page cache dropped", a["epoch2_remount"], n["npy_limit_cold"],
                      ".npy, dropped", GOALS[key])
            else:
                speed(f"epoch 2 (warm), {label}, remount, page cache dropped", a["epoch2_remount"], n["npy_limit"],
                      ".npy limit", GOALS[key])
        for kind in SETS:
            amp = v[kind]["atlasfs"]["amplification"]
            label = "16 KB" if kind == "16k" else "256 KB"
            add(f"read amplification, epoch 1, {label}", "—" if amp is None else f"{amp:.2f}",
                f"{v['touched_steps'][kind]} source chunks", "—", f"≤ {GOALS['amplification']}",
                None if amp is None else amp <= GOALS["amplification"], "decoded / source chunks touched")
        if "s3" in v:
            fa = v["s3"]["atlasfs"]["fetch_amplification"]
            add("bytes fetched from S3, epoch 1, 16 KB", f"{fa:.2f}", "chunk objects touched", "—",
                f"≤ {GOALS['amplification']}", fa <= GOALS["amplification"], "proxy body bytes / object bytes")
        h = v["hit"]
        for order in ("sequential", "random"):
            x = h[order]
            rate = x["hit_rate"]
            add(f"hit rate, cache = set/2, {order}", "—" if rate is None else f"{rate:.3f}",
                f"{x['lru_simulated']:.3f} LRU (simulated)", "—", f"≥ {h['goal']:.2f}",
                None if rate is None else rate >= h["goal"] - 1e-9)
        return rows

    def report(self) -> str:
        v = self.res
        env = v["environment"]
        out = ["", f"atlasfs sample-set benchmark  {v['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})",
               f"  OS page cache: {self.mode_note}",
               f"  load average (1 min) at start {env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}",
               f"  store: {STEPS} global 721x1440 float32 steps, one per chunk, zstd, Zarr v3; {SAMPLES} samples of "
               f"{WINDOW}x32x32 (16 KB) and {WINDOW}x128x128 (256 KB); {WORKERS} loader processes, random order "
               f"(Random({SEED}), items[w::{WORKERS}]); medians of {v['rounds']} round(s); [cache] memory = {self.args.memory}",
               "  mount: [mount] open = \"kernel\" (the kernel opens sample files without asking the daemon; "
               "S3 and hit-rate rows too)",
               ""]
        rows = self.goal_rows()
        v["goals"] = rows
        head = ("work", "atlasfs", "anchor", "ratio", "goal", "met")
        cells = [head] + [(r["work"], r["atlasfs"], r["anchor"], r["ratio"], r["goal"],
                           ("—" if r["met"] is None else ("met" if r["met"] else "NOT MET"))
                           + (f" ({r['limit']})" if r.get("limit") else "")) for r in rows]
        w = [max(len(c[i]) for c in cells) for i in range(len(head))]
        for k, c in enumerate(cells):
            out.append("  ".join(x.ljust(w[i]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(c)).rstrip())
            if k == 0:
                out.append("-" * (sum(w) + 2 * (len(w) - 1)))
        out.append("")
        out.append("information")
        for kind in SETS:
            a, n = v[kind]["atlasfs"], v[kind]["anchor"]
            label = "16 KB" if kind == "16k" else "256 KB"
            out.append(f"  {label}: atlasfs epoch 1 {a['epoch1']:,.0f}/s (mount {a['mount_s']:.2f} s, not in the rate), "
                       f"epoch 2 {a['epoch2_same_mount']:,.0f}/s same mount, after a remount {a['epoch2_remount_warm']:,.0f}/s "
                       f"(entries in the OS page cache; {a['epoch2_remount_warm_daemon_open']:,.0f}/s with "
                       f"[mount] open = \"daemon\", {a['epoch2_remount_warm_daemon_open'] / n['npy_limit']:.2f}× the "
                       f".npy limit) and {a['epoch2_remount']:,.0f}/s (page cache dropped: "
                       f"{a['epoch2_remount'] / n['npy_limit']:.2f}× the .npy limit read from the page cache); "
                       f"sodeda-like epoch 1 {n['sodeda_epoch1']:.1f}/s, epoch 2 (pickles) {n['sodeda_epoch2']:,.0f}/s, "
                       f"xbatcher {n['xbatcher']:.1f}/s (1 process), .npy limit {n['npy_limit']:,.0f}/s (files just "
                       f"written, in the page cache)"
                       + (f", {n['npy_limit_cold']:,.0f}/s with the page cache dropped" if n.get("npy_limit_cold") else ""))
            if a.get("floor_fresh"):
                out.append(f"  {label}: FUSE floor (examples/fuse_floor.rs, no work per request, same files and loader): "
                           f"{a['floor_fresh']:,.0f}/s on a fresh mount ({a['floor_fresh'] / n['npy_limit']:.2f}× the .npy "
                           f"limit), {a['floor_same']:,.0f}/s again on the same mount ({a['floor_same'] / n['npy_limit']:.2f}×), "
                           f"{a['floor_fresh_opens']:,.0f}/s on a fresh mount answering every open "
                           f"({a['floor_fresh_opens'] / n['npy_limit']:.2f}×)")
            ver = v[kind]["values"]
            out.append(f"  {label}: {ver['checked'] - ver['n_bad']} of {ver['checked']} samples equal xarray's .sel "
                       "(the baseline's .npy)")
        oc = v.get("open_cost")
        if oc:
            m, l = oc["mount"]["p50_s"], oc["local"]["p50_s"]
            out.append(f"  one open + read + close of a cached 16 KB sample: mount p50 {m * 1e3:.3f} ms (p99 "
                       f"{oc['mount']['p99_s'] * 1e3:.3f}), local file p50 {l * 1e3:.3f} ms (p99 {oc['local']['p99_s'] * 1e3:.3f}); "
                       f"the mount costs {max(0.0, m - l) * 1e3:.3f} ms more (with open = \"kernel\" one round trip "
                       f"to the daemon: the isatty() ioctl Python's open() makes), a bound of {1 / m:,.0f} samples/s "
                       "per reader")
        if "s3" in v:
            s = v["s3"]
            out.append(f"  S3: mount {s['atlasfs']['mount_s']:.2f} s (listing through the proxy); {s['objects']} objects, "
                       f"{s['bytes'] / 1e6:.0f} MB; values {s['values']['checked'] - s['values']['n_bad']} of "
                       f"{s['values']['checked']} equal")
        h = v["hit"]
        for order in ("sequential", "random"):
            x = h[order]
            out.append(f"  hit rate {order}: epoch 2 computed {x['samples_computed']} samples of {SAMPLES} (counter computed "
                       f"{x['epoch2_stats']['computed']} - decoded {x['epoch2_stats']['decoded']}), memory hits "
                       f"{x['epoch2_stats']['memory_hits']}, disk hits {x['epoch2_stats']['disk_hits']}; "
                       f"{x['sample_entries_after_epoch1']} sample entries on disk after epoch 1 (max_size {h['max_size']} "
                       f"bytes = {h['max_size'] // v['16k']['sample_bytes']} samples); LRU simulated over the same order")
        if v.get("tree_notes"):
            out.append("  atlasfs tree notes: " + "; ".join(v["tree_notes"]))
        out.append("")
        return "\n".join(out)

    def run(self) -> int:
        import psutil

        self.preflight()
        self.baseline()
        shutil.rmtree(self.trash, ignore_errors=True)
        ver = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        v = self.res
        v.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cache_mode": self.mode, "quick": self.args.quick, "rounds": self.rounds,
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": ver[-1] if ver else "?", "git": self.git(),
                "packages": {**self.versions(), **{p: pkg_version(p) for p in ("xbatcher", "s3fs", "moto")}},
                "load_average_start": os.getloadavg(),
            },
        })
        try:
            self.make_store()
            self.local_epochs(v)
            self.hit_rates(v)
            if not self.args.no_s3:
                self.s3_epochs(v)
        finally:
            for m in list(self.mounts):
                self.unmount(m)
            shutil.rmtree(self.trash, ignore_errors=True)
        v["environment"]["load_average_end"] = os.getloadavg()
        v["table"] = self.report()
        out = self.data / "results_samples.json"
        out.write_text(json.dumps(v, indent=2, ensure_ascii=False, default=str) + "\n")
        print(v["table"])
        say(f"results written to {out}")
        bad = sum(v[k]["values"]["n_bad"] for k in SETS) + (v["s3"]["values"]["n_bad"] if "s3" in v else 0)
        return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round of everything (a smoke test)")
    p.add_argument("--warm", action="store_true", help="measure with the store in the OS page cache instead of dropping it")
    p.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median; default 3)")
    p.add_argument("--memory", default="512MiB", help="[cache] memory of the epoch mounts (default 512MiB)")
    p.add_argument("--hit-memory", default="1MiB",
                   help="[cache] memory of the hit-rate mounts (default 1MiB: the disk tier is what is measured)")
    p.add_argument("--no-s3", action="store_true", help="skip the object-storage rows")
    args, _unknown = p.parse_known_args()  # scripts/bench passes every script the same options
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return run_main("bench_samples", lambda: SamplesBench(args).run(), "mounts were unmounted")


if __name__ == "__main__":
    sys.exit(main())
