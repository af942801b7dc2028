#!/usr/bin/env python3
"""Benchmark an archive served as a DataTree (issue 3): xr.open_datatree of the mount against xarray
opening the same files leaf by leaf, everything measured in one run on one machine.

Normally started by scripts/bench (after scripts/bench.py; `scripts/bench --tree-only` runs only
this), which prepares .venv-bench.

The archive is a synthetic ISMIP6-like tree of 50 models x 10 experiments x 20 variables = 10,000
small NetCDF-4 files, `<model>/<experiment>/<variable>_AIS_<model>_<experiment>.nc`, each holding
one variable (time: 3, y: 10, x: 12; float32, zlib) and the x, y, time coordinates. It is
generated once (2 worker processes) and reused when present.

atlasfs serves it with `groups = ["model", "experiment"]` and `merge = "variable"`: one Zarr group
per model, one dataset per (model, experiment) leaf. Measured: the cold `atlasfs index` (empty
cache dir), `atlasfs mount` with the catalog built, and `xr.open_datatree(MOUNT/ismip6,
engine="zarr")` in fresh subprocesses (median; each on a fresh mount; imports not timed), with the
metadata documents each open reads counted in a separate run (consolidated metadata or not).

The anchor opens the same files as a user does today: per leaf `xr.open_mfdataset(files,
combine="by_coords")` or `xr.merge([xr.open_dataset(f) for f in files])` (both are probed on a few
leaves; the faster one is used), then `xr.DataTree.from_dict`, in a fresh subprocess. If the
probe predicts more than --anchor-budget seconds for all leaves, a random sample of 50 leaves is
timed and extrapolated. For both the anchor and the atlasfs opens the source files are in the OS
page cache (the anchor's best case); the index and the first mount run in the run's page-cache mode.

After the first mount the run copies the store recursively out of the mount (`cp -r`, which
also leaves the chunks it reads in atlasfs's cache) and opens that local copy the same way, round
by round with the mount's opens (which one goes first alternates): the goal is that the mount
opens within 1.1x of xarray on the local copy (the reader is the limit there).

Prints a table and adds the figures to results.json (key "tree") next to the archives.

With --scale (`scripts/bench --tree-only --scale`) it measures growth instead: archives of 10^3,
10^4 and 10^5 files from the same generator (5, 50 and 500 models), each with the cold `atlasfs
index` (empty cache dir), a warm re-index (nothing changed) and the mount (medians of 3 runs),
a yardstick of linear work (os.walk + os.stat of every file into a dict, in a fresh interpreter), `xr.open_datatree` of one
model subtree in a fresh subprocess, the daemon's RSS after that open and catalog.bin bytes per
file, and the growth factor of each between sizes (10x files: 10 is linear). Generating the
10^5-file archive takes about 5-6 minutes on 2 cores (once; reused); --scale-max 10000 leaves it
out. Results go to results.json under "tree_scale".
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = "ismip6"
PATTERN = "{model}/{experiment}/{variable}_AIS_{model}_{experiment}.nc"
# ISMIP6 output variable names (no underscores, so the pattern is unambiguous).
VARIABLES = ["lithk", "orog", "topg", "hfgeoubed", "acabf", "libmassbfgr", "libmassbffl", "dlithkdt",
             "velsurfx", "velsurfy", "velbasex", "velbasey", "velmean", "strbasemag", "licalvf",
             "lifmassbf", "ligroundf", "sftgif", "sftgrf", "sftflf", "uvelbase", "vvelbase"]
NT, NY, NX = 3, 10, 12
GOAL_OPEN_S = 2.0
GOAL_SPEEDUP = 50.0
ANCHOR_SAMPLE = 50
PROBE_LEAVES = 20

# Children run in fresh interpreters of this same environment; imports happen before the clock.
CHILD_OPEN = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import xarray as xr, zarr
consolidated = {"auto": None, "no": False}[sys.argv[2]]
count = sys.argv[3] == "count"
reads = []
if count:  # record every key read from the store (a separate, untimed run)
    from zarr.storage import LocalStore
    orig_get = LocalStore.get
    async def get(self, key, *a, **k):
        buf = await orig_get(self, key, *a, **k)
        reads.append((key, buf is not None))
        return buf
    LocalStore.get = get
t = time.perf_counter()
dt = xr.open_datatree(sys.argv[1], engine="zarr", consolidated=consolidated)
open_s = time.perf_counter() - t
leaves = [n for n in dt.subtree if not n.children]
out = {"open_s": open_s, "nodes": len(list(dt.subtree)), "leaves": len(leaves),
       "data_vars": sum(len(n.data_vars) for n in leaves)}
if count:
    names = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
    meta = [k for k, found in reads if found and k.rsplit("/", 1)[-1] in names]
    out["keys_read"] = sum(1 for _, found in reads if found)
    out["metadata_docs_read"] = len(meta)
    out["metadata_docs_below_root"] = sum(1 for k in meta if "/" in k)
    out["metadata_docs_sample"] = meta[:5]
    out["missing_keys_probed"] = sorted({k for k, found in reads if not found})[:10]
    out["chunks_read"] = out["keys_read"] - len(meta)
    out["chunk_keys_distinct"] = len({k for k, found in reads if found and k not in meta})
    g = zarr.open_group(sys.argv[1], mode="r")
    cm = g.metadata.consolidated_metadata
    out["root_consolidated"] = cm is not None
    out["root_consolidated_entries"] = len(cm.flattened_metadata) if cm is not None else 0
print(json.dumps(out))
"""

