#!/usr/bin/env python3
"""Benchmark the regrid views against xarray-regrid (and the Web Mercator pyramid against
ndpyramid), every figure measured in one run on one machine.

Normally started by scripts/bench (after the others; `scripts/bench --regrid-only` runs only this),
which prepares .venv-bench.

The archive is the standard 365-file one (360x720 grid at 0.5°, longitudes -180..180, variable
`sst`), generated with the shared make_archive.py when missing (--quick: January's 31 files).
atlasfs serves it with regrid views to the 1° grid of the same longitude convention:

    [[view]]  name = "sst-1deg-conservative", from = "sst",
              [view.regrid] method = "conservative", grid = { lat = -89.5..89.5, lon = -179.5..179.5, step 1 }
    [[view]]  name = "sst-1deg-bilinear", the same with method = "bilinear", nan_threshold = 0 (NaN as xarray.interp)

both chunked for the benchmark's whole-array reads: chunk = 360 (the whole 1° grid) and
chunks = { time = 8 } (--regrid-layout tiles: 256x256 tiles of one day, the views' default).

Each load runs in a fresh interpreter with the imports done before the clock starts. Rounds
alternate atlasfs and its anchor (which one goes first alternates too); the figures are medians.

- Compute (conservative, bilinear): the sources in atlasfs's chunk cache (`atlasfs warm CONFIG
  sst`), the view's chunks and its persisted weights not (removed before every round), a fresh
  mount (not timed); `xr.open_zarr(VIEW).load()`. Anchor: `ds.regrid.conservative(target)` /
  `ds.regrid.linear(target)` + `.load()` on the dataset in memory (the load not timed).
- End to end (conservative): atlasfs from an empty cache dir with the OS page cache dropped, the
  mount included. Anchor: open_mfdataset + load + the regrid.
- Weights on a 0.1° global grid (3600x1800, one time step, generated) -> 0.25° conservative: the
  time to the first chunk of a cold view (an empty cache dir, so no weights; mount not timed,
  zarr-python reads chunk [0, 0:256, 0:256]) and the daemon's peak RSS. Anchor: xarray-regrid
  conservative on the same grids, one time step in memory.
- A DataTree of 10 models on 3 grids (1°, 0.75°, 1.25°; 12 time steps of a float32 `lithk`;
  generated as `{model}.nc`, served with `groups = ["model"]`) regridded by one view to a common
  1° grid, then `xr.concat([dt[m]["lithk"] for m in models], "m").var("m")`, end to end on both
  sides. Anchor: a loop of open_dataset + xarray-regrid conservative over the files, concat, var.
  Before the clock each side sets up its libraries on a tiny input of its own kind (a two-group
  Zarr DataTree; a netCDF file and a small regrid), like the imports: about 1.4 s of one-time
  xarray/zarr set-up would otherwise be most of atlasfs's figure. After the rounds the same
  reader reads a local copy of the view (in the OS page cache): the reader limit of this row.
- A 6-level Web Mercator pyramid (`[view.pyramid] crs = "EPSG:3857", pixels_per_tile = 128,
  levels = 6, chunks = { time = <batch> }, codec = "zstd", level = 3`: the anchor's chunks and
  codec) when `atlasfs check` accepts it ("not available" otherwise), every level read with
  zarr-python a few time steps at a time (as tiles are read), end to end, and the daemon's
  peak RSS. Anchor: ndpyramid `pyramid_reproject(ds, levels=6, pixels_per_tile=128)` +
  `to_zarr`, on batches of days appended along time (--merc-batch; the whole year's finest
  level alone is ~24 GB in memory), so its store's chunks are (batch, 128, 128), as the view's.
  After each anchor round the same reader reads the anchor's finished store (local, in the OS
  page cache): the reader limit, the time of this read with nothing to compute. The coarsest
  levels' values are compared (information).

Values are checked on every run: the conservative views against an exact numpy reference
(latitude-circle overlaps Δλ·(sin φ2 − sin φ1), normalised by the valid area; max relative
difference ≤ 1e-6, the DataTree's variance ≤ 1e-5) and against xarray-regrid, whose conservative
weights use a median Δφ approximation (expect ~1e-3 relative); the bilinear view against
xarray-regrid's linear. Each check also wants the same NaN mask.

Prints a table and writes results_regrid.json next to the archives.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import PREFAULT, PREFAULT_MIB, VAR, BenchError, run_main, say, table, tail  # noqa: E402
from bench_views import RSS_ALLOWANCE_MB, ViewsBench, parse_mib, pkg_version  # noqa: E402

# The 0.1° one-step archive of the weights row, generated once like the standard ones.
bench.ARCHIVES["g01"] = ["--files", "1", "--ny", "1800", "--nx", "3600", "--chunk", "1,450,900"]
bench.FILE_COUNTS["g01"] = 1

CONS = "conservative"
BILIN = "bilinear"
VIEWS = {CONS: "sst-1deg-conservative", BILIN: "sst-1deg-bilinear"}
ONE_DEG = {"lat": (-89.5, 89.5, 1.0), "lon": (-179.5, 179.5, 1.0)}
QUARTER_DEG = {"lat": (-89.875, 89.875, 0.25), "lon": (-179.875, 179.875, 0.25)}
CHUNK = 256
# --regrid-layout steps (the default): the 1° views' chunks hold the whole grid of this many days,
# for the benchmark's whole-array reads (`tiles`: CHUNK x CHUNK tiles of one day).
STEPS_PER_CHUNK = 8
MODELS = 10
MODEL_GRIDS = (1.0, 0.75, 1.25)
MODEL_STEPS = 12
MERC_LEVELS = 6
MERC_PIXELS = 128
MERC_ZSTD_LEVEL = 3
GOALS = {"cons_compute": 10.0, "cons_e2e": 4.0, "bilin_compute": 10.0, "tree": 5.0, "merc": 5.0}
WEIGHTS_GOAL_S = 10.0
WEIGHTS_GOAL_RSS_MIB = 1024.0
# Largest relative differences accepted: against the exact reference (float32 results of a float64
# computation; the variance over models is itself taken in float32 by xarray), and against
# xarray-regrid (--anchor-rtol; its conservative weights use a median Δφ approximation, ~1e-3).
EXACT_TOL = 1e-6
EXACT_TOL_TREE_VAR = 1e-5

# The atlasfs side of the compute and end-to-end rows: xr.open_zarr(VIEW).load() (CHILD_VIEW_LOAD
# of bench_views with the "xarray" reader). The others:

# The xarray-regrid anchor. argv: mode (e2e | compute), method (conservative | linear), glob,
# variable, JSON grid. "compute" loads first (not timed).
CHILD_ANCHOR = PREFAULT + r"""
import glob, json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, dask.array, xarray_regrid
mode, method, pattern, var, grid = sys.argv[1:6]
grid = json.loads(grid)
axis = lambda a, b, s: np.arange(a, b + s / 2, s)
target = xr.Dataset(coords={k: axis(*v) for k, v in grid.items()})
files = sorted(glob.glob(pattern))
r = {}
prefault()
t0 = time.perf_counter()
ds = xr.open_mfdataset(files, combine="by_coords")[[var]].load()
r["load_s"] = time.perf_counter() - t0
if mode == "compute":
    prefault()
    t0 = time.perf_counter()
