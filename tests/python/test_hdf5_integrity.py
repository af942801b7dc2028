"""HDF5 integrity: user blocks, chunk addresses that point where no data can be, and the
checksums HDF5 stores.

Semantics under test (DESIGN.md "Never partial, never corrupt"):

- an HDF5 / NetCDF-4 file behind a user block (512, 4096 bytes before the superblock) serves
  every variable exactly as netCDF4-python reads the same file — local and on object storage;
- a chunk whose index entry points at address 0, into the superblock, past the end of the file
  or onto metadata, or records an impossible length, fails its read with EIO and a daemon log
  line naming the file, the variable and the chunk; every other chunk and variable still reads;
- a Fletcher-32 mismatch fails that chunk with EIO;
- a flipped byte in a checksummed structure (fixed/extensible array blocks, v2 B-tree nodes,
  v2 object headers) never yields a wrong value: the read fails with EIO, or the variable
  (or the file) is left out.

Expected values come from netCDF4-python reading the original (or prepended) files.
"""

from __future__ import annotations

import struct
import warnings

import h5py
import netCDF4
import numpy as np
import pytest
import zarr

import nc_layout
from conftest import is_eio
from s3server import atlasfs_env, s3_url, storage_table

USER_BLOCKS = [512, 4096]


# --------------------------------------------------------------------------
# fixtures written with netCDF4-python and h5py


def write_nc4(path) -> None:
    """NetCDF-4 (default library version): chunked zlib+shuffle along an unlimited dimension,
    contiguous, Fletcher-32, and a variable in a group."""
    rng = np.random.default_rng(11)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("t", None)
        ds.createDimension("y", 20)
        ds.createDimension("x", 30)
        ds.createVariable("x", "f8", ("x",))[:] = np.arange(30) * 0.5
        z = ds.createVariable("z", "f4", ("t", "y", "x"), zlib=True, shuffle=True,
                              chunksizes=(1, 10, 15))
        z[0:4] = rng.standard_normal((4, 20, 30)).astype("f4")
        c = ds.createVariable("c", "f8", ("y", "x"), contiguous=True)
        c[:] = rng.standard_normal((20, 30))
        f = ds.createVariable("f", "i4", ("y", "x"), fletcher32=True, chunksizes=(5, 30))
        f[:] = rng.integers(-1000, 1000, (20, 30))
        g = ds.createGroup("g")
        g.createVariable("u", "i2", ("y", "x"), chunksizes=(10, 10))[:] = \
            rng.integers(-300, 300, (20, 30))


def write_latest(path, **kw) -> None:
    """HDF5 with the newest formats (superblock v3, v2 object headers): fixed-array,
    extensible-array and v2 B-tree chunk indexes, filtered and not, and contiguous data."""
    rng = np.random.default_rng(12)
    with h5py.File(path, "w", libver="latest", **kw) as h:
        h.create_dataset("fa", data=rng.standard_normal((20, 30)).astype("f4"), chunks=(5, 10))
        h.create_dataset("fac", data=rng.standard_normal((20, 30)).astype("f4"),
                         chunks=(5, 10), compression="gzip", shuffle=True)
        # 2048 chunks: a fixed array of two pages
        h.create_dataset("fap", data=rng.standard_normal(2048).astype("f4"), chunks=(1,))
        h.create_dataset("ea", data=rng.standard_normal((40, 30)), chunks=(2, 10),
                         maxshape=(None, 30))
        h.create_dataset("eaz", data=rng.standard_normal((40, 30)), chunks=(2, 10),
                         maxshape=(None, 30), compression="gzip", fletcher32=True)
        h.create_dataset("bt2", data=rng.standard_normal((20, 30)), chunks=(5, 10),
                         maxshape=(None, None))
        h.create_dataset("cont", data=rng.standard_normal((20, 30)))


