#!/usr/bin/env python3
"""Benchmark `atlasfs export` of a pack view, written by 2 concurrent workers, against xarray
writing the same packed store as zarrify does, every figure measured in one run on one machine.

Normally started by scripts/bench (after the others; `scripts/bench --export-only` runs only this),
which prepares .venv-bench.

The archive is the standard 365-file one (360x720 grid, variable `sst`), generated with the shared
make_archive.py when missing, served with the pack view of scripts/bench_views.py:

    [[view]]  name = "sst-packed",  from = "sst", [view.pack]  dtype = "int16", range = "data", codec = "zstd", level = 3

- atlasfs: `atlasfs export CONFIG sst-packed DEST --zarr-format 3 [--shard-shape time=T]
  --shard 0/2` and `--shard 1/2` as two concurrent processes, then `atlasfs export … --finalize`;
  the total wall time of the three, from an empty cache dir (so the sources are indexed, the pack
  view's range scanned and every chunk computed).
- Anchor: xarray, as zarrify writes a store from granules: one process writes the template
  (`open_mfdataset`, the packing's min/max, `to_zarr(compute=False)` with int16 scale_factor /
  add_offset / _FillValue, zstd and the same chunks and shards as atlasfs's store), then 2
  concurrent processes each write their region of whole shards along time (`to_zarr(region=…)`
  from `open_mfdataset` of the files of that region). The total wall time of the three.

Rounds alternate atlasfs and the anchor (atlasfs first in round 1: the anchor takes its chunk and
shard shapes from atlasfs's store); the OS page cache is dropped before every round. Once, not
timed: the decoded values of both stores (xr.open_zarr) are compared, and their sizes reported.

Sharding: `--shard-shape` is passed when `atlasfs export --help` offers it (SHARD_SHAPE, or
--shard-shape on this script's command line); otherwise both stores are written unsharded and the
table says so.

Prints a table and adds the figures to results.json under "export".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import VAR, BenchError, ratio, run_main, say, table, tail  # noqa: E402
from bench_views import PACK, ZSTD_LEVEL, ViewsBench  # noqa: E402

GOAL = 3.0  # atlasfs at least 3x faster
WORKERS = 2
SHARD_SHAPE = "time=64"  # elements per shard along named dimensions (`atlasfs export --shard-shape`)
META = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}

# The anchor's template: argv archive, variable, store, JSON {chunks, shards, zstd}. open_mfdataset,
# min/max of the data (the pack view's range = "data"), then to_zarr(compute=False): metadata,
# coordinates, and no chunk of the variable.
CHILD_TEMPLATE = r"""
import glob, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr, dask
from zarr.codecs import ZstdCodec
d, var, out, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
files = sorted(glob.glob(os.path.join(d, "*.nc")))
t0 = time.perf_counter()
ds = xr.open_mfdataset(files, combine="by_coords", data_vars="minimal", coords="minimal", compat="override")
ds = ds.chunk(dict(zip(ds[var].dims, spec["shards"] or spec["chunks"])))
lo, hi = (float(x) for x in dask.compute(ds[var].min(), ds[var].max()))
# The pack view's packing: int16 codes [-32767, 32767], fill -32768, computed in float64 (with a
# _FillValue set, xarray computes (x - add_offset) / scale_factor in the data's dtype, and float32
# puts about one value in twenty a code off at this offset; atlasfs packs from float64).
ds[var] = ds[var].astype("f8")
scale = (hi - lo) / 65534 if hi > lo else 1.0
offset = lo + 32767 * scale if hi > lo else lo
enc = {"dtype": "int16", "scale_factor": scale, "add_offset": offset, "_FillValue": -32768,
       "chunks": spec["chunks"], "compressors": [ZstdCodec(level=spec["zstd"])]}
if spec["shards"]:
    enc["shards"] = spec["shards"]
ds.to_zarr(out, mode="w", compute=False, zarr_format=3, consolidated=True, encoding={var: enc})
print(json.dumps({"template_s": time.perf_counter() - t0, "scale_factor": scale, "add_offset": offset,
                  "time": int(ds.sizes[ds[var].dims[0]]), "files": len(files)}))
"""

# One region worker: argv archive, variable, store, start, stop (along the leading dimension),
# JSON dask chunks (whole shards). Opens the files of its region (one time step per file, as the
# template checked) and writes them into the template's store.
CHILD_REGION = r"""
import glob, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import xarray as xr, zarr, dask
d, var, out, start, stop, chunks, per_file = sys.argv[1:8]
start, stop = int(start), int(stop)
files = sorted(glob.glob(os.path.join(d, "*.nc")))
t0 = time.perf_counter()
if per_file == "1":
    ds = xr.open_mfdataset(files[start:stop], combine="by_coords", data_vars="minimal", coords="minimal",
                           compat="override")
