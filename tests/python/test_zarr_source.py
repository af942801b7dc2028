"""Existing Zarr stores as sources (``zarr = "<dir>"`` on a dataset).

Stores are written by xarray ``to_zarr`` in every flavour a reader meets —
Zarr v2 consolidated and not, v3 consolidated and not (the last one sharded),
compressed with zlib, gzip, zstd and blosc — with fill values and NaN, masked
integers, a subgroup, types atlasfs does not serve (bool, strings) and a chunk
object deliberately deleted.  Each is mounted and compared with
``xr.open_zarr(original)``: expected values always come from xarray and
zarr-python reading the original store, never from atlasfs.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import os
import shutil
import time
import warnings
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, GzipCodec

from conftest import (MOUNT_TIMEOUT, Mount, assert_same_dataset, daemon_pids, is_eio, is_mounted,
                      run_atlasfs, write_config)

# name -> (zarr_format, consolidated, sharded)
KINDS = {
    "v2c": (2, True, False),
    "v2u": (2, False, False),
    "v3c": (3, True, False),
    "v3u": (3, False, True),
}
LEFT_OUT = ["flag", "label"]  # bool and string arrays: not served


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def source_dataset() -> xr.Dataset:
    rng = np.random.default_rng(42)
    sst = (rng.standard_normal((6, 4, 5)) * 5 + 290).astype("f4")
    sst[0, 0, :3] = np.nan
    sst[5, 3, 4] = -999.0  # the CF _FillValue: masked on read
    count = np.arange(6, dtype="i2")
    count[1] = -1  # the CF _FillValue
    ds = xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), sst,
                    {"units": "K", "long_name": "sea surface temperature",
                     "valid_range": [250.0, 320.0], "one": [5], "checked": True}),
            "count": (("time",), count, {"comment": "masked int"}),
            "flag": (("time",), np.array([True, False] * 3)),
            "label": (("lat",), np.array(["a", "bb", "c", "dd"])),
        },
        coords={
            "time": np.arange("2020-01-01", "2020-01-07", dtype="datetime64[D]").astype(
                "datetime64[ns]"),
            "lat": np.linspace(-30.0, 30.0, 4),
            "lon": np.linspace(0.0, 40.0, 5),
        },
        attrs={"title": "zarr source", "levels": [1, 2, 3], "tag": [7], "flagged": False,
               "missing": float("nan")},
    )
    return ds


def write_store(path: Path, zarr_format: int, consolidated: bool, sharded: bool) -> None:
    ds = source_dataset()
    if zarr_format == 2:
        sst_enc = {"compressors": [numcodecs.Zlib(level=4)]}
    elif sharded:
        sst_enc = {"compressors": [BloscCodec(cname="zstd", clevel=3)], "shards": (2, 4, 5)}
    else:
        sst_enc = {"compressors": [GzipCodec(level=4)]}
    encoding = {"sst": {"chunks": (2, 2, 5), "_FillValue": -999.0, **sst_enc},
                "count": {"chunks": (2,), "_FillValue": -1}}
    with _quiet():
        ds.to_zarr(path, zarr_format=zarr_format, consolidated=consolidated, encoding=encoding)
        sub = xr.Dataset({"depth": (("z",), np.array([0.5, 10.0, 100.0]), {"units": "m"})},
                         attrs={"kind": "sub"})
        sub.to_zarr(path, group="sub", mode="a", zarr_format=zarr_format,
                    consolidated=consolidated)
        if consolidated:
            zarr.consolidate_metadata(str(path), zarr_format=zarr_format)
    # A chunk object deliberately missing: it reads as the fill value.
    for key in (("sst", 1, 0, 0), ("count", 2)):
        os.remove(path / chunk_key(zarr_format, *key))


def chunk_key(zarr_format: int, array: str, *index: int) -> str:
    if zarr_format == 2:
        return f"{array}/" + ".".join(map(str, index))
    return f"{array}/c/" + "/".join(map(str, index))


def open_zarr(path, **kw) -> xr.Dataset:
    with _quiet():
        with xr.open_zarr(str(path), chunks=None, **kw) as ds:
            return ds.load()


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("zarr-stores")
    out = {}
    for name, (fmt, consolidated, sharded) in KINDS.items():
        out[name] = base / f"{name}.zarr"
        write_store(out[name], fmt, consolidated, sharded)
    return out


@pytest.fixture(scope="module", params=[3, 2], ids=["served-v3", "served-v2"])
def mounted(request, module_mounts, stores):
    datasets = [{"name": name, "zarr": str(path)} for name, path in stores.items()]
    return module_mounts.mount(datasets, zarr_format=request.param)


@pytest.mark.parametrize("kind", list(KINDS))
def test_store_reads_as_xarray_reads_the_original(mounted, stores, kind):
    orig = open_zarr(stores[kind]).drop_vars(LEFT_OUT)
    got = open_zarr(mounted / kind)
    assert_same_dataset(orig, got, f"{kind} through {mounted.path}")
    # The deleted chunk objects read as the fill value: NaN for sst (fill_value NaN in every
    # flavour); for count the v2 fill_value (-1, masked) or the v3 fill_value (0, unmasked).
    assert np.isnan(got.sst.values[2:4, 0:2, :]).all()
    assert np.isnan(got.sst.values[5, 3, 4]), "the CF _FillValue is masked"
    expected_count = np.nan if KINDS[kind][0] == 2 else 0
    np.testing.assert_array_equal(got["count"].values[4:6], [expected_count] * 2)
    assert np.isnan(got["count"].values[1])


@pytest.mark.parametrize("kind", list(KINDS))
def test_subgroup_and_attributes(mounted, stores, kind):
    orig = open_zarr(stores[kind], group="sub")
    got = open_zarr(mounted / kind, group="sub")
    assert_same_dataset(orig, got, f"{kind}/sub")
    assert got.attrs["kind"] == "sub"
    top = open_zarr(mounted / kind)
    assert top.attrs["tag"] == [7] and top.attrs["flagged"] is False
    assert top.sst.attrs["one"] == [5] and top.sst.attrs["checked"] is True
    assert set(top.variables) == {"sst", "count", "time", "lat", "lon"}


def test_raw_chunks_equal_zarr_python_decoding(mounted, stores):
    """A served chunk file is the source chunk decoded: little-endian, C order, whole."""
    fmt = 3 if (mounted.path / "v3u" / "zarr.json").exists() else 2
    for kind in ("v2c", "v3c"):
        original = zarr.open_array(str(stores[kind] / "sst"), mode="r")
        expected = np.ascontiguousarray(original[0:2, 2:4, 0:5]).astype("<f4").tobytes()
        served = (mounted.path / kind / chunk_key(fmt, "sst", 0, 1, 0)).read_bytes()
        assert served == expected, kind
    # A shard of the sharded store is one served chunk.
    original = zarr.open_array(str(stores["v3u"] / "sst"), mode="r")
    expected = np.ascontiguousarray(original[4:6, 0:4, 0:5]).astype("<f4").tobytes()
    assert (mounted.path / "v3u" / chunk_key(fmt, "sst", 2, 0, 0)).read_bytes() == expected


def test_tree_shows_arrays_and_names_what_is_left_out(atlasfs_bin, stores, tmp_path):
    config = write_config(tmp_path / "atlasfs.toml",
                          [{"name": "ds", "zarr": str(stores["v3u"])}],
                          cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "sst  (time: 6, lat: 4, lon: 5)  F32  chunks [2, 4, 5]" in out, out
    assert "count  (time: 6)  I16  chunks [2]" in out, out
    assert "depth  (z: 3)  F64" in out, out
    assert "left out array flag: data type bool is not served" in out, out
    assert "left out array label: data type" in out, out
    assert "Zarr v3 store: 6 array(s)" in out, out


def test_missing_store_is_reported(atlasfs_bin, tmp_path):
    config = write_config(tmp_path / "atlasfs.toml",
                          [{"name": "ds", "zarr": str(tmp_path / "nowhere.zarr")}],
                          cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config)
    assert res.returncode != 0
    assert "nowhere.zarr" in res.stdout + res.stderr


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_corrupt_chunk_fails_only_that_chunk(mounts, stores, tmp_path):
    store = _copy(stores["v3c"], tmp_path / "corrupt.zarr")
    victim = store / chunk_key(3, "sst", 0, 1, 0)
    victim.write_bytes(b"\x1f\x8b not really gzip" + bytes(range(64)))
    m = mounts.mount([{"name": "ds", "zarr": str(store)}])
    with pytest.raises(OSError) as exc:
        (m.path / "ds" / chunk_key(3, "sst", 0, 1, 0)).read_bytes()
    assert exc.value.errno == errno.EIO
    # Every other chunk is fine, and xarray reads around the broken one.
    original = zarr.open_array(str(stores["v3c"] / "sst"), mode="r")
    expected = np.ascontiguousarray(original[0:2, 0:2, :]).astype("<f4").tobytes()
    assert (m.path / "ds" / chunk_key(3, "sst", 0, 0, 0)).read_bytes() == expected
    orig = open_zarr(stores["v3c"]).drop_vars(LEFT_OUT)
    got = xr.open_zarr(str(m.path / "ds"), chunks=None)
    xr.testing.assert_identical(orig.sst.isel(lat=slice(0, 2)).load(),
                                got.sst.isel(lat=slice(0, 2)).load())
    with pytest.raises(Exception) as exc:
        got.sst.values
    assert is_eio(exc.value), repr(exc.value)

    def logged():
        return [line for line in m.log_text().splitlines()
                if str(victim) in line and "c/0/1/0" in line]
    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged(), m.log_text()[-3000:]


def test_rewritten_chunk_is_never_served_stale(atlasfs_bin, mounts, stores, tmp_path):
    store = _copy(stores["v2c"], tmp_path / "rewrite.zarr")
    work = tmp_path / "work"
    (work / "mnt").mkdir(parents=True)
    config = write_config(work / "atlasfs.toml", [{"name": "ds", "zarr": str(store)}],
                          cache_dir=work / "cache")
    key = chunk_key(3, "sst", 0, 0, 0)  # served as Zarr v3

    def mount() -> Mount:
        m = Mount(atlasfs_bin, config, work / "mnt", work / "cache")
        mounts.mounts.append(m)
        res = run_atlasfs(atlasfs_bin, "mount", config, m.path, timeout=MOUNT_TIMEOUT)
        assert res.returncode == 0 and is_mounted(m.path), res.stderr
        return m

    m = mount()
    before = (m.path / "ds" / key).read_bytes()
    array = zarr.open_array(str(store / "sst"), mode="r+")
    time.sleep(0.05)
    array[0:2, 0:2, :] = 123.5
    # Mounted: the changed object is refused, not served from any cache.
    with pytest.raises(OSError) as exc:
        (m.path / "ds" / key).read_bytes()
    assert exc.value.errno == errno.EIO
    m.unmount()
    # Re-indexed (the metadata documents are unchanged, the chunk's version is not) and
    # mounted over the same disk cache: the new values, never the cached old ones.
    res = run_atlasfs(atlasfs_bin, "index", config)
    assert res.returncode == 0, res.stderr
    assert "metadata unchanged" in res.stdout, res.stdout
    m = mount()
    after = (m.path / "ds" / key).read_bytes()
    assert after != before
    assert np.frombuffer(after, "<f4").tolist() == [123.5] * 20
    orig = open_zarr(store).drop_vars(LEFT_OUT)
    assert_same_dataset(orig, open_zarr(m.path / "ds"), "rewritten store")


def test_reload_serves_a_rewritten_chunk_anew(mounts, stores, tmp_path):
    """After SIGHUP re-indexes, a chunk whose object was rewritten is read anew — not from
    the daemon's caches and not from the kernel's page cache of the previous snapshot."""
    store = _copy(stores["v3c"], tmp_path / "reload.zarr")
    m = mounts.mount([{"name": "ds", "zarr": str(store)}])
    served = m.path / "ds" / chunk_key(3, "sst", 0, 0, 0)
    untouched = m.path / "ds" / chunk_key(3, "sst", 2, 1, 0)
    before, other = served.read_bytes(), untouched.read_bytes()
    assert served.read_bytes() == before  # now in the kernel's page cache too
    array = zarr.open_array(str(store / "sst"), mode="r+")
    time.sleep(0.05)
    array[0:2, 0:2, :] = -5.25
    pid = daemon_pids(m.path)[0]
    reloads = m.log_text().count("reloaded: ")
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while m.log_text().count("reloaded: ") <= reloads:
        assert time.monotonic() < deadline, m.log_text()[-3000:]
        time.sleep(0.05)
    after = served.read_bytes()
    assert np.frombuffer(after, "<f4").tolist() == [-5.25] * 20
    assert untouched.read_bytes() == other
    orig = open_zarr(store).drop_vars(LEFT_OUT)
    assert_same_dataset(orig, open_zarr(m.path / "ds"), "reloaded store")