def prepend(src, dst, size: int) -> None:
    dst.write_bytes(b"\0" * size + src.read_bytes())


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """name -> path: the two kinds, each as written and behind 512- and 4096-byte user
    blocks, and a file libhdf5 itself wrote with a 1024-byte user block."""
    d = tmp_path_factory.mktemp("integrity")
    out = {"nc4": d / "nc4.nc", "latest": d / "latest.h5"}
    write_nc4(out["nc4"])
    write_latest(out["latest"])
    for kind in ("nc4", "latest"):
        for size in USER_BLOCKS:
            out[f"{kind}_ub{size}"] = d / f"{kind}_ub{size}.nc"
            prepend(out[kind], out[f"{kind}_ub{size}"], size)
    out["latest_native_ub1024"] = d / "latest_native_ub1024.h5"
    write_latest(out["latest_native_ub1024"], userblock_size=1024)
    return out


# --------------------------------------------------------------------------
# reading both sides


def reference(path) -> dict:
    """Every variable of a file as netCDF4-python reads it (raw, unmasked), by path."""
    out = {}

    def walk(group, prefix):
        group.set_auto_maskandscale(False)
        for name, var in group.variables.items():
            out[prefix + name] = np.asarray(var[...])
        for name, child in group.groups.items():
            walk(child, f"{prefix}{name}/")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with netCDF4.Dataset(path) as ds:
            walk(ds, "")
    return out


def served_group(mount, name):
    return zarr.open_group(str(mount / name), mode="r")


def has_array(group, path) -> bool:
    try:
        group[path]
        return True
    except KeyError:
        return False


def served_chunks(array):
    """Each served chunk of ``array``: its slices."""
    grid = [range(0, n, c) for n, c in zip(array.shape, array.chunks)]
    for starts in np.ndindex(*[len(g) for g in grid]):
        yield tuple(slice(g[i], min(g[i] + c, n))
                    for g, i, c, n in zip(grid, starts, array.chunks, array.shape))


def overlaps(slices, box) -> bool:
    return all(s.start < b.stop and b.start < s.stop for s, b in zip(slices, box))


def assert_reads_eio(array, where=()):
    with pytest.raises(Exception) as info:
        array[where]
    assert is_eio(info.value), repr(info.value)


def assert_only_box_fails(array, expected, box):
    """Every served chunk overlapping ``box`` fails with EIO; every other equals ``expected``."""
    failed = 0
    for slices in served_chunks(array):
        if overlaps(slices, box):
            assert_reads_eio(array, slices)
            failed += 1
        else:
            np.testing.assert_array_equal(array[slices], expected[slices], err_msg=str(slices))
    assert failed, "no served chunk covers the corrupted one"


# --------------------------------------------------------------------------
# user blocks


@pytest.fixture(scope="module")
def user_block_mount(module_mounts, sources):
    return module_mounts.mount([{"name": name, "files": str(path)}
                                for name, path in sources.items()])


@pytest.mark.parametrize("name", ["nc4", "latest"]
                         + [f"{k}_ub{n}" for k in ("nc4", "latest") for n in USER_BLOCKS]
                         + ["latest_native_ub1024"])
def test_every_variable_equals_netcdf4_python(user_block_mount, sources, name):
    expected = reference(sources[name])
    assert {"z", "c", "f", "g/u"} <= set(expected) or {"fa", "ea", "bt2", "cont"} <= set(expected)
    group = served_group(user_block_mount, name)
    for path, values in expected.items():
        np.testing.assert_array_equal(group[path][...], values, err_msg=f"{name}:{path}")


def test_user_block_granule_on_object_storage(mounts, sources, s3_server, tmp_path):
    bucket = s3_server.create_bucket("userblock")
    for name in ("nc4_ub512", "latest_ub4096"):
        s3_server.upload_file(bucket, f"{name}.nc", sources[name])
    storage = storage_table(s3_server.endpoint)
    m = mounts.mount([{"name": name, "files": s3_url(bucket, f"{name}.nc"), "storage": storage}
                      for name in ("nc4_ub512", "latest_ub4096")],
                     env=atlasfs_env(config_dir=tmp_path / "aws"))
    for name in ("nc4_ub512", "latest_ub4096"):
        group = served_group(m, name)
        for path, values in reference(sources[name]).items():
            np.testing.assert_array_equal(group[path][...], values, err_msg=f"{name}:{path}")


