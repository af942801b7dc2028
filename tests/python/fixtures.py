"""Fixture NetCDF files for the atlasfs test suite.

Every kind of NetCDF file users have, one small file per kind, written
deterministically (fixed seeds) with netCDF4-python.  The one exception is
the compact-storage file: netCDF4-python cannot request HDF5 compact storage,
so it is written by libnetcdf itself through ``ncgen`` (package netcdf-bin)
from CDL with ``_Storage = "compact"``.

Use as a module::

    from fixtures import make_all
    written = make_all(outdir)   # kind -> path (single files) or list of paths

or as a script::

    python tests/python/fixtures.py OUTDIR
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np

# Kinds written as one file each; every one of them is mounted as its own
# dataset by the fidelity tests.
SINGLE_FILE_KINDS = (
    "nc3_classic",
    "nc3_64bit_offset",
    "nc3_cdf5",
    "nc3_one_record_var",
    "nc4_classic_model",
    "nc4_contiguous",
    "nc4_chunked_zlib",
    "nc4_fletcher32",
    "nc4_compact",
    "nc4_numeric_types",
    "nc4_scalars",
    "nc4_strings",
    "nc4_attributes",
    "nc4_masked",
    "nc4_packed",
    "nc4_groups",
    "nc4_calendars",
)

# Kinds written as a directory of files meant to be joined along "time".
AGGREGATION_KINDS = ("agg_standard", "agg_noleap")

# Group paths of the kinds that have groups ("" is the root group); every
# other kind has only the root group.
FIXTURE_GROUPS = {
    "nc4_groups": ("", "forecast", "forecast/ensemble", "obs"),
}

NUMERIC_TYPES = ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8")


# --------------------------------------------------------------------------
# helpers


def _extremes(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values of ``dtype`` that include the type's min and max."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        vals = rng.integers(info.min, info.max, size=n, dtype=dt, endpoint=True)
        vals[0] = info.min
        vals[-1] = info.max
        if n > 2:
            vals[1] = 0
    else:
        vals = (rng.standard_normal(n) * 1000).astype(dt)
        info = np.finfo(dt)
        vals[0] = info.min
        vals[-1] = info.max
        if n > 4:
            vals[1] = 0.0
            vals[2] = info.tiny  # smallest normal
            vals[3] = -0.0
    return vals


def _attr_values(dtype: str) -> tuple:
    """(scalar, array) attribute values of ``dtype`` including extremes."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return dt.type(info.max), np.array([info.min, 0, 1, info.max], dtype=dt)
    return dt.type(0.1), np.array([-1.5, 0.0, 0.1, 1e30], dtype=dt)


def _set_numeric_attrs(obj, types=NUMERIC_TYPES) -> None:
    for t in types:
        scalar, array = _attr_values(t)
        obj.setncattr(f"att_{t}", scalar)
        obj.setncattr(f"att_{t}_array", array)


# --------------------------------------------------------------------------
# NetCDF-3


