"""Mutation campaigns: mutants of NetCDF files read through a real atlasfs mount, and judged.

A campaign (mutants.py makes the mutants) mounts the mutants, one single-file dataset each,
many per mount, and checks for every one: the daemon does not panic, does not die and does not
hang (every read runs in a worker process under a deadline), its peak RSS stays under a bound,
and every array read through the mount (zarr-python, raw values) either fails (any error, or the
dataset or variable left out) or equals, bitwise with NaN == NaN, what netCDF4-python reads raw
from the mutant or from the unmutated seed.  netCDF4-python on a mutant also runs in a worker
process, as libhdf5 may crash or hang on corrupt input.

Used by tests/python/test_mutation.py (the CI-sized campaign) and scripts/fuzz.py.  The module
also runs as the worker: ``python mutation_campaign.py worker {read,ref} JOBS OUTDIR START``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mutants import Mutant, make_mutant, write_seeds

CI_SEED = 1
CI_COUNT = 800
LONG_SEED = 2
LONG_COUNT = 5000
BATCH = 75  # mutants per mount
READ_TIMEOUT = 20.0  # seconds for one dataset's reads through the mount
REF_TIMEOUT = 10.0  # seconds for netCDF4-python on one mutant (else: no reference)
MOUNT_TIMEOUT = 30.0
RSS_BOUND_MIB = 256  # bound on the daemon's peak RSS (VmHWM)
FULL_READ_BYTES = 32 << 20  # arrays up to this size are read whole, larger ones in two boxes
BOX_BYTES = 1 << 20
MAX_CHUNK_BYTES = 64 << 20  # chunks above this are not read into the reader (only probed)
WORKER_MEMORY = 3 << 30  # address-space limit of the worker processes
WORKER_STARTUP = 60.0  # seconds for a worker process to import its reader


# --------------------------------------------------------------------------
# reading: what the mount serves and what netCDF4-python reads (run in worker processes)


def boxes_for(shape: tuple[int, ...], itemsize: int) -> list[tuple[tuple[int, int], ...]]:
    """The regions of an array a campaign reads: all of it when small, else a box at its start
    and one at its end."""
    shape = tuple(int(s) for s in shape)
    total = itemsize
    for s in shape:
        total *= s
    full = tuple((0, s) for s in shape)
    if total <= FULL_READ_BYTES:
        return [full]
    ext = [min(s, 64) for s in shape]
    while int(np.prod(ext, dtype=np.float64)) * itemsize > BOX_BYTES:
        i = int(np.argmax(ext))
        ext[i] = max(1, ext[i] // 2)
    first = tuple((0, e) for e in ext)
    last = tuple((s - e, s) for s, e in zip(shape, ext))
    return [first, last] if last != first else [first]


def _sel(box) -> tuple:
    return tuple(slice(a, b) for a, b in box)


def read_mount_dataset(path: str) -> dict:
    """Every array of the Zarr group at ``path`` (raw values), read box by box."""
    import zarr

    out: dict = {"open_error": None, "arrays": {}}
    try:
        group = zarr.open_group(path, mode="r")
        members = list(group.members(max_depth=None))
    except Exception as e:  # noqa: BLE001 - a failed open is a failed read
        out["open_error"] = f"{type(e).__name__}: {e}"[:300]
        return out
    for name, node in members:
        if not isinstance(node, zarr.Array):
            continue
        try:
            shape, dtype = tuple(node.shape), np.dtype(node.dtype)
        except Exception as e:  # noqa: BLE001
            out["arrays"][name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        entry = {"shape": shape, "dtype": dtype.str, "boxes": []}
        chunk_bytes = dtype.itemsize * int(np.prod(node.chunks, dtype=np.float64)) if shape else 0
        for box in boxes_for(shape, dtype.itemsize):
            if chunk_bytes > MAX_CHUNK_BYTES:
                entry["boxes"].append((box, "unchecked", _probe_first_chunk(path, name, len(shape))))
                continue
            try:
                values = node[_sel(box)] if shape else node[()]
                entry["boxes"].append((box, "ok", np.asarray(values)))
            except Exception as e:  # noqa: BLE001 - any failure is a failed read
                entry["boxes"].append((box, "err", f"{type(e).__name__}: {e}"[:300]))
        out["arrays"][name] = entry
    return out


def _probe_first_chunk(path: str, name: str, rank: int) -> str:
    """Reads the first MiB of the first chunk of an array too large to read whole (the daemon
    still computes it); its values are not checked."""
    key = Path(path) / name / "c" / "/".join(["0"] * rank)
    try:
        with open(key, "rb") as f:
            return f"chunk larger than {MAX_CHUNK_BYTES >> 20} MiB; probe read {len(f.read(1 << 20))} bytes"
    except OSError as e:
        return f"chunk larger than {MAX_CHUNK_BYTES >> 20} MiB; probe failed: {e}"


def read_netcdf(path: str) -> dict:
    """Every variable of a NetCDF file, raw (no masking, scaling or char-to-string), by the same
    boxes as the mount is read."""
    import netCDF4

    out: dict = {"open_error": None, "arrays": {}}
    try:
        ds = netCDF4.Dataset(path, "r")
    except Exception as e:  # noqa: BLE001
        out["open_error"] = f"{type(e).__name__}: {e}"[:300]
        return out
    try:
        stack = [("", ds)]
        while stack:
            prefix, group = stack.pop()
            for gname, sub in group.groups.items():
                stack.append((f"{prefix}{gname}/", sub))
            for vname, var in group.variables.items():
                name = f"{prefix}{vname}"
                try:
                    var.set_auto_maskandscale(False)
                    var.set_auto_chartostring(False)
                    shape, dtype = tuple(var.shape), np.dtype(var.dtype)
                except Exception as e:  # noqa: BLE001
                    out["arrays"][name] = {"error": f"{type(e).__name__}: {e}"[:300]}
                    continue
                entry = {"shape": shape, "dtype": dtype.str, "boxes": []}
                for box in boxes_for(shape, dtype.itemsize):
                    try:
                        values = var[_sel(box)] if shape else var[...]
                        entry["boxes"].append((box, "ok", np.asarray(values)))
                    except Exception as e:  # noqa: BLE001
                        entry["boxes"].append((box, "err", f"{type(e).__name__}: {e}"[:300]))
                out["arrays"][name] = entry
    finally:
        try:
            ds.close()
        except Exception:  # noqa: BLE001
            pass
    return out


def _worker(mode: str, jobs_path: str, outdir: str, start: int) -> int:
    import resource

    # corrupt lengths make libnetcdf/libhdf5 allocate gigabytes: fail those fast instead
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    jobs = json.loads(Path(jobs_path).read_text())
    fn = read_mount_dataset if mode == "read" else read_netcdf
    __import__("zarr" if mode == "read" else "netCDF4")  # before any job's clock starts
    for i in range(start, len(jobs)):
        print(f"start {i}", flush=True)
        result = fn(jobs[i])
        tmp = Path(outdir) / f"{i}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, Path(outdir) / f"{i}.pkl")
    return 0


def run_jobs(mode: str, jobs: list[str], workdir: Path, timeout: float,
             stop_after_hang: bool = False) -> list[dict]:
    """Runs ``jobs`` (paths) in a worker process, one after the other, each under ``timeout``.
    A job that outlives it is a hang (the worker is killed); one during which the worker died is
    a crash; either way the next job starts in a fresh worker.  With ``stop_after_hang`` the jobs
    after a hang are not run (status "skipped").  Returns per job
    ``{"status": "ok"|"hang"|"crash"|"skipped", "result": ..., "detail": ...}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    jobs_path = workdir / "jobs.json"
    jobs_path.write_text(json.dumps([str(j) for j in jobs]))
    results: list[dict | None] = [None] * len(jobs)
    start = 0
    while start < len(jobs):
        progress = workdir / f"progress-{start}.txt"
        errlog = workdir / f"stderr-{start}.txt"
        with open(progress, "w") as po, open(errlog, "w") as pe:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "worker", mode, str(jobs_path),
                 str(workdir), str(start)],
                stdin=subprocess.DEVNULL, stdout=po, stderr=pe, start_new_session=True,
            )
        current, since = start, time.monotonic()
        started = False  # the clock of a job starts when the worker says it starts it
        failed_at, detail, status = None, "", ""
        while True:
            rc = proc.poll()
            lines = progress.read_text().split()
            if len(lines) >= 2 and lines[-2] == "start":
                i = int(lines[-1])
                if i != current or not started:
                    current, since, started = i, time.monotonic(), True
            if not started and rc is None and time.monotonic() - since > WORKER_STARTUP:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise RuntimeError(f"the {mode} worker did not start within {WORKER_STARTUP} s")
            if rc is not None:
                if rc != 0 and not lines:
                    raise RuntimeError(f"the {mode} worker failed to start: "
                                       + errlog.read_text(errors="replace")[-2000:])
                if rc != 0:
                    if (workdir / f"{current}.pkl").exists():
                        current += 1
                    failed_at, status = current, "crash"
                    detail = f"worker exited {rc}: " + errlog.read_text(errors="replace")[-400:]
                break
            if started and time.monotonic() - since > timeout and not (
                    workdir / f"{current}.pkl").exists():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                failed_at, status, detail = current, "hang", f"no answer within {timeout:.0f} s"
                break
            time.sleep(0.02)
        for i in range(start, len(jobs)):
            pkl = workdir / f"{i}.pkl"
            if pkl.exists() and results[i] is None:
                with open(pkl, "rb") as f:
                    results[i] = {"status": "ok", "result": pickle.load(f), "detail": ""}
        if failed_at is None:
            break
        if failed_at < len(jobs):
            results[failed_at] = {"status": status, "result": None, "detail": detail}
        start = failed_at + 1
        if status == "hang" and stop_after_hang:
            break
    return [r if r is not None else {"status": "skipped", "result": None, "detail": ""}
            for r in results]