# --------------------------------------------------------------------------
# impossible chunk addresses and lengths (the v1 B-tree of a NetCDF-4 file)

CORRUPT_CHUNK = (1, 0, 1)  # of z, chunks (1, 10, 15): t = 1, y 0..10, x 15..30
CORRUPT_BOX = (slice(1, 2), slice(0, 10), slice(15, 30))


def btree_entry(data: bytes, path, var: str, index, user_block: int) -> tuple[int, int]:
    """(position of the chunk's B-tree key, its key length): the key (size, filter mask,
    element offsets) is followed by the chunk's address, relative to the superblock."""
    with h5py.File(path) as h:
        d = h[var]
        coords = tuple(i * c for i, c in zip(index, d.chunks))
        info = d.id.get_chunk_info_by_coord(coords)
    key = struct.pack("<II", info.size, info.filter_mask) + struct.pack(
        f"<{len(coords) + 1}Q", *coords, 0)
    entry = key + struct.pack("<Q", info.byte_offset - user_block)
    assert data.count(entry) == 1, "the chunk's B-tree entry is not unique"
    return data.find(entry), len(key)


def corrupt_entry(src, dst, case: str, user_block: int = 0) -> None:
    data = bytearray(src.read_bytes())
    pos, key_len = btree_entry(bytes(data), src, "z", CORRUPT_CHUNK, user_block)
    field = pos + key_len
    if case == "zero":
        data[field:field + 8] = struct.pack("<Q", 0)
    elif case == "superblock":
        data[field:field + 8] = struct.pack("<Q", 16)
    elif case == "past_eof":
        data[field:field + 8] = struct.pack("<Q", len(data) + (1 << 20))
    elif case == "onto_data":  # into the contiguous variable c
        with h5py.File(src) as h:
            c = h["c"].id.get_offset() - user_block
        data[field:field + 8] = struct.pack("<Q", c + 64)
    elif case == "metadata":  # onto the B-tree node holding the entry
        node = data.rfind(b"TREE", 0, pos) - user_block
        assert node >= 0
        data[field:field + 8] = struct.pack("<Q", node)
    elif case == "size_zero":
        data[pos:pos + 4] = struct.pack("<I", 0)
    elif case == "size_huge":
        data[pos:pos + 4] = struct.pack("<I", 0x7FFF_FFF0)
    else:
        raise ValueError(case)
    dst.write_bytes(bytes(data))


# case: (what the log line says, the other variables that fail too)
ADDRESS_CASES = {
    "zero": ("superblock", set()),
    "superblock": ("superblock", set()),
    "past_eof": ("past the end of the file", set()),
    "metadata": ("metadata", set()),
    # which of two overlapping ranges is right cannot be told: both fail
    "onto_data": ("overlap the data of variable /c", {"c"}),
    "size_zero": ("zero-length", set()),
    "size_huge": ("", set()),
    "zero_ub512": ("superblock", set()),
}


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory, sources):
    d = tmp_path_factory.mktemp("corrupted")
    out = {}
    for case in ADDRESS_CASES:
        if case.endswith("_ub512"):
            src, kind, ub = sources["nc4_ub512"], case.removesuffix("_ub512"), 512
        else:
            src, kind, ub = sources["nc4"], case, 0
        out[case] = d / f"{case}.nc"
        corrupt_entry(src, out[case], kind, ub)
    return out


@pytest.fixture(scope="module")
def corrupted_mount(module_mounts, corrupted):
    return module_mounts.mount([{"name": case, "files": str(path)}
                                for case, path in corrupted.items()])