def _write_nc3(path: Path, fmt: str, extended_types: bool) -> None:
    """Record (unlimited) and non-record variables of several types."""
    rng = np.random.default_rng(3)
    nt, nlat, nlon, nst, nstr = 4, 5, 7, 3, 6
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = f"atlasfs fixture: {fmt}"
        ds.Conventions = "CF-1.8"
        ds.history = "written by tests/python/fixtures.py"
        types = ("i1", "i2", "i4", "f4", "f8")
        if extended_types:
            types = NUMERIC_TYPES
        _set_numeric_attrs(ds, types)

        ds.createDimension("time", None)
        ds.createDimension("lat", nlat)
        ds.createDimension("lon", nlon)
        ds.createDimension("station", nst)
        ds.createDimension("strlen", nstr)

        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2001-01-01 00:00:00"
        time.calendar = "standard"
        time.standard_name = "time"
        time.axis = "T"
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.units = "degrees_north"
        lat.standard_name = "latitude"
        lat[:] = np.linspace(-60, 60, nlat)
        lon = ds.createVariable("lon", "f4", ("lon",))
        lon.units = "degrees_east"
        lon.standard_name = "longitude"
        lon[:] = np.linspace(0, 300, nlon, dtype="f4")

        temp = ds.createVariable(
            "temp", "f4", ("time", "lat", "lon"), fill_value=np.float32(-1e30)
        )
        temp.units = "K"
        temp.long_name = "air temperature"
        temp.valid_range = np.array([150, 350], dtype="f4")
        count = ds.createVariable("count", "i4", ("time",))
        count.long_name = "observation count"
        level = ds.createVariable("level", "i2", ("time", "station"))
        level.units = "m"
        # NetCDF-3 has no unsigned types: the _Unsigned convention.
        qc = ds.createVariable("qc", "i1", ("time", "station"))
        qc._Unsigned = "true"
        qc.flag_meanings = "good bad"
        tflag = ds.createVariable("tflag", "S1", ("time", "strlen"))

        elev = ds.createVariable("elev", "i2", ("lat", "lon"))
        elev.units = "m"
        elev[:] = rng.integers(-400, 8000, size=(nlat, nlon), dtype="i2")
        names = ds.createVariable("station_name", "S1", ("station", "strlen"))
        names.long_name = "station name"
        names[:] = netCDF4.stringtochar(np.array([b"Oslo", b"Lima", b"Perth6"], dtype=f"S{nstr}"))
        weights = ds.createVariable("weights", "f8", ("lat",))
        weights[:] = np.cos(np.deg2rad(np.linspace(-60, 60, nlat)))
        scalar = ds.createVariable("reference_height", "f4", ())
        scalar.units = "m"
        scalar[...] = 2.0

        if extended_types:
            for t in ("u1", "u2", "u4", "i8", "u8"):
                v = ds.createVariable(f"v_{t}", t, ("station",))
                v[:] = _extremes(t, nst, rng)
            ticks = ds.createVariable("ticks", "u8", ("time",))
            ticks[:] = _extremes("u8", nt, rng)
            big = ds.createVariable("big", "i8", ("time", "lat"))
            big[:] = rng.integers(-(2**62), 2**62, size=(nt, nlat), dtype="i8")

        time[:] = np.arange(nt, dtype="f8") * 0.25
        data = (250 + 30 * rng.random((nt, nlat, nlon))).astype("f4")
        data = np.ma.masked_array(data, mask=rng.random(data.shape) < 0.15)
        temp[:] = data
        count[:] = rng.integers(0, 1000, size=nt, dtype="i4")
        level[:] = rng.integers(-32768, 32767, size=(nt, nst), dtype="i2")
        qc[:] = rng.integers(0, 256, size=(nt, nst)).astype("u1").view("i1")
        tflag[:] = netCDF4.stringtochar(
            np.array([b"ok", b"suspct", b"", b"x"], dtype=f"S{nstr}")
        )


def _write_nc3_one_record_var(path: Path) -> None:
    """A single record variable whose record is not a multiple of 4 bytes.

    NetCDF-3 does not pad the record when there is exactly one record
    variable, which is an easy case to get wrong.
    """
    rng = np.random.default_rng(4)
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.title = "one record variable, 6-byte records"
        ds.createDimension("rec", None)
        ds.createDimension("n", 3)
        v = ds.createVariable("obs", "i2", ("rec", "n"))
        v.units = "1"
        nonrec = ds.createVariable("n_weight", "i1", ("n",))
        nonrec[:] = np.array([1, -2, 3], dtype="i1")
        v[:] = rng.integers(-32768, 32767, size=(7, 3), dtype="i2")


# --------------------------------------------------------------------------
# NetCDF-4


def _write_nc4_classic_model(path: Path) -> None:
    rng = np.random.default_rng(5)
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        ds.title = "NetCDF-4 classic model"
        ds.createDimension("time", None)
        ds.createDimension("x", 11)
        t = ds.createVariable("time", "i4", ("time",))
        t.units = "hours since 1999-12-31 18:00:00"
        t.calendar = "gregorian"
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = np.arange(11, dtype="f4") * 0.5
        v = ds.createVariable(
            "u", "f8", ("time", "x"), zlib=True, complevel=2, chunksizes=(2, 11)
        )
        v.units = "m s-1"
        t[:] = np.arange(5, dtype="i4") * 6
        v[:] = rng.standard_normal((5, 11))


def _write_nc4_contiguous(path: Path) -> None:
    rng = np.random.default_rng(6)
    ny, nx = 20, 30
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "contiguous storage, curvilinear coordinates"
        ds.Conventions = "CF-1.8"
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        y = ds.createVariable("y", "f8", ("y",), contiguous=True)
        y.units = "m"
        y.standard_name = "projection_y_coordinate"
        y[:] = np.arange(ny) * 25000.0
        x = ds.createVariable("x", "f8", ("x",), contiguous=True)
        x.units = "m"
        x.standard_name = "projection_x_coordinate"
        x[:] = np.arange(nx) * 25000.0 - 300000.0
        lat2d = ds.createVariable("lat2d", "f8", ("y", "x"), contiguous=True)
        lat2d.units = "degrees_north"
        lat2d.standard_name = "latitude"
        lon2d = ds.createVariable("lon2d", "f8", ("y", "x"), contiguous=True)
        lon2d.units = "degrees_east"
        lon2d.standard_name = "longitude"
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        lat2d[:] = 60.0 + 0.2 * yy + 0.01 * xx
        lon2d[:] = -40.0 + 0.3 * xx - 0.02 * yy
        crs = ds.createVariable("crs", "i4", ())
        crs.grid_mapping_name = "polar_stereographic"
        crs.straight_vertical_longitude_from_pole = -45.0
        crs.standard_parallel = 70.0
        crs.latitude_of_projection_origin = 90.0
        tas = ds.createVariable("tas", "f4", ("y", "x"), contiguous=True)
        tas.units = "K"
        tas.coordinates = "lat2d lon2d"
        tas.grid_mapping = "crs"
        tas[:] = (260 + 20 * rng.random((ny, nx))).astype("f4")
        mask = ds.createVariable("land", "i1", ("y", "x"), contiguous=True)
        mask.flag_values = np.array([0, 1], dtype="i1")
        mask.flag_meanings = "ocean land"
        mask[:] = (rng.random((ny, nx)) < 0.4).astype("i1")


