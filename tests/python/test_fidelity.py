"""Fidelity: every single-file fixture, mounted for real in Zarr format 2 and
3, reads through ``xr.open_zarr`` exactly as ``xr.open_dataset`` reads the
original file — in three decoding modes: default (CF-decoded),
``mask_and_scale=False`` and ``decode_cf=False`` (raw values, raw attributes).
NetCDF-4 groups are opened with ``group=`` on both sides.

What is compared (conftest.assert_same_dataset): variable and coordinate
names, dimension names and sizes, dtypes, global and variable attributes,
values (NaN == NaN), then ``xr.testing.assert_identical``.

What is dropped, and why:

* ``.encoding`` of datasets and variables (never compared, and
  assert_identical ignores it): it describes the storage, which is what a
  synthetic Zarr tree changes — source path, original_shape, chunksizes /
  chunks / preferred_chunks, zlib / shuffle / fletcher32 / complevel /
  compressor / filters, contiguous, unlimited_dims, the on-disk dtype, and the
  CF attributes that decoding moves into encoding (_FillValue, missing_value,
  scale_factor, add_offset, units/calendar of decoded times, _Encoding and
  char_dim_name of decoded strings, coordinates).  In the decode_cf=False mode
  those CF attributes are ordinary attributes, so they *are* compared there.
* byte order: NetCDF-3 and ``endian="big"`` variables are big-endian on disk;
  a reader may hand them back in either byte order.
* the numpy representation of variable-length text: the netCDF4 backend
  gives fixed-width unicode ``<U…``, zarr-python gives numpy ``StringDType``;
  both are the same strings (values are still compared).
* attribute containers: Zarr attributes are JSON, so numeric arrays come back
  as lists and numeric scalars as Python int/float.  Attributes are compared
  by value, kind (int / float / text) and shape, with float32 attributes
  compared in float32 (see conftest.assert_attrs_equal).

One inherent difference is handled explicitly: a packed variable whose
``scale_factor``/``add_offset`` are float32 decodes to float32 from NetCDF
but to float64 from Zarr, because the JSON attribute carries no float width
and xarray takes the decoded dtype from the scale/offset dtype.  Such
variables are compared exactly in the mask_and_scale=False and
decode_cf=False modes (raw integers + attributes), and in the decoded mode
with assert_allclose plus a check that only the float width differs.
"""

from __future__ import annotations

import json
import os
import warnings

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import assert_same_dataset
from fixtures import AGGREGATION_KINDS, FIXTURE_GROUPS, SINGLE_FILE_KINDS, group_paths

FORMATS = (2, 3)
CASES = [
    (kind, group)
    for kind in SINGLE_FILE_KINDS
    for group in FIXTURE_GROUPS.get(kind, ("",))
]
CASE_IDS = [f"{k}{'/' + g if g else ''}" for k, g in CASES]
MODES = {
    "decoded": {},
    "mask_and_scale_false": {"mask_and_scale": False},
    "decode_cf_false": {"decode_cf": False},
}


@pytest.fixture(scope="module", params=FORMATS, ids=lambda f: f"zarr{f}")
def fidelity_mount(request, module_mounts, fixture_files):
    datasets = [{"name": kind, "files": fixture_files[kind]} for kind in SINGLE_FILE_KINDS]
    return module_mounts.mount(datasets, zarr_format=request.param), request.param


