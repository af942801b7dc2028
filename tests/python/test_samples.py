"""Sample sets: a JSONL file of sample descriptors served as arrays with one chunk per sample.

``[[samples]]`` over a NetCDF archive joined along time (descending latitude, float32 with NaN, a
packed int16), a 360_day-calendar file, a local Zarr v3 store and the same store on the loopback S3
server.  Every sample of every variable must equal xarray's ``.sel`` of its line on the source
(dims, shape, dtype and values), its per-sample coordinates must be the selection's, and the chunk
file of a sample read with ``np.fromfile`` must be the sample.  Then the errors of bad lines, the
cache (a remount computes nothing, a rewritten source file recomputes exactly the samples that read
it), four reader processes in random order, and ``atlasfs warm --shard``.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import run_atlasfs
from s3server import atlasfs_env, s3_url, storage_table
from sample_fixtures import (
    BOXES, CAL360, CUBE, CUBE_TOUCHING_LAST_FILE, ERA_VARS, MAPS, MAPS_HEADER,
    PADDED, PADDED_HEADER, PADDED_SHAPE, chunk_file, expected_sample, make_era, open_cftime,
    open_era, open_store, read_samples_in_random_order, sel_of, variables_of,
    write_cftime_file, write_era_file, write_jsonl, write_samples_config, write_zarr_store)

ERA = {"name": "era", "concat_dim": "time", "chunks": {"time": 1}}  # + files
SAMPLE_BYTES = {"t2m": 27 * 4, "pk": 27 * 8}  # a CUBE sample: 3 x 3 x 3 float32 / float64

# Lines 2 and 4 select 2 latitudes where line 1 selects 3.
UNEVEN = [CUBE[0], {**CUBE[1], "latitude": {"start": 44, "end": 43}}, CUBE[2],
          {**CUBE[3], "latitude": [50, 45]}, CUBE[4]]
UNEVEN_KEPT = [0, 2, 4]

# One good line, every kind of bad line (a blank line is skipped but counted), one good line.
BAD = [
    json.dumps(CUBE[0]),
    json.dumps({**{k: v for k, v in CUBE[0].items() if k != "latitude"},
                "lat": {"start": 47, "end": 49}}),                        # line 2
    "",                                                                   # line 3
    json.dumps({**CUBE[0], "latitude": {"start": 95, "end": 96}}),        # line 4
    json.dumps({**CUBE[0], "latitude": 47.3}),                            # line 5
    json.dumps({**CUBE[0], "variable": ["u10"]}),                         # line 6
    '{"time": {"start": "2023-01-01T02", ',                               # line 7
    json.dumps(CUBE[4]),                                                  # line 8
    "[1, 2]",                                                             # line 9
]
BAD_KEPT = [CUBE[0], CUBE[4]]
ALL_BAD = [json.dumps({"lat": 47}), "not json at all"]


def _quiet_open(path, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), chunks=None, **kw) as ds:
            return ds.load()


def _values(x) -> np.ndarray:
    return np.asarray(getattr(x, "values", x))


def assert_labels_equal(got, expected, where: str) -> None:
    g, e = _values(got), _values(expected)
    assert g.shape == e.shape, f"{where}: shape {g.shape} vs {e.shape}"
    if e.dtype.kind == "O":  # cftime datetimes
        assert list(g.ravel()) == list(e.ravel()), f"{where}: {g} vs {e}"
    else:
        assert np.array_equal(g, e), f"{where}: {g} vs {e}"


def assert_values_equal(got: np.ndarray, expected: np.ndarray, where: str) -> None:
    """Exact for float32 (copied values); float64 decoded from packed integers within 1e-12."""
    if expected.dtype == np.float32:
        assert np.array_equal(got, expected, equal_nan=True), where
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True, err_msg=where)


def check_set(root: Path, ref: xr.Dataset, lines, *, header=None, shape=None,
              zarr_format: int = 3, ids=None, open_kw=None, coords=True,
              attrs=True) -> xr.Dataset:
    """Every sample of every variable of the set at ``root`` equals ``.sel`` of its line on
    ``ref``: through xarray (dims, shape, dtype, values, attributes, per-sample coordinates)
    and as the raw chunk file."""
    got = _quiet_open(root, **(open_kw or {}))
    variables = variables_of(ref, lines[0], header)
    served = {k for k in got.data_vars if not k.startswith("_") and k not in ref.coords}
    assert sorted(served) == sorted(variables), (
        f"{root}: variables {sorted(got.data_vars)}"
    )
    assert got.sizes["sample"] == len(lines)
    for v in variables:
        arr = got[v]
        if attrs:
            assert arr.attrs.get("units") == ref[v].attrs.get("units"), f"{v}: {arr.attrs}"
        assert "scale_factor" not in arr.attrs and "add_offset" not in arr.attrs
        for s, line in enumerate(lines):
            where = f"{root.name} {v} sample {s} ({line})"
            exp = expected_sample(ref, v, line, header, shape)
            sample = arr.isel(sample=s)
            assert sample.dims == exp.dims, f"{where}: dims {sample.dims} vs {exp.dims}"
            assert sample.shape == exp.shape, f"{where}: shape {sample.shape} vs {exp.shape}"
            assert sample.dtype == exp.dtype, f"{where}: dtype {sample.dtype} vs {exp.dtype}"
            assert_values_equal(sample.values, exp.values, where)
            raw = np.fromfile(chunk_file(root, v, s, exp.ndim, zarr_format),
                              dtype=exp.dtype.newbyteorder("<"))
            assert raw.size == exp.size, f"{where}: chunk file holds {raw.size} values"
            assert_values_equal(raw.reshape(exp.shape), exp.values, f"{where}: chunk file")
            if coords:  # the named dimensions and those taken whole
                for dim in set(sel_of(ref, line, header)) | set(exp.dims):
                    assert_labels_equal(got[dim][s], exp[dim], f"{where}: coordinate {dim}")
    if ids is not None:
        assert got["_id"].dims == ("sample",)
        assert_labels_equal(got["_id"], np.asarray(ids), f"{root.name} _id")
    return got


# --------------------------------------------------------------------------
# sources, descriptor files and mounts (module scope)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("samples-src")
    era = make_era(d / "era")
    cal = write_cftime_file(d / "cal360.nc")
    store = write_zarr_store(d / "store.zarr")
    return {"dir": d, "era": era, "era_ref": open_era(era), "cal": cal,
            "cal_ref": open_cftime(cal), "store": store, "store_ref": open_store(store)}


def era_config(path: Path, era_files, samples, *, cache_dir, zarr_format=3) -> Path:
    glob = str(Path(era_files[0]).parent / "era_*.nc")
    return write_samples_config(path, [{**ERA, "files": glob}], samples,
                                zarr_format=zarr_format, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def era_setup(src, module_mounts):
    """The NetCDF archive with its sets (good, padded, uneven, partly and wholly bad)."""
    work = module_mounts.new_dir("era")
    write_jsonl(work / "cube.jsonl", CUBE)
    write_jsonl(work / "maps.jsonl", MAPS, MAPS_HEADER)
    write_jsonl(work / "padded.jsonl", PADDED, PADDED_HEADER)
    write_jsonl(work / "uneven.jsonl", UNEVEN)
    write_jsonl(work / "bad.jsonl", BAD)
    write_jsonl(work / "allbad.jsonl", ALL_BAD)
    sets = [{"name": f"sets/{n}", "from": "era", "descriptors": f"{n}.jsonl"}
            for n in ("cube", "maps", "padded", "uneven", "bad", "allbad", "missing")]
    config = era_config(work / "atlasfs.toml", src["era"], sets, cache_dir=work / "cache")
    return {"config": config, "mount": module_mounts.mount_config(config, work / "cache")}


@pytest.fixture(scope="module")
def era_tree_run(atlasfs_bin, era_setup):
    res = run_atlasfs(atlasfs_bin, "tree", era_setup["config"], timeout=120)
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def era_tree(era_tree_run) -> str:
    """What `atlasfs tree` prints: the tree and the notes on bad lines."""
    return era_tree_run.stdout


# --------------------------------------------------------------------------
# 1. NetCDF: every sample equals .sel, coordinates, _-keys, chunk files


def test_netcdf_samples_equal_sel(era_setup, src):
    m = era_setup["mount"]
    got = check_set(m / "sets/cube", src["era_ref"], CUBE, ids=[101, 102, 103, 104, 105])
    assert got["_id"].dtype == np.int64
    assert list(got["_split"].values) == [line["_split"] for line in CUBE]
    assert got["t2m"].attrs["long_name"] == "2 metre temperature"
    assert got["t2m"].encoding["chunks"] == (1, 3, 3, 3)
    # the time coordinate decodes to the selection's datetimes
    assert got["time"].dims == ("sample", "time") and got["time"].dtype.kind == "M"
    meta = got.attrs["atlas_samples"]
    assert meta["from"] == "era" and meta["descriptors"] == "cube.jsonl"
    assert meta["samples"] == len(CUBE) and meta["lines_left_out"] == 0
    assert re.fullmatch(r"[0-9a-f]{8,}", meta["descriptor_hash"]), meta
    assert re.fullmatch(r"[0-9a-f]{8,}", meta["source_fingerprint"]), meta


def test_time_scalar_drops_the_dimension(era_setup, src):
    m = era_setup["mount"]
    got = check_set(m / "sets/maps", src["era_ref"], MAPS, header=MAPS_HEADER,
                    ids=["a", "b", "c"])
    assert got["t2m"].dims == ("sample", "latitude", "longitude")
    assert got["time"].dims == ("sample",)
    assert list(got["time"].values) == [np.datetime64(line["time"], "ns") for line in MAPS]


def test_netcdf_samples_zarr_v2(src, module_mounts):
    work = module_mounts.new_dir("era-v2")
    write_jsonl(work / "cube.jsonl", CUBE)
    config = era_config(work / "atlasfs.toml", src["era"],
                        [{"name": "sets/cube", "from": "era", "descriptors": "cube.jsonl"}],
                        cache_dir=work / "cache", zarr_format=2)
    m = module_mounts.mount_config(config, work / "cache")
    check_set(m / "sets/cube", src["era_ref"], CUBE, zarr_format=2,
              ids=[101, 102, 103, 104, 105])


# --------------------------------------------------------------------------
# 2. a 360_day calendar, selected with ISO strings such as 2001-02-30


def test_cftime_360_day_samples(src, module_mounts):
    work = module_mounts.new_dir("cal")
    write_jsonl(work / "cal.jsonl", CAL360)
    config = write_samples_config(
        work / "atlasfs.toml", [{"name": "cal", "files": str(src["cal"])}],
        [{"name": "sets/cal", "from": "cal", "descriptors": "cal.jsonl"}],
        cache_dir=work / "cache")
    m = module_mounts.mount_config(config, work / "cache")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    got = check_set(m / "sets/cal", src["cal_ref"], CAL360,
                    open_kw={"decode_times": coder})
    assert got["time"].attrs.get("calendar", got["time"].encoding.get("calendar")) == "360_day"
    assert [t.day for t in got["time"].values[0]] == [28, 29, 30]


# --------------------------------------------------------------------------
# 3. a Zarr v3 store, local and on object storage (descriptors there too)


@pytest.fixture(scope="module")
def zarr_mount(src, module_mounts, s3_server, tmp_path_factory):
    work = module_mounts.new_dir("zarr")
    write_jsonl(work / "boxes.jsonl", BOXES)
    bucket = s3_server.create_bucket("samples")
    s3_server.upload_tree(bucket, "era.zarr", src["store"])
    s3_server.upload_file(bucket, "boxes.jsonl", work / "boxes.jsonl")
    storage = storage_table(s3_server.endpoint)
    config = write_samples_config(
        work / "atlasfs.toml",
        [{"name": "store", "zarr": str(src["store"])},
         {"name": "s3store", "zarr": s3_url(bucket, "era.zarr"), "storage": storage}],
        [{"name": "sets/boxes", "from": "store", "descriptors": "boxes.jsonl"},
         {"name": "sets/s3boxes", "from": "s3store",
          "descriptors": s3_url(bucket, "boxes.jsonl"), "storage": storage}],
        cache_dir=work / "cache")
    env = atlasfs_env(config_dir=tmp_path_factory.mktemp("aws"))
    return module_mounts.mount_config(config, work / "cache", env=env)


@pytest.mark.parametrize("name", ["boxes", "s3boxes"])
def test_zarr_store_samples(zarr_mount, src, name):
    got = check_set(zarr_mount / f"sets/{name}", src["store_ref"], BOXES, ids=[1, 2, 3])
    assert got.attrs["atlas_samples"]["samples"] == len(BOXES)


# --------------------------------------------------------------------------
# 4. a fixed sample shape: pad and crop; without them differing lines are left out


def test_pad_and_crop_to_the_header_shape(era_setup, src):
    m = era_setup["mount"]
    got = check_set(m / "sets/padded", src["era_ref"], PADDED, header=PADDED_HEADER,
                    shape=PADDED_SHAPE, coords=False)
    assert dict(got["t2m"].isel(sample=0).sizes) == PADDED_SHAPE
    # the padding is NaN at the end: sample 1 selects 2 times and 2 latitudes
    assert np.isnan(got["t2m"].values[1, 2:, :, :]).all()
    assert np.isnan(got["t2m"].values[1, :, 2:, :]).all()
    assert not np.isnan(got["t2m"].values[1, :2, :2, :]).all()


def test_lines_of_another_shape_are_reported_and_left_out(era_setup, era_tree, src):
    note = ('samples sets/uneven: uneven.jsonl lines 2, 4: sample shape '
            '{latitude: 2, longitude: 3, time: 3} differs from '
            '{latitude: 3, longitude: 3, time: 3} (line 1); set "pad" or "crop" in the header')
    assert note in era_tree, era_tree
    kept = [UNEVEN[i] for i in UNEVEN_KEPT]
    got = check_set(era_setup["mount"] / "sets/uneven", src["era_ref"], kept,
                    ids=[line["_id"] for line in kept])
    meta = got.attrs["atlas_samples"]
    assert meta["samples"] == 3 and meta["lines_left_out"] == 2


# --------------------------------------------------------------------------
# 5. bad lines: reported with file and line number; a wholly bad set is left out


def _note(tree: str, prefix: str) -> str:
    found = [line for line in tree.splitlines() if prefix in line]
    assert len(found) == 1, f"no single line with {prefix!r} in:\n{tree}"
    return found[0][found[0].index(prefix) + len(prefix):]


def test_bad_lines_are_reported_with_file_and_line(era_setup, era_tree, src):
    head = "samples sets/bad: bad.jsonl line"
    rest = _note(era_tree, f'{head} 2: unknown coordinate "lat" (coordinates: ')
    assert sorted(rest.rstrip(")").split(", ")) == ["latitude", "longitude", "time"], rest
    assert f"{head} 4: no label of latitude lies in [95, 96]" in era_tree, era_tree
    assert f"{head} 5: latitude has no label 47.3" in era_tree, era_tree
    rest = _note(era_tree, f'{head} 6: variable "u10" is not in era (variables: ')
    assert sorted(rest.rstrip(")").split(", ")) == sorted(ERA_VARS), rest
    _note(era_tree, f"{head} 7: not a JSON object: ")
    _note(era_tree, f"{head} 9: not a JSON object: ")
    for ok in (1, 3, 8):
        assert f"{head} {ok}:" not in era_tree, era_tree
    got = check_set(era_setup["mount"] / "sets/bad", src["era_ref"], BAD_KEPT,
                    ids=[101, 105])
    assert got.attrs["atlas_samples"]["lines_left_out"] == 6


def test_wholly_bad_set_is_left_out_and_the_rest_mounts(era_setup, era_tree_run, src):
    # reported as a left-out dataset is: a warning naming the set and its first errors
    warning = _note(era_tree_run.stderr, "atlasfs: warning: left out samples sets/allbad: ")
    assert 'allbad.jsonl line 1: unknown coordinate "lat"' in warning, warning
    assert "allbad.jsonl line 2: not a JSON object: " in warning, warning
    m = era_setup["mount"]
    assert "left out samples sets/allbad: " in m.output + m.log_text(), m.output
    # a descriptor file that cannot be read: that set is left out too
    warning = _note(era_tree_run.stderr, "atlasfs: warning: left out samples sets/missing: ")
    assert "missing.jsonl" in warning, warning
    assert not (m / "sets/missing").exists()
    assert not (m / "sets/allbad").exists()
    assert "allbad" not in {p.name for p in (m / "sets").iterdir()}
    got = _quiet_open(m / "era")
    np.testing.assert_array_equal(got["t2m"].values, src["era_ref"]["t2m"].values)
    check_set(m / "sets/bad", src["era_ref"], BAD_KEPT)


def test_from_naming_nothing_is_a_config_error(atlasfs_bin, src, tmp_path):
    write_jsonl(tmp_path / "cube.jsonl", CUBE)
    config = era_config(tmp_path / "atlasfs.toml", src["era"],
                        [{"name": "sets/cube", "from": "nowhere", "descriptors": "cube.jsonl"}],
                        cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=120)
    assert res.returncode != 0, res.stdout
    assert "samples sets/cube" in res.stderr and '"nowhere"' in res.stderr, res.stderr


# --------------------------------------------------------------------------
# a view as the source


def test_samples_of_an_expression_view(src, module_mounts):
    work = module_mounts.new_dir("view")
    header = {"atlas_samples": 1, "variable": ["t2m_c"]}
    write_jsonl(work / "cube.jsonl", CUBE, header)
    glob = str(Path(src["era"][0]).parent / "era_*.nc")
    config = write_samples_config(
        work / "atlasfs.toml", [{**ERA, "files": glob}],
        [{"name": "sets/celsius", "from": "celsius", "descriptors": "cube.jsonl"}],
        views=[{"name": "celsius", "from": "era", "variables": ["t2m"],
                "expr": {"t2m_c": "t2m - 273.15"}}],
        cache_dir=work / "cache")
    m = module_mounts.mount_config(config, work / "cache")
    ref = src["era_ref"]
    view_ref = xr.Dataset({"t2m_c": ref["t2m"] - 273.15, "t2m": ref["t2m"]})
    assert view_ref["t2m_c"].dtype == np.float32
    check_set(m / "sets/celsius", view_ref, CUBE, header=header, attrs=False,
              ids=[line["_id"] for line in CUBE])


# --------------------------------------------------------------------------
# 6. the cache: a remount computes nothing; a rewritten file recomputes its samples only


def _cache_entries(cache: Path) -> dict[str, int]:
    """The disk cache's entries: file name -> size (the chunk's bytes)."""
    root = cache / "chunks"
    if not root.is_dir():
        return {}
    return {p.name: p.stat().st_size for p in root.rglob("*")
            if p.is_file() and "tmp" not in p.relative_to(root).parts}


def _stats(bin_path, config) -> dict:
    res = run_atlasfs(bin_path, "cache", "stats", config, "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _computed(mount_counters: dict) -> int:
    if "computed" in mount_counters:
        return mount_counters["computed"]
    return mount_counters["cache"]["computed"]


def _finished_computed(bin_path, config) -> int:
    """Chunks computed by the last mount (read after it unmounted: its final report)."""
    m = _stats(bin_path, config)["mount"]
    assert m and m["finished"], m
    return _computed(m)


def _read_all(root: Path, ref: xr.Dataset, lines, which=None) -> None:
    """Reads samples (``which``, default all) of every variable as chunk files and checks them."""
    for s in (range(len(lines)) if which is None else which):
        for v in variables_of(ref, lines[s]):
            exp = expected_sample(ref, v, lines[s])
            raw = np.fromfile(chunk_file(root, v, s, exp.ndim), dtype=exp.dtype.newbyteorder("<"))
            assert raw.size == exp.size and np.allclose(raw, exp.values.ravel(), rtol=1e-12,
                                                        equal_nan=True), f"{root} {v} {s}"


def _provenance(root: Path) -> dict:
    """The set's ``atlas_samples`` attribute, read from its metadata alone (no chunk read)."""
    return json.loads((root / "zarr.json").read_text())["attributes"]["atlas_samples"]