def _write_nc4_chunked_zlib(path: Path) -> None:
    """Chunked, several chunks per dimension with partial edge chunks."""
    rng = np.random.default_rng(7)
    nt, nlat, nlon = 10, 45, 90
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "chunked with zlib and shuffle"
        ds.createDimension("time", None)
        ds.createDimension("lat", nlat)
        ds.createDimension("lon", nlon)
        time = ds.createVariable("time", "f8", ("time",), chunksizes=(4,))
        time.units = "days since 1981-09-01"
        time.calendar = "proleptic_gregorian"
        lat = ds.createVariable("lat", "f4", ("lat",), contiguous=True)
        lat.units = "degrees_north"
        lat[:] = np.linspace(-88, 88, nlat, dtype="f4")
        lon = ds.createVariable("lon", "f4", ("lon",), contiguous=True)
        lon.units = "degrees_east"
        lon[:] = np.linspace(0, 356, nlon, dtype="f4")
        sst = ds.createVariable(
            "sst", "f4", ("time", "lat", "lon"),
            zlib=True, complevel=4, shuffle=True, chunksizes=(3, 16, 32),
        )
        sst.units = "degC"
        sst.long_name = "sea surface temperature"
        anom = ds.createVariable(
            "anom", "f8", ("time", "lat", "lon"),
            zlib=True, complevel=1, shuffle=False, chunksizes=(5, 45, 45),
        )
        anom.units = "degC"
        raw = ds.createVariable(
            "raw", "i2", ("time", "lat", "lon"), chunksizes=(2, 20, 50)
        )
        raw.comment = "chunked, no filters"
        counts = ds.createVariable(
            "counts", "u4", ("lat", "lon"), zlib=True, shuffle=True, chunksizes=(10, 90)
        )

        time[:] = np.arange(nt, dtype="f8")
        base = 15 + 12 * np.cos(np.deg2rad(np.linspace(-88, 88, nlat)))[:, None]
        sst[:] = (base[None] + rng.standard_normal((nt, nlat, nlon))).astype("f4")
        anom[:] = rng.standard_normal((nt, nlat, nlon))
        raw[:] = rng.integers(-1000, 1000, size=(nt, nlat, nlon), dtype="i2")
        counts[:] = rng.integers(0, 2**32 - 1, size=(nlat, nlon), dtype="u4")


def _write_nc4_fletcher32(path: Path) -> None:
    rng = np.random.default_rng(8)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "fletcher32 checksums"
        ds.createDimension("y", 25)
        ds.createDimension("x", 17)
        v = ds.createVariable("v", "f8", ("y", "x"), fletcher32=True, chunksizes=(10, 10))
        v.units = "1"
        w = ds.createVariable(
            "w", "i4", ("y", "x"), fletcher32=True, zlib=True, shuffle=True,
            chunksizes=(25, 6),
        )
        v[:] = rng.standard_normal((25, 17))
        w[:] = rng.integers(-(2**31), 2**31 - 1, size=(25, 17), dtype="i4")


def _cdl_values(values: np.ndarray) -> str:
    return ", ".join(repr(float(v)) if values.dtype.kind == "f" else str(int(v)) for v in values.ravel())