@pytest.mark.parametrize("case", list(ADDRESS_CASES))
def test_impossible_chunk_fails_alone_with_eio(corrupted_mount, corrupted, sources, case):
    original = sources["nc4_ub512" if case.endswith("_ub512") else "nc4"]
    expected = reference(original)
    said, also_failing = ADDRESS_CASES[case]
    group = served_group(corrupted_mount, case)
    assert_only_box_fails(group["z"], expected["z"], CORRUPT_BOX)
    for path in ("c", "f", "g/u", "x"):
        if path in also_failing:
            assert_reads_eio(group[path])
        else:
            np.testing.assert_array_equal(group[path][...], expected[path], err_msg=path)
    log = corrupted_mount.log_text()
    lines = [line for line in log.splitlines()
             if str(corrupted[case]) in line and "variable z chunk [1, 0, 1]" in line]
    assert lines, log[-3000:]
    assert any(said in line for line in lines), lines


def serve_bytes(mounts, path, data):
    """Writes `data` to `path` and mounts it as dataset d: (path, mount, its group)."""
    path.write_bytes(bytes(data))
    m = mounts.mount([{"name": "d", "files": str(path)}])
    return path, m, served_group(m, "d")


@pytest.mark.parametrize("offsets", [(2, 0, 15, 0), (1, 0, 17, 0), (1, 0, 15, 8)],
                         ids=["onto_another_chunk", "off_the_grid", "trailing_offset"])
def test_moved_chunk_key_never_serves_fill_or_another_chunk(mounts, sources, tmp_path, offsets):
    """A B-tree key whose element offsets were changed leaves its own chunk without an entry
    (which would read as the fill value): the variable's chunk index is refused."""
    src = sources["nc4"]
    data = bytearray(src.read_bytes())
    pos, key_len = btree_entry(bytes(data), src, "z", CORRUPT_CHUNK, 0)
    data[pos + 8:pos + key_len] = struct.pack("<4Q", *offsets)
    path, m, group = serve_bytes(mounts, tmp_path / "moved.nc", data)
    expected = reference(src)
    assert_reads_eio(group["z"], CORRUPT_BOX)
    for slices in served_chunks(group["z"]):  # the rest fails or is right, never wrong
        try:
            values = group["z"][slices]
        except Exception as e:  # noqa: BLE001
            assert is_eio(e), repr(e)
            continue
        np.testing.assert_array_equal(values, expected["z"][slices])
    for path_ in ("c", "f", "g/u"):
        np.testing.assert_array_equal(group[path_][...], expected[path_], err_msg=path_)
    assert any("chunk index is corrupt" in line and str(path) in line and "variable z" in line
               for line in m.log_text().splitlines()), m.log_text()[-3000:]


@pytest.mark.parametrize("case", ["zero", "onto_data"])
def test_small_variable_at_an_impossible_address_is_not_served(mounts, tmp_path, case):
    """Small variables are read into the catalog when indexed; one whose contiguous address is
    impossible must fail like any other, not serve the bytes read from there."""
    src = tmp_path / "small.h5"
    rng = np.random.default_rng(13)
    with h5py.File(src, "w", libver="earliest") as h:  # v1 object headers, no checksums
        h.create_dataset("small", data=rng.standard_normal(30))  # 240 bytes: inlined
        h.create_dataset("big", data=rng.standard_normal((20, 30)))
        h.create_dataset("other", data=rng.standard_normal((20, 30)), chunks=(10, 10))
    data = bytearray(src.read_bytes())
    with h5py.File(src) as h:
        small, big = h["small"].id.get_offset(), h["big"].id.get_offset()
    field = struct.pack("<QQ", small, 240)  # the layout message: address, size
    assert data.count(field) == 1
    pos = data.find(field)
    data[pos:pos + 8] = struct.pack("<Q", 0 if case == "zero" else big + 16)
    path = tmp_path / f"{case}.h5"
    path.write_bytes(bytes(data))
    expected = reference(src)
    m = mounts.mount([{"name": "d", "files": str(path)}])
    group = served_group(m, "d")
    assert_reads_eio(group["small"])
    if case == "onto_data":  # which of the two is right cannot be told
        assert_reads_eio(group["big"])
    else:
        np.testing.assert_array_equal(group["big"][...], expected["big"])
    np.testing.assert_array_equal(group["other"][...], expected["other"])