# --------------------------------------------------------------------------
# judging


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shape and values, bitwise (byte order aside), NaN == NaN; text compared as text."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "OUT" or b.dtype.kind in "OUT":
        def text(x):
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in np.asarray(x, dtype=object).ravel()]
        return text(a) == text(b)
    if a.dtype.itemsize != b.dtype.itemsize:
        return False
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("=")))
    b = np.ascontiguousarray(b.astype(b.dtype.newbyteorder("=")))
    if a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes():
        return True
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return False


def _box_matches(box, values, shape, ref: dict | None, name: str) -> bool:
    if not ref or ref.get("open_error"):
        return False
    entry = ref["arrays"].get(name)
    if not entry or "boxes" not in entry or tuple(entry["shape"]) != tuple(shape):
        return False
    for rbox, status, rvalues in entry["boxes"]:
        if rbox == box:
            return status == "ok" and same_values(values, rvalues)
    return False


def _summary(values) -> str:
    v = np.asarray(values)
    flat = v.ravel()
    return f"{v.dtype.str}{list(v.shape)} {np.array2string(flat[:6], threshold=6)}"


def judge(served: dict, mutant_ref: dict | None, seed_ref: dict) -> tuple[list[str], dict]:
    """Silent wrong values in what the mount served for one dataset, and per-array outcomes.
    An array whose name neither reference has is matched against every same-shaped array of
    both references."""
    wrong: list[str] = []
    counts = {"arrays_ok_mutant": 0, "arrays_ok_seed": 0, "arrays_failed": 0}
    for name, entry in served.get("arrays", {}).items():
        if "boxes" not in entry:
            counts["arrays_failed"] += 1
            continue
        shape = tuple(entry["shape"])
        candidates = [name]
        if not any(name in (r or {}).get("arrays", {}) for r in (mutant_ref, seed_ref)):
            candidates = sorted({n for r in (mutant_ref, seed_ref) if r
                                 for n in r.get("arrays", {})})
        failed = matched_mutant = matched_seed = False
        for box, status, values in entry["boxes"]:
            if status != "ok":
                failed = True
                continue
            if any(_box_matches(box, values, shape, mutant_ref, c) for c in candidates):
                matched_mutant = True
            elif any(_box_matches(box, values, shape, seed_ref, c) for c in candidates):
                matched_seed = True
            else:
                ref_vals = _reference_summary(mutant_ref, name, box, values)
                seed_vals = _reference_summary(seed_ref, name, box, values)
                wrong.append(f"variable {name!r} box {list(box)}: mount served {_summary(values)}; "
                             f"netCDF4 on the mutant: {ref_vals}; on the seed: {seed_vals}")
        if failed:
            counts["arrays_failed"] += 1
        elif matched_mutant:
            counts["arrays_ok_mutant"] += 1
        elif matched_seed:
            counts["arrays_ok_seed"] += 1
    return wrong, counts


