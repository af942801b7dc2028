"""Fixture archives for the view tests, written with netCDF4-python (fixed seeds).

- ``daily``: NetCDF-4 files of two days each, joined along ``time``, on a 37 x 75 grid with
  descending latitude (odd sizes, so a 2x/4x/8x coarsening trims): ``sst`` float32 masked with
  ``_FillValue`` and carrying ``valid_min``/``valid_max``, ``sal`` float64 with NaN stored as is and a ``valid_range``,
  ``chl`` int16 packed with ``scale_factor``/``add_offset``/``_FillValue``, ``depth`` float32
  (lat, lon) masked with ``missing_value``, ``const`` float32 (lat, lon) one value where not
  masked, ``nobs`` int32 (time); each stored with its own
  chunking (chunked + zlib, contiguous, whole-field chunks).
- ``cases``: a DataTree archive ``<region>/<model>.nc`` with ``DIC`` and ``DIC_ALT_CO2`` float32
  on per-file (time, y, x) grids of odd sizes.
- ``write_day_files``: a small one-day-per-file archive for the recompute test, and
  ``rewrite_day`` to give one of its files new values.

The references the tests compute come from these files through xarray (see ``open_daily``),
never from atlasfs.
"""

from __future__ import annotations

import base64
import json
import os
import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import _toml_value, write_config

NLAT, NLON = 37, 75
DAILY_FILES = 4
DAYS_PER_FILE = 2
NTIME = DAILY_FILES * DAYS_PER_FILE
SST_VALID = (260.0, 320.0)  # sst's valid_min / valid_max attributes
SAL_VALID_RANGE = (20.0, 50.0)  # sal's valid_range attribute
CHL_SCALE, CHL_OFFSET = 0.001, 5.0

CASES_MODELS = {"north": ("m1", "m2"), "south": ("m3",)}
CASES_SHAPES = {"m1": (3, 21, 30), "m2": (3, 21, 30), "m3": (3, 13, 18)}


def daily_grid():
    lat = np.linspace(72.0, -72.0, NLAT).astype("f4")  # descending
    lon = np.arange(NLON, dtype="f8") * 4.8
    return lat, lon


def land_mask(ny: int, nx: int) -> np.ndarray:
    """A fixed land mask: a block in one corner and a diagonal strip (True = land)."""
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    mask = (yy < ny // 3) & (xx < nx // 4)
    mask |= np.abs(yy - xx * ny / nx) < 1.2
    mask[-1, -1] = True
    return mask


def _write_axes(ds, time_units: str, times, axes: dict) -> dict:
    """Dimensions and coordinate variables: ``time`` (f8, CF units) and ``axes`` (name ->
    values, stored in their dtype); returns the axes' variables."""
    ds.createDimension("time", len(times))
    for name, values in axes.items():
        ds.createDimension(name, len(values))
    t = ds.createVariable("time", "f8", ("time",))
    t.units = time_units
    t.calendar = "standard"
    t[:] = np.asarray(times, dtype="f8")
    out = {}
    for name, values in axes.items():
        out[name] = ds.createVariable(name, np.asarray(values).dtype, (name,))
        out[name][:] = values
    return out


def _write_daily_file(path: Path, index: int, rng: np.random.Generator) -> None:
    lat, lon = daily_grid()
    mask = land_mask(NLAT, NLON)
    nt = DAYS_PER_FILE
    with netCDF4.Dataset(path, "w") as ds:
        ds.title = "view fixture"
        ds.history = "written by the view fixtures"
        axes = _write_axes(ds, "days since 2020-01-01", np.arange(nt) + index * nt,
                           {"lat": lat, "lon": lon})
        axes["lat"].units = "degrees_north"
        axes["lon"].units = "degrees_east"

        base = 290 + 12 * np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
        sst_vals = (base[None] + 3 * rng.standard_normal((nt, NLAT, NLON))).astype("f4")
        sst = ds.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                                chunksizes=(1, 16, 25), fill_value=np.float32(-999.0))
        sst.units = "K"
        sst.long_name = "sea surface temperature"
        sst.valid_min = np.float32(SST_VALID[0])
        sst.valid_max = np.float32(SST_VALID[1])
        sst[:] = np.ma.masked_array(sst_vals, mask=np.broadcast_to(mask, sst_vals.shape))

        sal_vals = 35 + 2 * rng.standard_normal((nt, NLAT, NLON))
        sal_vals[:, mask] = np.nan  # NaN stored as is, no _FillValue attribute
        sal = ds.createVariable("sal", "f8", ("time", "lat", "lon"), contiguous=True,
                                fill_value=False)
        sal.units = "psu"
        sal.valid_range = np.array(SAL_VALID_RANGE, dtype="f8")
        sal[:] = sal_vals

        chl_vals = np.exp(rng.uniform(np.log(0.1), np.log(9.0), (nt, NLAT, NLON)))
        codes = np.round((chl_vals - CHL_OFFSET) / CHL_SCALE).astype("i2")
        codes[:, mask] = -32768
        chl = ds.createVariable("chl", "i2", ("time", "lat", "lon"), zlib=True, shuffle=True,
                                chunksizes=(nt, NLAT, NLON), fill_value=np.int16(-32768))
        chl.set_auto_maskandscale(False)
        chl.scale_factor = np.float64(CHL_SCALE)
        chl.add_offset = np.float64(CHL_OFFSET)
        chl.units = "mg m-3"
        chl[:] = codes

        # the same in every file (variables without `time` come from the first file)
        depth_vals = (100 + 4000 * np.abs(np.sin(np.deg2rad(lat)))[:, None]
                      + 10 * np.arange(NLON)[None, :]).astype("f4")
        depth_vals[mask] = -1.0
        depth = ds.createVariable("depth", "f4", ("lat", "lon"), chunksizes=(10, 30),
                                  zlib=True)
        depth.missing_value = np.float32(-1.0)
        depth.units = "m"
        depth.set_auto_maskandscale(False)
        depth[:] = depth_vals

        const = ds.createVariable("const", "f4", ("lat", "lon"), fill_value=np.float32(-1.0))
        const.long_name = "one value everywhere"
        const[:] = np.ma.masked_array(np.full((NLAT, NLON), 1.5, "f4"), mask=mask)

        nobs = ds.createVariable("nobs", "i4", ("time",))
        nobs.long_name = "number of observations"
        nobs[:] = rng.integers(100, 1000, nt).astype("i4")