# --------------------------------------------------------------------------
# checksums


def test_fletcher32_mismatch_fails_that_chunk(mounts, sources, tmp_path):
    src = sources["nc4"]
    with h5py.File(src) as h:
        info = h["f"].id.get_chunk_info_by_coord((10, 0))  # rows 10..15
    data = bytearray(src.read_bytes())
    data[info.byte_offset + 17] ^= 0x40
    path = tmp_path / "fletcher.nc"
    path.write_bytes(bytes(data))
    expected = reference(src)
    m = mounts.mount([{"name": "d", "files": str(path)}])
    group = served_group(m, "d")
    assert_only_box_fails(group["f"], expected["f"], (slice(10, 15), slice(0, 30)))
    np.testing.assert_array_equal(group["z"][...], expected["z"])
    assert any("Fletcher-32" in line and str(path) in line and "variable f" in line
               for line in m.log_text().splitlines()), m.log_text()[-3000:]


def shift_address(data: bytearray, path, var: str, coords) -> None:
    """Moves the (unique) stored address of one chunk of ``var`` by 8 bytes, so that
    without a checksum check it would read shifted values."""
    with h5py.File(path) as h:
        address = h[var].id.get_chunk_info_by_coord(coords).byte_offset
    packed = struct.pack("<Q", address)
    assert data.count(packed) == 1, f"the address of {var} {coords} is not unique"
    pos = data.find(packed)
    data[pos:pos + 8] = struct.pack("<Q", address + 8)


# (variable, chunk coordinates, box of the chunk, a box that must still read): entries in a
# fixed-array data block and in one of its pages, in an extensible array's index block and in
# one of its data blocks. A block holding the whole index fails the whole variable; a page or
# data block fails the chunks it locates only.
INDEX_CASES = {
    "fixed_array_data_block": ("fa", (5, 10), (slice(5, 10), slice(10, 20)), None),
    "fixed_array_page": ("fap", (1500,), (slice(1500, 1501),), (slice(0, 1024),)),
    "extensible_array_index_block": ("ea", (0, 0), (slice(0, 2), slice(0, 10)), None),
    "extensible_array_data_block": ("ea", (20, 20), (slice(20, 22), slice(20, 30)),
                                    (slice(0, 2), slice(0, 30))),
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_corrupt_chunk_index_block_is_never_read_as_values(mounts, sources, tmp_path, case):
    var, coords, box, must_read = INDEX_CASES[case]
    src = sources["latest"]
    data = bytearray(src.read_bytes())
    shift_address(data, src, var, coords)
    path = tmp_path / f"{case}.h5"
    path.write_bytes(bytes(data))
    expected = reference(src)
    # Served chunks as small as the native ones along the arrays' first dimension, so a
    # damaged block fails only the served chunks of the native chunks it locates.
    native = {"dim_40": 2, "dim_2048": 1}
    m = mounts.mount([{"name": "d", "files": str(path), "chunks": native}])
    group = served_group(m, "d")
    array = group[var]
    assert_reads_eio(array, box)
    if must_read is not None:
        np.testing.assert_array_equal(array[must_read], expected[var][must_read])
    for slices in served_chunks(array):  # the rest fails or is right, never wrong
        try:
            values = array[slices]
        except Exception as e:  # noqa: BLE001
            assert is_eio(e), repr(e)
            continue
        np.testing.assert_array_equal(values, expected[var][slices])
    for other in ("fac", "eaz", "bt2", "cont", "fa", "ea"):
        if other == var:
            continue
        np.testing.assert_array_equal(group[other][...], expected[other], err_msg=other)
    assert any("checksum mismatch" in line and str(path) in line and f"variable {var}" in line
               for line in m.log_text().splitlines()), m.log_text()[-3000:]


SIGNATURES = [b"OHDR", b"BTHD", b"BTLF", b"FAHD", b"FADB", b"EAHD", b"EAIB", b"EADB"]


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, sources):
    """One copy of the newest-format file per checksummed structure, with one byte flipped
    inside it (after its signature and version)."""
    src = sources["latest"]
    data = src.read_bytes()
    d = tmp_path_factory.mktemp("flipped")
    out = {}
    for sig in SIGNATURES:
        start = 0
        while (pos := data.find(sig, start)) >= 0:
            start = pos + 1
            copy = bytearray(data)
            copy[pos + 9] ^= 0x01
            name = f"{sig.decode().lower()}_{pos}"
            out[name] = d / f"{name}.h5"
            out[name].write_bytes(bytes(copy))
    assert {n.split("_")[0] for n in out} == {s.decode().lower() for s in SIGNATURES}
    return out