GOAL_LOCAL_COPY = 1.1
SCALE_SIZES = (1_000, 10_000, 100_000)
# Runs of each timed step per size (the median is reported).
SCALE_ROUNDS = 3
FILES_PER_MODEL = 10 * 20

CHILD_ANCHOR = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import xarray as xr, dask, dask.array, netCDF4
method = sys.argv[2]
with open(sys.argv[1]) as f:
    leaves = json.load(f)  # [[model, experiment, [file, ...]], ...]

def leaf(files):
    if method == "open_mfdataset":
        return xr.open_mfdataset(files, combine="by_coords")
    return xr.merge([xr.open_dataset(f) for f in files])

t = time.perf_counter()
dt = xr.DataTree.from_dict({f"{m}/{e}": leaf(files) for m, e, files in leaves})
s = time.perf_counter() - t
lv = [n for n in dt.subtree if not n.children]
print(json.dumps({"s": s, "leaves": len(lv), "data_vars": sum(len(n.data_vars) for n in lv)}))
"""

CHILD_VERIFY = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, xarray as xr, netCDF4
dt = xr.open_datatree(sys.argv[1], engine="zarr")
out = []
for m, e, var, path in json.loads(sys.argv[2]):
    got = dt[f"{m}/{e}"][var]
    with netCDF4.Dataset(path) as ds:
        want = np.ma.filled(ds[var][:].astype("f4"), np.nan)
        dims = list(ds[var].dimensions)
    g = np.asarray(got.values)
    ok = (list(got.dims) == dims and g.shape == want.shape and g.dtype == want.dtype
          and bool(np.array_equal(g, want, equal_nan=True)))
    out.append({"leaf": f"{m}/{e}", "variable": var, "shape": list(g.shape), "dtype": str(g.dtype),
                "masked": int(np.isnan(want).sum()), "match": ok})
print(json.dumps(out))
"""


# Shared with the issue-2/cache benchmark in the same directory.
from bench import Bench, BenchError, add_results, run_main, say, tail  # noqa: E402


# --- archive generation (worker processes) -----------------------------------------------------
def model_names(n: int) -> list[str]:
    return [f"M{i:02d}-ISM" for i in range(n)]


def experiment_names(n: int) -> list[str]:
    return [f"exp{i + 1:02d}" for i in range(n)]


def write_leaf(task: tuple[str, str, str, list[str]]) -> int:
    """Writes the files of one (model, experiment) leaf; runs in a worker process."""
    import numpy as np
    import netCDF4

    root, model, exp, variables = task
    d = Path(root) / model / exp
    d.mkdir(parents=True, exist_ok=True)
    x = (-3040000.0 + 500000.0 * np.arange(NX)).astype("f8")
    y = (-3040000.0 + 600000.0 * np.arange(NY)).astype("f8")
    for var in variables:
        path = d / f"{var}_AIS_{model}_{exp}.nc"
        rng = np.random.default_rng(zlib.crc32(str(path.relative_to(root)).encode()))
        data = rng.standard_normal((NT, NY, NX)).astype("f4") * 100
        mask = np.zeros((NT, NY, NX), bool)
        mask[:, 0, :2] = True  # "ocean" cells: stored as the fill value
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            ds.createDimension("time", NT)
            ds.createDimension("y", NY)
            ds.createDimension("x", NX)
            vt = ds.createVariable("time", "f8", ("time",))
            vt.units, vt.calendar, vt.standard_name = "days since 2015-01-01", "365_day", "time"
            vt[:] = [182.5, 547.5, 912.5]
            for name, vals in (("y", y), ("x", x)):
                v = ds.createVariable(name, "f8", (name,))
                v.units, v.standard_name = "m", f"projection_{name}_coordinate"
                v[:] = vals
            v = ds.createVariable(var, "f4", ("time", "y", "x"), zlib=True, complevel=1,
                                  fill_value=np.float32(9.96921e36))
            v.units, v.long_name, v.grid_mapping = "1", f"{var} of {model} in {exp}", "mapping"
            v[:] = np.ma.masked_array(data, mask)
            ds.Conventions, ds.source, ds.experiment = "CF-1.7", model, exp
    return len(variables)