def make_daily(directory: Path, seed: int = 11) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(DAILY_FILES):
        path = directory / f"daily_{i:02d}.nc"
        _write_daily_file(path, i, rng)
        paths.append(path)
    return paths


def open_daily(paths) -> xr.Dataset:
    """The daily archive as xarray decodes it (the aggregation atlasfs serves), loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(sorted(map(str, paths)), combine="by_coords",
                               data_vars="minimal", coords="minimal", compat="override") as ds:
            return ds.load()


def make_cases(root: Path, seed: int = 5) -> dict:
    """``root/<region>/<model>.nc``; returns the dataset entry's fields and the leaf files."""
    rng = np.random.default_rng(seed)
    leaves = {}
    for region, models in CASES_MODELS.items():
        for model in models:
            nt, ny, nx = CASES_SHAPES[model]
            path = root / region / f"{model}.nc"
            path.parent.mkdir(parents=True, exist_ok=True)
            mask = land_mask(ny, nx)
            with netCDF4.Dataset(path, "w") as ds:
                _write_axes(ds, "days since 2000-01-01", np.arange(nt) * 30.0,
                            {"y": np.linspace(-500.0, 500.0, ny),
                             "x": np.linspace(0.0, 2900.0, nx)})
                dic = ds.createVariable("DIC", "f4", ("time", "y", "x"), zlib=True,
                                        chunksizes=(1, ny, nx), fill_value=np.float32(1e20))
                dic.units = "mmol m-3"
                vals = (2000 + 50 * rng.standard_normal((nt, ny, nx))).astype("f4")
                dic[:] = np.ma.masked_array(vals, mask=np.broadcast_to(mask, vals.shape))
                alt = ds.createVariable("DIC_ALT_CO2", "f4", ("time", "y", "x"),
                                        fill_value=False)
                alt.units = "mmol m-3"
                alt_vals = (vals - 30 + 5 * rng.standard_normal((nt, ny, nx))).astype("f4")
                alt_vals[:, mask] = np.nan
                alt[:] = alt_vals
            leaves[f"{region}/{model}"] = path
    return {"root": root, "pattern": "{region}/{model}.nc", "groups": ["region", "model"],
            "leaves": leaves}


def open_file(path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(str(path)) as ds:
            return ds.load()


# --------------------------------------------------------------------------
# the recompute archive: one day per file


REC_NY, REC_NX = 20, 30


def _write_day(path: Path, day: int, values: np.ndarray) -> None:
    mask = land_mask(REC_NY, REC_NX)
    with netCDF4.Dataset(path, "w") as ds:
        _write_axes(ds, "days since 2020-01-01", [day],
                    {"lat": np.linspace(50, -45, REC_NY).astype("f4"),
                     "lon": (np.arange(REC_NX) * 2.0).astype("f4")})
        v = ds.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True,
                              chunksizes=(1, REC_NY, REC_NX), fill_value=np.float32(-999.0))
        v.units = "K"
        v[:] = np.ma.masked_array(values[None], mask=mask[None])


def write_day_files(directory: Path, days: int, seed: int = 3) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for d in range(days):
        path = directory / f"day{d:02d}.nc"
        _write_day(path, d, (285 + 5 * rng.standard_normal((REC_NY, REC_NX))).astype("f4"))
        paths.append(path)
    return paths


def rewrite_day(path: Path, day: int, seed: int) -> None:
    """New values for one day's file, and an mtime clearly later than before."""
    before = path.stat().st_mtime
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    _write_day(tmp, day, (300 + 5 * rng.standard_normal((REC_NY, REC_NX))).astype("f4"))
    os.replace(tmp, path)
    later = max(time.time(), before + 2.0)
    os.utime(path, (later, later))


# --------------------------------------------------------------------------
# configs with [[view]] tables, and reading what the mount serves