def test_remount_computes_nothing_and_a_rewritten_file_recomputes_its_samples(
        atlasfs_bin, mounts, src, tmp_path):
    era = make_era(tmp_path / "era")
    write_jsonl(tmp_path / "cube.jsonl", CUBE)
    write_jsonl(tmp_path / "rev.jsonl", CUBE[::-1])
    cache = tmp_path / "cache"
    config = era_config(tmp_path / "atlasfs.toml", era,
                        [{"name": "sets/cube", "from": "era", "descriptors": "cube.jsonl"},
                         {"name": "sets/rev", "from": "era", "descriptors": "rev.jsonl"}],
                        cache_dir=cache)
    ref = open_era(era)
    chunks_per_set = len(CUBE) * len(ERA_VARS)

    m = mounts.mount_config(config, cache)  # epoch 1: computes
    _read_all(m / "sets/cube", ref, CUBE)
    m.unmount()
    assert _finished_computed(atlasfs_bin, config) >= chunks_per_set

    m = mounts.mount_config(config, cache)  # epoch 2, and the same lines reordered: cached
    fingerprint = _provenance(m / "sets/cube")["source_fingerprint"]
    _read_all(m / "sets/cube", ref, CUBE)
    _read_all(m / "sets/rev", ref, CUBE[::-1])
    m.unmount()
    assert _finished_computed(atlasfs_bin, config) == 0

    write_era_file(era[2], 2, bump=50.0)  # new values in the hours 8..11
    new_ref = open_era(era)
    assert not np.allclose(new_ref["t2m"].values[8:], ref["t2m"].values[8:], equal_nan=True)
    untouched = [s for s in range(len(CUBE)) if s not in CUBE_TOUCHING_LAST_FILE]
    touched_chunks = [SAMPLE_BYTES[v] for _ in CUBE_TOUCHING_LAST_FILE for v in ERA_VARS]
    before = _cache_entries(cache)
    m = mounts.mount_config(config, cache)
    # The set's attributes record the versions of its sources.
    rewritten = _provenance(m / "sets/cube")["source_fingerprint"]
    assert rewritten != fingerprint
    _read_all(m / "sets/cube", new_ref, CUBE, untouched)
    _read_all(m / "sets/cube", new_ref, CUBE, CUBE_TOUCHING_LAST_FILE)
    _read_all(m / "sets/rev", new_ref, CUBE[::-1])  # the same samples: nothing more computed
    m.unmount()
    assert _finished_computed(atlasfs_bin, config) >= len(touched_chunks)
    # Recomputed samples are new cache entries (their keys hold era_2.nc's new version):
    # exactly one per variable of the 2 lines touching era_2.nc, recognised by their size.
    new_entries = sorted(size for name, size in _cache_entries(cache).items()
                         if name not in before and size in SAMPLE_BYTES.values())
    assert new_entries == sorted(touched_chunks), new_entries