def test_flipped_metadata_byte_never_yields_a_wrong_value(module_mounts, sources, flipped):
    expected = reference(sources["latest"])
    m = module_mounts.mount([{"name": name, "files": str(path)}
                             for name, path in flipped.items()])
    unnoticed = []
    for name in flipped:
        try:
            group = served_group(m, name)
        except (KeyError, FileNotFoundError, zarr.errors.GroupNotFoundError):
            continue  # the whole file was refused
        noticed = False
        for var, values in expected.items():
            if not has_array(group, var):
                noticed = True  # left out
                continue
            try:
                served = group[var][...]
            except Exception as e:  # noqa: BLE001
                assert is_eio(e), f"{name}:{var}: {e!r}"
                noticed = True
                continue
            np.testing.assert_array_equal(served, values, err_msg=f"{name}:{var}")
        if not noticed:
            unnoticed.append(name)
    # Every flipped byte lies under a checksum: each must have been noticed, not only survived.
    assert not unnoticed, unnoticed


# --------------------------------------------------------------------------
# chunk B-tree keys out of order, and dataspaces that disagree with their dimensions


def test_swapped_chunk_keys_fail_the_variable(mounts, sources, tmp_path):
    """Two B-tree keys that trade places still name distinct chunks on the grid, but their
    node is out of order, so libhdf5's searches find other chunks than the entries say: the
    variable fails with EIO instead of serving one chunk's values in the other's place."""
    src = sources["nc4"]
    data = bytearray(src.read_bytes())
    a, key_len = btree_entry(bytes(data), src, "z", CORRUPT_CHUNK, 0)
    b, _ = btree_entry(bytes(data), src, "z", (1, 1, 0), 0)
    ka, kb = bytes(data[a + 8:a + key_len]), bytes(data[b + 8:b + key_len])
    data[a + 8:a + key_len], data[b + 8:b + key_len] = kb, ka
    _, m, group = serve_bytes(mounts, tmp_path / "swapped.nc", data)
    expected = reference(src)
    assert_reads_eio(group["z"], CORRUPT_BOX)
    assert_reads_eio(group["z"], (slice(1, 2), slice(10, 20), slice(0, 15)))
    for name in ("c", "f", "g/u"):
        np.testing.assert_array_equal(group[name][...], expected[name], err_msg=name)
    assert any("chunk index is corrupt" in line and "does not follow" in line
               for line in m.log_text().splitlines()), m.log_text()[-3000:]


def test_unlimited_variable_shorter_than_its_dimension_reads_fill(mounts, tmp_path):
    """Variables along an unlimited dimension may hold fewer records than the dimension (the
    longest variable sets its length): the missing records read as fill, as in netCDF4."""
    path = tmp_path / "ragged.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 3)
        ds.createVariable("time", "f8", ("time",))[0:2] = [10.0, 20.0]
        ds.createVariable("v", "i4", ("time", "x"))[0:5] = np.arange(15).reshape(5, 3)
        w = ds.createVariable("w", "f4", ("time", "x"), fill_value=-7.0)
        w[0:3] = np.arange(9, dtype="f4").reshape(3, 3) / 4
    with h5py.File(path) as h:  # the file really is ragged
        assert (h["time"].shape, h["v"].shape, h["w"].shape) == ((2,), (5, 3), (3, 3))
    expected = reference(path)
    assert expected["w"].shape == (5, 3) and expected["w"][4, 0] == np.float32(-7.0)
    m = mounts.mount([{"name": "d", "files": str(path)}])
    group = served_group(m, "d")
    for name in ("time", "v", "w"):
        np.testing.assert_array_equal(group[name][...], expected[name], err_msg=name)