def _write_nc4_compact(path: Path) -> None:
    """HDF5 compact storage, written by libnetcdf through ncgen."""
    ncgen = shutil.which("ncgen")
    if ncgen is None:
        raise RuntimeError(
            "ncgen (Debian package netcdf-bin) is needed to write the compact-storage "
            "fixture; run scripts/setup"
        )
    rng = np.random.default_rng(9)
    small_i = rng.integers(-1000, 1000, size=(3, 4), dtype="i4")
    small_f = rng.standard_normal(6)
    big = rng.standard_normal((4, 5)).astype("f4")
    cdl = f"""netcdf compact {{
dimensions:
  y = 3 ;
  x = 4 ;
  n = 6 ;
  a = 4 ;
  b = 5 ;
variables:
  int small_i(y, x) ;
    small_i:_Storage = "compact" ;
    small_i:units = "count" ;
  double small_f(n) ;
    small_f:_Storage = "compact" ;
    small_f:long_name = "compact doubles" ;
  short s ;
    s:_Storage = "compact" ;
  float regular(a, b) ;
    regular:_Storage = "contiguous" ;
// global attributes:
  :title = "compact storage" ;
data:
  small_i = {_cdl_values(small_i)} ;
  small_f = {_cdl_values(small_f)} ;
  s = 7 ;
  regular = {_cdl_values(big)} ;
}}
"""
    cdl_path = path.with_suffix(".cdl")
    cdl_path.write_text(cdl)
    try:
        subprocess.run([ncgen, "-k", "nc4", "-o", str(path), str(cdl_path)], check=True)
    finally:
        cdl_path.unlink()
    with netCDF4.Dataset(path) as ds:  # make sure it is what we asked for
        if ds["small_i"].chunking() == "chunked":
            raise RuntimeError("ncgen did not write compact storage")


def _write_nc4_numeric_types(path: Path) -> None:
    """Every numeric type, with its extremes; big-endian variants; records."""
    rng = np.random.default_rng(10)
    ny, nx = 6, 5
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "all numeric types"
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        ds.createDimension("rec", None)
        for t in NUMERIC_TYPES:
            v = ds.createVariable(f"v_{t}", t, ("y", "x"), chunksizes=(4, 3), zlib=(t in ("i8", "f4")))
            v.long_name = f"type {t}"
            vals = _extremes(t, ny * nx, rng).reshape(ny, nx)
            if t in ("f4", "f8"):
                vals[2, 0] = np.nan
                vals[2, 1] = np.inf
                vals[2, 2] = -np.inf
            v[:] = vals
        for t in ("i2", "i4", "f4", "f8", "u8"):
            v = ds.createVariable(f"v_{t}_be", np.dtype(t).newbyteorder(">"), ("y", "x"),
                                  endian="big")
            v.long_name = f"big-endian {t}"
            v[:] = _extremes(t, ny * nx, rng).reshape(ny, nx)
        r = ds.createVariable("r_u8", "u8", ("rec",), chunksizes=(2,))
        r[:] = _extremes("u8", 5, rng)
        r2 = ds.createVariable("r_i1", "i1", ("rec", "x"), chunksizes=(1, 5))
        r2[:] = _extremes("i1", 5 * nx, rng).reshape(5, nx)


def _write_nc4_scalars(path: Path) -> None:
    """A file with no dimensions at all: scalar variables of every type."""
    rng = np.random.default_rng(11)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "scalar variables"
        for t in NUMERIC_TYPES:
            v = ds.createVariable(f"s_{t}", t, ())
            v.long_name = f"scalar {t}"
            v[...] = _extremes(t, 3, rng)[-1]
        s = ds.createVariable("s_string", str, ())
        s.long_name = "scalar vlen string"
        s[...] = "a scalar string"
        t = ds.createVariable("s_time", "f8", ())
        t.units = "days since 2020-01-01"
        t.calendar = "standard"
        t[...] = 10.5
        fv = ds.createVariable("s_masked", "f4", (), fill_value=np.float32(-9.0))
        fv[...] = np.ma.masked


def _write_nc4_strings(path: Path) -> None:
    nst, nstr = 4, 8
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "character arrays and variable-length strings"
        ds.createDimension("station", nst)
        ds.createDimension("strlen", nstr)
        ds.createDimension("y", 2)
        ds.createDimension("x", 3)
        st = ds.createVariable("station", str, ("station",))
        st.long_name = "station id"
        st[:] = np.array(["ST001", "ST002", "ST003", "ST004"], dtype=object)

        name = ds.createVariable("name_char", "S1", ("station", "strlen"))
        name.long_name = "station name as NC_CHAR"
        name.set_auto_chartostring(False)
        name[:] = netCDF4.stringtochar(
            np.array([b"Bergen", b"Lima", b"", b"Ushuaia8"], dtype=f"S{nstr}")
        )

        label = ds.createVariable("label_utf8", "S1", ("station", "strlen"))
        label._Encoding = "utf-8"
        label.set_auto_chartostring(False)
        utf8 = np.array(
            [s.encode("utf-8") for s in ("Zürich", "Tromsø", "abc", "東京")], dtype=f"S{nstr}"
        )
        label[:] = utf8.view("S1").reshape(nst, nstr)

        vlen = ds.createVariable("name_vlen", str, ("station",))
        vlen.long_name = "station name as NC_STRING"
        vlen[:] = np.array(["Bergen", "", "São Paulo", "東京 station"], dtype=object)

        grid = ds.createVariable("grid_vlen", str, ("y", "x"))
        grid[:] = np.array([["a", "bb", "ccc"], ["", "long text " * 10, "ß"]], dtype=object)

        num = ds.createVariable("value", "f4", ("station",))
        num.units = "1"
        num[:] = np.array([1.0, 2.0, 3.0, 4.0], dtype="f4")