else:
    ds = xr.open_mfdataset(files, combine="by_coords", data_vars="minimal", coords="minimal",
                           compat="override")
    ds = ds.isel({ds[var].dims[0]: slice(start, stop)})
da = ds[var].astype("f8")  # packed from float64, as the template says
ds = da.to_dataset().drop_vars(list(da.coords)).chunk(dict(zip(da.dims, json.loads(chunks))))
ds.to_zarr(out, region={da.dims[0]: slice(start, stop)}, zarr_format=3)
print(json.dumps({"region_s": time.perf_counter() - t0, "start": start, "stop": stop}))
"""

# Compares the two stores once (not timed): the decoded arrays, the stored integers, the
# coordinates, and the codecs / chunk grid of each.
CHILD_COMPARE = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import xarray as xr, zarr
a_path, b_path, var = sys.argv[1:4]
out = {}
a, b = xr.open_zarr(a_path), xr.open_zarr(b_path)
x, y = a[var].values, b[var].values
out["decoded_equal"] = x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))
diff = np.abs(x.astype("f8") - y.astype("f8"))
out["decoded_max_abs_diff"] = float(np.nanmax(diff)) if diff.size else 0.0
out["same_nan_mask"] = bool((np.isnan(x) == np.isnan(y)).all())
ra = xr.open_zarr(a_path, mask_and_scale=False)[var].values
rb = xr.open_zarr(b_path, mask_and_scale=False)[var].values
out["codes_differing"] = int((ra != rb).sum())
out["coords_equal"] = all(bool(np.array_equal(a[c].values, b[c].values)) for c in a[var].dims)
for name, p in (("atlasfs", a_path), ("anchor", b_path)):
    arr = zarr.open_group(p, mode="r")[var]
    out[name] = {"chunks": list(arr.chunks), "shards": list(arr.shards) if arr.shards else None,
                 "dtype": str(arr.dtype), "compressors": [type(c).__name__ for c in arr.compressors],
                 "scale_factor": arr.attrs.get("scale_factor"), "add_offset": arr.attrs.get("add_offset")}
print(json.dumps(out))
"""