def with_c_dataspace(src, dst, dims, max_dims) -> None:
    """Writes `src` with the first rank-2 dataspace of extents (y, x) = (20, 30) (variable c's)
    made `dims` with maximum `max_dims`, in its checksummed object header."""
    data = bytearray(src.read_bytes())
    space = bytes([2, 2, 1, 1]) + struct.pack("<4Q", 20, 30, 20, 30)
    pos = data.find(space)
    assert pos >= 0
    data[pos + 4:pos + 4 + 32] = struct.pack("<4Q", *dims, *max_dims)
    blocks, _ = nc_layout.hdf5_metadata(bytes(src.read_bytes()))
    block = next((b0, b1) for b0, b1, label in blocks
                 if label.startswith("object header") and b0 < pos < b1)
    nc_layout.reseal(data, block)
    dst.write_bytes(bytes(data))


def test_dataspace_past_its_maximum_leaves_the_file_out(mounts, sources, tmp_path):
    """An extent past the dataspace's own maximum makes libhdf5 refuse the dataset and so
    libnetcdf the file; atlasfs leaves it out, naming the variable, the dimension and both
    lengths, and serves the other datasets."""
    src, path = sources["nc4"], tmp_path / "past_max.nc"
    with_c_dataspace(src, path, (20, 31), (20, 30))
    with pytest.raises(OSError):
        netCDF4.Dataset(path).close()
    m = mounts.mount([{"name": "bad", "files": str(path)}, {"name": "good", "files": str(src)}])
    assert sorted(p.name for p in m.path.iterdir() if p.is_dir()) == ["good"]
    text = m.output + m.log_text()
    assert "variable /c: its HDF5 dataspace has length 31 along dimension x, past its " \
           "maximum 30" in text, text
    expected = reference(src)
    np.testing.assert_array_equal(served_group(m, "good")["c"][...], expected["c"])


@pytest.mark.parametrize("dims", [(12, 30), (20, 34)], ids=["shorter", "longer"])
def test_dataspace_unlike_its_fixed_dimensions_fails_that_variable(mounts, sources, tmp_path,
                                                                   dims):
    """Extents that differ from the variable's fixed dimensions: libnetcdf opens the file but
    the variable's bytes do not lie on its dimensions' grid (netCDF4 fails reads past a shorter
    extent, and reads a longer one through libhdf5's selection): atlasfs fails the variable's
    reads with EIO, naming both lengths, never serving bytes laid out for another shape, and
    serves the rest of the file."""
    src, path = sources["nc4"], tmp_path / "unlike.nc"
    with_c_dataspace(src, path, dims, dims)
    with h5py.File(path) as h:
        assert h["c"].shape == dims
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        if dims[0] < 20:
            with pytest.raises(RuntimeError, match="exceeds dimension bound"):
                ds["c"][...]
        else:  # what libnetcdf reads is not the bytes of a (20, 30) array
            values = ds["c"][...]
            assert values.shape == (20, 30)
            assert not np.array_equal(values, reference(src)["c"])
    expected = reference(src)
    m = mounts.mount([{"name": "d", "files": str(path)}])
    group = served_group(m, "d")
    assert group["c"].shape == (20, 30)
    assert_reads_eio(group["c"])
    for name in ("z", "f", "g/u"):
        np.testing.assert_array_equal(group[name][...], expected[name], err_msg=name)
    dim, length = ("y", 12) if dims[0] < 20 else ("x", 34)
    assert f"its HDF5 dataspace has length {length} along the fixed dimension {dim}" \
        in m.output + m.log_text(), m.output + m.log_text()