def _first_difference(served, ref) -> str:
    a, b = np.asarray(served), np.asarray(ref)
    if a.shape != b.shape or a.dtype.kind in "OUTS" or a.dtype.itemsize != b.dtype.itemsize:
        return ""
    a = a.astype(a.dtype.newbyteorder("="))
    b = b.astype(b.dtype.newbyteorder("="))
    same = (a.view(f"u{a.dtype.itemsize}") == b.view(f"u{b.dtype.itemsize}"))
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    bad = np.argwhere(~same)
    if not len(bad):
        return ""
    idx = tuple(int(i) for i in bad[0])
    return (f" ({len(bad)} of {a.size} values differ, first at {list(idx)}: "
            f"served {a[idx]!r}, here {b[idx]!r})")


def _reference_summary(ref: dict | None, name: str, box, served=None) -> str:
    if not ref:
        return "no answer (crashed or hung)"
    if ref.get("open_error"):
        return f"open failed ({ref['open_error'][:120]})"
    entry = ref["arrays"].get(name)
    if entry is None:
        return "no such variable"
    if "boxes" not in entry:
        return f"failed ({entry.get('error', '')[:120]})"
    for rbox, status, values in entry["boxes"]:
        if rbox == box:
            if status != "ok":
                return f"read failed ({values[:120]})"
            diff = _first_difference(served, values) if served is not None else ""
            return _summary(values) + diff
    return f"shape {list(entry['shape'])}"


