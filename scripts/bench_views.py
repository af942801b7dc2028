#!/usr/bin/env python3
"""Benchmark the derived views (pack, pyramid) against building the same stores with xarray, every
figure measured in one run on one machine.

Normally started by scripts/bench (after scripts/bench.py and the others; `scripts/bench
--views-only` runs only this), which prepares .venv-bench.

The archive is the standard 365-file one (360x720 grid, variable `sst`), generated with the shared
make_archive.py when missing. atlasfs serves it with two views:

    [[view]]  name = "sst-packed",  from = "sst", [view.pack]    dtype = "int16", range = "data", codec = "zstd", level = 3
    [[view]]  name = "sst-pyramid", from = "sst", [view.pyramid] levels = 4, method = "mean", dims = ["lat", "lon"],
                                                                  codec = "none" (the view's default; --pyramid-codec),
                                                                  chunk = 720, chunks = { time = 8 }

The benchmark reads every pyramid level whole, so the pyramid is chunked for readers of whole
levels (--pyramid-layout levels, the default): each chunk holds whole levels of 8 days, as the
anchor's `to_zarr` writes several days per chunk (zarr's automatic chunks). `--pyramid-layout
tiles` keeps the view's default for map viewers, 256x256 tiles of one day, which on this
360x720 grid pads edge tiles to 1.5x (finest level) up to 16x (coarsest) the level's values.

Each load runs in a fresh interpreter with the imports done before the clock starts. Rounds
alternate atlasfs and its anchor (which one goes first alternates too); the figures are medians.

- End to end: atlasfs from an empty cache dir with the OS page cache dropped, each view alone in
  its config, the mount (which indexes the archive and, for the pack view, scans its range)
  included, then every array of the view read whole in a fresh interpreter with zarr-python: the
  pack view's packed integers (what the anchor's job produces; --pack-reader; the compute row is
  also read with `xr.open_zarr(VIEW, mask_and_scale=False).load()`, whose dask graph costs the
  reader CPU the daemon shares two cores with, for information), every pyramid level (as a map
  viewer reads chunks; --pyramid-reader). The warm re-read of a local copy with the same reader is the
  reader's limit in the same run.
  Anchor: open_mfdataset + load + the packing (min/max, `to_zarr` with int16, the view's
  scale_factor/add_offset/_FillValue and zstd) or ndpyramid's `pyramid_coarsen` + `to_zarr`.
- Compute: the sources already in atlasfs's chunk cache (`atlasfs warm CONFIG sst`), the view's
  chunks not (entries written by the previous round are deleted), a fresh mount (not timed); the
  same loads, the reader's libraries set up on a tiny store of its own before the clock (see
  CHILD_VIEW_LOAD), as the anchor's are before its clock.
  Anchor: the same work on the dataset already in memory (baseline_views.py's timing).
- Warm re-read of each view (a fresh mount, entries in the OS page cache) against a local Zarr
  copy of it written with xarray from the mount (for the pyramid: what its chunking costs a
  client at best; no goal).
- Chunk bytes of the pack view (st_size of its chunk files through the mount) against the anchor's
  store, and the daemon's peak RSS while reading every level of the pyramid.

Prints a table and writes results_views.json next to the archives.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PREFAULT, PREFAULT_MIB, VAR, Bench, BenchError, ratio, run_main, say, table, tail  # noqa: E402

PACK = "sst-packed"
PYRAMID = "sst-pyramid"
LEVELS = 4
# --pyramid-layout levels: square chunks as long as the grid's longest side (a whole level per
# chunk) and this many days per chunk (peak RSS stays within the goal; 16 days did not).
PYRAMID_LEVEL_SIDE = 720
PYRAMID_LEVEL_DAYS = 8
FACTORS = [2 ** (LEVELS - 1 - k) for k in range(LEVELS)]  # [8, 4, 2, 1]: level "0" is the coarsest
ZSTD_LEVEL = 3
GOALS = {"pack_e2e": 2.5, "pack_compute": 3.0, "pack_warm": 0.9, "pyramid_e2e": 4.0, "pyramid_compute": 5.0}
RSS_ALLOWANCE_MB = 150
ANCHOR_WORK = {"pack": "to_zarr int16+zstd", "pyramid": "pyramid_coarsen + to_zarr"}

# Reads whole views: argv[1] is a JSON list of group paths, argv[2] the reader:
#   xarray      xr.open_zarr(p).load(): CF-decoded (packed integers become float64)
#   xarray-raw  xr.open_zarr(p, mask_and_scale=False).load(): the stored values (a pack view's
#               integers, which are what the pack anchor's job produces)
#   zarr        zarr-python: every array of the group read whole (what a map viewer does: read
#               chunks, no dask graph)
# Imports are done before the clock starts. With argv[3] == "warm-up", the same reader first opens
# and loads a tiny Zarr store of its own (written to a temporary directory), also before the clock:
# the libraries' one-time set-up on first use (backend and codec registries, dask's thread pool),
# about 1.4 s for xarray here, is then not timed either. The compute rows use it, since their
# anchors work on data already in memory with those libraries set up before their clock, and the
# warm re-read rows use it on both sides; end-to-end rows do not, as their anchors pay it too.
CHILD_VIEW_LOAD = PREFAULT + r"""
import json, os, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask.array
paths = json.loads(sys.argv[1])
reader = sys.argv[2]