def views_toml(views) -> str:
    """``[[view]]`` tables: each view a dict of its top-level keys plus one operation key
    (``pack`` / ``pyramid`` / ``expr``, or several to make a bad config) whose dict becomes
    the ``[view.<operation>]`` table; ``raw`` adds lines as they are."""
    lines = []
    for view in views:
        lines.append("[[view]]")
        tables = {}
        for key, value in view.items():
            if key in ("pack", "pyramid", "expr", "regrid"):
                tables[key] = value
            elif key == "raw":
                lines.append(value)
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        for op, params in tables.items():
            lines.append(f"[view.{op}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in params.items()]
        lines.append("")
    return "\n".join(lines)


def write_views_config(path, datasets, views, *, cache_dir=None, zarr_format: int = 3) -> Path:
    path = write_config(path, datasets, zarr_format=zarr_format, cache_dir=cache_dir)
    with open(path, "a") as f:
        f.write("\n" + views_toml(views) + "\n")
    return path


def mount_views(manager, datasets, views, *, zarr_format: int = 3):
    """Mounts ``datasets`` + ``views`` with ``manager`` (a conftest MountManager)."""
    work = manager.new_dir("m")
    cache = work / "cache"
    config = write_views_config(work / "atlasfs.toml", datasets, views, cache_dir=cache,
                                zarr_format=zarr_format)
    return manager.mount_config(config, cache)


def daily_entry(paths, name: str = "daily") -> dict:
    return {"name": name, "files": str(Path(paths[0]).parent / "*.nc"), "concat_dim": "time",
            "chunks": {"time": 1}}


def cases_entry(cases: dict, name: str = "cases") -> dict:
    return {"name": name, "files": str(Path(cases["root"]) / "**" / "*.nc"),
            "pattern": cases["pattern"], "groups": cases["groups"]}


def array_meta(path) -> dict:
    """An array's metadata as served, in one shape for both Zarr formats: ``dtype`` (numpy
    name), ``chunks``, ``shape``, ``codecs`` (names of the compressors), ``attrs``, ``dims``,
    ``fill`` (the ``_FillValue`` xarray sees: an attribute in v3, the array's in v2)."""
    path = Path(path)
    if (path / "zarr.json").exists():
        meta = json.loads((path / "zarr.json").read_text())
        assert meta["node_type"] == "array", path
        codecs = [c["name"] for c in meta.get("codecs", [])
                  if c["name"] not in ("bytes", "transpose")]
        attrs = meta.get("attributes", {})
        return {"dtype": str(np.dtype(meta["data_type"])), "shape": meta["shape"],
                "chunks": meta["chunk_grid"]["configuration"]["chunk_shape"],
                "codecs": codecs, "attrs": attrs, "dims": meta.get("dimension_names"),
                "fill": _attr_fill(attrs.get("_FillValue"))}
    meta = json.loads((path / ".zarray").read_text())
    attrs = json.loads((path / ".zattrs").read_text()) if (path / ".zattrs").exists() else {}
    codecs = [c["id"] for c in (meta.get("filters") or [])]
    if meta.get("compressor"):
        codecs.append(meta["compressor"]["id"])
    return {"dtype": str(np.dtype(meta["dtype"])), "shape": meta["shape"],
            "chunks": meta["chunks"], "codecs": codecs, "attrs": attrs,
            "dims": attrs.get("_ARRAY_DIMENSIONS"),
            "fill": _attr_fill(meta.get("fill_value"))}


def _attr_fill(value):
    """A fill value as xarray reads it: a float written as base64 of its 8 bytes (xarray's
    Zarr v3 encoding) or as "NaN" becomes a float."""
    if isinstance(value, str):
        if value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("inity", ""))
        return float(np.frombuffer(base64.b64decode(value), "<f8")[0])
    return value


def group_attrs(path) -> dict:
    path = Path(path)
    if (path / "zarr.json").exists():
        meta = json.loads((path / "zarr.json").read_text())
        assert meta["node_type"] == "group", path
        return meta.get("attributes", {})
    zattrs = path / ".zattrs"
    assert (path / ".zgroup").exists(), f"{path} is not a group"
    return json.loads(zattrs.read_text()) if zattrs.exists() else {}


def raw_values(path) -> np.ndarray:
    """An array's stored values (no CF decoding), read with zarr-python."""
    import zarr

    return zarr.open_array(str(path), mode="r")[...]


def open_raw(path) -> xr.Dataset:
    """A group as xarray reads it without CF decoding (packed codes as stored), loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), consolidated=True, chunks=None,
                          mask_and_scale=False, decode_times=False) as ds:
            return ds.load()


# --------------------------------------------------------------------------
# pytest fixtures (imported by the view test modules); written once per session


@pytest.fixture(scope="session")
def daily(tmp_path_factory) -> list[Path]:
    return make_daily(tmp_path_factory.mktemp("daily"))


@pytest.fixture(scope="session")
def cases(tmp_path_factory) -> dict:
    return make_cases(tmp_path_factory.mktemp("cases"))


@pytest.fixture(scope="session")
def source(daily) -> xr.Dataset:
    """The daily archive as xarray decodes it from the files."""
    return open_daily(daily)