class TreeBench:
    def __init__(self, args):
        import psutil  # noqa: F401  (fail early when run outside .venv-bench)

        self.args = args
        self.data = Path(os.environ.get("ATLASFS_BENCH_DIR") or REPO / "bench-data").absolute()
        self.built = REPO / "target" / "release" / "atlasfs"
        self.work = self.data / "work"
        self.bin = self.built  # replaced by a private copy in preflight()
        self.mp = self.work / "mnt-tree"
        self.cache = self.work / "cache-tree"
        self.config = self.work / "tree.toml"
        self.models = model_names(args.models)
        self.experiments = experiment_names(args.experiments)
        self.variables = VARIABLES[: args.variables]
        self.nfiles = len(self.models) * len(self.experiments) * len(self.variables)
        self.name = f"ismip6-{args.models}x{args.experiments}x{args.variables}"
        self.archive = self.data / "archives" / self.name
        self.mounted = False
        self.r: dict = {}

    # --- environment -------------------------------------------------------------------------
    def preflight(self) -> None:
        if not os.path.exists("/dev/fuse"):
            raise BenchError("/dev/fuse is missing: atlasfs cannot mount here")
        deadline = time.monotonic() + 180
        while not os.access(self.built, os.X_OK):  # it may be in the middle of a rebuild
            if time.monotonic() > deadline:
                raise BenchError(f"{self.built} is missing: run scripts/setup (or scripts/bench)")
            say(f"{self.built} is missing (being rebuilt?); waiting")
            time.sleep(15)
        self.work.mkdir(parents=True, exist_ok=True)
        if self.is_mounted():
            say(f"{self.mp} is still mounted (an interrupted run?); unmounting")
            self.unmount()
        # A private copy of the binary, so a rebuild during the run cannot swap it underneath.
        self.bin = self.work / "bin-tree" / "atlasfs"
        self.bin.parent.mkdir(exist_ok=True)
        shutil.copy2(self.built, self.bin.with_name("atlasfs.new"))
        os.replace(self.bin.with_name("atlasfs.new"), self.bin)
        if self.args.warm:
            self.mode = "warm"
            self.mode_note = "warm (--warm): source files read into the OS page cache before the index and mount"
        elif self.drop_caches(probe=True):
            self.mode = "cold"
            self.mode_note = "cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before the index and the first mount"
        else:
            self.mode = "warm"
            self.mode_note = ("warm (cannot write /proc/sys/vm/drop_caches; not root?): source files read "
                              "into the OS page cache before the index and mount")
        say(f"OS page cache: {self.mode_note}")

    @staticmethod
    def drop_caches(probe: bool = False) -> bool:
        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return True
        except OSError as e:
            if probe:
                return False
            raise BenchError(f"dropping the page cache failed: {e}")

    def warm_sources(self) -> None:
        for f in self.files:
            with open(f, "rb") as fh:
                while fh.read(1 << 22):
                    pass

    def prepare_cache(self) -> None:
        if self.mode == "cold":
            self.drop_caches()
        else:
            self.warm_sources()

    def git(self) -> str:
        try:
            rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                                   capture_output=True, text=True).stdout.strip()
            return rev + (" + uncommitted src changes" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    # --- archive ----------------------------------------------------------------------------
    def generate(self) -> None:
        marker = self.archive.with_name(self.name + ".complete")
        params = json.dumps({"models": self.models, "experiments": self.experiments,
                             "variables": self.variables, "shape": [NT, NY, NX], "version": 1})
        if self.archive.is_dir() and marker.is_file() and marker.read_text().strip() == params:
            n = sum(1 for _ in self.archive.glob("*/*/*.nc"))
            if n == self.nfiles:
                say(f"archive {self.name}: reusing {self.archive} ({n} files)")
                return
        partial = self.archive.with_name(self.name + ".partial")
        say(f"archive {self.name}: generating {self.nfiles} files into {partial} "
            f"(once; 2 worker processes)")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(self.archive, ignore_errors=True)
        marker.unlink(missing_ok=True)
        partial.mkdir(parents=True)
        tasks = [(str(partial), m, e, self.variables) for m in self.models for e in self.experiments]
        t = time.perf_counter()
        done = 0
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            for n in pool.imap_unordered(write_leaf, tasks, chunksize=4):
                done += n
                if done % 2000 == 0:
                    say(f"  {done} / {self.nfiles} files")
        partial.rename(self.archive)
        marker.write_text(params + "\n")
        say(f"archive {self.name}: {self.nfiles} files in {time.perf_counter() - t:.0f} s")

    def leaf_files(self, m: str, e: str) -> list[str]:
        return [str(self.archive / m / e / f"{v}_AIS_{m}_{e}.nc") for v in self.variables]

    # --- atlasfs ----------------------------------------------------------------------------
    def atlas(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin), *argv], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise BenchError(f"atlasfs {' '.join(argv)} failed ({proc.returncode}):\n{tail(proc.stderr + proc.stdout)}")
        return proc

    def write_config(self) -> None:
        self.config.write_text(
            "# written by scripts/bench_tree.py\n"
            f"[cache]\ndir = {json.dumps(str(self.cache))}\n\n"
            f"[[dataset]]\nname = {json.dumps(DATASET)}\n"
            f"files = {json.dumps(str(self.archive / '**' / '*.nc'))}\n"
            f"pattern = {json.dumps(PATTERN)}\n"
            'groups = ["model", "experiment"]\n'
            'merge = "variable"\n'
        )

    def is_mounted(self) -> bool:
        try:
            return os.path.ismount(self.mp)
        except OSError:
            return True  # a dead FUSE mount answers ENOTCONN

    def unmount(self) -> None:
        self.mounted = False
        if not self.is_mounted():
            return
        try:
            self.atlas("unmount", str(self.mp), timeout=90)
        except (BenchError, subprocess.TimeoutExpired) as e:
            say(f"  atlasfs unmount {self.mp} failed ({e}); lazy unmount")
            subprocess.run(["fusermount3", "-u", "-z", str(self.mp)], capture_output=True)

    def mount(self) -> tuple[float, int]:
        """A fresh mount (daemon memory cache and the mount's page cache empty)."""
        if self.is_mounted():
            self.unmount()
        self.mp.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        self.mounted = True
        self.atlas("mount", str(self.config), str(self.mp), timeout=300)
        return time.perf_counter() - t, self.daemon_pid()

    def daemon_pid(self) -> int:
        return Bench.daemon_pid(self.mp)

    memory = staticmethod(Bench.memory)

    def child(self, code: str, *argv: str, timeout: float = 900, what: str = "reading through the mount") -> dict | list:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        try:
            proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                                  env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what}: no answer within {timeout:.0f} s")
        if proc.returncode != 0:
            raise BenchError(f"{what} failed:\n{tail(proc.stderr)}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    # --- measurements -----------------------------------------------------------------------
    def bench_atlasfs(self) -> None:
        r = self.r
        self.write_config()
        say(f"atlasfs cold index of {self.nfiles} files (empty cache dir, {self.mode})")
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)
        self.prepare_cache()
        t = time.perf_counter()
        proc = self.atlas("index", str(self.config))
        r["cold_index_s"] = time.perf_counter() - t
        out = proc.stdout.strip().splitlines()
        r["cold_index_summary"] = next((l for l in reversed(out) if "usable" in l), out[-1] if out else "")
        say(f"  {r['cold_index_s']:.3f} s wall: {r['cold_index_summary']}")
        m = re.search(r"(\d+) usable", r["cold_index_summary"])
        if m and int(m.group(1)) != self.nfiles:
            raise BenchError(f"atlasfs used {m.group(1)} of {self.nfiles} files:\n{tail(proc.stdout + proc.stderr)}")
        if re.search(r"[1-9]\d* skipped|not match|unmatched", proc.stdout + proc.stderr):
            say(f"  warning: atlasfs reported files it could not use:\n{tail(proc.stdout + proc.stderr, 5)}")

        dest = self.mp / DATASET
        local = self.work / "tree-local-copy"
        opens, local_opens, mounts = [], [], []
        self.prepare_cache()
        try:
            for i in range(self.args.opens):
                if i:
                    self.warm_sources()
                mount_s, pid = self.mount()
                mounts.append(mount_s)
                if i == 0:
                    say(f"mounted at {self.mp} in {mount_s:.3f} s (catalog built; daemon pid {pid})")
                    self.copy_out(dest, local)
                    self.warm_sources()  # the opens, like the anchor, run with the sources in the page cache
                    _, pid = self.mount()

                def mine() -> dict:
                    return self.child(CHILD_OPEN, str(dest), "auto", "time")

                def theirs() -> dict:
                    return self.child(CHILD_OPEN, str(local), "auto", "time")

                # Rounds alternate which of the two opens goes first.
                first, second = (mine, theirs) if i % 2 == 0 else (theirs, mine)
                a, b = first(), second()
                o, lo = (a, b) if i % 2 == 0 else (b, a)
                opens.append(o["open_s"])
                local_opens.append(lo["open_s"])
                say(f"  open {i + 1}/{self.args.opens} (fresh mount): xr.open_datatree {o['open_s']:.3f} s, "
                    f"{o['nodes']} nodes, {o['leaves']} leaves, {o['data_vars']} data variables; "
                    f"the local copy {lo['open_s']:.3f} s")
                if i == 0:
                    r["tree_shape"] = {k: o[k] for k in ("nodes", "leaves", "data_vars")}
            r["local_copy"]["open_s_all"] = local_opens
            r["local_copy"]["open_s"] = statistics.median(local_opens)
            say(f"  local copy of the store: xr.open_datatree median {r['local_copy']['open_s']:.3f} s "
                f"({', '.join(f'{x:.3f}' for x in local_opens)})")
            r["mount_s"] = mounts[0]
            r["remount_s_all"] = mounts[1:]
            r["open_s_all"] = opens
            r["open_s"] = statistics.median(opens)
            r["memory_after_open"] = self.memory(pid)
            say(f"  daemon RSS after the open {r['memory_after_open']['rss_mib']:.1f} MiB "
                f"(peak {r['memory_after_open']['peak_rss_mib']:.1f} MiB)")
            again = self.child(CHILD_OPEN, str(dest), "auto", "time")
            r["reopen_same_mount_s"] = again["open_s"]
            say(f"  re-open on the same mount (daemon warm): {again['open_s']:.3f} s")

            c = self.child(CHILD_OPEN, str(dest), "auto", "count")
            r["consolidated"] = {k: c[k] for k in (
                "root_consolidated", "root_consolidated_entries", "keys_read", "metadata_docs_read",
                "metadata_docs_below_root", "metadata_docs_sample", "missing_keys_probed", "chunks_read",
                "chunk_keys_distinct")}
            r["consolidated"]["used"] = c["root_consolidated"] and c["metadata_docs_below_root"] == 0
            say(f"  consolidated metadata: the root zarr.json consolidates {c['root_consolidated_entries']} nodes; "
                f"an open read {c['metadata_docs_read']} metadata document(s) "
                f"({', '.join(c['metadata_docs_sample'])}; probed and absent: {', '.join(c['missing_keys_probed'])}) "
                f"and {c['chunks_read']} chunks ({c['chunk_keys_distinct']} distinct: the coordinates)")

            self.warm_sources()
            self.mount()
            nc = self.child(CHILD_OPEN, str(dest), "no", "count")
            r["unconsolidated_open_s"] = nc["open_s"]
            r["unconsolidated_metadata_docs_read"] = nc["metadata_docs_read"]
            r["unconsolidated_note"] = ("consolidated=False: the root's consolidated metadata is not used; every "
                                        "group's zarr.json is read (a leaf group's zarr.json still consolidates its arrays)")
            say(f"  info: open with consolidated=False (fresh mount): {nc['open_s']:.3f} s, "
                f"{nc['metadata_docs_read']} metadata documents read")

            if self.mode == "cold":
                self.drop_caches()
                _, pid = self.mount()
                o = self.child(CHILD_OPEN, str(dest), "auto", "time")
                r["cold_open_s"] = o["open_s"]
                say(f"  info: open on a fresh mount with the page cache dropped: {o['open_s']:.3f} s")

            rng = random.Random(self.args.seed + 1)
            picks = []
            for _ in range(3):
                m, e, v = rng.choice(self.models), rng.choice(self.experiments), rng.choice(self.variables)
                picks.append([m, e, v, str(self.archive / m / e / f"{v}_AIS_{m}_{e}.nc")])
            r["verify"] = self.child(CHILD_VERIFY, str(dest), json.dumps(picks))
            r["values_match"] = all(x["match"] for x in r["verify"])
            say("  values through the mount equal netCDF4 reading the file: "
                + ", ".join(f"{x['leaf']}/{x['variable']} {'yes' if x['match'] else 'NO'}" for x in r["verify"]))
        finally:
            if self.mounted or self.is_mounted():
                self.unmount()
            shutil.rmtree(local, ignore_errors=True)

    def copy_out(self, dest: Path, local: Path) -> None:
        """The store copied out of the mount (`cp -r`, which also leaves every chunk it reads in
        atlasfs's cache), to be opened the same way on local disk, round by round with the
        mount's opens."""
        shutil.rmtree(local, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run(["cp", "-r", str(dest), str(local)], check=True)
        copy_s = time.perf_counter() - t
        self.r["local_copy"] = {"copy_s": copy_s,
                                "how": "cp -r MOUNT/ismip6 LOCAL after the first mount, then xr.open_datatree(LOCAL, "
                                       "engine='zarr') in fresh subprocesses, alternating with the mount's opens (median)"}
        say(f"  local copy of the store: cp -r of the mount took {copy_s:.1f} s")

    def run_anchor(self, method: str, leaves: list[tuple[str, str]], label: str, timeout: float) -> dict:
        spec = self.work / "tree-anchor-leaves.json"
        spec.write_text(json.dumps([[m, e, self.leaf_files(m, e)] for m, e in leaves]))
        self.warm_sources()
        t = time.perf_counter()
        res = self.child(CHILD_ANCHOR, str(spec), method, timeout=timeout, what=f"anchor {method} ({label})")
        res["process_wall_s"] = time.perf_counter() - t
        res["per_leaf_s"] = res["s"] / len(leaves)
        say(f"  {method} over {label}: {res['s']:.3f} s ({res['per_leaf_s'] * 1000:.1f} ms per leaf)")
        return res

    def bench_anchor(self) -> None:
        a = self.r["anchor"] = {}
        all_leaves = [(m, e) for m in self.models for e in self.experiments]
        rng = random.Random(self.args.seed)
        probe = rng.sample(all_leaves, min(PROBE_LEAVES, len(all_leaves)))
        say(f"anchor: probing both ways of opening a leaf on {len(probe)} random leaves (sources warm)")
        a["probe"] = {meth: self.run_anchor(meth, probe, f"{len(probe)} probe leaves", 900)
                      for meth in ("open_mfdataset", "merge_open_dataset")}
        method = min(a["probe"], key=lambda k: a["probe"][k]["per_leaf_s"])
        a["method"] = method
        a["probe_leaves"] = len(probe)
        a["method_code"] = {
            "open_mfdataset": 'xr.open_mfdataset(files_of_leaf, combine="by_coords")',
            "merge_open_dataset": "xr.merge([xr.open_dataset(f) for f in files_of_leaf])",
        }[method] + " per leaf, then xr.DataTree.from_dict"
        est = a["probe"][method]["per_leaf_s"] * len(all_leaves)
        a["estimate_s"] = est
        if est <= self.args.anchor_budget:
            say(f"anchor: {method} (the faster) over all {len(all_leaves)} leaves (probe predicts {est:.0f} s)")
            res = self.run_anchor(method, all_leaves, f"all {len(all_leaves)} leaves", max(900, 4 * est))
            a.update(sampled=False, leaves_timed=len(all_leaves), s=res["s"], run=res)
        else:
            sample = rng.sample(all_leaves, min(ANCHOR_SAMPLE, len(all_leaves)))
            say(f"anchor: {method} (the faster) would take about {est:.0f} s for all leaves (> "
                f"{self.args.anchor_budget:.0f} s): timing a random sample of {len(sample)} leaves")
            res = self.run_anchor(method, sample, f"a sample of {len(sample)} leaves", 900)
            a.update(sampled=True, leaves_timed=len(sample), s=res["s"] * len(all_leaves) / len(sample), run=res)
            say(f"  extrapolated to {len(all_leaves)} leaves: {a['s']:.1f} s")
        a["leaves"] = len(all_leaves)

    # --- report -----------------------------------------------------------------------------
    def report(self) -> str:
        r, a, env = self.r, self.r["anchor"], self.r["environment"]
        out = [""]
        out.append(f"atlasfs DataTree benchmark  {r['started']}  ({env['cpus']} CPUs, "
                   f"{env['memory_gib']:.0f} GiB RAM, Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})")
        out.append(f"  archive: {self.nfiles:,} NetCDF-4 files = {len(self.models)} models x {len(self.experiments)} "
                   f"experiments x {len(self.variables)} variables ({NT}x{NY}x{NX} f4, zlib), "
                   f"pattern {PATTERN}, groups [model, experiment], merge variable")
        la0, la1 = env["load_average_start"], env["load_average_end"]
        out.append(f"  load average (1/5/15 min) at start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, at end "
                   f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}: anything else running on the machine skews the figures")
        out.append(f"  index and first mount: OS page cache {self.mode_note}")
        out.append(f"  atlasfs open: median of {self.args.opens} `xr.open_datatree(MOUNT/{DATASET}, engine=\"zarr\")` "
                   "in fresh subprocesses, each on a fresh mount, sources in the OS page cache; imports not timed")
        c = r["consolidated"]
        out.append(f"  consolidated metadata: {'used' if c['used'] else 'NOT used'} — the dataset root's zarr.json "
                   f"consolidates all {c['root_consolidated_entries']} groups and arrays below it; an open reads "
                   f"{c['metadata_docs_read']} metadata document ({', '.join(c['metadata_docs_sample'])}; zarr-python "
                   f"also probes the absent {', '.join(c['missing_keys_probed'])}), then {c['chunks_read']} chunk reads "
                   f"of {c['chunk_keys_distinct']} coordinate arrays (x, y, time of every leaf, for the indexes)")
        how = (f"a random sample of {a['leaves_timed']} leaves, extrapolated to {a['leaves']}" if a["sampled"]
               else f"all {a['leaves']} leaves")
        out.append(f"  anchor: {a['method_code']} over {how}, fresh subprocess, sources in the OS page cache, "
                   "file lists given (not timed), imports not timed; faster of the two ways on "
                   f"{a['probe_leaves']} probe leaves")
        rows: list[tuple[str, str, str]] = []

        def row(what, secs, note=""):
            rows.append((what, secs if isinstance(secs, str) else f"{secs:.3f}", note))

        p = a["probe"]
        row("anchor: DataTree of all leaves via xarray", a["s"],
            ("extrapolated from " if a["sampled"] else "") + f"{a['run']['s']:.3f} s for {a['leaves_timed']} leaves; "
            f"{a['method']}")
        row("  probe: open_mfdataset per leaf", p["open_mfdataset"]["per_leaf_s"] * a["leaves"],
            f"{p['open_mfdataset']['per_leaf_s'] * 1000:.1f} ms/leaf x {a['leaves']}")
        row("  probe: merge of open_dataset per leaf", p["merge_open_dataset"]["per_leaf_s"] * a["leaves"],
            f"{p['merge_open_dataset']['per_leaf_s'] * 1000:.1f} ms/leaf x {a['leaves']}")
        row("atlasfs cold index (empty cache dir)", r["cold_index_s"], r["cold_index_summary"])
        row("atlasfs mount (catalog built)", r["mount_s"])
        ts = r["tree_shape"]
        row("atlasfs xr.open_datatree (fresh mount)", r["open_s"],
            f"median; runs {', '.join(f'{x:.3f}' for x in r['open_s_all'])}; {ts['nodes']} nodes, "
            f"{ts['leaves']} leaves, {ts['data_vars']} data variables")
        row("  re-open on the same mount (daemon warm)", r["reopen_same_mount_s"], "info")
        if "cold_open_s" in r:
            row("  open, fresh mount, page cache dropped", r["cold_open_s"], "info")
        row("  open with consolidated=False", r["unconsolidated_open_s"],
            f"info; root consolidation ignored, {r['unconsolidated_metadata_docs_read']} metadata documents read")
        lc = r["local_copy"]
        row("xarray on a local copy of the store", lc["open_s"],
            f"median; runs {', '.join(f'{x:.3f}' for x in lc['open_s_all'])}; cp -r of the mount took {lc['copy_s']:.1f} s")
        m = r["memory_after_open"]
        row("daemon RSS after the open (MiB)", f"{m['rss_mib']:.0f}", f"peak {m['peak_rss_mib']:.0f}")
        row("values match the sources (3 leaves)", "yes" if r["values_match"] else "NO",
            ", ".join(f"{x['leaf']}/{x['variable']}" for x in r["verify"]))
        w0 = max(len(x[0]) for x in rows) + 2
        w1 = max(10, max(len(x[1]) for x in rows)) + 2
        out.append("")
        out.append(f"{'measurement':<{w0}}{'seconds':>{w1}}  note")
        out.append("-" * (w0 + w1 + 30))
        for what, secs, note in rows:
            out.append(f"{what:<{w0}}{secs:>{w1}}  {note}".rstrip())
        out.append("")
        out.append("ratios and goals")
        for g in r["goals"]:
            out.append("  " + g["text"])
        out.append("")
        return "\n".join(out)

    def goals(self) -> None:
        r = self.r
        a = r["anchor"]
        f = a["s"] / r["open_s"]
        r["speedup"] = f
        est = " (anchor extrapolated)" if a["sampled"] else ""
        lc = r["local_copy"]["open_s"]
        lr = r["open_s"] / lc
        r["goals"] = [
            {"key": "tree_open_vs_local_copy", "ratio": lr, "atlasfs_s": r["open_s"], "local_copy_s": lc,
             "goal": f"≤ {GOAL_LOCAL_COPY}×", "met": lr <= GOAL_LOCAL_COPY,
             "text": f"open of the tree through the mount vs xarray on a local copy of the same store: "
                     f"{lr:.2f}× ({r['open_s']:.3f} s vs {lc:.3f} s); goal: ≤ {GOAL_LOCAL_COPY}× — "
                     f"{'met' if lr <= GOAL_LOCAL_COPY else 'NOT MET'}"},
            {"key": "tree_open_s", "value": r["open_s"], "goal": f"< {GOAL_OPEN_S:.0f} s", "met": r["open_s"] < GOAL_OPEN_S,
             "text": f"whole tree opens in {r['open_s']:.3f} s; goal: under {GOAL_OPEN_S:.0f} s — "
                     f"{'met' if r['open_s'] < GOAL_OPEN_S else 'NOT MET'}"},
            {"key": "tree_open_vs_anchor", "speedup": f, "atlasfs_s": r["open_s"], "anchor_s": a["s"],
             "goal": f"≥{GOAL_SPEEDUP:.0f}× faster", "met": f >= GOAL_SPEEDUP,
             "text": f"open of the tree: atlasfs is {f:.0f}× faster than {a['method']} per leaf + "
                     f"DataTree.from_dict ({r['open_s']:.3f} s vs {a['s']:.3f} s{est}); goal: "
                     f"≥{GOAL_SPEEDUP:.0f}× faster — {'met' if f >= GOAL_SPEEDUP else 'NOT MET'}"},
        ]

    def save(self) -> Path:
        return add_results(self.data, "tree", self.r)

    # --- driver -------------------------------------------------------------------------------
    def run(self) -> int:
        import psutil
        from importlib.metadata import version, PackageNotFoundError

        def ver(pkg):
            try:
                return version(pkg)
            except PackageNotFoundError:
                return None

        self.preflight()
        self.generate()
        self.files = sorted(self.archive.glob("*/*/*.nc"))
        v = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        self.r.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "archive": {"files": self.nfiles, "models": len(self.models), "experiments": len(self.experiments),
                        "variables": len(self.variables), "shape": {"time": NT, "y": NY, "x": NX},
                        "pattern": PATTERN, "groups": ["model", "experiment"], "merge": "variable"},
            "cache_mode": self.mode,
            "open_method": (f"median of {self.args.opens} xr.open_datatree(engine='zarr') in fresh subprocesses, "
                            "each on a fresh mount, sources warm, imports not timed"),
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": v[-1] if v else "?", "git": self.git(),
                "packages": {p: ver(p) for p in ("xarray", "zarr", "dask", "netCDF4", "numpy")},
                "load_average_start": os.getloadavg(),
            },
        })
        try:
            self.bench_atlasfs()
            self.bench_anchor()
        finally:
            if self.mounted or self.is_mounted():
                self.unmount()
        self.r["environment"]["load_average_end"] = os.getloadavg()
        self.goals()
        text = self.report()
        self.r["table"] = text
        out = self.save()
        print(text)
        say(f"results added to {out} (key \"tree\")")
        return 0 if self.r["values_match"] else 1