# --------------------------------------------------------------------------
# 7. four reader processes, every sample in random order


def test_four_reader_processes_in_random_order(era_setup, src, tmp_path):
    m = era_setup["mount"]
    ref = src["era_ref"]
    jobs = []
    for name, lines, header in (("cube", CUBE, None), ("maps", MAPS, MAPS_HEADER)):
        for s, line in enumerate(lines):
            for v in variables_of(ref, line, header):
                exp = expected_sample(ref, v, line, header).values
                path = tmp_path / f"{name}-{v}-{s}.npy"
                np.save(path, exp)
                jobs.append((str(chunk_file(m / "sets" / name, v, s, exp.ndim)),
                             exp.dtype.newbyteorder("<").str, exp.shape, str(path)))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(read_samples_in_random_order, [(seed, jobs) for seed in range(4)])
    assert results == [[], [], [], []], results


# --------------------------------------------------------------------------
# 8. atlasfs warm --shard fills the cache


def test_warm_shards_cache_every_sample(atlasfs_bin, mounts, src, tmp_path):
    write_jsonl(tmp_path / "cube.jsonl", CUBE)
    cache = tmp_path / "cache"
    config = era_config(tmp_path / "atlasfs.toml", src["era"],
                        [{"name": "sets/cube", "from": "era", "descriptors": "cube.jsonl"}],
                        cache_dir=cache)
    res = run_atlasfs(atlasfs_bin, "warm", config, "sets/cube", "--shard", "0/2", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    half = _cache_entries(cache)
    res = run_atlasfs(atlasfs_bin, "warm", config, "sets/cube", "--shard", "1/2", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 0 < len(half) < len(_cache_entries(cache))
    m = mounts.mount_config(config, cache)
    _read_all(m / "sets/cube", src["era_ref"], CUBE)
    m.unmount()
    assert _finished_computed(atlasfs_bin, config) == 0


def test_the_headers_dims_order_the_sample_axes(atlasfs_bin, mounts, tmp_path):
    """``"dims"`` in the header puts a sample's axes in that order (the others follow), as
    ``.sel(...).transpose(*dims)``; the chunk file is in the same order. A name that is no
    dimension of the set leaves the set out."""
    era = make_era(tmp_path / "era")
    header = {"atlas_samples": 1, "dims": ["longitude", "time"]}
    write_jsonl(tmp_path / "cube.jsonl", CUBE, header=header)
    write_jsonl(tmp_path / "wrong.jsonl", CUBE, header={"atlas_samples": 1, "dims": ["lon"]})
    cache = tmp_path / "cache"
    config = era_config(tmp_path / "atlasfs.toml", era,
                        [{"name": "sets/cube", "from": "era", "descriptors": "cube.jsonl"},
                         {"name": "sets/wrong", "from": "era", "descriptors": "wrong.jsonl"}],
                        cache_dir=cache)
    ref = open_era(era)
    m = mounts.mount_config(config, cache)
    got = _quiet_open(m / "sets/cube")
    assert not (m / "sets/wrong").exists()
    for v in ERA_VARS:
        for s, line in enumerate(CUBE):
            exp = expected_sample(ref, v, line)
            exp = exp.transpose(*[d for d in ("longitude", "time") if d in exp.dims],
                                *[d for d in exp.dims if d not in ("longitude", "time")])
            sample = got[v].isel(sample=s)
            where = f"{v} sample {s}"
            assert sample.dims == exp.dims, f"{where}: {sample.dims} vs {exp.dims}"
            assert_values_equal(sample.values, exp.values, where)
            raw = np.fromfile(chunk_file(m / "sets/cube", v, s, exp.ndim),
                              dtype=exp.dtype.newbyteorder("<"))
            assert_values_equal(raw.reshape(exp.shape), exp.values, f"{where}: chunk file")