# --------------------------------------------------------------------------
# the campaign


@dataclass
class Report:
    campaign: int
    mutants: int = 0
    mounts: int = 0
    datasets_served: int = 0
    datasets_left_out: int = 0
    arrays_ok_mutant: int = 0
    arrays_ok_seed: int = 0
    arrays_failed: int = 0
    reference_failures: int = 0
    unchecked_boxes: int = 0
    panics: int = 0
    daemon_deaths: int = 0
    hangs: int = 0
    silent_wrong: int = 0  # arrays (of any mutant) served with wrong values and no error
    mutants_with_wrong_values: int = 0
    rss_over_bound: int = 0
    max_rss_mib: float = 0.0
    rss_bound_mib: int = RSS_BOUND_MIB
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)

    def bad(self) -> int:
        return self.panics + self.daemon_deaths + self.hangs + self.silent_wrong + self.rss_over_bound

    def counts(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "findings"}

    def text(self) -> str:
        lines = [
            f"mutation campaign {self.campaign}: {self.mutants} mutants, {self.mounts} mounts, "
            f"{self.seconds:.0f} s",
            f"  datasets served {self.datasets_served}, left out {self.datasets_left_out}; arrays "
            f"equal to netCDF4 on the mutant {self.arrays_ok_mutant}, equal to the seed "
            f"{self.arrays_ok_seed}, failed {self.arrays_failed}; unchecked boxes "
            f"{self.unchecked_boxes}; netCDF4 failed on {self.reference_failures} mutants",
            f"  panics {self.panics}, daemon deaths {self.daemon_deaths}, hangs {self.hangs}, "
            f"silent wrong values {self.silent_wrong} (in {self.mutants_with_wrong_values} "
            f"mutants), max daemon RSS {self.max_rss_mib:.0f} MiB "
            f"(bound {self.rss_bound_mib} MiB, over: {self.rss_over_bound})",
        ]
        if self.findings:
            lines.append(f"  (write a mutant again: scripts/fuzz --seed {self.campaign} --mutant I "
                         f"--write DIR)")
        return "\n".join(lines + [f"  {f}" for f in self.findings])


def _vm_hwm_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _panic_lines(text: str) -> list[str]:
    return [line.strip()[:300] for line in text.splitlines() if "panicked" in line]