if method == "conservative":
    out = ds.regrid.conservative(target, latitude_coord="lat", skipna=True, nan_threshold=1.0).load()
else:
    out = ds.regrid.linear(target).load()
r["total_s"] = time.perf_counter() - t0
r["shape"] = list(out[var].shape)
print(json.dumps(r))
"""

# Values of the regrid views over the first days (not timed). argv: this script's directory, glob,
# variable, JSON {method: view path}, days, JSON grid. The conservative view against the exact
# reference and xarray-regrid, the bilinear one against xarray-regrid's linear.
CHILD_VERIFY = r"""
import glob, json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, xarray_regrid
sys.path.insert(0, sys.argv[1])
from bench_regrid import exact_conservative, rel_diff
pattern, var, views, days, grid = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
axis = lambda a, b, s: np.arange(a, b + s / 2, s)
tlat, tlon = axis(*grid["lat"]), axis(*grid["lon"])
files = sorted(glob.glob(pattern))[:days]
src = xr.open_mfdataset(files, combine="by_coords")[[var]].load()
target = xr.Dataset(coords={"lat": tlat, "lon": tlon})
out = {"days": len(files)}
if "conservative" in views:
    got = xr.open_zarr(views["conservative"])[var].isel(time=slice(0, len(files))).load()
    out["dtype"] = str(got.dtype)
    exact = exact_conservative(src.lat.values, src.lon.values, src[var].values, tlat, tlon)
    xr_c = src.regrid.conservative(target, latitude_coord="lat", skipna=True, nan_threshold=1.0)[var].values
    out["conservative_vs_exact"] = rel_diff(got.values, exact)
    out["conservative_vs_xarray_regrid"] = rel_diff(got.values, xr_c)
    out["xarray_regrid_vs_exact"] = rel_diff(xr_c, exact)
if "bilinear" in views:
    got = xr.open_zarr(views["bilinear"])[var].isel(time=slice(0, len(files))).load()
    out["bilinear_vs_xarray_regrid"] = rel_diff(got.values, src.regrid.linear(target)[var].values)
print(json.dumps(out))
"""

# Time to the first chunk of a view with zarr-python (open included); saves the chunk. argv: view
# group, variable, chunk side, output .npy.
CHILD_FIRST_CHUNK = PREFAULT + r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, zarr
group, var, side, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
prefault()
t = time.perf_counter()
a = zarr.open_group(group, mode="r")[var]
block = a[0, :side, :side]
r = {"total_s": time.perf_counter() - t, "shape": list(a.shape), "chunks": list(a.chunks)}
np.save(out, block)
print(json.dumps(r))
"""

# xarray-regrid conservative of one time step in memory (load not timed); saves the first chunk's
# block. argv: glob, variable, JSON grid, chunk side, output .npy.
CHILD_WEIGHTS_ANCHOR = PREFAULT + r"""
import glob, json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, xarray as xr, xarray_regrid
pattern, var, grid, side, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
axis = lambda a, b, s: np.arange(a, b + s / 2, s)
ds = xr.open_dataset(sorted(glob.glob(pattern))[0])[[var]].isel(time=slice(0, 1)).load()
target = xr.Dataset(coords={k: axis(*v) for k, v in grid.items()})
prefault()
t = time.perf_counter()
res = ds.regrid.conservative(target, latitude_coord="lat", skipna=True, nan_threshold=1.0).load()
r = {"total_s": time.perf_counter() - t, "shape": list(res[var].shape)}
np.save(out, res[var].values[0, :side, :side])
print(json.dumps(r))
"""

# The DataTree row. argv: side (atlasfs | anchor), the view group or the files' directory, JSON
# grid, output .npy. Both end with xr.concat([...], "m").var("m") computed; imports not timed.
CHILD_TREE = PREFAULT + r"""
import glob, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, xarray as xr, zarr, dask.array, xarray_regrid
import tempfile
side, where, grid, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
axis = lambda a, b, s: np.arange(a, b + s / 2, s)
# Each side first sets up its libraries on a tiny input of its own kind (not timed, like the
# imports): a two-group Zarr DataTree for atlasfs, a netCDF file and a regrid for the anchor.
with tempfile.TemporaryDirectory() as d:
    tiny = xr.Dataset({"lithk": (("time", "lat", "lon"), np.ones((2, 4, 4)))},
                      coords={"lat": np.linspace(-60, 60, 4), "lon": np.linspace(0, 270, 4)})
    if side == "atlasfs":
        xr.DataTree.from_dict({"a": tiny, "b": tiny}).to_zarr(os.path.join(d, "t.zarr"))
        w = xr.open_datatree(os.path.join(d, "t.zarr"), engine="zarr")
        xr.concat([w["a"]["lithk"], w["b"]["lithk"]], "m").var("m").load()
    else:
        tiny.to_netcdf(os.path.join(d, "t.nc"))
        w = xr.open_dataset(os.path.join(d, "t.nc"))[["lithk"]].load()
        coarse = xr.Dataset(coords={"lat": np.linspace(-45, 45, 3), "lon": np.linspace(0, 240, 3)})
        r = w.regrid.conservative(coarse, latitude_coord="lat", skipna=True, nan_threshold=1.0)["lithk"]
        xr.concat([r, r], "m").var("m").load()
prefault()
t = time.perf_counter()
if side == "atlasfs":
    dt = xr.open_datatree(where, engine="zarr")
    models = sorted(k for k in dt.children if "lithk" in dt[k].data_vars)
    parts = [dt[m]["lithk"] for m in models]
else:
    target = xr.Dataset(coords={k: axis(*v) for k, v in grid.items()})
    parts = []
    for f in sorted(glob.glob(os.path.join(where, "*.nc"))):
        ds = xr.open_dataset(f)[["lithk"]].load()
        parts.append(ds.regrid.conservative(target, latitude_coord="lat", skipna=True, nan_threshold=1.0)["lithk"])
    models = parts
v = xr.concat(parts, "m").var("m").load()
r = {"total_s": time.perf_counter() - t, "models": len(models), "shape": list(v.shape)}
np.save(out, v.values)
print(json.dumps(r))
"""