class ExportBench(ViewsBench):
    bin_dirname = "bin-export"

    def __init__(self, args):
        super().__init__(args)
        self.export_results: dict = {}
        self.spec: dict | None = None  # the anchor's chunks and shards, from atlasfs's first store

    # --- atlasfs -------------------------------------------------------------------------------
    def shard_args(self) -> list[str]:
        return ["--shard-shape", self.shard_shape] if self.shard_shape else []

    def export_argv(self, config: Path, dest: Path, *extra: str) -> list[str]:
        return [str(self.bin), "export", str(config), PACK, str(dest), "--zarr-format", "3", *self.shard_args(), *extra]

    def atlas_run(self, config: Path, cache: Path, dest: Path) -> dict:
        """Two shard workers at once, then --finalize, from an empty cache dir."""
        self.discard(cache)
        self.discard(dest)
        cache.mkdir(parents=True)
        self.prepare_cache(self.files)
        t = time.perf_counter()
        procs = [subprocess.Popen(self.export_argv(config, dest, "--shard", f"{k}/{WORKERS}"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(WORKERS)]
        outs = [p.communicate(timeout=3600) for p in procs]
        workers_s = time.perf_counter() - t
        for k, (p, (so, se)) in enumerate(zip(procs, outs)):
            if p.returncode != 0:
                raise BenchError(f"atlasfs export --shard {k}/{WORKERS} failed ({p.returncode}):\n{tail(se + so)}")
        fin = subprocess.run(self.export_argv(config, dest, "--finalize"), capture_output=True, text=True, timeout=600)
        total = time.perf_counter() - t
        if fin.returncode != 0:
            raise BenchError(f"atlasfs export --finalize failed ({fin.returncode}):\n{tail(fin.stderr + fin.stdout)}")
        summary = [o[0].strip().splitlines()[-1] if o[0].strip() else "" for o in outs]
        return {"total_s": total, "workers_s": workers_s, "finalize_s": total - workers_s, "summaries": summary}

    # --- the anchor ----------------------------------------------------------------------------
    def anchor_spec(self, dest: Path) -> dict:
        """Chunks and shards of `sst` in atlasfs's store: the anchor writes the same."""
        meta = json.loads((dest / VAR / "zarr.json").read_text())
        grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
        codecs = meta.get("codecs") or []
        if codecs and codecs[0].get("name") == "sharding_indexed":
            return {"chunks": codecs[0]["configuration"]["chunk_shape"], "shards": grid, "zstd": ZSTD_LEVEL,
                    "shape": meta["shape"]}
        return {"chunks": grid, "shards": None, "zstd": ZSTD_LEVEL, "shape": meta["shape"]}

    def anchor_run(self, archive: Path, dest: Path) -> dict:
        """Template, then 2 region writers at once; the OS page cache dropped first."""
        spec = self.spec
        self.discard(dest)
        self.prepare_cache(self.files)
        t = time.perf_counter()
        tpl = self.child(CHILD_TEMPLATE, str(archive), VAR, str(dest), json.dumps(spec), what="the anchor's template",
                         timeout=3600)
        unit = (spec["shards"] or spec["chunks"])[0]
        n_time = tpl["time"]
        units = -(-n_time // unit)
        per_file = "1" if tpl["files"] == n_time else "0"
        bounds = [min(n_time, unit * (units * k // WORKERS)) for k in range(WORKERS + 1)]
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        procs = [subprocess.Popen([sys.executable, "-c", CHILD_REGION, str(archive), VAR, str(dest), str(a), str(b),
                                   json.dumps(spec["shards"] or spec["chunks"]), per_file],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for a, b in zip(bounds, bounds[1:])]
        outs = [p.communicate(timeout=3600) for p in procs]
        total = time.perf_counter() - t
        regions = []
        for p, (so, se) in zip(procs, outs):
            if p.returncode != 0:
                raise BenchError(f"the anchor's region writer failed ({p.returncode}):\n{tail(se)}")
            regions.append(json.loads(so.strip().splitlines()[-1]))
        return {"total_s": total, "template_s": tpl["template_s"], "regions": regions,
                "scale_factor": tpl["scale_factor"], "add_offset": tpl["add_offset"]}

    # --- the benchmark -------------------------------------------------------------------------
    @staticmethod
    def store_size(root: Path) -> dict:
        files = [p for p in root.rglob("*") if p.is_file()]
        data = [p for p in files if p.name not in META]
        return {"bytes": sum(p.stat().st_size for p in files), "files": len(files),
                "data_bytes": sum(p.stat().st_size for p in data), "data_files": len(data),
                "var_data_bytes": sum(p.stat().st_size for p in data if p.relative_to(root).parts[0] == VAR)}

    def bench_export(self) -> dict:
        r: dict = {"rounds": self.rounds, "workers": WORKERS}
        archive = self.archive("a365")
        self.files = sorted(archive.glob("*.nc"))
        config, cache = self.views_config("export", archive, ("pack",))
        help_text = self.atlas("export", "--help").stdout
        offered = "--shard-shape" in help_text
        self.shard_shape = (self.args.shard_shape or SHARD_SHAPE) if offered else None
        r["shard_shape"] = self.shard_shape
        if not offered:
            say("`atlasfs export` has no --shard-shape: both stores are written unsharded")
        mine_dest, theirs_dest = self.work / "export-atlasfs.zarr", self.work / "export-anchor.zarr"
        say(f"export of {PACK} ({WORKERS} workers{', --shard-shape ' + self.shard_shape if self.shard_shape else ''}): "
            "atlasfs from an empty cache dir against the xarray template + region writers; page cache dropped")

        def atlas_run(i: int) -> dict:
            x = self.atlas_run(config, cache, mine_dest)
            if self.spec is None:
                self.spec = self.anchor_spec(mine_dest)
                say(f"  atlasfs's store: chunks {self.spec['chunks']}, shards {self.spec['shards']}; the anchor writes the same")
            say(f"  round {i + 1}: atlasfs {x['total_s']:.3f} s (workers {x['workers_s']:.3f} + finalize {x['finalize_s']:.3f})")
            return x

        def anchor_run(i: int) -> dict:
            x = self.anchor_run(archive, theirs_dest)
            say(f"  round {i + 1}: anchor {x['total_s']:.3f} s (template {x['template_s']:.3f}, regions "
                + ", ".join(f"{g['region_s']:.3f}" for g in x["regions"]) + ")")
            return x

        mine, theirs = self.alternate(atlas_run, anchor_run)
        r["spec"] = self.spec
        r["atlasfs"] = {"median_s": statistics.median(x["total_s"] for x in mine), "runs": [x["total_s"] for x in mine],
                        "workers_s": statistics.median(x["workers_s"] for x in mine),
                        "finalize_s": statistics.median(x["finalize_s"] for x in mine), "summaries": mine[-1]["summaries"]}
        r["anchor"] = {"median_s": statistics.median(x["total_s"] for x in theirs), "runs": [x["total_s"] for x in theirs],
                       "template_s": statistics.median(x["template_s"] for x in theirs),
                       "regions_last": theirs[-1]["regions"]}
        say("comparing the two stores (not timed)")
        r["compare"] = self.child(CHILD_COMPARE, str(mine_dest), str(theirs_dest), VAR, what="comparing the stores")
        c = r["compare"]
        say(f"  decoded values identical: {c['decoded_equal']} (max abs diff {c['decoded_max_abs_diff']:.3g}, "
            f"{c['codes_differing']} int16 codes differ); coordinates equal: {c['coords_equal']}")
        r["sizes"] = {"atlasfs": self.store_size(mine_dest), "anchor": self.store_size(theirs_dest)}
        self.discard(mine_dest)
        self.discard(theirs_dest)
        self.discard(cache)
        return r

    # --- report --------------------------------------------------------------------------------
    def ratios(self) -> None:
        v = self.export_results
        a, t = v["atlasfs"]["median_s"], v["anchor"]["median_s"]
        f = t / a
        lst = v["ratios"] = [ratio("export", f"export of the int16 + zstd pack view, {WORKERS} workers", a, t,
                                   "xarray to_zarr template + region writers", f"≥{GOAL:g}× faster", f >= GOAL)]
        c = v["compare"]
        ok = c["decoded_equal"] and c["coords_equal"]
        lst.append({"key": "values", "met": ok, "text": (
            f"decoded values identical between the two stores: {'yes' if ok else 'NO'} (max abs diff "
            f"{c['decoded_max_abs_diff']:.3g}, {c['codes_differing']} int16 codes differ)")})

    def report(self) -> str:
        v = self.export_results
        env = v["environment"]
        s = v["spec"]
        out = ["", f"atlasfs export benchmark  {v['started']}  ({env['cpus']} CPUs, {env['memory_gib']:.0f} GiB RAM, "
                   f"Linux {env['kernel']}, atlasfs {env['atlasfs']} @ {env['git']})",
               f"  OS page cache: {self.mode_note}; atlasfs from an empty cache dir every round",
               f"  load average (1 min) at start {env['load_average_start'][0]:.2f}, at end {env['load_average_end'][0]:.2f}",
               f"  medians of {v['rounds']} round(s), atlasfs and anchor alternating; {WORKERS} concurrent workers each, "
               "finalize / template included",
               f"  {PACK}: int16, range data, zstd {ZSTD_LEVEL}, Zarr v3; chunks {s['chunks']}, "
               + (f"shards {s['shards']} (--shard-shape {v['shard_shape']})" if s["shards"] else
                  "unsharded (this atlasfs export has no --shard-shape)")]
        rows: list[tuple[str, str, str]] = []

        def runs(xs):
            return "runs " + ", ".join(f"{x:.3f}" for x in xs)

        a, t = v["atlasfs"], v["anchor"]
        rows.append(("export, 2 workers", "", ""))
        rows.append(("  atlasfs export", f"{a['median_s']:.3f}",
                     f"{runs(a['runs'])}; workers {a['workers_s']:.3f} + finalize {a['finalize_s']:.3f}"))
        rows.append(("  xarray template + regions", f"{t['median_s']:.3f}", f"{runs(t['runs'])}; template {t['template_s']:.3f}"))
        rows.append(("  speed-up", f"{t['median_s'] / a['median_s']:.2f}×", f"goal ≥{GOAL:g}×"))
        rows.append(("store sizes (bytes)", "", ""))
        for k, label in (("atlasfs", "atlasfs"), ("anchor", "xarray")):
            z = v["sizes"][k]
            rows.append((f"  {label} store", f"{z['bytes']:,}",
                         f"{z['files']} files ({z['data_files']} of chunks or shards); {VAR}'s {z['var_data_bytes']:,}"))
        out.append("")
        out.extend(table(rows))
        out += ["", "ratios"] + ["  " + x["text"] for x in v["ratios"]] + [""]
        return "\n".join(out)

    def run(self) -> int:
        self.preflight()
        shutil.rmtree(self.trash, ignore_errors=True)
        v = self.export_results
        v.update({"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "cache_mode": self.mode, "quick": self.args.quick, "environment": self.environment()})
        try:
            v.update(self.bench_export())
        finally:
            shutil.rmtree(self.trash, ignore_errors=True)
        self.publish("export", v)
        return 0 if v["compare"]["decoded_equal"] else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round (a smoke test)")
    p.add_argument("--warm", action="store_true", help="the sources in the OS page cache instead of dropping it")
    p.add_argument("--repeat", type=int, default=3, help="rounds (median; default 3)")
    p.add_argument("--shard-shape", default=None,
                   help=f"atlasfs export --shard-shape (default {SHARD_SHAPE}, when atlasfs offers it)")
    p.add_argument("--memory", default="512MiB", help="[cache] memory of the export config (default 512MiB)")
    p.set_defaults(pyramid_codec="none")
    args, _unknown = p.parse_known_args()  # scripts/bench passes every script the same options
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return run_main("bench_export", lambda: ExportBench(args).run(), "its files were moved out of the way")


if __name__ == "__main__":
    sys.exit(main())
