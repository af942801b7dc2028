"""`atlasfs export`: a subtree written out as a real Zarr store.

The store is read back with xarray and compared with the same path read through a FUSE mount
of the same configuration (values, dims, attributes), and the joined dataset's values with the
original files read by xarray. Shard workers write byte-identical chunks to one worker, no root
metadata exists before every chunk is there, a worker that stopped half-way completes the
store when rerun with `--resume`, and an export to the loopback S3 server reads back equal.
Zarr v3 shards (`--shard-shape`) are read by xarray and zarr-python as shards of the served
chunks, and `--codec` recompresses the exported arrays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import view_fixtures as vf
from conftest import run_atlasfs, write_config
from view_fixtures import cases, daily, source  # noqa: F401 (fixtures)

VIEWS = [
    {"name": "packed", "from": "daily", "pack": {"dtype": "int16", "range": "data"}},
    {"name": "pyr", "from": "daily",
     "pyramid": {"levels": 3, "method": "mean", "dims": ["lat", "lon"]}},
]
PROVENANCE = "atlasfs_export"
SHARDS = ("--shard-shape", "time=3,lat=20")


@pytest.fixture(scope="module")
def datasets(daily, cases):  # noqa: F811 (fixtures)
    return [vf.daily_entry(daily), vf.cases_entry(cases)]


@pytest.fixture(scope="module")
def mount(module_mounts, datasets):
    return vf.mount_views(module_mounts, datasets, VIEWS)


@pytest.fixture(scope="module")
def config(tmp_path_factory, datasets) -> Path:
    """The mount's configuration with a cache dir of its own (the mount holds its cache)."""
    work = tmp_path_factory.mktemp("export")
    return vf.write_views_config(work / "atlasfs.toml", datasets, VIEWS, cache_dir=work / "cache")


def export(atlasfs_bin, config, path, dest, *args, env=None, ok=True):
    res = run_atlasfs(atlasfs_bin, "export", config, path, dest, *args, env=env)
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def open_tree(path) -> xr.DataTree:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_datatree(str(path), engine="zarr", chunks=None) as tree:
            return tree.load()


