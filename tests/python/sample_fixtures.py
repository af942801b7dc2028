"""Sources, descriptor files and expected samples for the sample-set tests.

Sources are written here with netCDF4-python and xarray (fixed seeds): a NetCDF archive of three
hourly files joined along time (descending latitude, float32 with NaN, a packed int16), a
360_day-calendar file, and a Zarr v3 store with one time step per zstd chunk.  Expected samples
come from xarray's ``.sel`` on those sources (``expected_sample``), never from atlasfs.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import xarray as xr

from conftest import write_config

# --------------------------------------------------------------------------
# the NetCDF archive: 3 files x 4 hours, latitude 50..40 (descending), longitude 5..12

ERA_FILES = 3
ERA_HOURS = 4  # per file
ERA_LAT = np.arange(50.0, 39.5, -1.0)  # descending
ERA_LON = np.arange(5.0, 12.5, 1.0, dtype="f4")
ERA_VARS = ("pk", "t2m")
PK_FILL = np.int16(-32767)
T2M_FILL = np.float32(-9999.0)


def era_values(file_index: int, bump: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """t2m (float32: NaN and _FillValue) and pk (int16, packed, _FillValue) of one file."""
    rng = np.random.default_rng(100 + file_index)
    shape = (ERA_HOURS, ERA_LAT.size, ERA_LON.size)
    t2m = (rng.standard_normal(shape) * 8 + 275 + bump).astype("f4")
    t2m[rng.random(shape) < 0.1] = np.nan
    t2m[rng.random(shape) < 0.05] = T2M_FILL  # masked: NaN when decoded
    pk = np.round(rng.standard_normal(shape) * 500 + bump * 100).astype("i2")
    pk[rng.random(shape) < 0.1] = PK_FILL
    return t2m, pk


def write_era_file(path: Path, file_index: int, bump: float = 0.0) -> Path:
    t2m, pk = era_values(file_index, bump)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("latitude", ERA_LAT.size)
        ds.createDimension("longitude", ERA_LON.size)
        t = ds.createVariable("time", "i4", ("time",))
        t.units = "hours since 2023-01-01 00:00:00"
        t.calendar = "standard"
        t.standard_name = "time"
        t[:] = np.arange(ERA_HOURS) + ERA_HOURS * file_index
        lat = ds.createVariable("latitude", "f8", ("latitude",))
        lat.units = "degrees_north"
        lat[:] = ERA_LAT
        lon = ds.createVariable("longitude", "f4", ("longitude",))
        lon.units = "degrees_east"
        lon[:] = ERA_LON
        v = ds.createVariable("t2m", "f4", ("time", "latitude", "longitude"),
                              fill_value=T2M_FILL)
        v.units = "K"
        v.long_name = "2 metre temperature"
        v[:] = t2m
        p = ds.createVariable("pk", "i2", ("time", "latitude", "longitude"), fill_value=PK_FILL)
        p.set_auto_maskandscale(False)
        p.scale_factor = 0.01
        p.add_offset = 280.0
        p.units = "K"
        p.long_name = "packed temperature"
        p[:] = pk
        ds.title = "sample-set source"
    return path


def make_era(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [write_era_file(directory / f"era_{i}.nc", i) for i in range(ERA_FILES)]


def open_era(files) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset([str(f) for f in sorted(files)], combine="by_coords") as ds:
            return ds.load()


# Sample lines of the NetCDF archive.  CUBE: every sample (time 3, latitude 3, longitude 3).
CUBE = [
    # ranges in the coordinate's order and against it; times across files 0 and 1
    {"time": {"start": "2023-01-01T02", "end": "2023-01-01T04"},
     "latitude": {"start": 47, "end": 49}, "longitude": {"start": 5, "end": 7},
     "_id": 101, "_split": "train"},
    # a time list out of order, a range given high..low, a longitude step
    {"time": ["2023-01-01T09:00", "2023-01-01T01:00", "2023-01-01T05:00"],
     "latitude": {"start": 44, "end": 42}, "longitude": {"start": 6, "end": 10, "step": 2},
     "_id": 102, "_split": "val"},
    # a latitude list, longitude given high..low (an ascending coordinate)
    {"time": {"start": "2023-01-01T08", "end": "2023-01-01T10"},
     "latitude": [40, 45, 50], "longitude": {"start": 12, "end": 10},
     "_id": 103, "_split": "train"},
    # steps on time and on the descending latitude
    {"time": {"start": "2023-01-01T00", "end": "2023-01-01T04", "step": 2},
     "latitude": {"start": 50, "end": 40, "step": 5}, "longitude": [11, 5, 8],
     "_id": 104, "_split": "test"},
    {"time": {"start": "2023-01-01T05:00", "end": "2023-01-01T07:00"},
     "latitude": {"start": 41, "end": 43}, "longitude": {"start": 9, "end": 11},
     "_id": 105, "_split": "train"},
]
CUBE_TOUCHING_LAST_FILE = [1, 2]  # lines whose times fall in era_2.nc (hours 8..11)

# MAPS: a time scalar (the dimension is dropped), longitude not named (taken whole); the
# header gives the variable.
MAPS_HEADER = {"atlas_samples": 1, "variable": ["t2m"]}
MAPS = [
    {"time": "2023-01-01T03", "latitude": {"start": 49, "end": 46}, "_id": "a"},
    {"time": "2023-01-01T11:00", "latitude": {"start": 41, "end": 44}, "_id": "b"},
    {"time": "2023-01-01T06", "latitude": [50, 48, 46, 44], "_id": "c"},
]

# PADDED: a fixed shape; shorter selections padded with NaN at the end, longer ones cropped.
PADDED_SHAPE = {"time": 3, "latitude": 4, "longitude": 4}
PADDED_HEADER = {"atlas_samples": 1, "shape": PADDED_SHAPE, "pad": True, "crop": True,
                 "variable": ["t2m"]}
PADDED = [
    {"time": {"start": "2023-01-01T01", "end": "2023-01-01T03"},
     "latitude": {"start": 45, "end": 48}, "longitude": {"start": 5, "end": 8}},   # exact
    {"time": {"start": "2023-01-01T10", "end": "2023-01-01T11"},
     "latitude": {"start": 45, "end": 46}, "longitude": {"start": 6, "end": 9}},   # padded
    {"time": {"start": "2023-01-01T04", "end": "2023-01-01T08"},
     "latitude": {"start": 40, "end": 50}, "longitude": {"start": 5, "end": 12}},  # cropped
    {"time": ["2023-01-01T07"],
     "latitude": {"start": 43, "end": 48}, "longitude": [12, 7]},                  # both
]

# --------------------------------------------------------------------------
# the 360_day file

CF_DAYS = 60  # 2001-01-01 .. 2001-02-30
CF_LAT = np.array([-10.0, 0.0, 10.0, 20.0])
CF_LON = np.array([0.0, 90.0, 180.0, 270.0, 355.5])


def write_cftime_file(path: Path) -> Path:
    rng = np.random.default_rng(7)
    tas = (rng.standard_normal((CF_DAYS, CF_LAT.size, CF_LON.size)) * 3 + 288).astype("f4")
    tas[rng.random(tas.shape) < 0.05] = np.nan
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", CF_DAYS)
        ds.createDimension("lat", CF_LAT.size)
        ds.createDimension("lon", CF_LON.size)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2001-01-01 00:00:00"
        t.calendar = "360_day"
        t[:] = np.arange(CF_DAYS, dtype="f8")
        ds.createVariable("lat", "f8", ("lat",))[:] = CF_LAT
        ds.createVariable("lon", "f8", ("lon",))[:] = CF_LON
        v = ds.createVariable("tas", "f4", ("time", "lat", "lon"), fill_value=np.float32(np.nan))
        v.units = "K"
        v[:] = tas
    return path


def open_cftime(path) -> xr.Dataset:
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(str(path), decode_times=coder) as ds:
        return ds.load()


CAL360 = [
    {"time": {"start": "2001-02-28", "end": "2001-02-30"}, "lat": {"start": 0, "end": 20}},
    {"time": ["2001-02-30", "2001-01-01", "2001-01-30"], "lat": {"start": 10, "end": -10,
                                                                 "step": 1}},
    {"time": {"start": "2001-01-15", "end": "2001-01-11", "step": 2}, "lat": [20, -10, 0]},
]

# --------------------------------------------------------------------------
# the Zarr v3 store: one time step per chunk, zstd

ZARR_TIMES = 8
ZARR_LAT = np.arange(60.0, 50.0, -1.0)  # descending
ZARR_LON = np.arange(0.0, 12.0, 1.0)


def zarr_source() -> xr.Dataset:
    rng = np.random.default_rng(11)
    shape = (ZARR_TIMES, ZARR_LAT.size, ZARR_LON.size)
    t2m = (rng.standard_normal(shape) * 6 + 280).astype("f4")
    t2m[rng.random(shape) < 0.08] = np.nan
    u10 = (rng.standard_normal(shape) * 4).astype("f4")
    times = (np.datetime64("2020-03-01T00", "ns")
             + np.arange(ZARR_TIMES) * np.timedelta64(6, "h"))
    return xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"}),
         "u10": (("time", "latitude", "longitude"), u10, {"units": "m s-1"})},
        coords={"time": times, "latitude": ZARR_LAT, "longitude": ZARR_LON},
        attrs={"title": "era-like store"},
    )


def write_zarr_store(path: Path) -> Path:
    from zarr.codecs import ZstdCodec

    ds = zarr_source()
    chunks = (1, ZARR_LAT.size, ZARR_LON.size)
    encoding = {v: {"chunks": chunks, "compressors": [ZstdCodec(level=3)]} for v in ds.data_vars}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, zarr_format=3, consolidated=True, encoding=encoding)
    return path


def open_store(path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), chunks=None) as ds:
            return ds.load()


BOXES = [
    {"time": {"start": "2020-03-01T06", "end": "2020-03-01T18"},
     "latitude": {"start": 52, "end": 55}, "longitude": {"start": 3, "end": 6}, "_id": 1},
    {"time": ["2020-03-02T18", "2020-03-01T00", "2020-03-02T00"],
     "latitude": {"start": 60, "end": 57}, "longitude": [11, 0, 5, 6], "_id": 2},
    {"time": {"start": "2020-03-01T00", "end": "2020-03-02T06", "step": 2},
     "latitude": {"start": 51, "end": 60, "step": 3}, "longitude": {"start": 8, "end": 5},
     "_id": 3},
]

# --------------------------------------------------------------------------
# descriptor files, configs


def write_jsonl(path: Path, lines, header: dict | None = None) -> Path:
    text = [json.dumps(header)] if header else []
    text += [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")
    return path


def write_samples_config(path: Path, datasets, samples, *, zarr_format: int = 3,
                         cache_dir=None, views=()) -> Path:
    """A mount config: ``datasets`` as conftest.write_config writes them, ``views`` as
    view_fixtures.views_toml writes them, then one ``[[samples]]`` table per dict of
    ``samples`` (a ``storage`` dict is an inline table)."""
    from conftest import _toml_value
    from view_fixtures import views_toml

    path = write_config(path, datasets, zarr_format=zarr_format, cache_dir=cache_dir)
    lines = [views_toml(views)] if views else []
    for s in samples:
        lines.append("[[samples]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in s.items()]
        lines.append("")
    with open(path, "a") as f:
        f.write("\n" + "\n".join(lines))
    return path


# --------------------------------------------------------------------------
# expected samples: xarray's .sel of a line


def _label(coord: xr.DataArray, value):
    """A descriptor label as a value of ``coord``: ISO strings become datetimes in the
    coordinate's calendar."""
    if not isinstance(value, str):
        return value
    if coord.dtype.kind == "M":
        return np.datetime64(value, "ns")
    first = coord.values.flat[0]
    if isinstance(first, cftime.datetime):
        parts = [int(p) for p in value.replace("T", "-").replace(":", "-").split("-")]
        return cftime.datetime(*parts, calendar=first.calendar)
    return value