def open_original(path, group: str, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(path, group=group or None, engine="netcdf4", **kw) as ds:
            return ds.load()


def open_mounted(path, group: str, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(str(path), group=group or None, consolidated=True, chunks=None, **kw)
        return ds.load()


def float32_packed(path, group: str) -> set[str]:
    """Variables whose scale_factor or add_offset is float32 (read with netCDF4)."""
    with netCDF4.Dataset(path) as ds:
        g = ds
        for part in filter(None, group.split("/")):
            g = g.groups[part]
        out = set()
        for name, var in g.variables.items():
            for att in ("scale_factor", "add_offset"):
                if att in var.ncattrs() and np.asarray(var.getncattr(att)).dtype == np.float32:
                    out.add(name)
        return out


# --------------------------------------------------------------------------


def test_every_fixture_kind_is_written(fixture_files):
    for kind in SINGLE_FILE_KINDS:
        assert os.path.getsize(fixture_files[kind]) > 0, kind
        assert group_paths(fixture_files[kind]) == list(FIXTURE_GROUPS.get(kind, ("",))), kind
    for kind in AGGREGATION_KINDS:
        assert len(fixture_files[kind]) >= 4, kind
    formats = {}
    for kind in ("nc3_classic", "nc3_64bit_offset", "nc3_cdf5", "nc4_classic_model", "nc4_contiguous"):
        with netCDF4.Dataset(fixture_files[kind]) as ds:
            formats[kind] = ds.data_model
    assert formats == {
        "nc3_classic": "NETCDF3_CLASSIC",
        "nc3_64bit_offset": "NETCDF3_64BIT_OFFSET",
        "nc3_cdf5": "NETCDF3_64BIT_DATA",
        "nc4_classic_model": "NETCDF4_CLASSIC",
        "nc4_contiguous": "NETCDF4",
    }
    # storage layouts and filters, checked with HDF5 itself
    with h5py.File(fixture_files["nc4_compact"], "r") as f:
        assert f["small_i"].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
        assert f["regular"].id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
    with h5py.File(fixture_files["nc4_contiguous"], "r") as f:
        assert f["tas"].id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
    with h5py.File(fixture_files["nc4_chunked_zlib"], "r") as f:
        assert f["sst"].chunks == (3, 16, 32)
        assert f["sst"].compression == "gzip" and f["sst"].shuffle
    with h5py.File(fixture_files["nc4_fletcher32"], "r") as f:
        assert f["v"].fletcher32 and f["w"].fletcher32


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind,group", CASES, ids=CASE_IDS)
def test_mounted_equals_original(fidelity_mount, fixture_files, kind, group, mode):
    mount, fmt = fidelity_mount
    kw = MODES[mode]
    path = fixture_files[kind]
    orig = open_original(path, group, **kw)
    got = open_mounted(mount / kind, group, **kw)
    width_ok = float32_packed(path, group) if mode == "decoded" else set()
    assert_same_dataset(orig, got, f"zarr{fmt} {kind}/{group} {mode}", float_width_ok=width_ok)


def test_float32_packing_difference_is_only_the_width(fidelity_mount, fixture_files):
    mount, fmt = fidelity_mount
    path = fixture_files["nc4_packed"]
    assert float32_packed(path, "") == {"t2m", "cover"}
    raw_o = open_original(path, "", mask_and_scale=False)
    raw_g = open_mounted(mount / "nc4_packed", "", mask_and_scale=False)
    for name in ("t2m", "cover", "msl"):
        assert raw_g[name].dtype == raw_o[name].dtype, name  # the packed integers
        np.testing.assert_array_equal(raw_g[name].values, raw_o[name].values)
        assert float(raw_g[name].attrs["scale_factor"]) == pytest.approx(
            float(raw_o[name].attrs["scale_factor"]), rel=1e-7)
    dec_o = open_original(path, "")
    dec_g = open_mounted(mount / "nc4_packed", "")
    assert dec_o.t2m.dtype == np.float32
    assert dec_g.t2m.dtype in (np.float32, np.float64)
    assert dec_g.msl.dtype == dec_o.msl.dtype == np.float64  # float64 scale: identical
    np.testing.assert_array_equal(dec_g.msl.values, dec_o.msl.values)
    for name in ("t2m", "cover"):
        o, g = dec_o[name].values, dec_g[name].values
        np.testing.assert_array_equal(np.isnan(o), np.isnan(g))
        assert np.isnan(o).any(), f"{name}: the fixture has masked values"
        np.testing.assert_allclose(g, o, rtol=1e-6, equal_nan=True)


# --------------------------------------------------------------------------
# layout of the tree


def _read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def _v3_nodes(meta: dict, prefix: str = "") -> dict:
    """Flatten zarr v3 consolidated metadata: path -> node metadata."""
    out = {}
    cm = meta.get("consolidated_metadata") or {}
    for key, node in (cm.get("metadata") or {}).items():
        path = f"{prefix}/{key}" if prefix else key
        out[path] = node
        if node.get("node_type") == "group" and node.get("consolidated_metadata"):
            out.update(_v3_nodes(node, path))
    return out


def _chunk_keys(shape, chunks, sep, prefix_v3: bool):
    grid = [-(-s // c) if s else 0 for s, c in zip(shape, chunks)]
    if not shape:
        yield "c" if prefix_v3 else "0"
        return
    for idx in np.ndindex(*grid):
        key = sep.join(str(i) for i in idx)
        yield f"c{sep}{key}" if prefix_v3 else key


def _arrays(mount, kind: str, fmt: int) -> dict:
    """array path (relative to the dataset) -> (shape, chunks, chunk keys)."""
    root = mount / kind
    out = {}
    if fmt == 3:
        meta = _read_json(root / "zarr.json")
        assert meta["node_type"] == "group" and meta["zarr_format"] == 3
        assert meta.get("consolidated_metadata"), f"{kind}: zarr.json has no consolidated_metadata"
        for path, node in _v3_nodes(meta).items():
            if node["node_type"] != "array":
                continue
            enc = node["chunk_key_encoding"]
            sep = enc.get("configuration", {}).get("separator", "/")
            assert enc["name"] == "default" and sep == "/", f"{kind}/{path}: {enc}"
            shape = node["shape"]
            chunks = node["chunk_grid"]["configuration"]["chunk_shape"]
            out[path] = (shape, chunks, list(_chunk_keys(shape, chunks, sep, True)))
    else:
        zmeta = _read_json(root / ".zmetadata")
        assert zmeta.get("zarr_consolidated_format") == 1
        for key, node in zmeta["metadata"].items():
            if not key.endswith(".zarray"):
                continue
            path = key[: -len("/.zarray")] if "/" in key else ""
            sep = node.get("dimension_separator") or "."
            assert sep == ".", f"{kind}/{path}: dimension_separator {sep!r}"
            shape, chunks = node["shape"], node["chunks"]
            out[path] = (shape, chunks, list(_chunk_keys(shape, chunks, sep, False)))
    return out


def test_layout_groups_and_consolidated_metadata(fidelity_mount, fixture_files):
    mount, fmt = fidelity_mount
    meta_names = {"zarr.json", ".zgroup", ".zattrs", ".zmetadata"}
    assert set(os.listdir(mount.path)) - meta_names == set(SINGLE_FILE_KINDS)
    meta_files = {"zarr.json"} if fmt == 3 else {".zgroup", ".zattrs", ".zmetadata"}
    for kind in SINGLE_FILE_KINDS:
        listing = set(os.listdir(mount / kind))
        assert meta_files <= listing, f"{kind}: {sorted(listing)}"
        with netCDF4.Dataset(fixture_files[kind]) as ds:
            names = set(ds.variables) | set(ds.groups)
        assert names <= listing, f"{kind}: missing {sorted(names - listing)}"
    # NetCDF-4 groups are Zarr subgroups
    for grp in ("forecast", "forecast/ensemble", "obs"):
        gdir = mount / "nc4_groups" / grp
        if fmt == 3:
            assert _read_json(gdir / "zarr.json")["node_type"] == "group"
        else:
            assert _read_json(gdir / ".zgroup")["zarr_format"] == 2
    arrays = _arrays(mount, "nc4_groups", fmt)
    assert {"root_v", "x", "forecast/temp", "forecast/lead", "forecast/ensemble/spread",
            "forecast/ensemble/member", "obs/obs_v", "obs/time"} == set(arrays)


def coalesced(native, shape, itemsize):
    """The served chunk shape of a single file's chunked variable: the native chunks, small ones
    (at most 2 MiB) joined along the leading dimension they do not cover whole, toward 4 MiB and
    at most 256 of them."""
    chunks = list(native)
    axis = next((d for d in range(len(shape)) if chunks[d] < shape[d]), None)
    nbytes = int(np.prod(chunks)) * itemsize
    if axis is not None and nbytes * 2 <= 4 << 20:
        factor = min((4 << 20) // nbytes, 256)
        chunks[axis] = min(chunks[axis] * factor, shape[axis])
    return chunks


def test_native_chunking_is_kept_and_small_chunks_coalesced(fidelity_mount, fixture_files):
    mount, fmt = fidelity_mount
    arrays = _arrays(mount, "nc4_chunked_zlib", fmt)
    with netCDF4.Dataset(fixture_files["nc4_chunked_zlib"]) as ds:
        for name in ("sst", "anom", "raw", "counts"):
            var = ds[name]
            assert var.chunking() != "contiguous"
            want = coalesced(var.chunking(), var.shape, var.dtype.itemsize)
            assert list(arrays[name][1]) == want, name
            # only the leading dimension not covered whole is coalesced
            lead = next(d for d in range(var.ndim) if var.chunking()[d] < var.shape[d])
            assert [c for d, c in enumerate(want) if d != lead] == \
                [c for d, c in enumerate(var.chunking()) if d != lead], name
    got = open_mounted(mount / "nc4_chunked_zlib", "")
    assert tuple(got.sst.encoding["chunks"]) == (10, 16, 32)


def test_every_file_reports_its_exact_size(fidelity_mount):
    """st_size before reading equals the number of bytes read, for every
    metadata file and every chunk of every dataset."""
    mount, fmt = fidelity_mount
    checked = 0
    for kind in SINGLE_FILE_KINDS:
        root = mount / kind
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            files += [os.path.join(dirpath, f) for f in filenames
                      if f in ("zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata")]
        for path, (shape, chunks, keys) in _arrays(mount, kind, fmt).items():
            for key in keys:
                files.append(os.path.join(root, path, key) if path else os.path.join(root, key))
        for f in files:
            try:
                size = os.stat(f).st_size
            except FileNotFoundError:
                continue  # a chunk may be absent (all fill); Zarr readers use fill_value
            with open(f, "rb") as fh:
                data = fh.read()
            assert size == len(data), f"{f}: st_size {size}, read {len(data)} bytes"
            checked += 1
    assert checked > 200