def without_provenance(tree: xr.DataTree) -> tuple[xr.DataTree, dict]:
    attrs = dict(tree.attrs)
    provenance = attrs.pop(PROVENANCE)
    tree.attrs = attrs
    return tree, provenance


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def is_chunk(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return not name.startswith(".") and name != "zarr.json"


def export_in_three_workers(atlasfs_bin, config, path, dest, one, *args):
    """Exports with three concurrent `--shard K/3` workers and checks the store is the same as
    the one-worker store `one`, the workers having written disjoint keys covering it."""
    workers = [subprocess.Popen([atlasfs_bin, "export", str(config), path, str(dest), *args,
                                 "--shard", f"{k}/3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(3)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    assert files(dest) == files(one)
    written = [int(out.split(" written")[0].rsplit(" ", 1)[-1]) for out, _ in outputs]
    assert sum(written) == len([k for k in files(one) if is_chunk(k)]), outputs


@pytest.mark.parametrize("path", ["daily", "cases", "packed", "pyr"])
def test_export_equals_the_mount(atlasfs_bin, mount, config, tmp_path, path):
    dest = tmp_path / "store"
    res = export(atlasfs_bin, config, path, dest)
    assert "metadata written" in res.stdout, res.stdout
    exported, provenance = without_provenance(open_tree(dest))
    assert set(provenance) == {"version", "config_hash", "path", "source_fingerprint"}
    assert provenance["path"] == path
    mounted = open_tree(mount / path)
    xr.testing.assert_identical(exported, mounted)
    assert exported.groups == mounted.groups
    # every array is written: as many chunk files as the mount lists
    assert len([k for k in files(dest) if is_chunk(k)]) > 0


def test_export_values_equal_the_files(atlasfs_bin, config, tmp_path, source):  # noqa: F811
    dest = tmp_path / "daily.zarr"
    export(atlasfs_bin, config, "daily", dest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(dest), chunks=None) as ds:
            ds = ds.load()
    for name in ("sst", "sal", "chl", "depth"):
        np.testing.assert_array_equal(ds[name].values, source[name].values, err_msg=name)
        assert ds[name].dims == source[name].dims


def test_export_zarr_v2_is_consolidated(atlasfs_bin, mount, config, tmp_path):
    dest = tmp_path / "v2"
    export(atlasfs_bin, config, "daily", dest, "--zarr-format", "2")
    assert not (dest / "zarr.json").exists()
    consolidated = json.loads((dest / ".zmetadata").read_text())["metadata"]
    assert PROVENANCE in consolidated[".zattrs"]
    assert "sst/.zarray" in consolidated
    with xr.open_zarr(str(dest), consolidated=True, chunks=None) as ds:
        exported = ds.load()
    del exported.attrs[PROVENANCE]
    with xr.open_zarr(str(mount / "daily"), consolidated=True, chunks=None) as ds:
        xr.testing.assert_identical(exported, ds.load())


def test_shards_write_the_same_store_as_one_worker(atlasfs_bin, config, tmp_path):
    one = tmp_path / "one"
    export(atlasfs_bin, config, "cases", one)
    three = tmp_path / "three"
    export_in_three_workers(atlasfs_bin, config, "cases", three, one)


def test_no_metadata_before_every_chunk_is_written(atlasfs_bin, config, tmp_path):
    one = tmp_path / "one"
    export(atlasfs_bin, config, "daily", one)
    dest = tmp_path / "parts"
    for k in (0, 1):
        res = export(atlasfs_bin, config, "daily", dest, "--shard", f"{k}/3")
        assert "metadata not written" in res.stdout
    assert not (dest / "zarr.json").exists()
    assert not list(dest.rglob("zarr.json"))
    with pytest.raises(Exception):
        xr.open_zarr(str(dest))
    res = export(atlasfs_bin, config, "daily", dest, "--finalize", ok=False)
    assert res.returncode != 0
    assert "not written yet" in res.stderr, res.stderr
    assert not (dest / "zarr.json").exists()

    # The last worker stops half-way: some of its chunks written, no metadata.
    last = tmp_path / "last"
    export(atlasfs_bin, config, "daily", last, "--shard", "2/3")
    own = sorted(k for k in files(last) if is_chunk(k))
    for key in own[::2]:
        (dest / key).parent.mkdir(parents=True, exist_ok=True)
        (dest / key).write_bytes((last / key).read_bytes())
    res = export(atlasfs_bin, config, "daily", dest, "--shard", "2/3", "--resume")
    assert f"{len(own[::2])} already present" in res.stdout, res.stdout
    assert "every chunk present: metadata written" in res.stdout, res.stdout
    assert files(dest) == files(one)

    # --finalize rewrites the metadata alone, identically.
    (dest / "zarr.json").unlink()
    res = export(atlasfs_bin, config, "daily", dest, "--finalize")
    assert " 0 written" in res.stdout, res.stdout
    assert files(dest) == files(one)
    with xr.open_zarr(str(dest), chunks=None) as ds:
        assert ds["sst"].shape == (vf.NTIME, vf.NLAT, vf.NLON)


def test_resume_rewrites_a_chunk_of_the_wrong_size(atlasfs_bin, config, tmp_path):
    dest = tmp_path / "store"
    export(atlasfs_bin, config, "packed", dest)
    reference = files(dest)
    key = next(k for k in sorted(reference) if is_chunk(k))
    (dest / key).write_bytes(b"truncated")
    res = export(atlasfs_bin, config, "packed", dest, "--resume")
    assert "1 written" in res.stdout, res.stdout
    assert files(dest) == reference


@pytest.mark.parametrize("path, args", [
    ("daily", ()), ("cases", ()), ("packed", SHARDS), ("pyr", ()),
])
def test_export_to_s3(atlasfs_bin, mount, config, tmp_path, s3_server, path, args):
    from s3server import atlasfs_env, s3_url

    local = tmp_path / "local"
    export(atlasfs_bin, config, path, local, *args)
    bucket = s3_server.create_bucket("export")
    env = atlasfs_env(config_dir=tmp_path / "aws")
    export(atlasfs_bin, config, path, s3_url(bucket, f"out/{path}"), *args,
           "--endpoint", s3_server.endpoint, env=env)
    keys = s3_server.keys(bucket, f"out/{path}/")
    copy = tmp_path / "copy"
    for key in keys:
        target = copy / key.removeprefix(f"out/{path}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3_server.get(bucket, key))
    assert files(copy) == files(local)
    exported, _ = without_provenance(open_tree(copy))
    xr.testing.assert_identical(exported, open_tree(mount / path))


def test_a_killed_worker_rerun_with_resume_completes_the_store(atlasfs_bin, tmp_path):
    ntime = 4000
    path = tmp_path / "long.nc"
    values = np.arange(ntime * 3 * 2, dtype="f4").reshape(ntime, 3, 2) / 7
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", ntime)
        nc.createDimension("y", 3)
        nc.createDimension("x", 2)
        nc.createVariable("time", "f8", ("time",))[:] = np.arange(ntime)
        nc.createVariable("v", "f4", ("time", "y", "x"))[:] = values
    config = write_config(tmp_path / "atlasfs.toml",
                          [{"name": "long", "files": str(path), "chunks": {"time": 1}}],
                          cache_dir=tmp_path / "cache")
    dest = tmp_path / "store"
    worker = subprocess.Popen([atlasfs_bin, "export", str(config), "long", str(dest),
                               "--jobs", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        if (dest / "v" / "c").exists() and len(list((dest / "v" / "c").iterdir())) >= 200:
            break
        time.sleep(0.02)
    assert worker.poll() is None, "the export finished before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    written = len([k for k in files(dest) if is_chunk(k)])
    assert 0 < written < 2 * ntime
    assert not list(dest.rglob("zarr.json"))

    res = export(atlasfs_bin, config, "long", dest, "--resume")
    present = int(res.stdout.split(" already present")[0].rsplit(" ", 1)[-1])
    assert present >= written - 1, res.stdout  # a chunk in flight may not have been renamed
    assert "metadata written" in res.stdout, res.stdout
    # A staging file of a chunk being written when the worker was killed does not stay.
    assert not [p for p in dest.rglob("*#*")], sorted(dest.rglob("*#*"))[:5]
    with xr.open_zarr(str(dest), chunks=None) as ds:
        np.testing.assert_array_equal(ds["v"].values, values)
        np.testing.assert_array_equal(ds["time"].values, np.arange(ntime))


def test_an_unknown_path_is_refused_and_writes_nothing(atlasfs_bin, config, tmp_path):
    dest = tmp_path / "store"
    res = export(atlasfs_bin, config, "nope", dest, ok=False)
    assert res.returncode != 0
    assert '"nope" is no group, view or array of the tree' in res.stderr, res.stderr
    assert not dest.exists()



def array_document(store: Path, name: str) -> dict:
    return json.loads((store / name / "zarr.json").read_text())


@pytest.mark.parametrize("path", ["daily", "packed", "pyr"])
def test_a_sharded_export_equals_the_mount(atlasfs_bin, mount, config, tmp_path, path):
    dest = tmp_path / "store"
    res = export(atlasfs_bin, config, path, dest, *SHARDS)
    assert "in shards" in res.stdout, res.stdout
    exported, _ = without_provenance(open_tree(dest))
    xr.testing.assert_identical(exported, open_tree(mount / path))


def test_shards_hold_whole_chunks_with_the_served_codecs_inside(atlasfs_bin, mount, config,
                                                                 tmp_path):
    import zarr

    dest = tmp_path / "store"
    export(atlasfs_bin, config, "packed", dest, *SHARDS)
    doc = array_document(dest, "sst")
    served = json.loads((mount / "packed" / "sst" / "zarr.json").read_text())
    (sharding,) = doc["codecs"]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["codecs"] == served["codecs"]
    inner = served["chunk_grid"]["configuration"]["chunk_shape"]
    assert sharding["configuration"]["chunk_shape"] == inner
    # time=3 over 1-day chunks: 3 chunks; lat=20 rounded up to whole chunks of the served lat.
    lat_chunks = -(-20 // inner[1])
    shard = [3, lat_chunks * inner[1], inner[2]]
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == shard
    # The consolidated metadata of the exported group says the same.
    consolidated = json.loads((dest / "zarr.json").read_text())["consolidated_metadata"]
    assert consolidated["metadata"]["sst"]["codecs"] == doc["codecs"]
    assert consolidated["metadata"]["sst"]["chunk_grid"] == doc["chunk_grid"]
    # One key per shard: ceil(8 / 3) x ceil(37 / shard lat) x lon chunks.
    expected = (-(-vf.NTIME // 3)) * (-(-vf.NLAT // shard[1])) * (-(-vf.NLON // shard[2]))
    assert len([p for p in (dest / "sst" / "c").rglob("*") if p.is_file()]) == expected
    # zarr-python reads the shards as shards of the served chunks.
    arr = zarr.open_array(str(dest / "sst"), mode="r")
    assert list(arr.shards) == shard and list(arr.chunks) == inner
    mounted = zarr.open_array(str(mount / "packed" / "sst"), mode="r")
    np.testing.assert_array_equal(arr[...], mounted[...])


def test_shard_workers_write_whole_shards_identical_to_one_worker(atlasfs_bin, config,
                                                                  tmp_path):
    one = tmp_path / "one"
    export(atlasfs_bin, config, "daily", one, *SHARDS)
    export_in_three_workers(atlasfs_bin, config, "daily", tmp_path / "three", one, *SHARDS)


def test_resume_rewrites_a_damaged_shard_and_keeps_whole_ones(atlasfs_bin, config, tmp_path):
    dest = tmp_path / "store"
    export(atlasfs_bin, config, "daily", dest, *SHARDS)
    reference = files(dest)
    shards = sorted(k for k in reference if is_chunk(k) and k.startswith("sst/"))
    damaged, truncated = dest / shards[0], dest / shards[1]
    data = bytearray(damaged.read_bytes())
    data[-10] ^= 0x40  # inside the index: its checksum no longer holds
    damaged.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:-7])
    res = export(atlasfs_bin, config, "daily", dest, *SHARDS, "--resume")
    assert " 2 written" in res.stdout, res.stdout
    assert files(dest) == reference


def test_codec_recompresses_the_exported_arrays(atlasfs_bin, mount, config, tmp_path, source):  # noqa: F811
    gz = tmp_path / "gz"
    export(atlasfs_bin, config, "daily", gz, "--codec", "gzip:1", *SHARDS)
    inner = array_document(gz, "sst")["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in inner] == ["bytes", "gzip"]
    assert inner[1]["configuration"]["level"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(gz), chunks=None) as ds:
            for name in ("sst", "sal", "chl", "depth"):
                np.testing.assert_array_equal(ds[name].values, source[name].values,
                                              err_msg=name)
    # A pack view's zstd taken off: raw int16 chunks, the same decoded values.
    raw = tmp_path / "raw"
    export(atlasfs_bin, config, "packed", raw, "--codec", "none")
    assert [c["name"] for c in array_document(raw, "sst")["codecs"]] == ["bytes"]
    chunk = next(p for p in (raw / "sst" / "c").rglob("*") if p.is_file())
    shape = array_document(raw, "sst")["chunk_grid"]["configuration"]["chunk_shape"]
    assert chunk.stat().st_size == int(np.prod(shape)) * 2
    exported, _ = without_provenance(open_tree(raw))
    xr.testing.assert_identical(exported, open_tree(mount / "packed"))


@pytest.mark.parametrize("args, message", [
    (("--shard-shape", "time=3", "--zarr-format", "2"), "add --zarr-format 3"),
    (("--shard-shape", "height=3"), 'no exported array has a dimension "height"'),
    (("--shard-shape", "time=0"), "must be DIM=N"),
    (("--codec", "lz4"), "must be none, zstd"),
])
def test_layout_options_that_cannot_apply_are_refused(atlasfs_bin, config, tmp_path, args,
                                                      message):
    dest = tmp_path / "store"
    res = export(atlasfs_bin, config, "daily", dest, *args, ok=False)
    assert res.returncode != 0
    assert message in res.stderr, res.stderr
    assert not dest.exists() or not list(dest.rglob("*"))


def test_staging_files_of_a_stopped_writer_are_removed_at_finalize(atlasfs_bin, config, tmp_path):
    one = tmp_path / "one"
    export(atlasfs_bin, config, "daily", one)
    dest = tmp_path / "store"
    export(atlasfs_bin, config, "daily", dest, "--shard", "0/2")
    chunk = next(p for p in sorted(dest.rglob("*")) if p.is_file())
    staging = chunk.with_name(chunk.name + "#7")  # what a writer killed before its rename leaves
    staging.write_bytes(b"half a chunk")
    res = export(atlasfs_bin, config, "daily", dest, "--shard", "1/2")
    assert "metadata written" in res.stdout, res.stdout
    assert not staging.exists()
    assert files(dest) == files(one)