def _as_number(coord: xr.DataArray, x):
    if coord.dtype.kind == "M":
        return x.astype("datetime64[ns]").astype("i8")
    if isinstance(x, cftime.datetime):
        return cftime.date2num(x, "days since 1970-01-01", calendar=x.calendar)
    return float(x)


def sel_of(ds: xr.Dataset, line: dict, header: dict | None = None) -> dict:
    """The ``.sel`` keyword arguments of a descriptor line (header defaults applied)."""
    merged = {k: v for k, v in (header or {}).items()
              if k in ds.dims}
    merged.update({k: v for k, v in line.items() if k in ds.dims})
    out = {}
    for dim, spec in merged.items():
        coord = ds[dim]
        if isinstance(spec, dict):
            a, b = _label(coord, spec["start"]), _label(coord, spec["end"])
            ascending = _as_number(coord, coord.values[0]) <= _as_number(coord, coord.values[-1])
            lo_hi = _as_number(coord, a) <= _as_number(coord, b)
            if ascending != lo_hi:
                a, b = b, a
            out[dim] = slice(a, b, spec.get("step"))
        elif isinstance(spec, list):
            out[dim] = [_label(coord, v) for v in spec]
        else:
            out[dim] = _label(coord, spec)
    return out


def variables_of(ds: xr.Dataset, line: dict, header: dict | None = None) -> list[str]:
    return list(line.get("variable") or (header or {}).get("variable") or sorted(ds.data_vars))