# The scale rows' yardstick of linear work on this machine: walk the archive, stat every file and
# keep a small record per file in a dict (what any index does first), in a fresh interpreter.
CHILD_WALK = r"""
import json, os, sys, time
root = sys.argv[1]
t = time.perf_counter()
seen = {}
for dirpath, _, names in os.walk(root):
    for name in names:
        path = os.path.join(dirpath, name)
        st = os.stat(path)
        seen[path] = (st.st_size, st.st_mtime_ns, name.split("_"))
print(json.dumps({"walk_s": time.perf_counter() - t, "files": len(seen)}))
"""

CHILD_OPEN_SUBTREE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import xarray as xr
t = time.perf_counter()
dt = xr.open_datatree(sys.argv[1], engine="zarr")
s = time.perf_counter() - t
print(json.dumps({"open_s": s, "nodes": len(list(dt.subtree)),
                  "data_vars": sum(len(n.data_vars) for n in dt.subtree)}))
"""


class ScaleBench(TreeBench):
    """The same archive at 10^3, 10^4 and 10^5 files: how index, mount, open and memory grow."""

    def use_size(self, nfiles: int) -> None:
        models = max(1, nfiles // FILES_PER_MODEL)
        self.models = model_names(models)
        self.nfiles = len(self.models) * len(self.experiments) * len(self.variables)
        self.name = f"ismip6-{models}x{len(self.experiments)}x{len(self.variables)}"
        self.archive = self.data / "archives" / self.name
        self.cache = self.work / f"cache-scale-{models}"
        self.config = self.work / f"tree-scale-{models}.toml"

    def measure(self, nfiles: int) -> dict:
        self.use_size(nfiles)
        row: dict = {"files": self.nfiles, "models": len(self.models)}
        t = time.perf_counter()
        self.generate()
        row["generate_or_reuse_s"] = time.perf_counter() - t
        self.files = sorted(self.archive.glob("*/*/*.nc"))
        self.write_config()
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)
        self.warm_sources()  # one page-cache mode for every size: sources warm
        cold, warm, mounts = [], [], []
        for _ in range(SCALE_ROUNDS):
            shutil.rmtree(self.cache, ignore_errors=True)
            self.cache.mkdir(parents=True)
            t = time.perf_counter()
            out = self.atlas("index", str(self.config), timeout=3600).stdout
            cold.append(time.perf_counter() - t)
            m = re.search(r"(\d+) usable", out)
            if not m or int(m.group(1)) != self.nfiles:
                raise BenchError(f"atlasfs index used {m.group(1) if m else '?'} of {self.nfiles} files:\n{tail(out)}")
            t = time.perf_counter()
            self.atlas("index", str(self.config), timeout=3600)
            warm.append(time.perf_counter() - t)
        walks = [self.child(CHILD_WALK, str(self.archive), what="walking the archive")["walk_s"]
                 for _ in range(SCALE_ROUNDS)]
        row["walk_runs"], row["walk_s"] = walks, statistics.median(walks)
        row["cold_index_runs"], row["warm_reindex_runs"] = cold, warm
        row["cold_index_s"], row["warm_reindex_s"] = statistics.median(cold), statistics.median(warm)
        row["catalog_bytes"] = (self.cache / "catalog.bin").stat().st_size
        row["catalog_bytes_per_file"] = row["catalog_bytes"] / self.nfiles
        try:
            for _ in range(SCALE_ROUNDS):
                secs, pid = self.mount()
                mounts.append(secs)
            row["mount_runs"] = mounts
            row["mount_s"] = statistics.median(mounts)
            sub = self.mp / DATASET / self.models[0]
            o = self.child(CHILD_OPEN_SUBTREE, str(sub))
            row["open_subtree_s"] = o["open_s"]
            row["open_subtree_nodes"] = o["nodes"]
            row["rss_mib"] = self.memory(pid)["rss_mib"]
            row["peak_rss_mib"] = self.memory(pid)["peak_rss_mib"]
            row["root_doc_bytes"] = (self.mp / DATASET / "zarr.json").stat().st_size
        finally:
            self.unmount()
        shutil.rmtree(self.cache, ignore_errors=True)
        say(f"  {self.nfiles:>7,} files: walk+stat {row['walk_s']:.2f} s, cold index {row['cold_index_s']:.2f} s, re-index {row['warm_reindex_s']:.2f} s, "
            f"mount {row['mount_s']:.2f} s, open of {self.models[0]} {row['open_subtree_s']:.3f} s, "
            f"RSS {row['rss_mib']:.0f} MiB, catalog {row['catalog_bytes_per_file']:.0f} B/file")
        return row

    def report(self) -> str:
        rows = self.r["rows"]
        cols = [("walk+stat s (ref)", "walk_s", "{:.2f}"),
                ("cold index s", "cold_index_s", "{:.2f}"), ("re-index s", "warm_reindex_s", "{:.2f}"),
                ("mount s", "mount_s", "{:.2f}"), ("open 1 model s", "open_subtree_s", "{:.3f}"),
                ("RSS MiB", "rss_mib", "{:.0f}"), ("catalog B/file", "catalog_bytes_per_file", "{:.0f}"),
                ("root zarr.json MiB", "root_doc_bytes", "{:.1f}")]
        out = ["", f"atlasfs DataTree scaling  {self.r['started']}  ({os.cpu_count()} CPUs; sources in the OS page cache)",
               "  the same generator at every size (more models; 10 experiments x 20 variables per model); index, re-index and mount: medians of "
               f"{SCALE_ROUNDS} runs; open = "
               "xr.open_datatree(MOUNT/ismip6/<first model>) in a fresh subprocess on a fresh mount; RSS = daemon after it", ""]
        head = f"{'files':>9}" + "".join(f"{c[0]:>20}" for c in cols)
        out += [head, "-" * len(head)]
        for r in rows:
            vals = [r[k] / 2**20 if k == "root_doc_bytes" else r[k] for _, k, _ in cols]
            out.append(f"{r['files']:>9,}" + "".join(f"{f.format(v):>20}" for (_, _, f), v in zip(cols, vals)))
        for a, b in zip(rows, rows[1:]):
            n = b["files"] / a["files"]
            g = "".join(f"{(b[k] / a[k] if a[k] else float('nan')):>19.1f}x" for _, k, _ in cols)
            out.append(f"{'x' + format(n, 'g'):>9}" + g)
        out.append("")
        out.append("  growth rows: each figure's factor for the step in files (a factor at or below the files' factor "
                   "is linear or better)")
        out.append("  walk+stat (ref): os.walk of the archive, os.stat of every file and a small record per file in a "
                   "dict, in a fresh interpreter (median of the runs): how a linear job grows on this machine")
        gen = [r for r in rows if r.get("generated_s")]
        for r in gen:
            out.append(f"  generating {r['files']:,} files took {r['generated_s']:.0f} s")
        return "\n".join(out) + "\n"

    def run(self) -> int:
        self.preflight()
        sizes = [n for n in SCALE_SIZES if n <= self.args.scale_max]
        self.r = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "git": self.git(), "rows": []}
        say(f"scaling: archives of {', '.join(f'{n:,}' for n in sizes)} files")
        for n in sizes:
            t = time.perf_counter()
            existed = (self.data / "archives" / f"ismip6-{max(1, n // FILES_PER_MODEL)}x10x20.complete").is_file()
            row = self.measure(n)
            if not existed:
                row["generated_s"] = row["generate_or_reuse_s"]
            row["total_s"] = time.perf_counter() - t
            self.r["rows"].append(row)
        text = self.report()
        self.r["table"] = text
        out = add_results(self.data, "tree_scale", self.r)
        print(text)
        say(f"results added to {out} (key \"tree_scale\")")
        return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Environment: ATLASFS_BENCH_DIR (default: bench-data/ at the repository root). "
                                       "Options of scripts/bench.py it does not know are ignored, so scripts/bench "
                                       "can pass its arguments to both.")
    p.add_argument("--warm", action="store_true", help="index and mount with the sources in the OS page cache instead of dropping it")
    p.add_argument("--opens", type=int, default=3, help="fresh-process opens of the tree, each on a fresh mount (median; default 3)")
    p.add_argument("--anchor-budget", type=float, default=240.0,
                   help="if the anchor over all leaves is predicted to take longer (seconds; default 240), "
                        f"time a random sample of {ANCHOR_SAMPLE} leaves and extrapolate")
    p.add_argument("--seed", type=int, default=3, help="seed of the random leaf choices (default 3)")
    p.add_argument("--models", type=int, default=50, help=argparse.SUPPRESS)
    p.add_argument("--experiments", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--variables", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--scale", action="store_true",
                   help="measure growth over archives of 10^3, 10^4 and 10^5 files instead (see above)")
    p.add_argument("--scale-max", type=int, default=SCALE_SIZES[-1],
                   help=f"largest archive of --scale in files (default {SCALE_SIZES[-1]:,})")
    args, unknown = p.parse_known_args()
    if unknown:
        print(f"bench_tree: ignoring options meant for scripts/bench.py: {' '.join(unknown)}", file=sys.stderr)
    if args.opens < 1:
        p.error("--opens must be at least 1")
    if not (1 <= args.variables <= len(VARIABLES)) or args.models < 1 or args.experiments < 1:
        p.error(f"--models/--experiments must be >= 1 and --variables within 1..{len(VARIABLES)}")

    bench = ScaleBench if args.scale else TreeBench
    return run_main("bench_tree", lambda: bench(args).run(), "the mount was unmounted")


if __name__ == "__main__":
    sys.exit(main())
