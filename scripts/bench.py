#!/usr/bin/env python3
"""Benchmark atlasfs against the shared anchors, everything measured in one run on one machine.

Normally started by scripts/bench, which builds target/release/atlasfs and prepares .venv-bench.

Two standard archives are generated with the shared make_archive.py (and reused when present):
365 daily files on the default 360x720 grid, and 5,000 small files (10x20 grid, metadata-heavy).

On the 5,000-file archive: the open_mfdataset and kerchunk anchors (the shared baseline_open.py,
run as a subprocess), atlasfs cold index (empty cache dir), warm re-index, and xr.open_zarr of the
mounted dataset with the index built (median of fresh subprocesses; imports not timed).

On the 365-file archive: the open_mfdataset, kerchunk and local materialized Zarr anchors, and the
atlasfs first read of all of `sst` on a fresh mount (daemon memory cache empty, mount's kernel
page cache dropped by the remount).

For both: the daemon's peak and after-load RSS. Before every measured step the OS page cache is
dropped (cold; needs root) or the source files are read into it (warm, --warm or without root).

The chunk cache, on the 365-file archive (every first read starts from an empty cache):
`atlasfs warm` of the whole archive (time, peak RSS); the full load on a fresh mount whose disk
cache is warm, against the local materialized Zarr; one-chunk read latency (p50, p99) on a fresh
mount and on the same mount again, each chunk read alternately through the mount and from a local
copy (both sets first given the same OS page-cache state); aggregate throughput of 1, 2, 4 and 8
dask threads with the cache warm (interleaved rounds in fresh processes, and in one process into a
preallocated array; both against a local copy of the same store) and cold; and the
daemon's peak RSS while a reader warms the whole archive through a mount whose memory tier is
smaller than the archive.

Prints a table and writes results.json next to the archives.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = "sst"
ARCHIVES = {
    "a365": ["--files", "365"],
    "a5000": ["--files", "5000", "--ny", "10", "--nx", "20", "--chunk", "1,10,20"],
}
FILE_COUNTS = {"a365": 365, "a5000": 5000}
GOAL_OPEN_SPEEDUP = 100.0
GOAL_INDEX_SPEEDUP = 20.0
GOAL_LOCAL_ZARR_FACTOR = 1.3
THREADS = (1, 2, 4, 8)
THREAD_ROUNDS = 5

# Children run in fresh interpreters of this same environment. Imports are done before the clock
# starts: the figure is the open (and load), not Python's start-up.
CHILD_OPEN = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import xarray as xr, zarr, dask.array
t = time.perf_counter()
ds = xr.open_zarr(sys.argv[1])
open_s = time.perf_counter() - t
print(json.dumps({"open_s": open_s, "sizes": {str(k): int(v) for k, v in ds.sizes.items()}}))
"""
CHILD_LOAD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask.array
t = time.perf_counter()
ds = xr.open_zarr(sys.argv[1])
open_s = time.perf_counter() - t
t = time.perf_counter()
a = ds[sys.argv[2]].load()
load_s = time.perf_counter() - t
v = np.asarray(a.values, dtype="f8")
print(json.dumps({"open_s": open_s, "load_s": load_s, "shape": list(a.shape),
                  "nansum": float(np.nansum(v)), "finite": int(np.isfinite(v).sum())}))
"""


CHILD_LOAD_THREADS = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask
n = int(sys.argv[3])
ds = xr.open_zarr(sys.argv[1])
t = time.perf_counter()
with dask.config.set(scheduler="threads", num_workers=n):
    a = ds[sys.argv[2]].load()
load_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "nbytes": int(a.nbytes)}))
"""
# The same loads in one process, into one array allocated (and faulted in) beforehand, rounds of
# 1, 2, 4 and 8 threads interleaved: readers' scaling without each run's fresh 370 MB of page
# faults, which on a small virtual machine vary more from run to run than the readers do.
CHILD_STORE_THREADS = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask, dask.array as da
arr = xr.open_zarr(sys.argv[1])[sys.argv[2]].data
out = np.zeros(arr.shape, arr.dtype)
runs = {n: [] for n in (1, 2, 4, 8)}
for _ in range(int(sys.argv[3])):
    for n in runs:
        t = time.perf_counter()
        with dask.config.set(scheduler="threads", num_workers=n):
            da.store(arr, out, lock=False)
        runs[n].append(out.nbytes / (time.perf_counter() - t) / 1e6)
print(json.dumps({n: statistics.median(v) for n, v in runs.items()}))
"""
# One chunk file at a time, each opened, read whole and closed, in a fixed random order: the
# latency a reader of one chunk sees. Arguments: N chunk files through the mount, then the same
# N chunks as local files. Each chunk is read from both, alternating which goes first, so the
# anchor is measured in the same moments as atlasfs.
CHILD_CHUNK_LATENCY = r"""
import json, random, sys, time
n = (len(sys.argv) - 1) // 2
files = {"mount": sys.argv[1:1 + n], "local": sys.argv[1 + n:]}
order = list(range(n))
random.Random(0).shuffle(order)
lat = {"mount": [], "local": []}
for k, i in enumerate(order):
    for name in (("mount", "local") if k % 2 == 0 else ("local", "mount")):
        t = time.perf_counter()
        with open(files[name][i], "rb") as fh:
            fh.read()
        lat[name].append(time.perf_counter() - t)
def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]
print(json.dumps({k: {"p50_s": q(v, 0.5), "p99_s": q(v, 0.99), "n": len(v)} for k, v in lat.items()}))
"""
# Runs a command and reports the peak RSS of it (its only child).
CHILD_PEAK_RSS = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t
if rc.returncode != 0:
    sys.exit(rc.stderr)
print(json.dumps({"wall_s": wall, "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


class BenchError(Exception):
    pass


# Guest memory that a process frees is handed back to the host after a few seconds on some VMs
# (free page reporting), and the next first touch of each page then costs a host fault: measured
# here, a reader of every pyramid level spent 1.0 s of its 1.9 s zeroing huge pages on first touch,
# against 0.3 s when it had written and freed 1 GiB just before its clock. The view benchmarks'
# timed children (atlasfs readers and anchors alike) therefore call PREFAULT's prefault() right
# before their clock: it writes and frees --prefault-mib MiB (default 1024; 0 turns it off), so
# no side's timing depends on how long ago memory was last used on the machine.
PREFAULT = r"""
def prefault():
    import os
    import numpy
    mib = int(os.environ.get("BENCH_PREFAULT_MIB", "0"))
    if mib > 0:
        block = numpy.ones(mib << 20, dtype=numpy.uint8)
        del block
