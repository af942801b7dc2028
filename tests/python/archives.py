"""Synthetic archives whose *paths* carry their structure, for the DataTree tests and the
example mount configs.

Three kinds, each written deterministically (fixed seeds, small grids) with netCDF4-python:

- ``make_ismip6``: an ISMIP6-like model intercomparison archive,
  ``<group>/<model>/<experiment>/<variable>_AIS_<group>_<model>_<experiment>.nc``, one variable
  per file, two grid resolutions on EPSG:3031 x/y, with the errors real archives have injected
  into identifiable models (wrong time units, a missing ``_FillValue``, x/y in km, a misnamed
  variable, a flipped y axis, an extra attribute, an obsolete variable).  ``ISMIP6_FIXES`` are
  the fix rules that undo them; ``make_ismip6`` writes them as a fix file next to the archive.
  ``ismip6_truth`` recomputes the error-free fields, so a test can check that the fixed archive
  equals what the models "meant" to write.
- ``make_cmip6``: a CMIP6-like DRS tree (per-variable files split along time, two members) and
  an intake-esm catalog for it (JSON + CSV, and JSON + gzip-compressed CSV).
- ``make_cases``: an ocean-CDR-atlas-like case archive ``<polygon_id>/<injection_date>/<run>.nc``
  (run = experiment | counterfactual) with gaps.

Each ``make_X(outdir) -> dict`` describes what was written.  As a script::

    python tests/python/archives.py OUTDIR [ismip6] [cmip6] [cases]

writes the named archives (all three by default) to OUTDIR/<kind>.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import sys
import zlib
from pathlib import Path

import cftime
import netCDF4
import numpy as np


def _seed(*parts) -> int:
    """A stable seed from any parts (Python's hash() is salted per process)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------
# fix files (TOML)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def fixes_toml(rules, header: str = "") -> str:
    """A fix file: one ``[[fix]]`` table per rule (dicts, keys in the order given)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if lines:
        lines.append("")
    for rule in rules:
        lines.append("[[fix]]")
        for key, value in rule.items():
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def write_fixes(path, rules, header: str = "") -> Path:
    path = Path(path)
    path.write_text(fixes_toml(rules, header))
    return path


# --------------------------------------------------------------------------
# one small file, described as data


def write_nc(path, dims: dict, variables: dict, gattrs: dict | None = None,
             fmt: str = "NETCDF4") -> Path:
    """Writes one file with netCDF4-python.

    ``dims``: name -> length (``None`` = unlimited, its length taken from the data);
    ``variables``: name -> {"dims": tuple, "dtype": str, "values": array-like (raw, encoded;
    omitted for a scalar = 0), "attrs": dict, optional "fill": a _FillValue or False (no
    fill value at all), optional "chunks": tuple, optional "zlib": bool}.
    Values are written raw (auto mask/scale off), so what is given is what is stored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        for k, v in (gattrs or {}).items():
            nc.setncattr(k, v)
        for name, size in dims.items():
            nc.createDimension(name, size)
        for name, spec in variables.items():
            kw = {}
            if "fill" in spec:
                fill = spec["fill"]
                kw["fill_value"] = False if fill is False else np.array(fill, spec["dtype"])[()]
            if spec.get("chunks"):
                kw["chunksizes"] = spec["chunks"]
            if spec.get("zlib"):
                kw.update(zlib=True, complevel=3, shuffle=True)
            v = nc.createVariable(name, spec["dtype"], tuple(spec.get("dims", ())), **kw)
            v.set_auto_maskandscale(False)
            for k, a in spec.get("attrs", {}).items():
                v.setncattr(k, a)
            values = np.asarray(spec.get("values", 0))
            if v.dimensions:
                v[...] = values.astype(spec["dtype"]) if spec["dtype"] != str else values
            else:
                v.assignValue(values.astype(spec["dtype"]) if spec["dtype"] != str else values)
    return path


# --------------------------------------------------------------------------
# ISMIP6-like


ISMIP6_PATTERN = "{group}/{model}/{experiment}/{variable}_AIS_{group}_{model}_{experiment}.nc"

# group, model, grid resolution (km), the errors injected, file format and layout.  Model names
# are unique within a group (ISSM appears in two groups); no name holds "_" (the file name
# separator), as in the pattern above.
ISMIP6_MODELS = (
    {"group": "JPL1", "model": "ISSM", "res_km": 16, "errors": ("time_units", "valid_range"),
     "format": "NETCDF4", "unlimited": True, "zlib": True},
    {"group": "UCIJPL", "model": "ISSM", "res_km": 16, "errors": ("misnamed",),
     "format": "NETCDF4", "unlimited": False, "zlib": False},
    {"group": "ILTS", "model": "SICOPOLIS", "res_km": 16, "errors": ("flipped_y", "mapping_old"),
     "format": "NETCDF4_CLASSIC", "unlimited": True, "zlib": False},
    {"group": "PIK", "model": "PISM1", "res_km": 32, "errors": ("km", "no_fill"),
     "format": "NETCDF3_64BIT_OFFSET", "unlimited": False, "zlib": False},
    {"group": "PIK", "model": "PISM2", "res_km": 32, "errors": (),
     "format": "NETCDF4", "unlimited": False, "zlib": True},
)
ISMIP6_EXPERIMENTS = ("ctrl", "exp05", "exp06")
ISMIP6_VARIABLES = {
    "lithk": {"standard_name": "land_ice_thickness", "units": "m"},
    "orog": {"standard_name": "surface_altitude", "units": "m"},
    "topg": {"standard_name": "bedrock_altitude", "units": "m"},
    "acabf": {"standard_name": "land_ice_surface_specific_mass_balance_flux",
              "units": "kg m-2 s-1"},
}
ISMIP6_NT = 5  # yearly steps
ISMIP6_TIME_UNITS = "days since 2015-01-01"
ISMIP6_CALENDAR = "noleap"
ISMIP6_FILL = -9999.0
ISMIP6_MAPPING = {
    "grid_mapping_name": "polar_stereographic",
    "latitude_of_projection_origin": -90.0,
    "straight_vertical_longitude_from_pole": 0.0,
    "standard_parallel": -71.0,
    "false_easting": 0.0,
    "false_northing": 0.0,
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
}

# The fix rules that undo the injected errors, in file order (rule numbers are 1-based).
# Rules acting on one variable also match on `variable`, so they only meet files that hold it.
ISMIP6_FIXES = (
    # 1. JPL1/ISSM wrote "days since 1850-01-01" although its values count from 2015.
    {"match": {"group": "JPL1", "model": "ISSM"},
     "time": {"units": ISMIP6_TIME_UNITS, "calendar": ISMIP6_CALENDAR}},
    # 2. ... and an extra valid_range on lithk.
    {"match": {"group": "JPL1", "model": "ISSM", "variable": "lithk"},
     "drop_attrs": {"lithk": ["valid_range"]}},
    # 3. UCIJPL/ISSM named its ice thickness "thickness".
    {"match": {"group": "UCIJPL", "model": "ISSM", "variable": "lithk"},
     "rename": {"thickness": "lithk"}},
    # 4. ILTS/SICOPOLIS stored y descending (data flipped with it) and kept an obsolete mapping.
    {"match": {"group": "ILTS", "model": "SICOPOLIS"},
     "drop_vars": ["mapping_old"], "flip": ["y"]},
    # 5. PIK/PISM1 wrote x/y in km.
    {"match": {"group": "PIK", "model": "PISM1"},
     "scale": {"x": 1000.0, "y": 1000.0}, "set_attrs": {"x": {"units": "m"}, "y": {"units": "m"}}},
    # 6. PIK/PISM1's acabf marks ice-free cells with -9999 but declares no _FillValue.
    {"match": {"group": "PIK", "model": "PISM1", "variable": "acabf"},
     "fill_value": {"acabf": ISMIP6_FILL}},
    # 7. A path-glob rule for every model: a long_name on orog.
    {"match_path": "*/*/*/orog_AIS_*.nc",
     "set_attrs": {"orog": {"long_name": "surface elevation"}}},
)
ISMIP6_FIX_FILE = "ismip6.toml"


def ismip6_grid(res_km: int):
    """Cell-centred x, y (metres, ascending) on EPSG:3031; both resolutions cover
    x in [-192 km, 192 km], y in [-160 km, 160 km]."""
    step = res_km * 1000.0
    nx, ny = int(384 // res_km), int(320 // res_km)
    x = -192000.0 + step / 2 + step * np.arange(nx)
    y = -160000.0 + step / 2 + step * np.arange(ny)
    return x, y


def ismip6_time() -> np.ndarray:
    """Mid-year days since 2015-01-01 (noleap)."""
    return 182.5 + 365.0 * np.arange(ISMIP6_NT)


def ismip6_truth(group: str, model: str, experiment: str, variable: str, res_km: int):
    """The error-free field (nt, ny, nx) as float32 with NaN where masked."""
    x, y = ismip6_grid(res_km)
    X, Y = np.meshgrid(x, y)
    r = np.hypot(X / 170000.0, Y / 140000.0)
    ice = r < 1.0
    k = np.arange(ISMIP6_NT)[:, None, None]
    trend = {"ctrl": 0.0, "exp05": -1.0, "exp06": -2.5}[experiment]
    rng = np.random.default_rng(_seed("ismip6", group, model, experiment, variable))
    noise = rng.standard_normal((ISMIP6_NT, *X.shape))
    bias = rng.uniform(-1, 1)  # per model, so the multi-model variance is not zero
    bed = -400.0 + 250.0 * np.cos(X / 60000.0) * np.sin(Y / 45000.0)
    thick = np.clip(2500.0 * (1 - r**2), 0, None)
    if variable == "topg":
        field = bed + 20.0 * bias + 2.0 * noise + 0 * k
        mask = np.zeros(field.shape, bool)
    elif variable == "lithk":
        field = thick * (1 + 0.05 * bias) + 30.0 * trend * k + 5.0 * noise
        mask = np.broadcast_to(~ice, field.shape)
    elif variable == "orog":
        field = np.maximum(bed, 0) + thick * 0.9 + 25.0 * trend * k + 10 * bias + 3.0 * noise
        mask = np.broadcast_to(~ice, field.shape)
    elif variable == "acabf":
        field = (3e-6 * (1 + 0.2 * bias) * (1 - r) + 1e-7 * trend * k + 1e-7 * noise)
        mask = np.broadcast_to(~ice, field.shape)
    else:
        raise KeyError(variable)
    field = field.astype("f4")
    field[mask] = np.nan
    return field


def _write_ismip6_file(path: Path, spec: dict, experiment: str, variable: str) -> None:
    errors = spec["errors"]
    x, y = ismip6_grid(spec["res_km"])
    data = ismip6_truth(spec["group"], spec["model"], experiment, variable, spec["res_km"])
    data = np.where(np.isnan(data), np.float32(ISMIP6_FILL), data).astype("f4")
    if "flipped_y" in errors:
        y = y[::-1]
        data = data[:, ::-1, :]
    if "km" in errors:
        x, y = x / 1000.0, y / 1000.0
    with netCDF4.Dataset(path, "w", format=spec["format"]) as nc:
        nc.Conventions = "CF-1.7"
        nc.institution = spec["group"]
        nc.source = f"{spec['group']} {spec['model']}"
        nc.experiment = experiment
        nc.createDimension("time", None if spec["unlimited"] else ISMIP6_NT)
        nc.createDimension("y", len(y))
        nc.createDimension("x", len(x))
        t = nc.createVariable("time", "f8", ("time",))
        t.standard_name = "time"
        t.axis = "T"
        t.units = "days since 1850-01-01" if "time_units" in errors else ISMIP6_TIME_UNITS
        t.calendar = ISMIP6_CALENDAR
        t[:] = ismip6_time()
        for name, vals in (("y", y), ("x", x)):
            v = nc.createVariable(name, "f8", (name,))
            v.standard_name = f"projection_{name}_coordinate"
            v.axis = name.upper()
            v.units = "km" if "km" in errors else "m"
            v[:] = vals
        m = nc.createVariable("mapping", "i4", ())
        m.setncatts(ISMIP6_MAPPING)
        m.assignValue(0)
        if "mapping_old" in errors:
            old = nc.createVariable("mapping_old", "i4", ())
            old.setncatts({**ISMIP6_MAPPING, "standard_parallel": -70.0})
            old.assignValue(0)
        name = "thickness" if ("misnamed" in errors and variable == "lithk") else variable
        no_fill = "no_fill" in errors and variable == "acabf"
        kw = {"fill_value": False if no_fill else np.float32(ISMIP6_FILL)}
        if spec["zlib"]:
            kw.update(zlib=True, complevel=4, shuffle=True)
        v = nc.createVariable(name, "f4", ("time", "y", "x"), **kw)
        v.setncatts(ISMIP6_VARIABLES[variable])
        v.grid_mapping = "mapping"
        if "valid_range" in errors and variable == "lithk":
            v.valid_range = np.array([0.0, 5000.0], dtype="f4")
        v[:] = data


def make_ismip6(outdir) -> dict:
    """Writes the archive to ``outdir`` (replacing it) and its fix file to
    ``outdir / ISMIP6_FIX_FILE`` (a glob ``**/*.nc`` does not reach it).  Returns::

        {"root": str, "pattern": ISMIP6_PATTERN, "fix_file": str, "fixes": ISMIP6_FIXES,
         "models": ISMIP6_MODELS, "experiments": ..., "variables": [...],
         "files": [{"path", "relpath", "group", "model", "experiment", "variable",
                    "res_km", "errors"}, ...]}
    """
    root = _fresh_dir(Path(outdir))
    files = []
    for spec in ISMIP6_MODELS:
        for experiment in ISMIP6_EXPERIMENTS:
            for variable in ISMIP6_VARIABLES:
                g, m = spec["group"], spec["model"]
                rel = f"{g}/{m}/{experiment}/{variable}_AIS_{g}_{m}_{experiment}.nc"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_ismip6_file(path, spec, experiment, variable)
                files.append({"path": str(path), "relpath": rel, "group": g, "model": m,
                              "experiment": experiment, "variable": variable,
                              "res_km": spec["res_km"], "errors": spec["errors"]})
    fix_file = write_fixes(root / ISMIP6_FIX_FILE, ISMIP6_FIXES,
                           "Fixes for the synthetic ISMIP6-like archive (tests/python/archives.py).")
    return {"root": str(root), "pattern": ISMIP6_PATTERN, "fix_file": str(fix_file),
            "fixes": ISMIP6_FIXES, "models": ISMIP6_MODELS,
            "experiments": ISMIP6_EXPERIMENTS, "variables": list(ISMIP6_VARIABLES),
            "files": files}


# --------------------------------------------------------------------------
# CMIP6-like DRS + intake-esm catalog


CMIP6_ACTIVITY = "ScenarioMIP"
CMIP6_MODELS = (
    {"institution_id": "ATLAS", "source_id": "AtlasESM1", "calendar": "noleap", "nlat": 4, "nlon": 8,
     "version": "v20190815"},
    {"institution_id": "NORTH", "source_id": "NorthCM2", "calendar": "standard", "nlat": 6, "nlon": 12,
     "version": "v20200101", "errors": ("pr_no_units",)},
    {"institution_id": "SOUTH", "source_id": "SouthCM3", "calendar": "360_day", "nlat": 3, "nlon": 6,
     "version": "v20210301"},
)
CMIP6_EXPERIMENTS = ("ssp245", "ssp585")
CMIP6_MEMBERS = ("r1i1p1f1", "r2i1p1f1")
CMIP6_VARIABLES = {
    "tas": {"standard_name": "air_temperature", "long_name": "Near-Surface Air Temperature",
            "units": "K"},
    "pr": {"standard_name": "precipitation_flux", "long_name": "Precipitation",
           "units": "kg m-2 s-1"},
}
CMIP6_TABLE = "Amon"
CMIP6_GRID = "gn"
# Two files per series, six months each.
CMIP6_TIME_RANGES = ((2015, 1, 6), (2015, 7, 12))
CMIP6_TIME_UNITS = "days since 1850-01-01"
CMIP6_FILL = np.float32(1e20)
CMIP6_COLUMNS = ("activity_id", "institution_id", "source_id", "experiment_id", "member_id",
                 "table_id", "variable_id", "grid_label", "version", "time_range", "path")
# NorthCM2 wrote pr without a units attribute: a fix on catalog columns restores it.
CMIP6_FIXES = (
    {"match": {"source_id": "NorthCM2", "variable_id": "pr"},
     "set_attrs": {"pr": {"units": "kg m-2 s-1"}}},
)
CMIP6_FIX_FILE = "cmip6.toml"
CMIP6_AGGREGATION = {
    "variable_column_name": "variable_id",
    "groupby_attrs": ["source_id", "experiment_id"],
    "aggregations": [
        {"type": "union", "attribute_name": "variable_id"},
        {"type": "join_existing", "attribute_name": "time_range", "options": {"dim": "time"}},
        {"type": "join_new", "attribute_name": "member_id",
         "options": {"coords": "minimal", "compat": "override"}},
    ],
}


def cmip6_grid(nlat: int, nlon: int):
    dlat, dlon = 180.0 / nlat, 360.0 / nlon
    lat = -90 + dlat / 2 + dlat * np.arange(nlat)
    lon = dlon / 2 + dlon * np.arange(nlon)
    lat_b = np.stack([lat - dlat / 2, lat + dlat / 2], axis=1)
    lon_b = np.stack([lon - dlon / 2, lon + dlon / 2], axis=1)
    return lat, lon, lat_b, lon_b


def _cmip6_time(calendar: str, year: int, m0: int, m1: int):
    starts = [cftime.datetime(year + (m - 1) // 12, (m - 1) % 12 + 1, 1, calendar=calendar)
              for m in range(m0, m1 + 2)]
    edges = np.asarray(cftime.date2num(starts, CMIP6_TIME_UNITS, calendar=calendar), dtype="f8")
    bnds = np.stack([edges[:-1], edges[1:]], axis=1)
    return bnds.mean(axis=1), bnds


def _write_cmip6_file(path: Path, spec: dict, experiment: str, member: str, variable: str,
                      trange) -> None:
    year, m0, m1 = trange
    lat, lon, lat_b, lon_b = cmip6_grid(spec["nlat"], spec["nlon"])
    time, time_b = _cmip6_time(spec["calendar"], year, m0, m1)
    rng = np.random.default_rng(_seed("cmip6", spec["source_id"], experiment, member, variable, m0))
    LAT = lat[None, :, None]
    shape = (len(time), len(lat), len(lon))
    warming = {"ssp245": 0.1, "ssp585": 0.3}[experiment]
    month = np.arange(m0, m1 + 1)[:, None, None]
    if variable == "tas":
        data = 288 - 30 * np.sin(np.radians(LAT)) ** 2 + warming * month + rng.normal(0, 1, shape)
    else:
        data = 3e-5 * np.cos(np.radians(LAT)) ** 2 * (1 + warming) + rng.uniform(0, 1e-6, shape)
    data = data.astype("f4")
    if variable == "pr":
        data[rng.random(shape) < 0.05] = CMIP6_FILL  # a few missing values
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as nc:
        nc.Conventions = "CF-1.7 CMIP-6.2"
        nc.activity_id = CMIP6_ACTIVITY
        nc.institution_id = spec["institution_id"]
        nc.source_id = spec["source_id"]
        nc.experiment_id = experiment
        nc.variant_label = member
        nc.table_id = CMIP6_TABLE
        nc.variable_id = variable
        nc.grid_label = CMIP6_GRID
        nc.frequency = "mon"
        nc.tracking_id = "hdl:21.14100/%08x" % _seed(path.name)
        nc.createDimension("time", None)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        nc.createDimension("bnds", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts({"bounds": "time_bnds", "units": CMIP6_TIME_UNITS,
                     "calendar": spec["calendar"], "axis": "T", "standard_name": "time"})
        t[:] = time
        tb = nc.createVariable("time_bnds", "f8", ("time", "bnds"))
        tb[:] = time_b
        for name, vals, bvals, units in (("lat", lat, lat_b, "degrees_north"),
                                         ("lon", lon, lon_b, "degrees_east")):
            v = nc.createVariable(name, "f8", (name,))
            v.setncatts({"bounds": f"{name}_bnds", "units": units,
                         "axis": "Y" if name == "lat" else "X",
                         "standard_name": "latitude" if name == "lat" else "longitude"})
            v[:] = vals
            b = nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
            b[:] = bvals
        v = nc.createVariable(variable, "f4", ("time", "lat", "lon"), fill_value=CMIP6_FILL,
                              zlib=True, complevel=2)
        attrs = dict(CMIP6_VARIABLES[variable])
        if variable == "pr" and "pr_no_units" in spec.get("errors", ()):
            del attrs["units"]
        v.setncatts(attrs)
        v.missing_value = CMIP6_FILL
        v.cell_methods = "area: time: mean"
        v[:] = data


def make_cmip6(outdir) -> dict:
    """Writes the DRS tree under ``outdir/CMIP6``, the catalogs ``cmip6.json`` (+ ``cmip6.csv``,
    paths relative to the JSON) and ``cmip6_gz.json`` (+ ``cmip6.csv.gz``, absolute paths), and
    the fix file ``cmip6.toml``.  Returns::

        {"root", "json", "json_gz", "csv", "csv_gz", "fix_file", "fixes", "models",
         "experiments", "members", "variables",
         "files": [{"path", "relpath", column: value...}, ...]}
    """
    root = _fresh_dir(Path(outdir))
    rows = []
    for spec in CMIP6_MODELS:
        for experiment in CMIP6_EXPERIMENTS:
            for member in CMIP6_MEMBERS:
                for variable in CMIP6_VARIABLES:
                    for trange in CMIP6_TIME_RANGES:
                        year, m0, m1 = trange
                        time_range = f"{year}{m0:02d}-{year}{m1:02d}"
                        drs = (f"CMIP6/{CMIP6_ACTIVITY}/{spec['institution_id']}/{spec['source_id']}/"
                               f"{experiment}/{member}/{CMIP6_TABLE}/{variable}/{CMIP6_GRID}/"
                               f"{spec['version']}")
                        name = (f"{variable}_{CMIP6_TABLE}_{spec['source_id']}_{experiment}_"
                                f"{member}_{CMIP6_GRID}_{time_range}.nc")
                        rel = f"{drs}/{name}"
                        path = root / rel
                        path.parent.mkdir(parents=True, exist_ok=True)
                        _write_cmip6_file(path, spec, experiment, member, variable, trange)
                        rows.append({
                            "activity_id": CMIP6_ACTIVITY,
                            "institution_id": spec["institution_id"],
                            "source_id": spec["source_id"],
                            "experiment_id": experiment,
                            "member_id": member,
                            "table_id": CMIP6_TABLE,
                            "variable_id": variable,
                            "grid_label": CMIP6_GRID,
                            "version": spec["version"],
                            "time_range": time_range,
                            "path": rel,
                            "abspath": str(path),
                        })
    csv_path = root / "cmip6.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CMIP6_COLUMNS)
        for r in rows:
            w.writerow([r[c] for c in CMIP6_COLUMNS])
    csv_gz = root / "cmip6.csv.gz"
    with gzip.open(csv_gz, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(CMIP6_COLUMNS)
        for r in rows:
            w.writerow([r["abspath"] if c == "path" else r[c] for c in CMIP6_COLUMNS])

    def spec_json(catalog_file, description):
        return {
            "esmcat_version": "0.1.0",
            "id": "cmip6-synthetic",
            "description": description,
            "catalog_file": catalog_file,
            "attributes": [{"column_name": c, "vocabulary": ""} for c in CMIP6_COLUMNS
                           if c != "path"],
            "assets": {"column_name": "path", "format": "netcdf"},
            "aggregation_control": CMIP6_AGGREGATION,
        }

    json_path = root / "cmip6.json"
    json_path.write_text(json.dumps(spec_json(
        "cmip6.csv", "Synthetic CMIP6-like archive (paths relative to this file)"), indent=2))
    json_gz = root / "cmip6_gz.json"
    json_gz.write_text(json.dumps(spec_json(
        "cmip6.csv.gz", "Synthetic CMIP6-like archive (gzip CSV, absolute paths)"), indent=2))
    fix_file = write_fixes(root / CMIP6_FIX_FILE, CMIP6_FIXES,
                           "Fixes for the synthetic CMIP6-like archive (tests/python/archives.py).")
    files = [{**{k: v for k, v in r.items() if k not in ("path", "abspath")},
              "path": r["abspath"], "relpath": r["path"]} for r in rows]
    return {"root": str(root), "json": str(json_path), "json_gz": str(json_gz),
            "csv": str(csv_path), "csv_gz": str(csv_gz), "fix_file": str(fix_file),
            "fixes": CMIP6_FIXES, "models": CMIP6_MODELS, "experiments": CMIP6_EXPERIMENTS,
            "members": CMIP6_MEMBERS, "variables": list(CMIP6_VARIABLES), "files": files}


# --------------------------------------------------------------------------
# case archive (ocean CDR atlas-like)


CASES_PATTERN = "{polygon_id:d}/{injection_date:%Y%m}/{run}.nc"
CASES_POLYGONS = (0, 1, 2)
CASES_DATES = ("202001", "202004", "202007")
CASES_RUNS = ("experiment", "counterfactual")
# (polygon_id, injection_date) -> runs that were never written
CASES_GAPS = {
    (1, "202004"): ("experiment", "counterfactual"),  # the whole case is missing
    (2, "202007"): ("counterfactual",),               # only its counterfactual is missing
}
CASES_NT, CASES_NY, CASES_NX = 6, 4, 5
CASES_FILL = np.float32(-1e20)
CASES_VARIABLES = {
    "DIC": {"long_name": "Dissolved Inorganic Carbon", "units": "mmol/m^3"},
    "ALK": {"long_name": "Alkalinity", "units": "meq/m^3"},
}


def cases_present(polygon_id: int, date: str, run: str) -> bool:
    return run not in CASES_GAPS.get((polygon_id, date), ())


def cases_grid():
    x = 100000.0 * np.arange(CASES_NX) - 200000.0
    y = 100000.0 * np.arange(CASES_NY) + 50000.0
    return x, y


def _cases_field(variable: str, polygon_id: int, date: str, run: str) -> np.ndarray:
    rng = np.random.default_rng(_seed("cases", variable, polygon_id, date, run))
    base = {"DIC": 2000.0, "ALK": 2300.0}[variable]
    k = np.arange(CASES_NT)[:, None, None]
    added = 0.0 if run == "counterfactual" else (20.0 if variable == "ALK" else 15.0)
    field = (base + 10 * polygon_id + int(date[4:]) + added * np.exp(-k / 3.0)
             + rng.normal(0, 0.5, (CASES_NT, CASES_NY, CASES_NX)))
    field = field.astype("f4")
    field[:, 0, 0] = CASES_FILL  # land
    return field


def make_cases(outdir) -> dict:
    """Writes ``outdir/<polygon_id>/<injection_date>/<run>.nc`` with the gaps of CASES_GAPS.
    Returns {"root", "pattern", "polygons", "dates", "runs", "gaps",
    "files": [{"path", "relpath", "polygon_id", "injection_date", "run"}, ...]}."""
    root = _fresh_dir(Path(outdir))
    x, y = cases_grid()
    files = []
    for p in CASES_POLYGONS:
        for d in CASES_DATES:
            for run in CASES_RUNS:
                if not cases_present(p, d, run):
                    continue
                rel = f"{p}/{d}/{run}.nc"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
                    nc.title = "synthetic ocean CDR case"
                    nc.polygon_id = np.int32(p)
                    nc.injection_date = f"{d[:4]}-{d[4:]}-01"
                    nc.run = run
                    nc.createDimension("time", CASES_NT)
                    nc.createDimension("y", CASES_NY)
                    nc.createDimension("x", CASES_NX)
                    t = nc.createVariable("time", "i4", ("time",))
                    t.long_name = "months since injection"
                    t.units = "months"
                    t[:] = np.arange(CASES_NT, dtype="i4")
                    for name, vals in (("y", y), ("x", x)):
                        v = nc.createVariable(name, "f8", (name,))
                        v.units = "m"
                        v.standard_name = f"projection_{name}_coordinate"
                        v[:] = vals
                    crs = nc.createVariable("crs", "i4", ())
                    crs.grid_mapping_name = "lambert_azimuthal_equal_area"
                    crs.latitude_of_projection_origin = 0.0
                    crs.longitude_of_projection_origin = -150.0
                    crs.assignValue(0)
                    for name, attrs in CASES_VARIABLES.items():
                        v = nc.createVariable(name, "f4", ("time", "y", "x"),
                                              fill_value=CASES_FILL, zlib=True,
                                              chunksizes=(3, CASES_NY, CASES_NX))
                        v.setncatts(attrs)
                        v.grid_mapping = "crs"
                        v[:] = _cases_field(name, p, d, run)
                files.append({"path": str(path), "relpath": rel, "polygon_id": p,
                              "injection_date": d, "run": run})
    return {"root": str(root), "pattern": CASES_PATTERN, "polygons": CASES_POLYGONS,
            "dates": CASES_DATES, "runs": CASES_RUNS, "gaps": CASES_GAPS, "files": files}


# --------------------------------------------------------------------------


MAKERS = {"ismip6": make_ismip6, "cmip6": make_cmip6, "cases": make_cases}


def main(argv) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    out = Path(argv[0])
    kinds = argv[1:] or list(MAKERS)
    for kind in kinds:
        if kind not in MAKERS:
            print(f"unknown archive kind {kind!r}; choose from {', '.join(MAKERS)}", file=sys.stderr)
            return 2
        info = MAKERS[kind](out / kind)
        print(f"{kind}: {len(info['files'])} files in {info['root']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