def _abort_lines(text: str) -> list[str]:
    """Log lines a process leaves when it aborts (allocation failure, stack overflow, ...)."""
    pattern = r"memory allocation of \d+ bytes failed|stack overflow|fatal runtime error|SIGSEGV"
    return sorted({line.strip()[:200] for line in text.splitlines() if re.search(pattern, line)})


class Campaign:
    """One campaign: seeds, mutants, references, and mounts of mutants in batches."""

    def __init__(self, mounts, workdir, campaign: int, count: int, *, batch: int = BATCH,
                 read_timeout: float = READ_TIMEOUT, rss_bound_mib: int = RSS_BOUND_MIB,
                 indices: list[int] | None = None):
        """A campaign of mutants ``0..count`` of seed ``campaign``, or of exactly the mutants
        ``indices`` of it when given (``count`` is then ignored)."""
        self.mounts = mounts  # a conftest.MountManager
        self.workdir = Path(workdir)
        self.campaign = campaign
        self.batch = batch
        self.read_timeout = read_timeout
        self.report = Report(campaign, rss_bound_mib=rss_bound_mib)
        self.seeds = write_seeds(self.workdir / "seeds")
        self.seed_refs = {s.name: read_netcdf(str(s.path)) for s in self.seeds}
        self.mutant_dir = self.workdir / "mutants"
        self.mutant_dir.mkdir(parents=True, exist_ok=True)
        self.mutants: list[Mutant] = []
        for i in (range(count) if indices is None else indices):
            m = make_mutant(self.seeds, campaign, i)
            (self.mutant_dir / f"{m.name}.nc").write_bytes(m.data)
            self.mutants.append(m)
        self.refs: dict[int, dict] = {}  # by mutant index
        self._jobs = 0

    def _ident(self, m: Mutant) -> str:
        return (f"campaign {self.campaign} mutant {m.index} ({m.name}, seed {m.seed.name}): "
                f"{m.desc}")

    def run(self) -> Report:
        t0 = time.monotonic()
        rep = self.report
        rep.mutants = len(self.mutants)
        ref_thread = threading.Thread(target=self._references)
        ref_thread.start()
        served: dict[int, dict] = {}
        queue = [self.mutants[i:i + self.batch] for i in range(0, len(self.mutants), self.batch)]
        while queue:
            served.update(self._run_batch(queue.pop(0), queue))
        ref_thread.join()
        for m in self.mutants:
            ref = self.refs[m.index]
            if ref["status"] != "ok" or ref["result"].get("open_error"):
                rep.reference_failures += 1
            got = served.get(m.index)
            if got is None:
                continue
            if got.get("open_error"):
                rep.datasets_left_out += 1
                continue
            rep.datasets_served += 1
            wrong, counts = judge(got, ref["result"], self.seed_refs[m.seed.name])
            for k, v in counts.items():
                setattr(rep, k, getattr(rep, k) + v)
            rep.unchecked_boxes += sum(1 for e in got["arrays"].values()
                                       for b in e.get("boxes", ()) if b[1] == "unchecked")
            if wrong:
                rep.silent_wrong += len(wrong)
                rep.mutants_with_wrong_values += 1
                more = f" (and {len(wrong) - 1} more variables)" if len(wrong) > 1 else ""
                rep.findings.append(f"SILENT WRONG VALUE: {self._ident(m)}: {wrong[0]}{more}")
        rep.seconds = time.monotonic() - t0
        return rep

    def _references(self) -> None:
        paths = [str(self.mutant_dir / f"{m.name}.nc") for m in self.mutants]
        results = run_jobs("ref", paths, self.workdir / "refs", REF_TIMEOUT)
        self.refs = {m.index: r for m, r in zip(self.mutants, results)}

    def _mount(self, batch: list[Mutant]):
        """Mounts a batch: ``(mount, "ok")``, or ``(None, "hang" | "failed")``.  The panics of a
        failed mount are counted when the batch is one mutant (a failed batch is split, and its
        halves find them again)."""
        from conftest import Mount, is_mounted, run_atlasfs, write_config

        work = self.mounts.new_dir("mut")
        cache = work / "cache"
        datasets = [{"name": m.name, "files": str(self.mutant_dir / f"{m.name}.nc")} for m in batch]
        config = write_config(work / "atlasfs.toml", datasets, cache_dir=cache)
        mountpoint = self.mounts.new_dir("mnt")
        mnt = Mount(self.mounts.bin, config, mountpoint, cache)
        self.mounts.mounts.append(mnt)
        self.report.mounts += 1
        try:
            res = run_atlasfs(self.mounts.bin, "mount", config, mountpoint, timeout=MOUNT_TIMEOUT)
        except AssertionError:  # did not return in time
            mnt.unmount()
            return None, "hang"
        mnt.output = res.stdout + res.stderr
        if res.returncode != 0 or not is_mounted(mountpoint):
            if len(batch) == 1:
                self._panics(mnt.output + mnt.log_text(), batch)
            mnt.unmount()
            return None, "failed"
        return mnt, "ok"

    def _panics(self, text: str, batch: list[Mutant]) -> None:
        who = self._ident(batch[0]) if len(batch) == 1 else (
            f"mutants {batch[0].index}..{batch[-1].index}")
        for line in sorted(set(_panic_lines(text))):
            self.report.panics += 1
            self.report.findings.append(f"PANIC with {who}: {line}")

    def _run_batch(self, batch: list[Mutant], queue: list) -> dict[int, dict]:
        rep = self.report
        mnt, status = self._mount(batch)
        if mnt is None:
            if len(batch) > 1:  # find the mutants that keep the batch from mounting
                half = len(batch) // 2
                queue[0:0] = [batch[:half], batch[half:]]
            elif status == "hang":
                rep.hangs += 1
                rep.findings.append(f"HANG of `atlasfs mount`: {self._ident(batch[0])}")
            else:
                rep.datasets_left_out += 1
            return {}
        from conftest import daemon_pids

        pids = daemon_pids(mnt.path)
        listing = set(os.listdir(mnt.path))
        present = [m for m in batch if m.name in listing]
        rep.datasets_left_out += len(batch) - len(present)
        self._jobs += 1
        results = run_jobs("read", [str(mnt.path / m.name) for m in present],
                           self.workdir / f"reads{self._jobs}", self.read_timeout,
                           stop_after_hang=True)
        served: dict[int, dict] = {}
        died_at = None
        alive = all(_alive(p) for p in pids) and bool(pids)
        for m, r in zip(present, results):
            if r["status"] == "hang":
                rep.hangs += 1
                rep.findings.append(f"HANG reading through the mount: {self._ident(m)}")
            elif r["status"] == "crash":
                rep.findings.append(f"reader process crashed (not counted against the daemon): "
                                    f"{self._ident(m)}: {r['detail'][-200:]}")
            elif r["status"] == "ok":
                if not alive and died_at is None and re.search(
                        r"not connected|connection abort", repr(r["result"])):
                    died_at = m
                served[m.index] = r["result"]
        rss = max((_vm_hwm_mib(p) for p in pids), default=0.0)
        rep.max_rss_mib = max(rep.max_rss_mib, rss)
        if rss > rep.rss_bound_mib:
            rep.rss_over_bound += 1
            rep.findings.append(f"DAEMON RSS {rss:.0f} MiB over the bound with mutants "
                                f"{batch[0].index}..{batch[-1].index}")
        self._panics(mnt.output + mnt.log_text(), batch)
        if not alive:
            rep.daemon_deaths += 1
            who = self._ident(died_at) if died_at else f"mutants {batch[0].index}..{batch[-1].index}"
            last_words = "; ".join(_abort_lines(mnt.log_text())) or "no log line"
            rep.findings.append(f"DAEMON DIED while reading {who} ({last_words})")
        mnt.unmount()
        retry = [m for m, r in zip(present, results) if r["status"] == "skipped"]
        if not alive and died_at is not None:  # read again what came after the death
            after = present[present.index(died_at) + 1:]
            retry += [m for m in after if m.index in served]
            for m in after:
                served.pop(m.index, None)
        if retry:
            queue.insert(0, retry)
        served.pop(died_at.index if died_at else -1, None)
        return served


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "worker":
        sys.exit(_worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    print(f"usage: {sys.argv[0]} worker {{read,ref}} JOBS OUTDIR START", file=sys.stderr)
    sys.exit(2)