"""
PREFAULT_MIB = 1024


def ratio(key: str, what: str, atlas_s: float, anchor_s: float, anchor_name: str,
          goal_text: str | None = None, met: bool | None = None) -> dict:
    """One entry of the ratio list of results.json, with its printed line."""
    f = anchor_s / atlas_s if atlas_s > 0 else float("inf")
    rel = f"{f:.1f}× faster than" if f >= 1 else f"{1 / f:.2f}× slower than"
    text = f"{what}: atlasfs is {rel} {anchor_name} ({atlas_s:.3f} s vs {anchor_s:.3f} s)"
    if goal_text:
        text += f"; goal: {goal_text} — {'met' if met else 'NOT MET'}"
    return {"key": key, "speedup": f, "atlasfs_s": atlas_s, "anchor_s": anchor_s,
            "goal": goal_text, "met": met, "text": text}


def table(rows: list[tuple[str, str, str]], unit: str = "seconds") -> list[str]:
    """The printed table: (measurement, figure, note) rows under a header."""
    w0 = max(len(r[0]) for r in rows) + 2
    w1 = max(10, max(len(r[1]) for r in rows)) + 2
    out = [f"{'measurement':<{w0}}{unit:>{w1}}  note", "-" * (w0 + w1 + 30)]
    for what, secs, note in rows:
        out.append(f"{what:<{w0}}{secs:>{w1}}  {note}".rstrip())
    return out


def add_results(data: Path, key: str, section: dict) -> Path:
    """Adds `section` under `key` to results.json in `data` (a missing or unreadable file is started afresh)."""
    out = data / "results.json"
    try:
        doc = json.loads(out.read_text())
        if not isinstance(doc, dict):
            doc = {}
    except (OSError, ValueError):
        doc = {}
    doc[key] = section
    tmp = out.with_name(f"results.json.{key}-tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


T0 = time.monotonic()


def say(msg: str) -> None:
    el = int(time.monotonic() - T0)
    print(f"==> [{el // 60:02d}:{el % 60:02d}] {msg}", flush=True)


def tail(text: str, n: int = 15) -> str:
    lines = (text or "").strip().splitlines()
    return "\n".join("    " + l for l in lines[-n:])


def fmt_s(x) -> str:
    return "—" if x is None else f"{x:.3f}"


class Bench:
    # Directory (under work/) of the private copy of the binary; each benchmark part has its own.
    bin_dirname = "bin"

    def __init__(self, args):
        import psutil  # noqa: F401  (fail early when run outside .venv-bench)

        self.args = args
        self.data = Path(os.environ.get("ATLASFS_BENCH_DIR") or REPO / "bench-data").absolute()
        self.shared = Path(
            os.environ.get("ATLASFS_SHARED_BENCH") or REPO.parent / "shared" / "bench"
        ).absolute()
        self.built = REPO / "target" / "release" / "atlasfs"
        self.bin = self.built  # replaced by a private copy in preflight()
        self.work = self.data / "work"
        self.tmp = self.work / "tmp"
        self.mounts: set[Path] = set()
        self.results: dict = {"runs": {}}
        self.mode = "warm"
        self.archives: dict[str, Path] = {}

    # --- environment -----------------------------------------------------------------------
    def preflight(self) -> None:
        for name in ("make_archive.py", "baseline_open.py"):
            if not (self.shared / name).is_file():
                raise BenchError(
                    f"shared benchmark material not found: {self.shared / name}\n"
                    "  expected the shared/ folder beside the repository checkout "
                    "(../shared/bench); set ATLASFS_SHARED_BENCH to its bench/ directory"
                )
        if not os.access(self.built, os.X_OK):
            raise BenchError(f"{self.built} is missing: run scripts/setup (or scripts/bench)")
        if not os.path.exists("/dev/fuse"):
            raise BenchError("/dev/fuse is missing: atlasfs cannot mount here")
        self.work.mkdir(parents=True, exist_ok=True)
        for mp in self.work.glob("mnt-*"):
            if self.is_mounted(mp):
                say(f"{mp} is still mounted (an interrupted run?); unmounting")
                self.unmount(mp)
        # Run a private copy of the binary, so a rebuild during the run cannot swap it underneath.
        self.bin = self.work / self.bin_dirname / "atlasfs"
        self.bin.parent.mkdir(exist_ok=True)
        shutil.copy2(self.built, self.bin.with_name("atlasfs.new"))
        os.replace(self.bin.with_name("atlasfs.new"), self.bin)
        if self.args.warm:
            self.mode = "warm"
            self.mode_note = "warm (--warm): source files read into the OS page cache before every measured step"
        elif self.drop_caches(probe=True):
            self.mode = "cold"
            self.mode_note = "cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before every measured step"
        else:
            self.mode = "warm"
            self.mode_note = ("warm (cannot write /proc/sys/vm/drop_caches; not root?): source files "
                              "read into the OS page cache before every measured step")
        say(f"OS page cache: {self.mode_note}")

    def drop_caches(self, probe: bool = False) -> bool:
        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return True
        except OSError as e:
            if probe:
                return False
            raise BenchError(f"dropping the page cache failed: {e}")

    def prepare_cache(self, files: list[Path]) -> None:
        """Puts the OS page cache into the run's mode before a measured step."""
        if self.mode == "cold":
            self.drop_caches()
        else:
            for f in files:
                with open(f, "rb") as fh:
                    while fh.read(1 << 22):
                        pass

    def versions(self) -> dict:
        from importlib.metadata import version, PackageNotFoundError

        out = {}
        for pkg in ("xarray", "zarr", "numcodecs", "dask", "kerchunk", "fsspec", "h5py", "netCDF4", "numpy"):
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                out[pkg] = None
        return out

    def environment(self, *packages: str) -> dict:
        """The machine, the binary (after preflight) and the package versions a results section
        records; `packages` are recorded besides the usual ones (None when not installed)."""
        import psutil
        from importlib.metadata import PackageNotFoundError, version

        def ver(pkg: str) -> str | None:
            try:
                return version(pkg)
            except PackageNotFoundError:
                return None

        words = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        return {"cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": words[-1] if words else "?", "git": self.git(),
                "packages": {**self.versions(), **{p: ver(p) for p in packages}},
                "load_average_start": os.getloadavg()}

    def publish(self, key: str, section: dict) -> None:
        """Closes a benchmark part's results: the load average at the end, its ratios and table
        (the part's `ratios()` and `report()`), printed and added to results.json under `key`."""
        section["environment"]["load_average_end"] = os.getloadavg()
        self.ratios()
        section["table"] = self.report()
        out = add_results(self.data, key, section)
        print(section["table"])
        say(f"results written to {out} (under {json.dumps(key)})")

    def git(self) -> str:
        try:
            rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                                   capture_output=True, text=True).stdout.strip()
            return rev + (" + uncommitted src changes" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    # --- archives --------------------------------------------------------------------------
    def archive(self, name: str) -> Path:
        if name in self.archives:
            return self.archives[name]
        self.archives[name] = self._archive(name)
        return self.archives[name]

    def _archive(self, name: str) -> Path:
        out = self.data / "archives" / name
        marker = self.data / "archives" / f"{name}.complete"
        params = json.dumps(ARCHIVES[name])
        if out.is_dir() and marker.is_file() and marker.read_text().strip() == params:
            n = len(list(out.glob("*.nc")))
            if n == FILE_COUNTS[name]:
                say(f"archive {name}: reusing {out} ({n} files)")
                return out
        say(f"archive {name}: generating {out} with make_archive.py {' '.join(ARCHIVES[name])} "
            "(once; can take minutes)")
        partial = out.with_name(name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        marker.unlink(missing_ok=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(self.shared / "make_archive.py"), str(partial), *ARCHIVES[name]],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchError(f"make_archive.py failed for {name}:\n{tail(proc.stderr)}")
        partial.rename(out)
        marker.write_text(params + "\n")
        say(f"archive {name}: {FILE_COUNTS[name]} files in {time.perf_counter() - t:.0f} s")
        return out

    @staticmethod
    def expected(files: list[Path]) -> dict:
        """Sum and count of valid `sst` values read straight from the sources (fidelity check)."""
        import numpy as np
        import netCDF4

        total, finite = 0.0, 0
        for f in files:
            with netCDF4.Dataset(f) as ds:
                v = np.ma.filled(ds[VAR][:].astype("f8"), np.nan)
            total += float(np.nansum(v))
            finite += int(np.isfinite(v).sum())
        return {"nansum": total, "finite": finite}

    @staticmethod
    def matches(got: dict, want: dict) -> bool:
        return got["finite"] == want["finite"] and abs(got["nansum"] - want["nansum"]) <= 1e-9 * max(1.0, abs(want["nansum"]))

    # --- anchors ---------------------------------------------------------------------------
    def anchor(self, archive: Path, what: str, files: list[Path], expect_s: str) -> dict:
        """Runs one anchor of the shared baseline_open.py in its own process; returns its figures."""
        self.prepare_cache(files)
        say(f"anchor {what} on {archive.name} (baseline_open.py; {expect_s})")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        env = dict(os.environ, TMPDIR=str(self.tmp), PYTHONWARNINGS="ignore")
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(self.shared / "baseline_open.py"), str(archive), VAR, what],
                                  capture_output=True, text=True, env=env)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)  # the materialized Zarr anchor leaves its store
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise BenchError(f"baseline_open.py {what} failed on {archive}:\n{tail(proc.stderr)}")
        label = {"mf": "open_mfdataset", "kerchunk": "kerchunk", "zarr": "local_zarr"}[what]
        for line in proc.stdout.splitlines():
            words = line.split()
            if words and words[0] == label:
                fig = {}
                for w in words[1:]:
                    k, _, v = w.partition("=")
                    fig[k] = float(v) if k.endswith("_s") else int(v) if v.isdigit() else v
                fig["process_wall_s"] = wall
                say("  " + line.strip())
                return fig
        raise BenchError(f"baseline_open.py {what}: no '{label}' line in its output:\n{tail(proc.stdout)}")

    # --- atlasfs ---------------------------------------------------------------------------
    def atlas(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin), *argv], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise BenchError(f"atlasfs {' '.join(argv)} failed ({proc.returncode}):\n{tail(proc.stderr + proc.stdout)}")
        return proc

    def config(self, name: str, archive: Path, memory: str | None = None) -> tuple[Path, Path]:
        cache = self.work / f"cache-{name}"
        path = self.work / f"{name}.toml"
        memory_line = f"memory = {json.dumps(memory)}\n" if memory else ""
        path.write_text(
            "# written by scripts/bench.py\n"
            f"[cache]\ndir = {json.dumps(str(cache))}\n{memory_line}\n"
            f"[[dataset]]\nname = {json.dumps(VAR)}\nfiles = {json.dumps(str(archive / '*.nc'))}\n"
            'concat_dim = "time"\n'
        )
        return path, cache

    def index(self, config: Path) -> tuple[float, str]:
        t = time.perf_counter()
        proc = self.atlas("index", str(config))
        wall = time.perf_counter() - t
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        m = re.search(r"(\d+) skipped", summary)
        if m and int(m.group(1)):
            say(f"  warning: atlasfs skipped files:\n{tail(proc.stdout, 5)}")
        return wall, summary

    def is_mounted(self, mp: Path) -> bool:
        try:
            return os.path.ismount(mp)
        except OSError:
            return True  # a dead FUSE mount answers ENOTCONN

    def unmount(self, mp: Path) -> None:
        self.mounts.discard(mp)
        if not self.is_mounted(mp):
            return
        try:
            self.atlas("unmount", str(mp), timeout=90)
        except (BenchError, subprocess.TimeoutExpired) as e:
            say(f"  atlasfs unmount {mp} failed ({e}); lazy unmount")
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], capture_output=True)

    def mount(self, config: Path, mp: Path) -> tuple[float, int]:
        if self.is_mounted(mp):
            say(f"  {mp} is still mounted (an earlier run?); unmounting")
            self.unmount(mp)
        mp.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        self.mounts.add(mp)
        self.atlas("mount", str(config), str(mp), timeout=300)
        wall = time.perf_counter() - t
        return wall, self.daemon_pid(mp)

    @staticmethod
    def daemon_pid(mp: Path) -> int:
        """The pid of the daemon serving `mp` (same match as `pgrep -f "atlasfs mount .*MP"`)."""
        import psutil

        target = str(mp)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = []
            for p in psutil.process_iter(["pid", "cmdline"]):
                cmd = p.info["cmdline"] or []
                if (len(cmd) >= 3 and os.path.basename(cmd[0]) == "atlasfs" and cmd[1] == "mount"
                        and target in cmd[2:] and "--foreground" in cmd):
                    found.append(p.info["pid"])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise BenchError(f"several atlasfs daemons serve {mp}: {found}")
            time.sleep(0.1)
        raise BenchError(f"no atlasfs daemon process found for {mp}")

    @staticmethod
    def memory(pid: int) -> dict:
        import psutil

        rss = psutil.Process(pid).memory_info().rss
        peak = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
        return {"rss_mib": rss / 2**20, "peak_rss_mib": None if peak is None else peak / 2**20}

    @staticmethod
    def cpu(pid: int) -> float:
        import psutil

        c = psutil.Process(pid).cpu_times()
        return c.user + c.system

    def child(self, code: str, *argv: str, what: str = "reading through the mount", timeout: float = 900) -> dict:
        """Runs `code` in a fresh interpreter of this environment; returns its last stdout line as JSON."""
        env = dict(os.environ, PYTHONWARNINGS="ignore",
                   BENCH_PREFAULT_MIB=str(getattr(self.args, "prefault_mib", 0)))
        try:
            proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what}: no answer within {timeout:.0f} s")
        if proc.returncode != 0:
            raise BenchError(f"{what} failed:\n{tail(proc.stderr)}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    # --- the two parts ---------------------------------------------------------------------
    def bench_5000(self) -> dict:
        r: dict = {}
        archive = self.archive("a5000")
        files = sorted(archive.glob("*.nc"))
        say(f"5,000-file archive: expected values from the sources (fidelity check)")
        want = self.expected(files)

        r["mf"] = self.anchor(archive, "mf", files, "about half a minute")
        if self.args.quick:
            say("anchor kerchunk on a5000: skipped (--quick)")
            r["kerchunk"] = None
        else:
            r["kerchunk"] = self.anchor(archive, "kerchunk", files, "one to two minutes")

        config, cache = self.config("a5000", archive)
        mp = self.work / "mnt-a5000"
        say("atlasfs cold index of a5000 (empty cache dir)")
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        self.prepare_cache(files)
        r["cold_index_s"], r["cold_index_summary"] = self.index(config)
        say(f"  {r['cold_index_s']:.3f} s wall: {r['cold_index_summary']}")
        say("atlasfs warm re-index of a5000 (files unchanged)")
        self.prepare_cache(files)
        r["warm_index_s"], r["warm_index_summary"] = self.index(config)
        say(f"  {r['warm_index_s']:.3f} s wall: {r['warm_index_summary']}")
        try:
            self.prepare_cache(files)
            r["mount_s"], pid = self.mount(config, mp)
            say(f"mounted a5000 at {mp} in {r['mount_s']:.3f} s (daemon pid {pid})")
            opens = []
            for i in range(self.args.opens):
                o = self.child(CHILD_OPEN, str(mp / VAR))
                opens.append(o["open_s"])
                if i == 0:
                    r["open_sizes"] = o["sizes"]
            r["open_s_all"] = opens
            r["open_s"] = statistics.median(opens)
            say(f"  xr.open_zarr in {self.args.opens} fresh processes: median {r['open_s']:.3f} s "
                f"({', '.join(f'{x:.3f}' for x in opens)})")
            c0 = self.cpu(pid)
            ld = self.child(CHILD_LOAD, str(mp / VAR), VAR)
            r["load_s"], r["load_daemon_cpu_s"] = ld["load_s"], self.cpu(pid) - c0
            r["values_match"] = self.matches(ld, want)
            say(f"  load of all of {VAR}: {ld['load_s']:.3f} s, shape {ld['shape']}, "
                f"values match the sources: {r['values_match']}")
            r["memory"] = self.memory(pid)
            say(f"  daemon RSS after load {r['memory']['rss_mib']:.1f} MiB, peak {r['memory']['peak_rss_mib']:.1f} MiB")
        finally:
            if mp in self.mounts:
                self.unmount(mp)
        return r

    def first_read(self, config: Path, mp: Path, files: list[Path], mode: str) -> dict:
        """Remounts (daemon, disk cache and mount page cache empty), sets the OS cache, loads all
        of VAR."""
        if self.is_mounted(mp):
            self.unmount(mp)
        self.atlas("cache", "clear", str(config))
        if mode == "cold":
            self.drop_caches()
        else:
            saved, self.mode = self.mode, "warm"
            self.prepare_cache(files)
            self.mode = saved
        mount_s, pid = self.mount(config, mp)
        c0 = self.cpu(pid)
        ld = self.child(CHILD_LOAD, str(mp / VAR), VAR)
        ld["daemon_cpu_s"] = self.cpu(pid) - c0
        ld["mount_s"] = mount_s
        ld["pid"] = pid
        return ld

    def bench_365(self) -> dict:
        r: dict = {}
        archive = self.archive("a365")
        files = sorted(archive.glob("*.nc"))
        say("365-file archive: expected values from the sources (fidelity check)")
        want = self.expected(files)

        r["mf"] = self.anchor(archive, "mf", files, "a few seconds")
        r["kerchunk"] = self.anchor(archive, "kerchunk", files, "ten seconds or so")
        r["zarr"] = self.anchor(archive, "zarr", files, "materializes first; about half a minute")

        config, cache = self.config("a365", archive)
        mp = self.work / "mnt-a365"
        say("atlasfs cold index of a365 (empty cache dir)")
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        self.prepare_cache(files)
        r["cold_index_s"], r["cold_index_summary"] = self.index(config)
        say(f"  {r['cold_index_s']:.3f} s wall: {r['cold_index_summary']}")
        try:
            runs = []
            for i in range(self.args.repeat):
                ld = self.first_read(config, mp, files, self.mode)
                runs.append(ld)
                ok = self.matches(ld, want)
                say(f"  first read {i + 1}/{self.args.repeat} on a fresh mount ({self.mode}): open {ld['open_s']:.3f} s, "
                    f"load {ld['load_s']:.3f} s, daemon CPU {ld['daemon_cpu_s']:.2f} s, values match: {ok}")
                if not ok:
                    r["values_match"] = False
            r.setdefault("values_match", True)
            r["first_read_runs"] = [{k: x[k] for k in ("open_s", "load_s", "daemon_cpu_s", "mount_s")} for x in runs]
            r["load_s"] = statistics.median(x["load_s"] for x in runs)
            r["open_s"] = statistics.median(x["open_s"] for x in runs)
            r["load_daemon_cpu_s"] = statistics.median(x["daemon_cpu_s"] for x in runs)
            pid = runs[-1]["pid"]
            r["memory"] = self.memory(pid)
            say(f"  daemon RSS after load {r['memory']['rss_mib']:.1f} MiB, peak {r['memory']['peak_rss_mib']:.1f} MiB")
            again = self.child(CHILD_LOAD, str(mp / VAR), VAR)
            r["reread_load_s"] = again["load_s"]
            r["memory_after_reread"] = self.memory(pid)
            say(f"  re-read on the same mount (daemon memory cache hot): load {again['load_s']:.3f} s")
            if self.mode == "cold":
                w = self.first_read(config, mp, files, "warm")
                r["warm_sources_load_s"] = w["load_s"]
                say(f"  first read on a fresh mount with the sources in the OS page cache: load {w['load_s']:.3f} s")
            r["cache"] = self.bench_cache(config, cache, mp, files, want)
        finally:
            if mp in self.mounts:
                self.unmount(mp)
        return r

    # --- the chunk cache ---------------------------------------------------------------------
    @staticmethod
    def cache_entries(cache: Path) -> list[Path]:
        return [p for p in (cache / "chunks").glob("??/*") if p.is_file()]

    @staticmethod
    def read_into_os_cache(paths: list[Path]) -> None:
        for p in paths:
            with open(p, "rb") as fh:
                while fh.read(1 << 22):
                    pass

    def same_os_cache_state(self, a: list[Path], b: list[Path]) -> None:
        """Drops two sets of files from the OS page cache and reads them back in alternately,
        so both are cached the same way (how the kernel lays out a file's cache depends on how
        and when it was read, and moves a whole-file read by tens of percent). Dirty pages are
        written out first: they cannot be dropped, and writing them back during a measurement
        takes CPU from it."""
        os.sync()
        for p in a + b:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        for i in range(max(len(a), len(b))):
            self.read_into_os_cache(a[i:i + 1] + b[i:i + 1])

    def remount_warm_cache(self, config: Path, cache: Path, mp: Path, os_cache: str) -> int:
        """A fresh mount (daemon memory and the mount's page cache empty) over the disk cache as
        it is, with its entry files in the OS page cache ("warm") or not ("cold")."""
        if self.is_mounted(mp):
            self.unmount(mp)
        if os_cache == "cold":
            self.drop_caches()
        else:
            self.read_into_os_cache(self.cache_entries(cache))
        _, pid = self.mount(config, mp)
        return pid

    @staticmethod
    def chunk_files(mp: Path) -> list[Path]:
        return sorted(p for p in (mp / VAR / VAR / "c").rglob("*") if p.is_file())

    def bench_cache(self, config: Path, cache: Path, mp: Path, files: list[Path], want: dict) -> dict:
        c: dict = {}
        say("chunk cache: `atlasfs warm` of the whole archive (empty cache)")
        if self.is_mounted(mp):
            self.unmount(mp)
        self.atlas("cache", "clear", str(config))
        self.prepare_cache(files)
        c["warm_cmd"] = self.child(CHILD_PEAK_RSS, str(self.bin), "warm", str(config), "/")
        say(f"  {c['warm_cmd']['wall_s']:.3f} s, peak RSS {c['warm_cmd']['peak_rss_mib']:.0f} MiB")

        say("chunk cache: full load on a fresh mount, disk cache warm (entries in the OS page cache)")
        runs = []
        for i in range(self.args.repeat):
            self.remount_warm_cache(config, cache, mp, "warm")
            ld = self.child(CHILD_LOAD, str(mp / VAR), VAR)
            if not self.matches(ld, want):
                raise BenchError("values read from the warm cache do not match the sources")
            runs.append(ld["load_s"])
            say(f"  run {i + 1}/{self.args.repeat}: load {ld['load_s']:.3f} s")
        c["warm_load_runs"] = runs
        c["warm_load_s"] = statistics.median(runs)
        if self.mode == "cold":
            self.remount_warm_cache(config, cache, mp, "cold")
            c["warm_load_os_cold_s"] = self.child(CHILD_LOAD, str(mp / VAR), VAR)["load_s"]
            say(f"  entries read from disk (OS page cache dropped): load {c['warm_load_os_cold_s']:.3f} s")

        say("chunk cache: one-chunk read latency (open, read, close; random order), each chunk read "
            "alternately through the mount and from a local copy")
        local = self.work / "chunks-local"
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir(parents=True)
        self.remount_warm_cache(config, cache, mp, "warm")
        chunks = self.chunk_files(mp)
        copies = []
        for i, f in enumerate(chunks):
            copies.append(local / str(i))
            copies[-1].write_bytes(f.read_bytes())
        # The local Zarr of the thread runs below: the same store, copied out of the mount.
        local_zarr = self.work / "zarr-local"
        shutil.rmtree(local_zarr, ignore_errors=True)
        shutil.copytree(mp / VAR, local_zarr)
        self.unmount(mp)
        self.same_os_cache_state(self.cache_entries(cache), copies)
        self.mount(config, mp)
        chunks = self.chunk_files(mp)
        for k in ("disk", "kernel"):
            pair = self.child(CHILD_CHUNK_LATENCY, *map(str, chunks), *map(str, copies))
            c[f"latency_{k}"], c[f"latency_local_{k}"] = pair["mount"], pair["local"]
        shutil.rmtree(local, ignore_errors=True)
        for k, label in (("disk", "disk cache, fresh mount"), ("kernel", "the same mount again")):
            m, l = c[f"latency_{k}"], c[f"latency_local_{k}"]
            say(f"  {label}: p50 {m['p50_s'] * 1e3:.2f} ms, p99 {m['p99_s'] * 1e3:.2f} ms; local file "
                f"p50 {l['p50_s'] * 1e3:.2f} ms, p99 {l['p99_s'] * 1e3:.2f} ms ({m['n']} chunks)")

        rounds = max(self.args.repeat, THREAD_ROUNDS)
        say(f"chunk cache: aggregate throughput of dask threads, through the mount (fresh mount each) and "
            f"from the local copy of the store; {rounds} rounds of 1, 2, 4, 8 threads, medians")
        warm_runs: dict = {n: [] for n in THREADS}
        local_runs: dict = {n: [] for n in THREADS}
        for _ in range(rounds):
            for n in THREADS:
                self.remount_warm_cache(config, cache, mp, "warm")
                ld = self.child(CHILD_LOAD_THREADS, str(mp / VAR), VAR, str(n))
                warm_runs[n].append(ld["nbytes"] / ld["load_s"] / 1e6)
                ld = self.child(CHILD_LOAD_THREADS, str(local_zarr), VAR, str(n))
                local_runs[n].append(ld["nbytes"] / ld["load_s"] / 1e6)
        c["threads_warm"] = {n: statistics.median(v) for n, v in warm_runs.items()}
        c["threads_local"] = {n: statistics.median(v) for n, v in local_runs.items()}
        c["threads_warm_runs"], c["threads_local_runs"] = warm_runs, local_runs
        for n in THREADS:
            say(f"  {n} thread(s): atlasfs, cache warm {c['threads_warm'][n]:.0f} MB/s "
                f"({', '.join(f'{x:.0f}' for x in warm_runs[n])}); local Zarr {c['threads_local'][n]:.0f} MB/s")
        self.remount_warm_cache(config, cache, mp, "warm")
        c["store_threads_warm"] = {int(k): v for k, v in self.child(
            CHILD_STORE_THREADS, str(mp / VAR), VAR, str(THREAD_ROUNDS)).items()}
        c["store_threads_local"] = {int(k): v for k, v in self.child(
            CHILD_STORE_THREADS, str(local_zarr), VAR, str(THREAD_ROUNDS)).items()}
        say("  in one process, into a preallocated array: atlasfs "
            + " / ".join(f"{c['store_threads_warm'][n]:.0f}" for n in THREADS) + " MB/s, local Zarr "
            + " / ".join(f"{c['store_threads_local'][n]:.0f}" for n in THREADS) + " MB/s (1/2/4/8 threads)")
        shutil.rmtree(local_zarr, ignore_errors=True)
        c["threads_cold"] = {}
        for n in (1, 2, 8):
            runs = []
            for _ in range(self.args.repeat):
                if self.is_mounted(mp):
                    self.unmount(mp)
                self.atlas("cache", "clear", str(config))
                self.prepare_cache(files)
                self.mount(config, mp)
                ld = self.child(CHILD_LOAD_THREADS, str(mp / VAR), VAR, str(n))
                runs.append(ld["nbytes"] / ld["load_s"] / 1e6)
            c["threads_cold"][n] = statistics.median(runs)
            say(f"  {n} thread(s), cache cold ({self.mode} sources): {c['threads_cold'][n]:.0f} MB/s "
                f"({', '.join(f'{x:.0f}' for x in runs)})")
        self.unmount(mp)

        say("chunk cache: daemon RSS while a reader warms the whole archive, memory tier 128MiB")
        small, small_cache = self.config("a365-small", files[0].parent, memory="128MiB")
        shutil.rmtree(small_cache, ignore_errors=True)
        small_mp = self.work / "mnt-a365-small"
        self.prepare_cache(files)
        _, pid = self.mount(small, small_mp)
        try:
            ld = self.child(CHILD_LOAD, str(small_mp / VAR), VAR)
            if not self.matches(ld, want):
                raise BenchError("values read through the small-memory mount do not match")
            c["small_memory"] = {"memory_mib": 128, **self.memory(pid), "load_s": ld["load_s"]}
        finally:
            self.unmount(small_mp)
        say(f"  peak RSS {c['small_memory']['peak_rss_mib']:.0f} MiB (memory tier 128 MiB), load {ld['load_s']:.3f} s")
        return c

    # --- report ----------------------------------------------------------------------------
    def report(self) -> str:
        R = self.results
        a, b = R["runs"].get("a5000"), R["runs"].get("a365")
        out = []
        env = R["environment"]
        out.append("")
        out.append(f"atlasfs benchmark  {R['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})")
        out.append(f"  OS page cache: {self.mode_note}")
        la0, la1 = env["load_average_start"], env["load_average_end"]
        out.append(f"  load average (1 min) at start {la0[0]:.2f}, at end {la1[0]:.2f}: "
                   "anything else running on the machine skews the figures")
        out.append(f"  atlasfs open: median of {self.args.opens} `xr.open_zarr(MOUNT/sst)` in fresh subprocesses "
                   "(default arguments, metadata consolidated by atlasfs; imports not timed)")
        out.append(f"  atlasfs first read: median of {self.args.repeat} loads, each on a fresh mount "
                   "(daemon memory cache and mount page cache empty)")
        out.append(f"  anchors: {self.shared / 'baseline_open.py'}, one process per anchor; "
                   "its local-Zarr load reads a store it has just written, so that one is warm in any mode")
        rows: list[tuple[str, str, str]] = []

        def row(what, secs, note=""):
            rows.append((what, secs if isinstance(secs, str) else fmt_s(secs), note))

        def mib(m):
            return f"{m['peak_rss_mib']:.0f} / {m['rss_mib']:.0f}"

        if a:
            rows.append(("5,000-file archive (10x20 grid)", "", ""))
            row("  open_mfdataset open [anchor]", a["mf"]["open_s"])
            row("  open_mfdataset load [anchor]", a["mf"]["load_s"])
            k = a["kerchunk"]
            if k:
                row("  kerchunk refs + combine [anchor]", k["refs_s"] + k["combine_s"],
                    f"refs {k['refs_s']:.3f} + combine {k['combine_s']:.3f}")
                row("  kerchunk open / load [anchor]", f"{k['open_s']:.3f} / {k['load_s']:.3f}")
            else:
                row("  kerchunk [anchor]", "skipped", "--quick")
            row("  atlasfs cold index (empty cache dir)", a["cold_index_s"], "wall time of `atlasfs index`")
            row("  atlasfs warm re-index (files unchanged)", a["warm_index_s"], "wall time of `atlasfs index`")
            row("  atlasfs mount (catalog built)", a["mount_s"])
            row("  atlasfs open (xr.open_zarr)", a["open_s"],
                f"median; runs {', '.join(f'{x:.3f}' for x in a['open_s_all'])}")
            row("  atlasfs load of all sst (first read)", a["load_s"], f"daemon CPU {a['load_daemon_cpu_s']:.2f} s")
            row("  daemon RSS peak / after load (MiB)", mib(a["memory"]))
            row("  values match the sources", "yes" if a["values_match"] else "NO")
        if b:
            rows.append(("365-file archive (360x720 grid)", "", ""))
            row("  open_mfdataset open / load [anchor]", f"{b['mf']['open_s']:.3f} / {b['mf']['load_s']:.3f}")
            k = b["kerchunk"]
            row("  kerchunk refs + combine [anchor]", k["refs_s"] + k["combine_s"])
            row("  kerchunk open / load [anchor]", f"{k['open_s']:.3f} / {k['load_s']:.3f}")
            row("  local Zarr open / load [anchor]", f"{b['zarr']['open_s']:.3f} / {b['zarr']['load_s']:.3f}")
            row("  atlasfs cold index (empty cache dir)", b["cold_index_s"])
            row("  atlasfs open (xr.open_zarr, fresh mount)", b["open_s"])
            row(f"  atlasfs first-read load of all sst ({self.mode})", b["load_s"],
                "runs " + ", ".join(f"{x['load_s']:.3f}" for x in b["first_read_runs"])
                + f"; daemon CPU {b['load_daemon_cpu_s']:.2f} s")
            if "warm_sources_load_s" in b:
                row("  atlasfs first-read load, sources warm", b["warm_sources_load_s"], "fresh mount, OS cache warm")
            row("  atlasfs re-read (daemon memory cache hot)", b["reread_load_s"])
            row("  daemon RSS peak / after load (MiB)", mib(b["memory"]))
            row("  values match the sources", "yes" if b["values_match"] else "NO")
        c = b.get("cache") if b else None
        if c:
            rows.append(("365-file archive: the chunk cache", "", ""))
            row("  atlasfs warm of the whole archive", c["warm_cmd"]["wall_s"],
                f"peak RSS {c['warm_cmd']['peak_rss_mib']:.0f} MiB")
            row("  full load, warm cache (fresh mount)", c["warm_load_s"],
                "entries in the OS page cache; runs " + ", ".join(f"{x:.3f}" for x in c["warm_load_runs"]))
            if "warm_load_os_cold_s" in c:
                row("  full load, warm cache, OS cache dropped", c["warm_load_os_cold_s"], "entries read from disk")
            for k, label in (("disk", "fresh mount"), ("kernel", "same mount again")):
                v, l = c[f"latency_{k}"], c[f"latency_local_{k}"]
                row(f"  one chunk p50 / p99 (ms), {label}", f"{v['p50_s'] * 1e3:.2f} / {v['p99_s'] * 1e3:.2f}",
                    f"local file [anchor] {l['p50_s'] * 1e3:.2f} / {l['p99_s'] * 1e3:.2f}; {v['n']} chunks")
            tw, tl, tc = c["threads_warm"], c["threads_local"], c["threads_cold"]
            row("  dask threads 1/2/4/8, warm cache (MB/s)", " / ".join(f"{tw[n]:.0f}" for n in sorted(tw)))
            row("  dask threads 1/2/4/8, local Zarr (MB/s)", " / ".join(f"{tl[n]:.0f}" for n in sorted(tl)))
            if "store_threads_warm" in c:
                sw, sl = c["store_threads_warm"], c["store_threads_local"]
                row("  same, one process, preallocated (MB/s)", " / ".join(f"{sw[n]:.0f}" for n in sorted(sw)),
                    "local Zarr " + " / ".join(f"{sl[n]:.0f}" for n in sorted(sl)))
            row("  dask threads " + "/".join(map(str, sorted(tc))) + ", cold (MB/s)",
                " / ".join(f"{tc[n]:.0f}" for n in sorted(tc)))
            sm = c["small_memory"]
            row("  daemon RSS peak, memory tier 128 MiB (MiB)", f"{sm['peak_rss_mib']:.0f}", f"load {sm['load_s']:.3f} s")
        out.append("")
        out.extend(table(rows))

        out.append("")
        out.append("ratios")
        for r in R["ratios"]:
            out.append("  " + r["text"])
        out.append("")
        return "\n".join(out)

    def ratios(self) -> None:
        R = self.results
        lst = R["ratios"] = []

        def add(*a, **k):
            lst.append(ratio(*a, **k))

        a, b = R["runs"].get("a5000"), R["runs"].get("a365")
        if a:
            f = a["mf"]["open_s"] / a["open_s"]
            add("open_5000_vs_open_mfdataset", "open, 5,000 files", a["open_s"], a["mf"]["open_s"],
                "open_mfdataset", f"≥{GOAL_OPEN_SPEEDUP:.0f}× faster", f >= GOAL_OPEN_SPEEDUP)
            k = a["kerchunk"]
            if k:
                ks = k["refs_s"] + k["combine_s"]
                f = ks / a["cold_index_s"]
                add("cold_index_5000_vs_kerchunk", "cold index, 5,000 files", a["cold_index_s"], ks,
                    "kerchunk refs + combine", f"≥{GOAL_INDEX_SPEEDUP:.0f}× faster", f >= GOAL_INDEX_SPEEDUP)
            else:
                lst.append({"key": "cold_index_5000_vs_kerchunk", "text": "cold index, 5,000 files: kerchunk anchor skipped (--quick)"})
            add("load_5000_vs_open_mfdataset", "load, 5,000 files (info)", a["load_s"], a["mf"]["load_s"], "open_mfdataset")
            if k:
                add("load_5000_vs_kerchunk", "load, 5,000 files (info)", a["load_s"], k["load_s"], "kerchunk")
        if b:
            f = b["kerchunk"]["load_s"] / b["load_s"]
            add("first_read_365_vs_kerchunk", f"first-read load, 365 files ({self.mode})", b["load_s"],
                b["kerchunk"]["load_s"], "kerchunk", "faster", f > 1)
            f = b["zarr"]["load_s"] / b["load_s"]
            add("first_read_365_vs_local_zarr", f"first-read load, 365 files ({self.mode})", b["load_s"],
                b["zarr"]["load_s"], "local Zarr", f"at most {GOAL_LOCAL_ZARR_FACTOR}× slower",
                f >= 1 / GOAL_LOCAL_ZARR_FACTOR)
            if "warm_sources_load_s" in b:
                f = b["zarr"]["load_s"] / b["warm_sources_load_s"]
                add("first_read_365_warm_vs_local_zarr", "first-read load, 365 files, sources warm (info)",
                    b["warm_sources_load_s"], b["zarr"]["load_s"], "local Zarr (warm by construction)")
            f = b["mf"]["load_s"] / b["load_s"]
            add("first_read_365_vs_open_mfdataset", f"full load, cold (empty cache), 365 files ({self.mode})",
                b["load_s"], b["mf"]["load_s"], "open_mfdataset(...).load()", "≥2× faster", f >= 2)
        c = b.get("cache") if b else None
        if c:
            f = b["zarr"]["load_s"] / c["warm_load_s"]
            add("warm_load_365_vs_local_zarr", "full load, warm cache, 365 files", c["warm_load_s"],
                b["zarr"]["load_s"], "local Zarr", "≥0.9× the local Zarr's speed", f >= 0.9)
            for k, label in (("disk", "from the disk cache (fresh mount)"),
                             ("kernel", "the same mount again")):
                mine, loc = c[f"latency_{k}"]["p50_s"], c[f"latency_local_{k}"]["p50_s"]
                add(f"chunk_p50_latency_{k}", f"one-chunk read p50, {label}", mine, loc,
                    "the same chunk from a local file", "p50 within 2× of local disk", loc / mine >= 0.5)
            cores = min(8, os.cpu_count() or 1)
            tw, tl = c["threads_warm"], c["threads_local"]
            peak_n = max((n for n in tw if n <= cores), default=1)
            grows = tw[peak_n] >= 1.1 * tw[1]
            lst.append({"key": "threads_warm", "goal": "aggregate throughput grows with readers up to the cores",
                        "met": grows, "text": (
                            f"dask threads, warm cache: {peak_n} threads give {tw[peak_n] / tw[1]:.2f}× the throughput of 1 "
                            f"({tw[peak_n]:.0f} vs {tw[1]:.0f} MB/s), 8 give {tw[8] / tw[1]:.2f}× "
                            f"(the local Zarr: {tl[peak_n] / tl[1]:.2f}× and {tl[8] / tl[1]:.2f}×; atlasfs at 8 threads "
                            f"{tw[8] / tl[8]:.2f}× its throughput); goal: grows with readers up to the cores "
                            f"({os.cpu_count()}) — {'met' if grows else 'NOT MET'}")})
            if "store_threads_warm" in c:
                sw, sl = c["store_threads_warm"], c["store_threads_local"]
                lst.append({"key": "store_threads_warm", "text": (
                    f"dask threads, warm cache, in one process into a preallocated array (info): {peak_n} threads give "
                    f"{sw[peak_n] / sw[1]:.2f}× the throughput of 1 ({sw[peak_n]:.0f} vs {sw[1]:.0f} MB/s), 8 give "
                    f"{sw[8] / sw[1]:.2f}×; the local Zarr {sl[peak_n] / sl[1]:.2f}× and {sl[8] / sl[1]:.2f}× "
                    f"({sl[1]:.0f} MB/s with 1 thread)")})
            tc = c["threads_cold"]
            lst.append({"key": "threads_cold", "text": (
                f"dask threads, cold cache (info): 2 threads give {tc[2] / tc[1]:.2f}×, 8 give {tc[8] / tc[1]:.2f}× "
                f"the throughput of 1 ({tc[1]:.0f} MB/s)")})
            peak = b["memory"]["peak_rss_mib"]
            ok = peak <= 512 + 150
            lst.append({"key": "rss_512", "met": ok, "text": (
                f"daemon peak RSS while reading the whole archive, memory tier 512 MiB: {peak:.0f} MiB; "
                f"goal ≤ tier + 150 MB — {'met' if ok else 'NOT MET'}")})
            sm = c["small_memory"]
            ok = sm["peak_rss_mib"] <= 128 + 150
            lst.append({"key": "rss_128", "met": ok, "text": (
                f"daemon peak RSS while reading the whole archive, memory tier 128 MiB: {sm['peak_rss_mib']:.0f} MiB; "
                f"goal ≤ tier + 150 MB — {'met' if ok else 'NOT MET'}")})

    # --- driver ----------------------------------------------------------------------------
    def run(self) -> int:
        import psutil

        self.preflight()
        ver = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        self.results.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cache_mode": self.mode,
            "quick": self.args.quick,
            "open_method": f"median of {self.args.opens} xr.open_zarr in fresh subprocesses, imports not timed",
            "first_read_repeats": self.args.repeat,
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": ver[-1] if ver else "?", "git": self.git(), "packages": self.versions(),
                "load_average_start": os.getloadavg(),
            },
        })
        for name in ("a5000", "a365"):
            self.archive(name)  # generate up front, so the measurements run back to back
        try:
            if not self.args.only or self.args.only == "5000":
                self.results["runs"]["a5000"] = self.bench_5000()
            if not self.args.only or self.args.only == "365":
                self.results["runs"]["a365"] = self.bench_365()
        finally:
            for mp in list(self.mounts):
                self.unmount(mp)
        self.results["environment"]["load_average_end"] = os.getloadavg()
        self.ratios()
        text = self.report()
        self.results["table"] = text
        out = self.data / "results.json"
        out.write_text(json.dumps(self.results, indent=2, ensure_ascii=False) + "\n")
        print(text)
        say(f"results written to {out}")
        bad = [r for r in self.results["runs"].values() if not r.get("values_match", True)]
        return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Environment: ATLASFS_BENCH_DIR (default: bench-data/ at the repository root), "
                                       "ATLASFS_SHARED_BENCH (default: ../shared/bench beside the checkout).")
    p.add_argument("--quick", action="store_true", help="skip the 5,000-file kerchunk anchor (the slowest step)")
    p.add_argument("--warm", action="store_true", help="measure with the sources in the OS page cache instead of dropping it")
    p.add_argument("--opens", type=int, default=5, help="fresh-process opens of the 5,000-file mount (median; default 5)")
    p.add_argument("--repeat", type=int, default=3, help="first-read loads of the 365-file archive, each on a fresh mount (median; default 3)")
    p.add_argument("--only", choices=["365", "5000"], help="run one archive's part only")
    args = p.parse_args()
    if args.opens < 1 or args.repeat < 1:
        p.error("--opens and --repeat must be at least 1")

    return run_main("bench", lambda: Bench(args).run(), "mounts were unmounted")


def run_main(name: str, run, cleaned: str) -> int:
    """Runs a benchmark's ``run()``: SIGTERM/SIGHUP interrupt it like Ctrl-C (its cleanup,
    described by ``cleaned``, runs); a BenchError is one error line. Returns the exit code."""
    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        return run()
    except BenchError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted; {cleaned}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