# Reads every level of a pyramid with zarr-python a few time steps at a time (the finest level of a
# year is ~24 GB: a whole-array read does not fit in memory), as a tile server reads chunks.
# argv: JSON list of level groups. Imports are done before the clock starts.
CHILD_LEVELS_READ = PREFAULT + r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, zarr
paths = json.loads(sys.argv[1])
prefault()
t = time.perf_counter()
sums, shapes = [], []
for p in paths:
    g = zarr.open_group(p, mode="r")
    for k in g.array_keys():
        a = g[k]
        shapes.append(list(a.shape))
        if a.ndim < 3:
            sums.append(float(np.nansum(a[...])))
            continue
        step = max(1, (256 << 20) // max(1, a.nbytes // a.shape[0]))
        total = 0.0
        for i in range(0, a.shape[0], step):
            total += float(np.nansum(a[i:i + step], dtype="f8"))
        sums.append(total)
r = {"total_s": time.perf_counter() - t, "shapes": shapes, "sums": sums}
print(json.dumps(r))
"""

# ndpyramid's Web Mercator pyramid, appended along time in batches of days. argv: glob, variable,
# output store, levels, pixels per tile, batch days, .npy for the coarsest level's values.
CHILD_MERC_ANCHOR = PREFAULT + r"""
import glob, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, xarray as xr, dask.array, rioxarray
from ndpyramid import pyramid_reproject
pattern, var, out, levels, pixels, batch, npy = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
files = sorted(glob.glob(pattern))
prefault()
t0 = time.perf_counter()
r = {"load_s": 0.0, "build_s": 0.0, "write_s": 0.0, "batches": 0}
for i in range(0, len(files), batch):
    t = time.perf_counter()
    ds = xr.open_mfdataset(files[i:i + batch], combine="by_coords")[[var]].load()
    ds = ds.rename({"lon": "x", "lat": "y"}).rio.write_crs("EPSG:4326")
    r["load_s"] += time.perf_counter() - t
    t = time.perf_counter()
    pyr = pyramid_reproject(ds, levels=levels, pixels_per_tile=pixels, extra_dim="time")
    r["build_s"] += time.perf_counter() - t
    t = time.perf_counter()
    if i == 0:
        pyr.to_zarr(out, mode="w", consolidated=True)
    else:
        for k in range(levels):
            pyr[str(k)].to_dataset()[[var]].to_zarr(out, group=str(k), append_dim="time", consolidated=True)
    r["write_s"] += time.perf_counter() - t
    r["batches"] += 1
    del ds, pyr
r["total_s"] = time.perf_counter() - t0
r["level_shapes"] = [list(xr.open_zarr(os.path.join(out, str(k)))[var].shape) for k in range(levels)]
meta = os.path.join(out, str(levels - 1), var, "zarr.json")
if os.path.exists(meta):
    r["codecs"] = [c["name"] + str(c.get("configuration", {}).get("level", ""))
                   for c in json.load(open(meta))["codecs"]]
np.save(npy, xr.open_zarr(os.path.join(out, "0"))[var].values)
print(json.dumps(r))
"""


def grid_toml(grid: dict) -> str:
    return "{ " + ", ".join(f"{k} = {{ start = {a}, stop = {b}, step = {s} }}" for k, (a, b, s) in grid.items()) + " }"


def regrid_view(name: str, source: str, method: str, grid: dict, whole_steps: bool = False) -> str:
    """A regrid view's table: tiles of CHUNK x CHUNK cells of one step, or (`whole_steps`) the
    whole target grid of STEPS_PER_CHUNK steps per chunk."""
    # bilinear with nan_threshold = 0 propagates NaN from any neighbour, as xarray.interp
    # (xarray-regrid's linear) does; the default 1.0 would fill cells next to land
    threshold = "nan_threshold = 0.0\n" if method == "bilinear" else ""
    layout = (f"chunk = {max(round((b - a) / st) + 1 for a, b, st in grid.values())}\n"
              f"chunks = {{ time = {STEPS_PER_CHUNK} }}\n") if whole_steps else f"chunk = {CHUNK}\n"
    return (f"[[view]]\nname = {json.dumps(name)}\nfrom = {json.dumps(source)}\n[view.regrid]\n"
            f"method = {json.dumps(method)}\ngrid = {grid_toml(grid)}\n{layout}{threshold}")


def rel_diff(got, want) -> dict:
    """Largest relative difference where both are finite, and how the NaN masks differ."""
    import numpy as np

    got = np.asarray(got, dtype="f8")
    want = np.asarray(want, dtype="f8")
    if got.shape != want.shape:
        return {"max_rel": None, "same_nan_mask": False, "shape": list(got.shape), "want_shape": list(want.shape)}
    both = np.isfinite(got) & np.isfinite(want)
    rel = np.abs(got[both] - want[both]) / np.maximum(np.abs(want[both]), 1e-30)
    return {"max_rel": float(rel.max()) if rel.size else 0.0, "same_nan_mask": bool((np.isnan(got) == np.isnan(want)).all()),
            "nan_only_here": int((np.isnan(got) & ~np.isnan(want)).sum()),
            "nan_only_there": int((~np.isnan(got) & np.isnan(want)).sum()),
            "compared": int(both.sum()), "shape": list(got.shape)}


def cell_edges(centres):
    """Edges of cells around evenly or unevenly spaced centres (midpoints; the ends mirrored)."""
    import numpy as np

    c = np.asarray(centres, dtype="f8")
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def exact_conservative(lat, lon, values, tlat, tlon):
    """Conservative regridding of (..., lat, lon) `values` with exact spherical weights: the
    overlap of a source and a target cell is Δλ·(sin φ2 − sin φ1), each target value is the
    overlap-weighted mean of the valid source values (NaN where none), in float64."""
    import numpy as np

    def overlaps(src_e, dst_e, f):
        lo = np.maximum(src_e[None, :-1], dst_e[:-1, None])
        hi = np.minimum(src_e[None, 1:], dst_e[1:, None])
        return np.where(hi > lo, f(hi) - f(lo), 0.0)

    wlat = overlaps(np.clip(cell_edges(lat), -90, 90), np.clip(cell_edges(tlat), -90, 90), lambda x: np.sin(np.radians(x)))
    wlon = overlaps(cell_edges(lon), cell_edges(tlon), lambda x: x)
    v = np.asarray(values, dtype="f8")
    valid = np.isfinite(v)
    num = wlat @ np.where(valid, v, 0.0) @ wlon.T
    den = wlat @ valid.astype("f8") @ wlon.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


class RegridBench(ViewsBench):
    bin_dirname = "bin-regrid"

    def __init__(self, args):
        super().__init__(args)
        self.res: dict = {}

    # --- hooks of ViewsBench (one view per work, read with xr.open_zarr().load()) ---------------
    def view_paths(self, mp: Path, work: str) -> list[str]:
        return [str(mp / VIEWS[work])]

    def reader(self, work: str) -> str:
        return "xarray"

    @property
    def trash(self) -> Path:
        return self.work / "regrid-trash"

    def clear_views(self, cache: Path, keep: set[str]) -> int:
        """The view's chunks and its persisted weights."""
        self.discard(cache / "weights")
        return super().clear_views(cache, keep)

    # --- configuration -------------------------------------------------------------------------
    def write_config(self, name: str, dataset: str, views: str) -> tuple[Path, Path]:
        cache = self.work / f"cache-{name}"
        path = self.work / f"{name}.toml"
        path.write_text("# written by scripts/bench_regrid.py\n"
                        f"[cache]\ndir = {json.dumps(str(cache))}\nmemory = {json.dumps(self.args.memory)}\n\n"
                        f"{dataset}\n{views}")
        return path, cache

    def sst_dataset(self, pattern: str) -> str:
        return f"[[dataset]]\nname = {json.dumps(VAR)}\nfiles = {json.dumps(pattern)}\nconcat_dim = \"time\"\n"

    def accepted(self, config: Path) -> tuple[bool, str]:
        try:
            self.atlas("check", str(config), timeout=300)
            return True, ""
        except BenchError as e:
            return False, str(e)

    def cold_read(self, config: Path, cache: Path, mp: Path, files: list[Path], code: str, *argv: str,
                  what: str, timeout: float = 900) -> dict:
        """Mounts from an empty cache dir (no sources, view chunks or weights; the OS page cache in
        the run's mode), runs the reader `code`, unmounts; adds the mount's time, mount + read
        (`e2e_s`) and the daemon's memory to the reader's figures."""
        if self.is_mounted(mp):
            self.unmount(mp)
        self.discard(cache)
        cache.mkdir(parents=True)
        self.prepare_cache(files)
        mount_s, pid = self.mount(config, mp)
        ld = self.child(code, *argv, what=what, timeout=timeout)
        ld["mount_s"] = mount_s
        ld["e2e_s"] = mount_s + ld["total_s"]
        ld["memory"] = self.memory(pid)
        self.unmount(mp)
        return ld

    def np_tmp(self, name: str) -> Path:
        """Where a child saves values to compare (outside tmp/, which anchors replace)."""
        return self.work / f"regrid-{name}.npy"

    # --- rows ----------------------------------------------------------------------------------
    def anchor_regrid(self, mode: str, method: str) -> dict:
        self.prepare_cache(self.files)
        an = self.child(CHILD_ANCHOR, mode, "conservative" if method == CONS else "linear", self.pattern, VAR,
                        json.dumps(ONE_DEG), what=f"xarray-regrid {method} {mode}", timeout=1800)
        return an

    def regrid_rows(self, r: dict, mp: Path) -> None:
        steps = self.args.regrid_layout == "steps"
        views = (regrid_view(VIEWS[CONS], VAR, CONS, ONE_DEG, steps) + "\n"
                 + regrid_view(VIEWS[BILIN], VAR, BILIN, ONE_DEG, steps))
        config, cache = self.write_config("regrid", self.sst_dataset(self.pattern), views)
        ok, err = self.accepted(config)
        if not ok:
            raise BenchError(f"this atlasfs does not serve the regrid views of {config}:\n{err}")
        say(f"regrid views: {tail(self.atlas('tree', str(config), VIEWS[CONS]).stdout, 6).strip()}")

        # Values first (not timed), on a mount over a fresh cache.
        self.discard(cache)
        cache.mkdir(parents=True)
        self.mount(config, mp)
        say(f"values of the views against the exact reference and xarray-regrid ({self.verify_days} days; not timed)")
        ver = self.child(CHILD_VERIFY, str(Path(__file__).resolve().parent), self.pattern, VAR,
                         json.dumps({m: str(mp / VIEWS[m]) for m in (CONS, BILIN)}), str(self.verify_days),
                         json.dumps(ONE_DEG), what="checking the regrid views' values", timeout=1800)
        self.unmount(mp)
        r["verify"] = ver
        for k in ("conservative_vs_exact", "conservative_vs_xarray_regrid", "xarray_regrid_vs_exact", "bilinear_vs_xarray_regrid"):
            say(f"  {k}: max relative difference {ver[k]['max_rel']:.3g}, same NaN mask {ver[k]['same_nan_mask']}")

        say("compute: `atlasfs warm CONFIG sst` (the sources into the chunk cache)")
        self.discard(cache)
        cache.mkdir(parents=True)
        self.prepare_cache(self.files)
        t = time.perf_counter()
        self.atlas("warm", str(config), VAR, timeout=1800)
        r["warm_sources_s"] = time.perf_counter() - t
        keep = {p.name for p in self.cache_entries(cache)}
        say(f"  {r['warm_sources_s']:.3f} s, {len(keep)} entries")
        for method, key in ((CONS, "cons_compute"), (BILIN, "bilin_compute")):
            say(f"{method}, compute: atlasfs (sources cached; view chunks and weights removed; fresh mount not "
                f"timed) against xarray-regrid on the dataset in memory")

            def atlas_run(i: int, method=method) -> dict:
                ld = self.atlas_compute(config, cache, mp, method, keep)
                say(f"  round {i + 1}: atlasfs {ld['total_s']:.3f} s (open {ld['open_s']:.3f} + load {ld['load_s']:.3f}; "
                    f"daemon CPU {ld['daemon_cpu_s']:.2f} s){self.stats_note(ld['stats'])}")
                return ld

            def anchor_run(i: int, method=method) -> dict:
                an = self.anchor_regrid("compute", method)
                say(f"  round {i + 1}: xarray-regrid {an['total_s']:.3f} s (load {an['load_s']:.3f}, not timed)")
                return an

            mine, theirs = self.alternate(atlas_run, anchor_run)
            r[key] = self.summary(mine, "total_s", theirs, "total_s")
        self.clear_views(cache, keep)
        self.discard(cache)

        # End to end: the conservative view alone in its config.
        config, cache = self.write_config("regrid-e2e", self.sst_dataset(self.pattern),
                                          regrid_view(VIEWS[CONS], VAR, CONS, ONE_DEG,
                                                      self.args.regrid_layout == "steps"))
        say(f"conservative, end to end ({self.mode}): atlasfs from an empty cache dir (mount included) against "
            "open_mfdataset + load + xarray-regrid")

        def atlas_e2e(i: int) -> dict:
            ld = self.atlas_e2e(config, cache, mp, CONS)
            say(f"  round {i + 1}: atlasfs {ld['e2e_s']:.3f} s (mount {ld['mount_s']:.3f} + open {ld['open_s']:.3f} "
                f"+ load {ld['load_s']:.3f}; daemon CPU {ld['daemon_cpu_s']:.2f} s, peak RSS "
                f"{ld['memory']['peak_rss_mib']:.0f} MiB)")
            return ld

        def anchor_e2e(i: int) -> dict:
            an = self.anchor_regrid("e2e", CONS)
            say(f"  round {i + 1}: open_mfdataset + load + xarray-regrid {an['total_s']:.3f} s (load {an['load_s']:.3f})")
            return an

        mine, theirs = self.alternate(atlas_e2e, anchor_e2e)
        r["cons_e2e"] = self.summary(mine, "e2e_s", theirs, "total_s")
        r["cons_e2e"]["atlasfs_peak_rss_mib"] = max(x["memory"]["peak_rss_mib"] for x in mine)
        self.discard(cache)

    def weights_row(self, r: dict, mp: Path) -> None:
        archive = self.archive("g01")
        files = sorted(archive.glob("*.nc"))
        pattern = str(archive / "*.nc")
        config, cache = self.write_config("regrid-weights", self.sst_dataset(pattern),
                                          regrid_view("sst-025", VAR, CONS, QUARTER_DEG))
        say("weights, 0.1° (3600x1800, one step) -> 0.25° conservative: time to the first chunk of a cold view "
            "(empty cache dir, mount not timed) against xarray-regrid on one step in memory")
        mine_npy, theirs_npy = self.np_tmp("weights-atlasfs"), self.np_tmp("weights-anchor")

        def atlas_run(i: int) -> dict:
            ld = self.cold_read(config, cache, mp, files, CHILD_FIRST_CHUNK, str(mp / "sst-025"), VAR, str(CHUNK),
                                str(mine_npy), what="reading the first chunk")
            say(f"  round {i + 1}: atlasfs first chunk {ld['total_s']:.3f} s, daemon peak RSS "
                f"{ld['memory']['peak_rss_mib']:.0f} MiB (shape {ld['shape']}, chunks {ld['chunks']})")
            return ld

        def anchor_run(i: int) -> dict:
            self.prepare_cache(files)
            an = self.child(CHILD_WEIGHTS_ANCHOR, pattern, VAR, json.dumps(QUARTER_DEG), str(CHUNK), str(theirs_npy),
                            what="xarray-regrid 0.1° -> 0.25°", timeout=1800)
            say(f"  round {i + 1}: xarray-regrid {an['total_s']:.3f} s")
            return an

        mine, theirs = self.alternate(atlas_run, anchor_run)
        import numpy as np

        r["weights"] = {"atlasfs_s": statistics.median(x["total_s"] for x in mine),
                        "anchor_s": statistics.median(x["total_s"] for x in theirs),
                        "atlasfs_runs": [x["total_s"] for x in mine], "anchor_runs": [x["total_s"] for x in theirs],
                        "peak_rss_mib": max(x["memory"]["peak_rss_mib"] for x in mine),
                        "values_vs_xarray_regrid": rel_diff(np.load(mine_npy), np.load(theirs_npy)),
                        "values_vs_exact": rel_diff(np.load(mine_npy), self.exact_first_chunk(files[0]))}
        self.discard(cache)

    @staticmethod
    def exact_first_chunk(path: Path):
        """The exact reference of the 0.25° view's first chunk (time 0, the first CHUNK rows and
        columns), from the source file read with xarray."""
        import numpy as np
        import xarray as xr

        with xr.open_dataset(path) as ds:
            src = ds[VAR].isel(time=0).load()
        tlat, tlon = (np.arange(a, b + s / 2, s) for a, b, s in (QUARTER_DEG["lat"], QUARTER_DEG["lon"]))
        return exact_conservative(src.lat.values, src.lon.values, src.values, tlat[:CHUNK], tlon[:CHUNK])

    @staticmethod
    def exact_tree_var(files: list[Path]):
        """`var` over the models (NaN skipped, as xarray) of their exact 1° regrids, each rounded
        to float32 like the view."""
        import numpy as np
        import xarray as xr

        tlat, tlon = (np.arange(a, b + s / 2, s) for a, b, s in (ONE_DEG["lat"], ONE_DEG["lon"]))
        parts = []
        for f in files:
            with xr.open_dataset(f) as ds:
                src = ds["lithk"].load()
            parts.append(exact_conservative(src.lat.values, src.lon.values, src.values, tlat, tlon).astype("f4"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN, as xarray's skipna
            return np.nanvar(np.stack(parts).astype("f8"), axis=0)

    def make_tree(self) -> Path:
        """10 `{model}.nc` files of a float32 `lithk` on 1°, 0.75° and 1.25° grids, 12 steps."""
        import numpy as np
        import xarray as xr

        out = self.data / "archives" / "regrid-tree"
        marker = out.with_name("regrid-tree.complete")
        params = json.dumps([MODELS, MODEL_GRIDS, MODEL_STEPS])
        if marker.is_file() and marker.read_text().strip() == params and len(list(out.glob("*.nc"))) == MODELS:
            return out
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        rng = np.random.default_rng(1)
        time_ = np.arange(MODEL_STEPS, dtype="f8")
        for m in range(MODELS):
            step = MODEL_GRIDS[m % len(MODEL_GRIDS)]
            lat = np.arange(-90 + step / 2, 90, step)
            lon = np.arange(-180 + step / 2, 180, step)
            LON, LAT = np.meshgrid(lon, lat)
            ice = np.abs(LAT) > 55 + 10 * np.sin(np.radians(3 * LON))
            v = np.empty((MODEL_STEPS, lat.size, lon.size), dtype="f4")
            for t in range(MODEL_STEPS):
                f = 2000 * np.cos(np.radians(LAT - np.sign(LAT) * 90)) ** 2 + 50 * m + 5 * t + rng.normal(0, 20, LAT.shape)
                v[t] = np.where(ice, f, np.nan)
            ds = xr.Dataset({"lithk": (("time", "lat", "lon"), v, {"units": "m", "standard_name": "land_ice_thickness"})},
                            coords={"time": ("time", time_, {"units": "days since 2000-01-01", "calendar": "standard"}),
                                    "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                                    "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})})
            ds.to_netcdf(out / f"m{m:02d}.nc", encoding={"lithk": {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}})
        marker.write_text(params + "\n")
        return out

    def tree_row(self, r: dict, mp: Path) -> None:
        tree = self.make_tree()
        files = sorted(tree.glob("*.nc"))
        dataset = (f"[[dataset]]\nname = \"ism\"\nfiles = {json.dumps(str(tree / '*.nc'))}\n"
                   "pattern = \"{model}.nc\"\ngroups = [\"model\"]\n")
        config, cache = self.write_config("regrid-tree", dataset, regrid_view("ism-1deg", "ism", CONS, ONE_DEG))
        ok, err = self.accepted(config)
        if not ok:
            r["tree"] = {"available": False, "reason": err.strip().splitlines()[-1] if err.strip() else ""}
            say(f"DataTree row: not available ({r['tree']['reason']})")
            return
        say(f"DataTree of {MODELS} models on {len(MODEL_GRIDS)} grids -> 1° conservative, concat + var over models, "
            f"end to end ({self.mode}): atlasfs (empty cache dir, mount included) against a loop of xarray-regrid")
        mine_npy, theirs_npy = self.np_tmp("tree-atlasfs"), self.np_tmp("tree-anchor")

        def atlas_run(i: int) -> dict:
            ld = self.cold_read(config, cache, mp, files, CHILD_TREE, "atlasfs", str(mp / "ism-1deg"), json.dumps(ONE_DEG),
                                str(mine_npy), what="reading the DataTree view")
            say(f"  round {i + 1}: atlasfs {ld['e2e_s']:.3f} s (mount {ld['mount_s']:.3f}; {ld['models']} models, var shape "
                f"{ld['shape']}; daemon peak RSS {ld['memory']['peak_rss_mib']:.0f} MiB)")
            return ld

        def anchor_run(i: int) -> dict:
            self.prepare_cache(files)
            an = self.child(CHILD_TREE, "anchor", str(tree), json.dumps(ONE_DEG), str(theirs_npy),
                            what="the xarray-regrid loop", timeout=1800)
            say(f"  round {i + 1}: xarray-regrid loop {an['total_s']:.3f} s")
            return an

        mine, theirs = self.alternate(atlas_run, anchor_run)
        limit_runs = self.tree_reader_limit(config, mp)
        import numpy as np

        r["tree"] = {"available": True, "atlasfs_s": statistics.median(x["e2e_s"] for x in mine),
                     "reader_limit_s": statistics.median(limit_runs), "reader_limit_runs": limit_runs,
                     "reader_limit_what": "reader over a local copy of the view",
                     "anchor_s": statistics.median(x["total_s"] for x in theirs),
                     "atlasfs_runs": [x["e2e_s"] for x in mine], "anchor_runs": [x["total_s"] for x in theirs],
                     "models": mine[-1]["models"],
                     "values_vs_xarray_regrid": rel_diff(np.load(mine_npy), np.load(theirs_npy)),
                     "values_vs_exact": rel_diff(np.load(mine_npy), self.exact_tree_var(files))}
        self.discard(cache)

    def tree_reader_limit(self, config: Path, mp: Path) -> list[float]:
        """The same reader (open_datatree + concat + var) over a local copy of the DataTree view,
        in the OS page cache: the time of this read with nothing to compute or serve."""
        local = self.work / "regrid-tree-local"
        self.discard(local)
        if self.is_mounted(mp):
            self.unmount(mp)
        self.mount(config, mp)
        shutil.copytree(mp / "ism-1deg", local)
        self.unmount(mp)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        runs = []
        for i in range(self.rounds):
            self.read_into_os_cache(files)
            ld = self.child(CHILD_TREE, "atlasfs", str(local), json.dumps(ONE_DEG), str(self.np_tmp("tree-local")),
                            what="reading a local copy of the DataTree view")
            say(f"  round {i + 1}: the same reader over a local copy of the view {ld['total_s']:.3f} s")
            runs.append(ld["total_s"])
        self.discard(local)
        return runs

    def merc_row(self, r: dict, mp: Path) -> None:
        # The view's store is made the anchor's: ndpyramid's is chunked (batch, pixels_per_tile,
        # pixels_per_tile) and, written as Zarr v3 by zarr-python, compressed with its default
        # zstd (level 0, zstd's default 3; ndpyramid's zlib encoding is for Zarr v2) — the anchor
        # prints its codecs to check.
        view = (f"[[view]]\nname = \"sst-merc\"\nfrom = {json.dumps(VAR)}\n[view.pyramid]\ncrs = \"EPSG:3857\"\n"
                f"pixels_per_tile = {MERC_PIXELS}\nlevels = {MERC_LEVELS}\nchunks = {{ time = {self.args.merc_batch} }}\n"
                f"codec = \"zstd\"\nlevel = {MERC_ZSTD_LEVEL}\n")
        config, cache = self.write_config("regrid-merc", self.sst_dataset(self.pattern), view)
        ok, err = self.accepted(config)
        lines = err.strip().splitlines()
        m: dict = {"available": ok, "reason": "" if ok else (lines[-1].strip() if lines else "")}
        r["merc"] = m
        say(f"{MERC_LEVELS}-level Web Mercator pyramid, end to end ({self.mode}): "
            + ("atlasfs (empty cache dir, mount included, every level read with zarr-python) against " if ok
               else f"atlasfs not available ({m['reason']}); ")
            + f"ndpyramid pyramid_reproject + to_zarr in batches of {self.args.merc_batch} days")
        paths = [str(mp / "sst-merc" / str(k)) for k in range(MERC_LEVELS)]
        theirs_npy = self.np_tmp("merc-anchor-level0")

        def atlas_run(i: int) -> dict:
            ld = self.cold_read(config, cache, mp, self.files, CHILD_LEVELS_READ, json.dumps(paths),
                                what="reading the Web Mercator pyramid", timeout=3600)
            say(f"  round {i + 1}: atlasfs {ld['e2e_s']:.3f} s (mount {ld['mount_s']:.3f}; daemon peak RSS "
                f"{ld['memory']['peak_rss_mib']:.0f} MiB)")
            return ld

        def anchor_run(i: int) -> dict:
            self.discard(self.tmp)
            self.tmp.mkdir(parents=True)
            try:
                self.prepare_cache(self.files)
                store = self.tmp / "merc.zarr"
                an = self.child(CHILD_MERC_ANCHOR, self.pattern, VAR, str(store), str(MERC_LEVELS),
                                str(MERC_PIXELS), str(self.args.merc_batch), str(theirs_npy), what="ndpyramid pyramid_reproject",
                                timeout=7200)
                # The reader limit: the same reader over ndpyramid's finished store, local and in
                # the OS page cache — what reading this pyramid costs with nothing left to compute.
                an["reader_s"] = self.child(CHILD_LEVELS_READ, json.dumps([str(store / str(k)) for k in range(MERC_LEVELS)]),
                                            what="reading ndpyramid's store", timeout=3600)["total_s"]
            finally:
                self.discard(self.tmp)
            say(f"  round {i + 1}: ndpyramid {an['total_s']:.3f} s (load {an['load_s']:.3f}, build {an['build_s']:.3f}, "
                f"to_zarr {an['write_s']:.3f}; {an['batches']} batch(es); levels {an['level_shapes']}; codecs "
                f"{an.get('codecs')}); the same reader "
                f"over its store {an['reader_s']:.3f} s")
            return an

        if ok:
            mine, theirs = self.alternate(atlas_run, anchor_run)
            m.update({"atlasfs_s": statistics.median(x["e2e_s"] for x in mine),
                      "atlasfs_runs": [x["e2e_s"] for x in mine],
                      "peak_rss_mib": max(x["memory"]["peak_rss_mib"] for x in mine),
                      "level0_vs_ndpyramid": self.merc_level0(config, mp, theirs_npy)})
        else:
            theirs = [anchor_run(i) for i in range(self.rounds)]
        m.update({"anchor_s": statistics.median(x["total_s"] for x in theirs), "anchor_runs": [x["total_s"] for x in theirs],
                  "anchor_level_shapes": theirs[-1]["level_shapes"],
                  "reader_limit_s": statistics.median(x["reader_s"] for x in theirs),
                  "reader_limit_runs": [x["reader_s"] for x in theirs]})
        self.discard(cache)

    def merc_level0(self, config: Path, mp: Path, theirs_npy: Path) -> dict:
        """The coarsest level of the Web Mercator view (over the last round's cache) against
        ndpyramid's (information: the two resample differently near the poles)."""
        import numpy as np
        import xarray as xr

        self.mount(config, mp)
        try:
            got = xr.open_zarr(mp / "sst-merc" / "0")[VAR].values
        finally:
            self.unmount(mp)
        return rel_diff(got, np.load(theirs_npy))

    # --- report --------------------------------------------------------------------------------
    def ratios(self) -> None:
        v = self.res
        lst = v["ratios"] = []

        def speed(key: str, what: str, anchor: str) -> None:
            s = v.get(key)
            if not s or s.get("atlasfs_s") is None:
                lst.append({"key": key, "met": None, "text": f"{what}: not available"
                            + (f" ({s['reason']})" if s and s.get("reason") else "")})
                return
            f = s["anchor_s"] / s["atlasfs_s"] if s["atlasfs_s"] > 0 else float("inf")
            lst.append(bench.ratio(key, what, s["atlasfs_s"], s["anchor_s"], anchor, f"≥{GOALS[key]}× faster", f >= GOALS[key]))

        speed("cons_compute", "conservative 0.5° -> 1°, compute (sources cached)", "xarray-regrid conservative in memory")
        speed("cons_e2e", "conservative 0.5° -> 1°, end to end", "open_mfdataset + load + xarray-regrid")
        speed("bilin_compute", "bilinear 0.5° -> 1°, compute (sources cached)", "xarray-regrid linear in memory")
        w = v["weights"]
        ok = w["atlasfs_s"] < WEIGHTS_GOAL_S and w["peak_rss_mib"] < WEIGHTS_GOAL_RSS_MIB
        lst.append({"key": "weights", "met": ok, "text": (
            f"0.1° -> 0.25° conservative, cold weights: first chunk in {w['atlasfs_s']:.3f} s (xarray-regrid, whole "
            f"step: {w['anchor_s']:.3f} s, {w['anchor_s'] / w['atlasfs_s']:.1f}×), daemon peak RSS {w['peak_rss_mib']:.0f} MiB; "
            f"goal < {WEIGHTS_GOAL_S:.0f} s and < 1 GiB — {'met' if ok else 'NOT MET'}")})
        speed("tree", f"DataTree of {MODELS} models -> 1°, concat + var, end to end", "a loop of xarray-regrid + concat + var")
        speed("merc", f"{MERC_LEVELS}-level Web Mercator pyramid, end to end", "ndpyramid pyramid_reproject + to_zarr")
        def reader_limit(key: str, what: str, read: str, server_of: str) -> None:
            """The line of a row's reader limit: no server can beat the anchor by more."""
            s = v[key]
            if not s.get("reader_limit_s"):
                return
            best = s["anchor_s"] / s["reader_limit_s"]
            lst.append({"key": f"{key}_limit", "met": None, "text": (
                f"{what} reader limit: {read} (in the OS page cache) takes {s['reader_limit_s']:.3f} s, so no server "
                f"of {server_of} can be more than {best:.1f}× faster than the anchor ({s['anchor_s']:.3f} s) for this read"
                + (f" — below the {GOALS[key]}× goal" if best < GOALS[key] else ""))})

        reader_limit("tree", "DataTree", "the same open_datatree + concat + var over a local copy of the view", "this view")
        reader_limit("merc", "Web Mercator", "the same zarr-python reader over ndpyramid's finished local store",
                     "this pyramid")
        m = v["merc"]
        if m.get("peak_rss_mib") is not None:
            tier = v["memory_tier_mib"]
            ok = m["peak_rss_mib"] * 2**20 <= tier * 2**20 + RSS_ALLOWANCE_MB * 1e6
            lst.append({"key": "merc_rss", "met": ok, "text": (
                f"daemon peak RSS, Web Mercator pyramid: {m['peak_rss_mib']:.0f} MiB, memory tier {tier:.0f} MiB; "
                f"goal ≤ tier + {RSS_ALLOWANCE_MB} MB — {'met' if ok else 'NOT MET'}")})
        for what, c, tol in self.value_checks():
            ok = self.within(c, tol)
            lst.append({"key": "values", "met": ok, "text": (
                f"{what}: max relative difference {c['max_rel']:.3g} (goal ≤ {tol:g} and the same NaN mask; NaN mask "
                f"{'the same' if c['same_nan_mask'] else 'differs: %d NaN only here, %d only there' % (c.get('nan_only_here', -1), c.get('nan_only_there', -1))}) — "
                f"{'met' if ok else 'NOT MET'}")})
        lst.append({"key": "values_note", "met": None, "text": (
            "xarray-regrid's conservative weights use a median Δφ approximation: against the exact reference it "
            f"differs by {v['verify']['xarray_regrid_vs_exact']['max_rel']:.3g} (0.5° -> 1°)"
            + (f"; the DataTree variance over models of its results by {v['tree']['values_vs_xarray_regrid']['max_rel']:.3g} "
               "from atlasfs's (a variance amplifies it; atlasfs is checked against the exact variance)"
               if v["tree"].get("available") else ""))})

    def value_checks(self) -> list[tuple[str, dict, float]]:
        """(what, comparison, tolerance) of every value check of the run."""
        v = self.res
        ver = v["verify"]
        tol = self.args.anchor_rtol
        out = [("conservative view vs exact", ver["conservative_vs_exact"], EXACT_TOL),
               ("conservative view vs xarray-regrid", ver["conservative_vs_xarray_regrid"], tol),
               ("bilinear view vs xarray-regrid linear", ver["bilinear_vs_xarray_regrid"], tol),
               ("0.25° first chunk vs exact", v["weights"]["values_vs_exact"], EXACT_TOL),
               ("0.25° first chunk vs xarray-regrid", v["weights"]["values_vs_xarray_regrid"], tol)]
        if v["tree"].get("available"):
            out.append(("DataTree var vs exact", v["tree"]["values_vs_exact"], EXACT_TOL_TREE_VAR))
        return out

    @staticmethod
    def within(c: dict, tol: float) -> bool:
        """Within `tol` where both are finite, and NaN in the same places."""
        return c["max_rel"] is not None and c["max_rel"] <= tol and c["same_nan_mask"]

    def values_ok(self) -> bool:
        return all(self.within(c, tol) for _, c, tol in self.value_checks())

    def report(self) -> str:
        v = self.res
        env = v["environment"]
        out = ["", f"atlasfs regrid benchmark  {v['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})",
               f"  OS page cache: {self.mode_note}",
               f"  load average (1 min) at start {env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}",
               f"  medians of {v['rounds']} round(s), atlasfs and anchor alternating; every load in a fresh interpreter, "
               "imports not timed",
               f"  every timed child (both sides) writes and frees {self.args.prefault_mib} MiB before its clock "
               "(--prefault-mib; see bench.PREFAULT)",
               f"  source: {v['files']} daily files of sst 360x720 (0.5°); target 1° (lon -179.5..179.5); "
               f"[cache] memory = {self.args.memory}",
               "  1° views' chunks: " + (f"the whole grid, {STEPS_PER_CHUNK} days" if self.args.regrid_layout == "steps"
                                         else f"{CHUNK}x{CHUNK} tiles of one day")]
        rows: list[tuple[str, str, str]] = []

        def runs(xs):
            return "runs " + ", ".join(f"{x:.3f}" for x in xs)

        labels = (("cons_compute", "conservative -> 1°, compute"), ("cons_e2e", "conservative -> 1°, end to end"),
                  ("bilin_compute", "bilinear -> 1°, compute"), ("weights", "0.1° -> 0.25° cold weights, first chunk"),
                  ("tree", f"DataTree {MODELS} models -> 1°, concat + var"),
                  ("merc", f"Web Mercator pyramid, {MERC_LEVELS} levels"))
        for key, label in labels:
            s = v[key]
            rows.append((label, "", ""))
            if s.get("atlasfs_s") is None:
                rows.append(("  atlasfs", "n/a", f"not available: {s.get('reason', '')}"[:110]))
            else:
                note = runs(s["atlasfs_runs"])
                if s.get("atlasfs_daemon_cpu_s") is not None:
                    note += f"; daemon CPU {s['atlasfs_daemon_cpu_s']:.2f} s"
                if s.get("peak_rss_mib") is not None:
                    note += f"; daemon peak RSS {s['peak_rss_mib']:.0f} MiB"
                rows.append(("  atlasfs", f"{s['atlasfs_s']:.3f}", note))
            if s.get("anchor_s") is not None:
                rows.append(("  anchor", f"{s['anchor_s']:.3f}", runs(s["anchor_runs"])))
            if s.get("reader_limit_s") is not None:
                rows.append(("  " + s.get("reader_limit_what", "reader over the anchor's store"),
                             f"{s['reader_limit_s']:.3f}", runs(s["reader_limit_runs"]) + "; the limit of any server"))
            if s.get("atlasfs_s"):
                goal = f"goal ≥{GOALS[key]}×" if key in GOALS else f"goal < {WEIGHTS_GOAL_S:.0f} s, < 1 GiB RSS"
                rows.append(("  speed-up", f"{s['anchor_s'] / s['atlasfs_s']:.2f}×", goal))
        ver = v["verify"]
        rows.append((f"values (max relative difference; 0.5° rows: first {ver['days']} days)", "", ""))

        def nan_note(c: dict) -> str:
            if c["same_nan_mask"]:
                return "same NaN mask"
            return f"NaN masks differ: {c.get('nan_only_here')} NaN only in the first, {c.get('nan_only_there')} only in the second"

        checks = [(w, c) for w, c, _ in self.value_checks()] + [("xarray-regrid vs exact", ver["xarray_regrid_vs_exact"])]
        if v["tree"].get("available"):
            checks.append(("DataTree var, atlasfs vs the xarray-regrid loop", v["tree"]["values_vs_xarray_regrid"]))
        if v["merc"].get("level0_vs_ndpyramid"):
            checks.append(("Web Mercator level 0, atlasfs vs ndpyramid (info)", v["merc"]["level0_vs_ndpyramid"]))
        for what, c in checks:
            rows.append(("  " + what, "—" if c["max_rel"] is None else f"{c['max_rel']:.3g}", nan_note(c)))
        rows.append(("  sources warm into the cache (s)", f"{v['warm_sources_s']:.3f}", "`atlasfs warm CONFIG sst`"))
        out.append("")
        out.extend(table(rows))
        out += ["", "ratios"] + ["  " + x["text"] for x in v["ratios"]] + [""]
        return "\n".join(out)

    def run(self) -> int:
        import psutil

        self.preflight()
        shutil.rmtree(self.trash, ignore_errors=True)
        archive = self.archive("a365")
        self.pattern = str(archive / ("sst_202001*.nc" if self.args.quick else "*.nc"))
        self.files = sorted(archive.glob(Path(self.pattern).name))
        self.verify_days = 3 if self.args.quick else 5
        ver = subprocess.run([str(self.bin), "--version"], capture_output=True, text=True).stdout.split()
        v = self.res
        v.update({
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cache_mode": self.mode, "quick": self.args.quick, "rounds": self.rounds, "files": len(self.files),
            "memory_tier_mib": parse_mib(self.args.memory), "regrid_layout": self.args.regrid_layout, "prefault_mib": self.args.prefault_mib,
            "environment": {
                "cpus": os.cpu_count(), "memory_gib": psutil.virtual_memory().total / 2**30,
                "kernel": platform.release(), "python": platform.python_version(),
                "atlasfs": ver[-1] if ver else "?", "git": self.git(),
                "packages": {**self.versions(), **{p: pkg_version(p) for p in
                                                   ("xarray-regrid", "scipy", "ndpyramid", "rioxarray", "rasterio", "pyproj")}},
                "load_average_start": os.getloadavg(),
            },
        })
        mp = self.work / "mnt-regrid"
        try:
            self.regrid_rows(v, mp)
            self.weights_row(v, mp)
            self.tree_row(v, mp)
            if self.args.no_merc:
                v["merc"] = {"available": False, "reason": "left out (--no-merc)"}
            else:
                self.merc_row(v, mp)
        finally:
            for m in list(self.mounts):
                self.unmount(m)
            shutil.rmtree(self.trash, ignore_errors=True)
        v["environment"]["load_average_end"] = os.getloadavg()
        self.ratios()
        v["table"] = self.report()
        out = self.data / "results_regrid.json"
        out.write_text(json.dumps(v, indent=2, ensure_ascii=False) + "\n")
        print(v["table"])
        say(f"results written to {out}")
        return 0 if self.values_ok() else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round of everything on January's 31 files (a smoke test)")
    p.add_argument("--warm", action="store_true", help="measure with the sources in the OS page cache instead of dropping it")
    p.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median; default 3)")
    p.add_argument("--prefault-mib", type=int, default=PREFAULT_MIB,
                   help=f"MiB each timed child writes and frees before its clock (default {PREFAULT_MIB}; 0: off; "
                        "see bench.PREFAULT)")
    p.add_argument("--memory", default="512MiB", help="[cache] memory of the mounts (default 512MiB)")
    p.add_argument("--regrid-layout", default="steps", choices=["steps", "tiles"],
                   help="chunks of the 1° views: steps (default: the whole grid, "
                        f"{STEPS_PER_CHUNK} days per chunk, for whole-array reads) or tiles "
                        f"({CHUNK}x{CHUNK} cells of one day)")
    p.add_argument("--merc-batch", type=int, default=16,
                   help="days per ndpyramid pyramid_reproject call of the Web Mercator anchor (default 16)")
    p.add_argument("--no-merc", action="store_true",
                   help="leave out the Web Mercator pyramid row (about an hour for 365 files)")
    p.add_argument("--anchor-rtol", type=float, default=5e-3,
                   help="largest relative difference accepted against xarray-regrid (default 5e-3)")
    args, _unknown = p.parse_known_args()  # scripts/bench passes every script the same options
    if args.repeat < 1 or args.merc_batch < 1:
        p.error("--repeat and --merc-batch must be at least 1")
    return run_main("bench_regrid", lambda: RegridBench(args).run(), "mounts were unmounted")


if __name__ == "__main__":
    sys.exit(main())