def expected_sample(ds: xr.Dataset, var: str, line: dict, header: dict | None = None,
                    shape: dict | None = None) -> xr.DataArray:
    """``ds[var].sel(...)`` of the line; with ``shape`` cut and NaN-padded at the end."""
    got = ds[var].sel(**sel_of(ds, line, header))
    if shape is None:
        return got
    values = got.values
    dims = got.dims
    target = tuple(shape[d] for d in dims)
    values = values[tuple(slice(0, n) for n in target)]
    pad = [(0, n - m) for n, m in zip(target, values.shape)]
    values = np.pad(values.astype("f8"), pad, constant_values=np.nan).astype(values.dtype)
    return xr.DataArray(values, dims=dims)


def chunk_file(set_root: Path, var: str, sample: int, ndim: int, zarr_format: int = 3) -> Path:
    """The file of one sample: one chunk of ``var`` whose chunks are ``(1, *sample shape)``."""
    if zarr_format == 2:
        return set_root / var / ".".join([str(sample)] + ["0"] * ndim)
    # Zarr v3 keys of a sample set are flat (separator "."): one file per sample in one directory.
    return set_root / var / ".".join(["c", str(sample)] + ["0"] * ndim)


# --------------------------------------------------------------------------
# a reader process (multiprocessing): every sample in random order through np.fromfile


def read_samples_in_random_order(args) -> list[str]:
    """``args``: (seed, [(path, dtype, shape, expected .npy path), ...]); returns the mismatches."""
    seed, jobs = args
    order = list(range(len(jobs)))
    random.Random(seed).shuffle(order)
    bad = []
    for i in order:
        path, dtype, shape, expected_path = jobs[i]
        got = np.fromfile(path, dtype=dtype)
        expected = np.load(expected_path)
        if got.size != expected.size:
            bad.append(f"{path}: {got.size} values, expected {expected.size}")
            continue
        if not np.array_equal(got.reshape(shape), expected, equal_nan=True):
            bad.append(f"{path}: values differ")
    return bad