def read(p):
    if reader == "zarr":
        g = zarr.open_group(p, mode="r")
        arrays = {k: g[k] for k in g.array_keys()}
        return lambda: {k: a[...] for k, a in arrays.items()}
    ds = xr.open_zarr(p, mask_and_scale=(reader == "xarray"))
    return lambda: {k: v.values for k, v in ds.load().data_vars.items()}


if len(sys.argv) > 3 and sys.argv[3] == "warm-up":
    with tempfile.TemporaryDirectory() as d:
        w = os.path.join(d, "warm-up.zarr")
        xr.Dataset({"w": (("t", "y", "x"), np.zeros((2, 2, 2), "f4"))}).chunk({"t": 1}).to_zarr(w)
        read(w)()
open_s = load_s = 0.0
sums = {}
prefault()
for p in paths:
    t = time.perf_counter()
    load = read(p)
    open_s += time.perf_counter() - t
    t = time.perf_counter()
    values = load()
    load_s += time.perf_counter() - t
    sums[p] = {k: [float(np.nansum(np.asarray(v, dtype="f8"))), int(np.isfinite(np.asarray(v, dtype="f8")).sum()),
                   list(v.shape)] for k, v in values.items()}
print(json.dumps({"open_s": open_s, "load_s": load_s, "total_s": open_s + load_s, "vars": sums}))
"""

# The anchors. argv: mode (e2e | compute), work (pack | pyramid), archive dir, variable, output
# store, JSON of the pack chunk shape. "e2e" times open_mfdataset + load + the work; "compute"
# loads first (not timed) and times the work on the dataset in memory (for pack, like
# baseline_views.py: to_zarr only, the min/max taken before the clock).
CHILD_ANCHOR = PREFAULT + r"""
import glob, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask.array
from zarr.codecs import ZstdCodec
mode, work, d, var, out, chunks = sys.argv[1:7]
chunks = json.loads(chunks)
zstd_level = int(sys.argv[7])
if work == "pyramid":
    from ndpyramid import pyramid_coarsen
files = sorted(glob.glob(os.path.join(d, "*.nc")))
def load():
    return xr.open_mfdataset(files, combine="by_coords")[[var]].load()
def encoding(ds):
    # The view's packing: int16 codes [-32767, 32767], fill -32768, range = the data's min/max.
    lo, hi = float(ds[var].min()), float(ds[var].max())
    scale = (hi - lo) / 65534 if hi > lo else 1.0
    offset = lo + 32767 * scale if hi > lo else lo
    return {var: {"dtype": "int16", "scale_factor": scale, "add_offset": offset, "_FillValue": -32768,
                  "chunks": chunks, "compressors": [ZstdCodec(level=zstd_level)]}}
r = {}
prefault()
t0 = time.perf_counter()
ds = load()
r["load_s"] = time.perf_counter() - t0
if work == "pack":
    enc = encoding(ds)
    if mode == "compute":
        prefault()
        t0 = time.perf_counter()
    ds.to_zarr(out, mode="w", encoding=enc, consolidated=True)
else:
    if mode == "compute":
        prefault()
        t0 = time.perf_counter()
    t = time.perf_counter()
    pyr = pyramid_coarsen(ds, factors=%(factors)s, dims=["lat", "lon"], boundary="trim")
    r["build_s"] = time.perf_counter() - t
    pyr.to_zarr(out, mode="w", consolidated=True)