def _write_nc4_attributes(path: Path) -> None:
    """Attributes of every type on the root group and on a variable."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        for obj_name in ("root", "var"):
            if obj_name == "root":
                obj = ds
            else:
                ds.createDimension("x", 3)
                obj = ds.createVariable("v", "f8", ("x",))
                obj[:] = np.array([1.0, 2.0, 3.0])
            _set_numeric_attrs(obj)
            obj.setncattr("text", "plain text")
            obj.setncattr("text_unicode", "température °C — 東京")
            obj.setncattr("text_multiline", "line one\nline two\ttabbed")
            obj.setncattr("text_empty", "")
            obj.setncattr_string("nc_string_single", "one NC_STRING value")
            obj.setncattr_string("nc_string_list", ["first", "second", "", "dritte ü"])
            obj.setncattr("single_element_array", np.array([42], dtype="i4"))
        ds["v"].units = "m"


def _write_nc4_masked(path: Path) -> None:
    rng = np.random.default_rng(12)
    nt, ny, nx = 6, 10, 12
    land = rng.random((ny, nx)) < 0.3
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "fill values, missing values and masked data"
        ds.createDimension("time", None)
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        time = ds.createVariable("time", "f8", ("time",), chunksizes=(6,))
        time.units = "days since 2010-01-01"
        time[:] = np.arange(nt, dtype="f8")

        sst = ds.createVariable(
            "sst", "f4", ("time", "y", "x"), fill_value=np.float32(-999.0),
            zlib=True, chunksizes=(2, 5, 12),
        )
        sst.units = "K"
        data = (270 + 30 * rng.random((nt, ny, nx))).astype("f4")
        mask = np.broadcast_to(land, data.shape) | (rng.random(data.shape) < 0.05)
        sst[:] = np.ma.masked_array(data, mask=mask)

        count = ds.createVariable(
            "count", "i2", ("time", "y", "x"), fill_value=np.int16(-1), chunksizes=(6, 10, 12)
        )
        cdata = rng.integers(0, 500, size=(nt, ny, nx), dtype="i2")
        count[:] = np.ma.masked_array(cdata, mask=rng.random(cdata.shape) < 0.2)

        precip = ds.createVariable("precip", "f4", ("time", "y", "x"), chunksizes=(3, 10, 12))
        precip.missing_value = np.float32(-9999.0)
        precip.units = "mm"
        pdata = (rng.random((nt, ny, nx)) * 20).astype("f4")
        pdata[rng.random(pdata.shape) < 0.1] = -9999.0
        precip[:] = pdata

        both = ds.createVariable("both", "f8", ("y", "x"), fill_value=1e20)
        both.missing_value = -1.0
        bdata = rng.standard_normal((ny, nx)) + 5
        bdata[0, :3] = -1.0
        both[:] = np.ma.masked_array(bdata, mask=land)

        nanfill = ds.createVariable("nanfill", "f4", ("y", "x"), fill_value=np.float32(np.nan))
        ndata = rng.standard_normal((ny, nx)).astype("f4")
        nanfill[:] = np.ma.masked_array(ndata, mask=land)

        ufill = ds.createVariable("ufill", "u2", ("y", "x"), fill_value=np.uint16(65535))
        ufill[:] = np.ma.masked_array(
            rng.integers(0, 65535, size=(ny, nx), dtype="u2"), mask=land
        )

        # Chunks never written: readers must produce the fill value.
        pdef = ds.createVariable("partial_default", "f4", ("time", "y", "x"), chunksizes=(1, ny, nx))
        pdef.comment = "no _FillValue attribute: unwritten chunks hold the netCDF default fill"
        pfill = ds.createVariable(
            "partial_fill", "i4", ("time", "y", "x"), fill_value=np.int32(77777),
            chunksizes=(1, 5, 6),
        )
        for i in (0, 2):
            pdef[i] = rng.standard_normal((ny, nx)).astype("f4")
        pfill[1, :5, :6] = rng.integers(0, 100, size=(5, 6), dtype="i4")
        pfill[4] = rng.integers(0, 100, size=(ny, nx), dtype="i4")


def _write_nc4_packed(path: Path) -> None:
    rng = np.random.default_rng(13)
    nt, ny, nx = 4, 8, 9
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "scale_factor/add_offset packed variables"
        ds.createDimension("time", None)
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        time = ds.createVariable("time", "i4", ("time",))
        time.units = "hours since 2015-06-01 00:00:00"
        time[:] = np.arange(nt, dtype="i4") * 6

        t2m = ds.createVariable("t2m", "i2", ("time", "y", "x"), fill_value=np.int16(-32767),
                                zlib=True, chunksizes=(1, ny, nx))
        t2m.set_auto_maskandscale(False)
        t2m.scale_factor = np.float32(0.01)
        t2m.add_offset = np.float32(273.15)
        t2m.units = "K"
        raw = rng.integers(-3000, 3000, size=(nt, ny, nx), dtype="i2")
        raw[rng.random(raw.shape) < 0.1] = -32767
        t2m[:] = raw

        msl = ds.createVariable("msl", "i2", ("time", "y", "x"), fill_value=np.int16(-32767))
        msl.set_auto_maskandscale(False)
        msl.scale_factor = np.float64(0.5)
        msl.add_offset = np.float64(100000.0)
        msl.units = "Pa"
        raw = rng.integers(-8000, 8000, size=(nt, ny, nx), dtype="i2")
        raw[0, 0, :] = -32767
        msl[:] = raw

        cover = ds.createVariable("cover", "u1", ("y", "x"), fill_value=np.uint8(255))
        cover.set_auto_maskandscale(False)
        cover.scale_factor = np.float32(1.0 / 254.0)
        cover.units = "1"
        raw = rng.integers(0, 255, size=(ny, nx), dtype="u1")
        raw[0, 0] = 255
        cover[:] = raw


def _write_nc4_groups(path: Path) -> None:
    rng = np.random.default_rng(14)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "NetCDF-4 groups"
        ds.createDimension("x", 4)
        xv = ds.createVariable("x", "f8", ("x",))
        xv.units = "km"
        xv[:] = np.array([0.0, 1.5, 3.0, 4.5])
        rv = ds.createVariable("root_v", "f8", ("x",))
        rv[:] = rng.standard_normal(4)

        fc = ds.createGroup("forecast")
        fc.description = "forecast group"
        fc.createDimension("lead", 3)
        lead = fc.createVariable("lead", "i4", ("lead",))
        lead.units = "hours"
        lead[:] = np.array([6, 12, 24], dtype="i4")
        temp = fc.createVariable("temp", "f4", ("lead", "x"), zlib=True, chunksizes=(2, 4))
        temp.units = "K"
        temp.comment = "uses the root group's dimension x"
        temp[:] = (280 + rng.standard_normal((3, 4))).astype("f4")

        ens = fc.createGroup("ensemble")
        ens.description = "nested group"
        ens.members = np.int32(5)
        ens.createDimension("member", 5)
        member = ens.createVariable("member", "i4", ("member",))
        member[:] = np.arange(1, 6, dtype="i4")
        spread = ens.createVariable("spread", "i2", ("member", "lead"), fill_value=np.int16(-99))
        spread.comment = "uses the parent group's dimension lead"
        sdata = rng.integers(0, 100, size=(5, 3), dtype="i2")
        spread[:] = np.ma.masked_array(sdata, mask=sdata > 90)

        obs = ds.createGroup("obs")
        obs.createDimension("time", None)
        t = obs.createVariable("time", "f8", ("time",))
        t.units = "minutes since 2021-03-01 00:00"
        t[:] = np.arange(4, dtype="f8") * 30
        ov = obs.createVariable("obs_v", "f4", ("time",), fill_value=np.float32(-1.0))
        ov[:] = np.ma.masked_array(np.arange(4, dtype="f4"), mask=[0, 1, 0, 0])


CALENDARS = (
    "standard",
    "gregorian",
    "proleptic_gregorian",
    "noleap",
    "365_day",
    "all_leap",
    "366_day",
    "360_day",
    "julian",
)


def _write_nc4_calendars(path: Path) -> None:
    rng = np.random.default_rng(15)
    n = 6
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "time coordinates in several calendars"
        for cal in CALENDARS:
            dim = f"t_{cal}"
            ds.createDimension(dim, n)
            t = ds.createVariable(dim, "f8", (dim,))
            # spans the end of February, where the calendars disagree
            t.units = "days since 2000-02-27 12:00:00"
            t.calendar = cal
            t.standard_name = "time"
            t[:] = np.arange(n, dtype="f8") * 0.75
            v = ds.createVariable(f"v_{cal}", "f4", (dim,))
            v[:] = rng.standard_normal(n).astype("f4")
        ds.createDimension("nv", 2)
        ds["t_standard"].bounds = "t_standard_bnds"
        b = ds.createVariable("t_standard_bnds", "f8", ("t_standard", "nv"))
        tv = np.arange(n, dtype="f8") * 0.75
        b[:] = np.stack([tv - 0.375, tv + 0.375], axis=1)

        # Across the Gregorian reform (1582-10-04 is followed by 1582-10-15).
        ds.createDimension("t_reform", n)
        t = ds.createVariable("t_reform", "f8", ("t_reform",))
        t.units = "days since 1582-10-01"
        t.calendar = "standard"
        t[:] = np.arange(n, dtype="f8")
        # Integer time, other unit spelling.
        ds.createDimension("t_int", n)
        t = ds.createVariable("t_int", "i4", ("t_int",))
        t.units = "seconds since 1970-01-01T00:00:00Z"
        t.calendar = "proleptic_gregorian"
        t[:] = np.arange(n, dtype="i4") * 86400 * 365


# --------------------------------------------------------------------------
# aggregation sets


def _write_agg_standard(outdir: Path) -> list[str]:
    """Six monthly files of daily data, Jan-Jun 2000, with differing time units; ``time_bnds``
    (no units of its own, so it inherits the file's time units) must be re-encoded with them."""
    import cftime

    rng = np.random.default_rng(20)
    nlat, nlon = 4, 8
    lat = np.linspace(-45, 45, nlat).astype("f4")
    lon = np.linspace(0, 315, nlon).astype("f4")
    land = rng.random((nlat, nlon)) < 0.25
    units = (
        "days since 2000-01-01",
        "hours since 1990-01-01 00:00:00",
        "days since 2000-02-01",
        "minutes since 2000-01-01T00:00:00",
        "days since 1970-01-01",
        "seconds since 2000-04-01 00:00:00",
    )
    ndays = (31, 29, 31, 30, 31, 30)
    paths = []
    outdir.mkdir(parents=True, exist_ok=True)
    for m, (u, nd) in enumerate(zip(units, ndays)):
        path = outdir / f"sst_2000-{m + 1:02d}.nc"
        dates = [cftime.DatetimeGregorian(2000, m + 1, d + 1, 12) for d in range(nd)]
        tvals = cftime.date2num(dates, u, calendar="standard").astype("f8")
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            ds.title = "daily sea surface temperature"
            ds.Conventions = "CF-1.8"
            ds.institution = "atlasfs test suite"
            ds.createDimension("time", None)
            ds.createDimension("lat", nlat)
            ds.createDimension("lon", nlon)
            ds.createDimension("nv", 2)
            t = ds.createVariable("time", "f8", ("time",), chunksizes=(32,))
            t.units = u
            t.calendar = "standard"
            t.standard_name = "time"
            t.axis = "T"
            t.bounds = "time_bnds"
            tb = ds.createVariable("time_bnds", "f8", ("time", "nv"))
            day_edges = [
                [cftime.DatetimeGregorian(2000, m + 1, d + 1), cftime.DatetimeGregorian(2000, m + 1, d + 1, 23, 59)]
                for d in range(nd)
            ]
            tb[:] = np.array([cftime.date2num(e, u, calendar="standard") for e in day_edges], dtype="f8")
            la = ds.createVariable("lat", "f4", ("lat",))
            la.units = "degrees_north"
            la.standard_name = "latitude"
            la[:] = lat
            lo = ds.createVariable("lon", "f4", ("lon",))
            lo.units = "degrees_east"
            lo.standard_name = "longitude"
            lo[:] = lon
            sst = ds.createVariable(
                "sst", "f4", ("time", "lat", "lon"), fill_value=np.float32(-999.0),
                zlib=True, shuffle=True, chunksizes=(1, nlat, nlon),
            )
            sst.units = "K"
            sst.long_name = "sea surface temperature"
            sst.standard_name = "sea_surface_temperature"
            lm = ds.createVariable("land_mask", "i1", ("lat", "lon"))
            lm.long_name = "land mask (no time dimension)"
            lm[:] = land.astype("i1")
            t[:] = tvals
            data = (275 + 25 * rng.random((nd, nlat, nlon))).astype("f4")
            mask = np.broadcast_to(land, data.shape) | (rng.random(data.shape) < 0.03)
            sst[:] = np.ma.masked_array(data, mask=mask)
        paths.append(str(path))
    return paths


def _write_agg_noleap(outdir: Path) -> list[str]:
    """Four yearly NetCDF-3 files of monthly data in the noleap calendar.

    File names do not sort in time order; time units differ between files.
    """
    import cftime

    rng = np.random.default_rng(21)
    nlat, nlon = 3, 5
    lat = np.array([-30.0, 0.0, 30.0])
    lon = np.linspace(0, 288, nlon)
    orog = rng.random((nlat, nlon)) * 3000
    files = {  # year -> (file name, units)
        2000: ("tas_b.nc", "days since 2000-01-01"),
        2001: ("tas_d.nc", "hours since 1850-01-01 00:00:00"),
        2002: ("tas_a.nc", "days since 1980-01-01"),
        2003: ("tas_c.nc", "days since 2003-01-01 00:00:00"),
    }
    outdir.mkdir(parents=True, exist_ok=True)
    month_len = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    paths = []
    for year, (fname, u) in files.items():
        path = outdir / fname
        dates = [cftime.DatetimeNoLeap(year, m + 1, 1) for m in range(12)]
        # mid-month: the middle of each noleap month (some fall at 12:00)
        tvals = np.array(
            [cftime.date2num(d, u, calendar="noleap") for d in dates], dtype="f8"
        )
        scale = 24.0 if u.startswith("hours") else 1.0
        tvals = tvals + np.array([ml / 2.0 for ml in month_len]) * scale
        with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
            ds.title = "monthly near-surface air temperature"
            ds.Conventions = "CF-1.7"
            ds.createDimension("time", None)
            ds.createDimension("lat", nlat)
            ds.createDimension("lon", nlon)
            t = ds.createVariable("time", "f8", ("time",))
            t.units = u
            t.calendar = "noleap"
            t.standard_name = "time"
            la = ds.createVariable("lat", "f8", ("lat",))
            la.units = "degrees_north"
            la[:] = lat
            lo = ds.createVariable("lon", "f8", ("lon",))
            lo.units = "degrees_east"
            lo[:] = lon
            tas = ds.createVariable(
                "tas", "f4", ("time", "lat", "lon"), fill_value=np.float32(1e20)
            )
            tas.units = "K"
            tas.missing_value = np.float32(1e20)
            og = ds.createVariable("orog", "f4", ("lat", "lon"))
            og.units = "m"
            og[:] = orog.astype("f4")
            t[:] = tvals
            data = (250 + 50 * rng.random((12, nlat, nlon))).astype("f4")
            tas[:] = np.ma.masked_array(data, mask=rng.random(data.shape) < 0.1)
        paths.append(str(path))
    return sorted(paths)


# --------------------------------------------------------------------------


def make_all(outdir) -> dict:
    """Write every fixture under ``outdir``.

    Returns a dict: kind -> path (str) for the kinds in SINGLE_FILE_KINDS,
    kind -> sorted list of paths for the kinds in AGGREGATION_KINDS.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    single = outdir / "single"
    single.mkdir(exist_ok=True)
    writers = {
        "nc3_classic": lambda p: _write_nc3(p, "NETCDF3_CLASSIC", False),
        "nc3_64bit_offset": lambda p: _write_nc3(p, "NETCDF3_64BIT_OFFSET", False),
        "nc3_cdf5": lambda p: _write_nc3(p, "NETCDF3_64BIT_DATA", True),
        "nc3_one_record_var": _write_nc3_one_record_var,
        "nc4_classic_model": _write_nc4_classic_model,
        "nc4_contiguous": _write_nc4_contiguous,
        "nc4_chunked_zlib": _write_nc4_chunked_zlib,
        "nc4_fletcher32": _write_nc4_fletcher32,
        "nc4_compact": _write_nc4_compact,
        "nc4_numeric_types": _write_nc4_numeric_types,
        "nc4_scalars": _write_nc4_scalars,
        "nc4_strings": _write_nc4_strings,
        "nc4_attributes": _write_nc4_attributes,
        "nc4_masked": _write_nc4_masked,
        "nc4_packed": _write_nc4_packed,
        "nc4_groups": _write_nc4_groups,
        "nc4_calendars": _write_nc4_calendars,
    }
    assert tuple(writers) == SINGLE_FILE_KINDS
    written: dict = {}
    for kind, writer in writers.items():
        path = single / f"{kind}.nc"
        if path.exists():
            path.unlink()
        writer(path)
        written[kind] = str(path)
    for kind, writer in (("agg_standard", _write_agg_standard), ("agg_noleap", _write_agg_noleap)):
        d = outdir / kind
        if d.exists():
            shutil.rmtree(d)
        written[kind] = writer(d)
    return written


def group_paths(path) -> list[str]:
    """All group paths of a NetCDF file: "" for the root, then "a", "a/b", ..."""
    out = []

    def walk(g, prefix):
        out.append(prefix)
        for name, sub in g.groups.items():
            walk(sub, f"{prefix}/{name}" if prefix else name)

    with netCDF4.Dataset(path) as ds:
        walk(ds, "")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    written = make_all(argv[1])
    print(json.dumps(written, indent=2))
    total = 0
    for v in written.values():
        for p in [v] if isinstance(v, str) else v:
            total += os.path.getsize(p)
    print(f"{len(written)} kinds, {total / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