r["total_s"] = time.perf_counter() - t0
def nbytes(root, skip_meta=True):
    n = 0
    for dirpath, _, names in os.walk(root):
        for f in names:
            if skip_meta and (f in ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")):
                continue
            n += os.path.getsize(os.path.join(dirpath, f))
    return n
r["store_bytes"] = nbytes(out, skip_meta=False)
if work == "pack":
    r["chunk_bytes"] = nbytes(os.path.join(out, var))
print(json.dumps(r))
""".replace("%(factors)s", json.dumps(FACTORS))

# Writes a local Zarr copy of a view with xarray, keeping the view's encoding (dtype, packing,
# chunks, codecs) as read from the mount.
CHILD_COPY = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import xarray as xr
ds = xr.open_zarr(sys.argv[1])
ds.to_zarr(sys.argv[2], mode="w", consolidated=True)
enc = ds[sys.argv[3]].encoding
print(json.dumps({"chunks": list(enc.get("chunks") or []), "dtype": str(enc.get("dtype"))}))
"""

# The compression floor of the pack rows: every chunk file of the local copy of the pack view
# (zstd frames of its int16 codes) decompressed and compressed again with zstd at the view's
# level, one thread, as CPU seconds. Whoever produces the packed store compresses those bytes once
# and whoever reads it decompresses them once; on N cores nothing finishes the pack compute row
# sooner than (compress + decompress) / N. argv: the copy's array directory, the zstd level.
CHILD_ZSTD_FLOOR = r"""
import json, sys, time
from pathlib import Path
from numcodecs import Zstd
frames = [p.read_bytes() for p in sorted(Path(sys.argv[1]).rglob("*")) if p.is_file() and p.name != "zarr.json"
          and not p.name.startswith(".")]
codec = Zstd(level=int(sys.argv[2]))
best = None
for _ in range(3):
    c = time.process_time()
    raw = [codec.decode(f) for f in frames]
    d = time.process_time() - c
    c = time.process_time()
    again = [codec.encode(r) for r in raw]
    e = time.process_time() - c
    best = (d, e) if best is None or d + e < sum(best) else best
print(json.dumps({"decompress_cpu_s": best[0], "compress_cpu_s": best[1], "chunks": len(frames),
                  "raw_bytes": sum(len(r) for r in raw), "compressed_bytes": sum(len(a) for a in again)}))
"""

# Checks the views' values against xarray on the sources over the first days (not timed): the pack
# view within scale_factor/2 with the same NaN mask, every pyramid level equal to coarsen().mean().
CHILD_VERIFY = r"""
import glob, json, os, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr
d, var, packed, pyramid, days = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
factors = json.loads(sys.argv[6])
files = sorted(glob.glob(os.path.join(d, "*.nc")))[:days]
src = xr.open_mfdataset(files, combine="by_coords")[[var]].load()
out = {}
p = xr.open_zarr(packed)
scale = float(p[var].encoding.get("scale_factor", np.nan))
got = p[var].isel(time=slice(0, days)).load().values.astype("f8")
want = src[var].values.astype("f8")
same_mask = bool((np.isnan(got) == np.isnan(want)).all())
err = float(np.nanmax(np.abs(got - want)))
out["pack"] = {"max_abs_err": err, "scale_factor": scale, "same_nan_mask": same_mask,
               "ok": same_mask and err <= scale / 2 * (1 + 1e-3) + 1e-5}
levels = []
for k, f in enumerate(factors):
    lv = xr.open_zarr(os.path.join(pyramid, str(k)))[var].isel(time=slice(0, days)).load()
    ref = src[var].coarsen(lat=f, lon=f, boundary="trim").mean()
    ok = lv.shape == ref.shape and bool(np.allclose(lv.values, ref.values, rtol=1e-5, atol=1e-4, equal_nan=True))
    levels.append({"level": k, "factor": f, "shape": list(lv.shape), "ok": ok})
out["pyramid"] = {"levels": levels, "ok": all(x["ok"] for x in levels)}
print(json.dumps(out))
"""


class ViewsBench(Bench):
    bin_dirname = "bin-views"

    def __init__(self, args):
        super().__init__(args)
        self.rounds = 1 if args.quick else args.repeat
        self.views_results: dict = {}

    # --- configuration -------------------------------------------------------------------------
    def views_config(self, name: str, archive: Path, works: tuple[str, ...] = ("pack", "pyramid")) -> tuple[Path, Path]:
        """A config of the archive as dataset `sst` with the pack and/or pyramid views."""
        cache = self.work / f"cache-{name}"
        path = self.work / f"{name}.toml"
        views = {
            "pack": (f"[[view]]\nname = {json.dumps(PACK)}\nfrom = {json.dumps(VAR)}\n"
                     f'[view.pack]\ndtype = "int16"\nrange = "data"\ncodec = "zstd"\nlevel = {ZSTD_LEVEL}\n'),
            "pyramid": (f"[[view]]\nname = {json.dumps(PYRAMID)}\nfrom = {json.dumps(VAR)}\n"
                        f'[view.pyramid]\nlevels = {LEVELS}\nmethod = "mean"\ndims = ["lat", "lon"]\n'
                        f"codec = {json.dumps(self.args.pyramid_codec)}\n" + self.pyramid_layout()),
        }
        path.write_text(
            "# written by scripts/bench_views.py\n"
            f"[cache]\ndir = {json.dumps(str(cache))}\nmemory = {json.dumps(self.args.memory)}\n\n"
            f"[[dataset]]\nname = {json.dumps(VAR)}\nfiles = {json.dumps(str(archive / '*.nc'))}\n"
            'concat_dim = "time"\n\n' + "\n".join(views[w] for w in works)
        )
        return path, cache

    def pyramid_layout(self) -> str:
        """The pyramid's chunk keys for --pyramid-layout."""
        if self.args.pyramid_layout == "tiles":
            return ""
        return f"chunk = {PYRAMID_LEVEL_SIDE}\nchunks = {{ time = {PYRAMID_LEVEL_DAYS} }}\n"

    def layout_note(self) -> str:
        if self.args.pyramid_layout == "tiles":
            return "256x256 tiles of 1 day"
        return f"whole levels of {PYRAMID_LEVEL_DAYS} days per chunk"

    def reader(self, work: str) -> str:
        """How a view is read (--pack-reader, --pyramid-reader)."""
        return self.args.pack_reader if work == "pack" else self.args.pyramid_reader

    def pyramid_paths(self, mp: Path) -> list[str]:
        return [str(mp / PYRAMID / str(k)) for k in range(LEVELS)]

    def view_paths(self, mp: Path, work: str) -> list[str]:
        return [str(mp / PACK)] if work == "pack" else self.pyramid_paths(mp)

    @staticmethod
    def chunk_files(root: Path) -> list[Path]:
        meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}
        return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in meta)

    def pack_chunk_shape(self, config: Path) -> list[int]:
        """The pack view's chunk shape of `sst`, from `atlasfs tree`."""
        text = self.atlas("tree", str(config), f"{PACK}/{VAR}").stdout
        m = re.search(r"chunks \[(\d+), (\d+), (\d+)\]", text)
        if not m:
            raise BenchError(f"no chunk shape for {PACK}/{VAR} in `atlasfs tree`:\n{tail(text)}")
        return [int(x) for x in m.groups()]

    # --- steps ---------------------------------------------------------------------------------
    @property
    def trash(self) -> Path:
        return self.work / "views-trash"

    def discard(self, path: Path) -> None:
        """Moves `path` out of the way, to be deleted when the run is over. Deleting thousands of
        files just before a timed step makes ext4 scan the freed inodes on every file the step
        then creates (its `recently_deleted` check), which would charge the benchmark's own
        clean-up to whichever side writes files next."""
        if not path.exists():
            return
        self.trash.mkdir(parents=True, exist_ok=True)
        self.discarded = getattr(self, "discarded", 0) + 1
        path.rename(self.trash / f"{self.discarded}-{path.name}")

    def anchor_run(self, mode: str, work: str, archive: Path, chunks: list[int]) -> dict:
        self.discard(self.tmp)
        self.tmp.mkdir(parents=True)
        out = self.tmp / f"anchor-{work}.zarr"
        try:
            self.prepare_cache(self.files)
            return self.child(CHILD_ANCHOR, mode, work, str(archive), VAR, str(out), json.dumps(chunks),
                              str(ZSTD_LEVEL), what=f"anchor {work} {mode}")
        finally:
            self.discard(self.tmp)

    def atlas_e2e(self, config: Path, cache: Path, mp: Path, work: str) -> dict:
        """From an empty cache dir, OS page cache dropped: mount (indexes, scans the pack view's
        range) + open + load; unmounts after."""
        if self.is_mounted(mp):
            self.unmount(mp)
        self.discard(cache)
        cache.mkdir(parents=True)
        if self.mode == "cold":
            self.drop_caches()
        else:
            self.prepare_cache(self.files)
        mount_s, pid = self.mount(config, mp)
        c0 = self.cpu(pid)
        ld = self.child(CHILD_VIEW_LOAD, json.dumps(self.view_paths(mp, work)), self.reader(work),
                        what=f"reading the {work} view")
        ld["mount_s"] = mount_s
        ld["e2e_s"] = mount_s + ld["total_s"]
        ld["daemon_cpu_s"] = self.cpu(pid) - c0
        ld["memory"] = self.memory(pid)
        self.unmount(mp)
        return ld

    def clear_views(self, cache: Path, keep: set[str]) -> int:
        """Removes every cache entry written since `keep` was listed (the views' chunks), moving
        them out of the cache dir (see `discard`)."""
        n = 0
        self.discarded = getattr(self, "discarded", 0) + 1
        bin_ = self.trash / f"{self.discarded}-entries"
        bin_.mkdir(parents=True, exist_ok=True)
        for p in self.cache_entries(cache):
            if p.name not in keep:
                p.rename(bin_ / f"{n}-{p.name}")
                n += 1
        return n

    def atlas_compute(self, config: Path, cache: Path, mp: Path, work: str, keep: set[str],
                      reader: str | None = None) -> dict:
        """Sources in the disk cache (and the OS page cache), views not: fresh mount, open + load
        (with `reader`, default the work's)."""
        if self.is_mounted(mp):
            self.unmount(mp)
        self.clear_views(cache, keep)
        self.read_into_os_cache(self.cache_entries(cache))
        # Dirty pages of earlier steps (the anchor's store, the previous round's entries) are
        # written out first, as before the anchor's runs (prepare_cache syncs): the kernel would
        # otherwise write them back during this measurement, on its CPU.
        os.sync()
        _, pid = self.mount(config, mp)
        c0 = self.cpu(pid)
        ld = self.child(CHILD_VIEW_LOAD, json.dumps(self.view_paths(mp, work)), reader or self.reader(work),
                        "warm-up", what=f"reading the {work} view")
        ld["daemon_cpu_s"] = self.cpu(pid) - c0
        ld["memory"] = self.memory(pid)
        ld["stats"] = self.cache_stats(config)
        self.unmount(mp)
        return ld

    def cache_stats(self, config: Path) -> dict | None:
        try:
            return json.loads(self.atlas("cache", "stats", str(config), "--json").stdout)
        except (BenchError, ValueError):
            return None

    # --- the benchmark -------------------------------------------------------------------------
    def alternate(self, atlas_run, anchor_run) -> tuple[list[dict], list[dict]]:
        """Rounds of one atlasfs run and one anchor run, which goes first alternating."""
        mine, theirs = [], []
        for i in range(self.rounds):
            for who in ("atlas", "anchor") if i % 2 == 0 else ("anchor", "atlas"):
                if who == "atlas":
                    mine.append(atlas_run(i))
                else:
                    theirs.append(anchor_run(i))
        return mine, theirs

    def against_anchor(self, mode: str, work: str, archive: Path, chunks: list[int], atlas_run):
        """`alternate` with the anchor of `work` in `mode` (e2e | compute)."""
        def anchor_run(i: int) -> dict:
            an = self.anchor_run(mode, work, archive, chunks)
            say(f"  round {i + 1}: anchor {an['total_s']:.3f} s (open_mfdataset + load {an['load_s']:.3f}"
                f"{'' if mode == 'e2e' else ', not timed'})")
            return an

        return self.alternate(atlas_run, anchor_run)

    def bench_views(self) -> dict:
        r: dict = {"rounds": self.rounds}
        archive = self.archive("a365")
        self.files = sorted(archive.glob("*.nc"))
        config, cache = self.views_config("views", archive)
        mp = self.work / "mnt-views"
        try:
            self.atlas("check", str(config), timeout=300)
        except BenchError as e:
            raise BenchError(f"this atlasfs does not serve the views of {config}:\n{e}")
        tree = self.atlas("tree", str(config)).stdout
        if PACK not in tree or PYRAMID not in tree:
            raise BenchError(f"`atlasfs tree` does not list {PACK} and {PYRAMID}:\n{tail(tree)}")
        r["pack_chunks"] = self.pack_chunk_shape(config)
        say(f"pack view chunk shape {r['pack_chunks']}; the anchor writes the same chunks")
        self.end_to_end(r, archive, mp)
        self.check_views(r, archive, config, mp)
        self.warm_reread(r, config, cache, mp)
        self.compute(r, archive, config, cache, mp)
        return r

    def end_to_end(self, r: dict, archive: Path, mp: Path) -> None:
        """Each view alone in its config (so a mount scans the pack view's range only for it)."""
        for work in ("pack", "pyramid"):
            config, cache = self.views_config(f"views-{work}", archive, (work,))
            say(f"{work}, end to end ({self.mode}): atlasfs from an empty cache dir (mount included) against "
                f"open_mfdataset + load + {ANCHOR_WORK[work]}")

            def atlas_run(i: int) -> dict:
                ld = self.atlas_e2e(config, cache, mp, work)
                say(f"  round {i + 1}: atlasfs {ld['e2e_s']:.3f} s (mount {ld['mount_s']:.3f} + open {ld['open_s']:.3f} "
                    f"+ load {ld['load_s']:.3f}; daemon CPU {ld['daemon_cpu_s']:.2f} s, peak RSS "
                    f"{ld['memory']['peak_rss_mib']:.0f} MiB)")
                return ld

            mine, theirs = self.against_anchor("e2e", work, archive, r["pack_chunks"], atlas_run)
            r[f"{work}_e2e"] = self.summary(mine, "e2e_s", theirs, "total_s")
            if work == "pack":
                r["pack_anchor_chunk_bytes"] = theirs[-1]["chunk_bytes"]
                r["pack_anchor_store_bytes"] = theirs[-1]["store_bytes"]
            else:
                r["pyramid_anchor_store_bytes"] = theirs[-1]["store_bytes"]
                r["pyramid_peak_rss_mib"] = max(x["memory"]["peak_rss_mib"] for x in mine)
                r["pyramid_rss_after_mib"] = mine[-1]["memory"]["rss_mib"]

    def check_views(self, r: dict, archive: Path, config: Path, mp: Path) -> None:
        """Values against xarray on the sources and the pack view's chunk bytes (not timed)."""
        say("values of both views against xarray on the sources (first days; not timed)")
        self.mount(config, mp)
        ver = self.child(CHILD_VERIFY, str(archive), VAR, str(mp / PACK), str(mp / PYRAMID),
                         str(3 if self.args.quick else 10), json.dumps(FACTORS), what="checking the views' values")
        r["verify"] = ver
        say(f"  pack: max error {ver['pack']['max_abs_err']:.3g} (scale_factor {ver['pack']['scale_factor']:.3g}), "
            f"same NaN mask {ver['pack']['same_nan_mask']}; pyramid levels match coarsen().mean(): {ver['pyramid']['ok']}")
        files = self.chunk_files(mp / PACK / VAR)
        r["pack_chunk_files"] = len(files)
        r["pack_chunk_bytes"] = sum(p.stat().st_size for p in files)
        say(f"  pack view: {len(files)} chunk files, {r['pack_chunk_bytes']} bytes (anchor's chunks "
            f"{r['pack_anchor_chunk_bytes']}, whole store {r['pack_anchor_store_bytes']})")

    def warm_reread(self, r: dict, config: Path, cache: Path, mp: Path) -> None:
        """Each view again on a fresh mount over the cache, against a local copy of it (the pack
        view's is a goal; the pyramid's shows what reading its chunking costs a client at best)."""
        for work in ("pack", "pyramid"):
            say(f"{work}, warm re-read: a fresh mount over the cache (entries in the OS page cache) "
                "against a local Zarr copy written with xarray from the mount")
            local = self.work / f"views-local-{work}"
            self.discard(local)
            if not self.is_mounted(mp):
                self.mount(config, mp)
            views = self.view_paths(mp, work)
            copies = [str(local / Path(v).relative_to(mp)) for v in views]
            for v, c in zip(views, copies):
                r[f"{work}_local_copy"] = self.child(CHILD_COPY, v, c, VAR, what=f"copying {v}")
            r[f"{work}_local_chunk_bytes"] = sum(p.stat().st_size for p in self.chunk_files(local)
                                                 if VAR in p.relative_to(local).parts)

            def atlas_run(i: int) -> dict:
                return self.child(CHILD_VIEW_LOAD, json.dumps(views), self.reader(work), "warm-up",
                                  what=f"re-reading the {work} view")

            def anchor_run(i: int) -> dict:
                return self.child(CHILD_VIEW_LOAD, json.dumps(copies), self.reader(work), "warm-up",
                                  what="reading the local copy")

            mine, theirs = [], []
            for i in range(self.rounds):
                self.unmount(mp)
                self.same_os_cache_state(self.cache_entries(cache), self.chunk_files(local))
                self.mount(config, mp)
                first, second = (atlas_run, anchor_run) if i % 2 == 0 else (anchor_run, atlas_run)
                a, b = first(i), second(i)
                m, t = (a, b) if i % 2 == 0 else (b, a)
                mine.append(m)
                theirs.append(t)
                say(f"  round {i + 1}: atlasfs load {m['load_s']:.3f} s (open {m['open_s']:.3f}); "
                    f"local Zarr load {t['load_s']:.3f} s (open {t['open_s']:.3f})")
            r[f"{work}_warm"] = self.summary(mine, "load_s", theirs, "load_s")
            if work == "pack":
                r["pack_zstd_floor"] = self.child(CHILD_ZSTD_FLOOR, str(local / PACK / VAR), str(ZSTD_LEVEL),
                                                  what="compressing the pack view's chunks again")
                say(f"  zstd level {ZSTD_LEVEL} over the pack view's chunks, one thread: compress "
                    f"{r['pack_zstd_floor']['compress_cpu_s']:.3f} s, decompress "
                    f"{r['pack_zstd_floor']['decompress_cpu_s']:.3f} s of CPU")
            self.discard(local)
        self.unmount(mp)

    def compute(self, r: dict, archive: Path, config: Path, cache: Path, mp: Path) -> None:
        """Sources in the chunk cache, the views' chunks not, against the work on data in memory."""
        say("compute: `atlasfs warm CONFIG sst` (the sources into the chunk cache)")
        self.discard(cache)
        cache.mkdir(parents=True)
        self.prepare_cache(self.files)
        t = time.perf_counter()
        self.atlas("warm", str(config), VAR, timeout=1800)
        r["warm_sources_s"] = time.perf_counter() - t
        keep = {p.name for p in self.cache_entries(cache)}
        say(f"  {r['warm_sources_s']:.3f} s, {len(keep)} entries")
        for work in ("pack", "pyramid"):
            say(f"{work}, compute: atlasfs (sources cached, view cold, fresh mount not timed) against "
                f"{ANCHOR_WORK[work]} of the dataset in memory")

            def atlas_run(i: int) -> dict:
                ld = self.atlas_compute(config, cache, mp, work, keep)
                say(f"  round {i + 1}: atlasfs {ld['total_s']:.3f} s (open {ld['open_s']:.3f} + load {ld['load_s']:.3f}; "
                    f"daemon CPU {ld['daemon_cpu_s']:.2f} s){self.stats_note(ld['stats'])}")
                return ld

            mine, theirs = self.against_anchor("compute", work, archive, r["pack_chunks"], atlas_run)
            r[f"{work}_compute"] = self.summary(mine, "total_s", theirs, "total_s")
            r[f"{work}_compute"]["stats_last"] = mine[-1]["stats"]
            if work == "pack" and self.reader(work) != "xarray-raw":
                self.compute_other_reader(r, config, cache, mp, keep, "xarray-raw")
        self.clear_views(cache, keep)

    def compute_other_reader(self, r: dict, config: Path, cache: Path, mp: Path, keep: set[str], reader: str) -> None:
        """The pack compute row read with another reader, against the same anchor runs (info)."""
        say(f"pack, compute, read with {reader} (info; the anchor as above)")
        runs = []
        for i in range(self.rounds):
            ld = self.atlas_compute(config, cache, mp, "pack", keep, reader)
            say(f"  round {i + 1}: atlasfs {ld['total_s']:.3f} s (daemon CPU {ld['daemon_cpu_s']:.2f} s)")
            runs.append(ld["total_s"])
        r["pack_compute_other_reader"] = {"reader": reader, "atlasfs_s": statistics.median(runs), "atlasfs_runs": runs,
                                          "anchor_s": r["pack_compute"]["anchor_s"]}

    @staticmethod
    def stats_note(stats: dict | None) -> str:
        if not isinstance(stats, dict):
            return ""
        flat = {}

        def walk(d, prefix=""):
            for k, v in d.items():
                if isinstance(v, dict):
                    walk(v, prefix + k + ".")
                elif isinstance(v, (int, float)) and any(w in k for w in ("computed", "hit", "miss")):
                    flat[prefix + k] = v

        walk(stats)
        return ("; cache " + ", ".join(f"{k} {v}" for k, v in sorted(flat.items()))) if flat else ""

    @staticmethod
    def summary(mine: list[dict], mkey: str, theirs: list[dict], tkey: str) -> dict:
        m = [x[mkey] for x in mine]
        t = [x[tkey] for x in theirs]
        return {"atlasfs_s": statistics.median(m), "anchor_s": statistics.median(t), "atlasfs_runs": m, "anchor_runs": t,
                "atlasfs_open_s": statistics.median(x["open_s"] for x in mine),
                "atlasfs_load_s": statistics.median(x["load_s"] for x in mine),
                "atlasfs_daemon_cpu_s": statistics.median(x["daemon_cpu_s"] for x in mine) if "daemon_cpu_s" in mine[0] else None}

    # --- report --------------------------------------------------------------------------------
    def ratios(self) -> None:
        v = self.views_results
        lst = v["ratios"] = []
        names = {
            "pack_e2e": ("int16+zstd pack view, end to end", "open_mfdataset + load + to_zarr int16+zstd"),
            "pack_compute": ("int16+zstd pack view, compute (sources cached)", "to_zarr int16+zstd of the in-memory dataset"),
            "pack_warm": ("pack view, warm re-read", "a local Zarr copy of the packed data"),
            "pyramid_warm": ("pyramid, all levels, warm re-read (info)", "a local Zarr copy of the pyramid"),
            "pyramid_e2e": (f"{LEVELS}-level pyramid, all levels, end to end",
                            "open_mfdataset + load + pyramid_coarsen + to_zarr"),
            "pyramid_compute": (f"{LEVELS}-level pyramid, compute (sources cached)",
                                "pyramid_coarsen + to_zarr of the in-memory dataset"),
        }
        for key, (what, anchor) in names.items():
            s = v[key]
            goal = GOALS.get(key)
            if goal is None:
                lst.append(ratio(key, what, s["atlasfs_s"], s["anchor_s"], anchor))
                continue
            f = s["anchor_s"] / s["atlasfs_s"] if s["atlasfs_s"] > 0 else float("inf")
            lst.append(ratio(key, what, s["atlasfs_s"], s["anchor_s"], anchor,
                             f"≥{goal}× the anchor's speed" if goal < 1 else f"≥{goal}× faster", f >= goal))
        floor = v.get("pack_zstd_floor")
        if floor:
            cpus = v["environment"]["cpus"]
            floor_s = (floor["compress_cpu_s"] + floor["decompress_cpu_s"]) / cpus
            at_most = v["pack_compute"]["anchor_s"] / floor_s if floor_s > 0 else float("inf")
            lst.append({"key": "pack_compute_floor", "floor_s": floor_s, "at_most": at_most, "text": (
                f"pack compute floor: compressing the view's chunks with zstd {ZSTD_LEVEL} and decompressing them take "
                f"{floor['compress_cpu_s']:.3f} + {floor['decompress_cpu_s']:.3f} s of CPU, {floor_s:.3f} s on {cpus} cores: "
                f"nothing serves the pack compute row more than {at_most:.2f}× faster than its anchor "
                f"({v['pack_compute']['anchor_s']:.3f} s)")})
        other = v.get("pack_compute_other_reader")
        if other:
            lst.append(ratio("pack_compute_other_reader", f"the same, read with {other['reader']} (info)",
                             other["atlasfs_s"], other["anchor_s"], "the same anchor runs"))
        ok = v["pack_chunk_bytes"] <= v["pack_anchor_chunk_bytes"]
        lst.append({"key": "pack_chunk_bytes", "met": ok, "atlasfs_bytes": v["pack_chunk_bytes"],
                    "anchor_bytes": v["pack_anchor_chunk_bytes"], "text": (
                        f"pack view chunk bytes: {v['pack_chunk_bytes']:,} against the anchor's {v['pack_anchor_chunk_bytes']:,} "
                        f"({v['pack_chunk_bytes'] / max(1, v['pack_anchor_chunk_bytes']):.3f}×; anchor's whole store "
                        f"{v['pack_anchor_store_bytes']:,}); goal: ≤ the anchor's — {'met' if ok else 'NOT MET'}")})
        tier = v["memory_tier_mib"]
        peak = v["pyramid_peak_rss_mib"]
        ok = peak * 2**20 <= tier * 2**20 + RSS_ALLOWANCE_MB * 1e6
        lst.append({"key": "pyramid_rss", "met": ok, "peak_rss_mib": peak, "text": (
            f"daemon peak RSS while reading every pyramid level (end to end, max of rounds): {peak:.0f} MiB, "
            f"memory tier {tier:.0f} MiB; goal ≤ tier + {RSS_ALLOWANCE_MB} MB — {'met' if ok else 'NOT MET'}")})
        ok = v["verify"]["pack"]["ok"] and v["verify"]["pyramid"]["ok"]
        lst.append({"key": "values", "met": ok, "text": f"view values match xarray on the sources: {'yes' if ok else 'NO'}"})

    def report(self) -> str:
        v = self.views_results
        env = v["environment"]
        out = ["", f"atlasfs views benchmark  {v['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})",
               f"  OS page cache: {self.mode_note}",
               f"  load average (1 min) at start {env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}",
               f"  medians of {v['rounds']} round(s), atlasfs and anchor alternating; every load in a fresh interpreter, "
               "imports not timed",
               f"  views: {PACK} (int16, range data, zstd {ZSTD_LEVEL}); {PYRAMID} ({LEVELS} levels, mean, lat/lon, "
               f"codec {self.args.pyramid_codec}, {self.layout_note()}); [cache] memory = {self.args.memory}",
               f"  readers: pack {self.args.pack_reader}, pyramid {self.args.pyramid_reader} (the same reader "
               "reads the local copies)",
               f"  every timed child (both sides) writes and frees {self.args.prefault_mib} MiB before its clock "
               "(--prefault-mib; see bench.PREFAULT)"]
        rows: list[tuple[str, str, str]] = []

        def row(what, secs, note=""):
            rows.append((what, secs if isinstance(secs, str) else f"{secs:.3f}", note))

        def runs(xs):
            return "runs " + ", ".join(f"{x:.3f}" for x in xs)

        for key, label in (("pack_e2e", "pack view, end to end"), ("pack_compute", "pack view, compute"),
                           ("pack_warm", "pack view, warm re-read (load)"), ("pyramid_e2e", "pyramid, end to end"),
                           ("pyramid_compute", "pyramid, compute"),
                           ("pyramid_warm", "pyramid, warm re-read (load; info)")):
            s = v[key]
            rows.append((label, "", ""))
            note = runs(s["atlasfs_runs"])
            if key.endswith("e2e"):
                note += f"; open {s['atlasfs_open_s']:.3f} + load {s['atlasfs_load_s']:.3f} + mount"
            if s.get("atlasfs_daemon_cpu_s") is not None:
                note += f"; daemon CPU {s['atlasfs_daemon_cpu_s']:.2f} s"
            row("  atlasfs", s["atlasfs_s"], note)
            row("  local Zarr copy" if key.endswith("warm") else "  anchor", s["anchor_s"], runs(s["anchor_runs"]))
            row("  speed-up", f"{s['anchor_s'] / s['atlasfs_s']:.2f}×", f"goal ≥{GOALS[key]}×" if key in GOALS else "")
        rows.append(("sizes and memory", "", ""))
        row("  pack view chunk bytes", f"{v['pack_chunk_bytes']:,}", f"{v['pack_chunk_files']} chunk files, chunks {v['pack_chunks']}")
        row("  anchor chunk bytes / store bytes", f"{v['pack_anchor_chunk_bytes']:,}", f"store {v['pack_anchor_store_bytes']:,}")
        row("  local copy chunk bytes", f"{v['pack_local_chunk_bytes']:,}", f"chunks {v['pack_local_copy']['chunks']}")
        row("  pyramid local copy chunk bytes", f"{v['pyramid_local_chunk_bytes']:,}",
            f"level {LEVELS - 1} chunks {v['pyramid_local_copy']['chunks']}; anchor's store {v['pyramid_anchor_store_bytes']:,}")
        row("  sources warm into the cache (s)", v["warm_sources_s"], "`atlasfs warm CONFIG sst`")
        row("  daemon peak RSS, pyramid read (MiB)", f"{v['pyramid_peak_rss_mib']:.0f}",
            f"after {v['pyramid_rss_after_mib']:.0f}; tier {v['memory_tier_mib']:.0f} MiB")
        out.append("")
        out.extend(table(rows))
        out += ["", "ratios"] + ["  " + x["text"] for x in v["ratios"]] + [""]
        return "\n".join(out)

    def run(self) -> int:
        import psutil

        self.preflight()
        shutil.rmtree(self.trash, ignore_errors=True)
        ver = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        v = self.views_results
        v.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cache_mode": self.mode, "quick": self.args.quick, "rounds": self.rounds,
            "memory_tier_mib": parse_mib(self.args.memory), "pyramid_codec": self.args.pyramid_codec,
            "pyramid_layout": self.args.pyramid_layout,
            "pack_reader": self.args.pack_reader, "pyramid_reader": self.args.pyramid_reader,
            "prefault_mib": self.args.prefault_mib,
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": ver[-1] if ver else "?", "git": self.git(),
                "packages": {**self.versions(), "ndpyramid": pkg_version("ndpyramid")},
                "load_average_start": os.getloadavg(),
            },
        })
        try:
            v.update(self.bench_views())
        finally:
            for mp in list(self.mounts):
                self.unmount(mp)
            shutil.rmtree(self.trash, ignore_errors=True)
        v["environment"]["load_average_end"] = os.getloadavg()
        self.ratios()
        v["table"] = self.report()
        out = self.data / "results_views.json"
        out.write_text(json.dumps(v, indent=2, ensure_ascii=False) + "\n")
        print(v["table"])
        say(f"results written to {out}")
        return 0 if v["verify"]["pack"]["ok"] and v["verify"]["pyramid"]["ok"] else 1


def pkg_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def parse_mib(size: str) -> float:
    """`"512MiB"`, `"1GiB"`, `"300MB"` as MiB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*", size, re.I)
    if not m:
        raise BenchError(f"--memory {size!r}: expected a size such as 512MiB")
    unit = m.group(2).upper()
    mult = {"": 1, "B": 1, "KB": 1e3, "KIB": 2**10, "K": 2**10, "MB": 1e6, "MIB": 2**20, "M": 2**20,
            "GB": 1e9, "GIB": 2**30, "G": 2**30, "TB": 1e12, "TIB": 2**40, "T": 2**40}.get(unit)
    if mult is None:
        raise BenchError(f"--memory {size!r}: unknown unit")
    return float(m.group(1)) * mult / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round of everything (a smoke test)")
    p.add_argument("--warm", action="store_true", help="measure with the sources in the OS page cache instead of dropping it")
    p.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median; default 3)")
    p.add_argument("--prefault-mib", type=int, default=PREFAULT_MIB,
                   help=f"MiB each timed child writes and frees before its clock (default {PREFAULT_MIB}; 0: off; "
                        "see bench.PREFAULT)")
    p.add_argument("--memory", default="512MiB", help="[cache] memory of the views' mount (default 512MiB)")
    p.add_argument("--pyramid-codec", default="none", choices=["zstd", "gzip", "none"],
                   help="codec of the pyramid view (default none, the view's default)")
    p.add_argument("--pyramid-layout", default="levels", choices=["levels", "tiles"],
                   help="chunks of the pyramid view: levels (default: whole levels, 8 days per chunk, "
                        "for the benchmark's whole-level reads) or tiles (the view's default, 256x256 "
                        "tiles of one day, as map viewers read them)")
    p.add_argument("--pack-reader", default="zarr", choices=["xarray", "xarray-raw", "zarr"],
                   help="how the pack view and its local copy are read (default zarr: zarr-python reads "
                        "every array whole, the packed integers the anchor writes; the compute row is "
                        "also read with xarray-raw, xr.open_zarr(mask_and_scale=False), for information)")
    p.add_argument("--pyramid-reader", default="zarr", choices=["xarray", "xarray-raw", "zarr"],
                   help="how the pyramid levels and their local copy are read (default zarr: "
                        "zarr-python reads every array whole, as a map viewer reads chunks)")
    args, _unknown = p.parse_known_args()  # scripts/bench passes every script the same options
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return run_main("bench_views", lambda: ViewsBench(args).run(), "mounts were unmounted")


if __name__ == "__main__":
    sys.exit(main())
