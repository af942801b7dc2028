"""NetCDF-3 header integrity: a header libnetcdf refuses to open is never served.

Semantics under test (DESIGN.md "Never partial, never corrupt"), for classic, 64-bit offset and
CDF-5 files with fixed-size and record variables:

- a file whose header breaks one of the rules libnetcdf checks when it opens a NetCDF-3 file —
  a variable's data starting inside the header, overlapping its neighbour or the record section
  (``begin`` moved by one byte either way), the unlimited dimension in a variable's second
  position or a second zero-length dimension, a type whose size moves the data onto the next
  variable, a non-empty list under the wrong tag, a variable too large for its format or whose
  size overflows — is skipped with a reason naming the rule, and its dataset is left out
  (reported by ``atlasfs mount``) while a good file in another dataset of the same mount reads
  exactly as netCDF4-python reads it;
- what libnetcdf opens is served as it reads it: a CDF-5 type of the same size in a classic
  file reads as netCDF4-python reads it, and a variable with an empty name (which no Zarr key
  can carry) is left out with a warning while the rest of the file is served.

Every corrupt file is first checked to be refused by netCDF4-python; expected values come from
netCDF4-python reading the files.  Header fields are found with nc_layout.nc3_header.
"""

from __future__ import annotations

import warnings

import netCDF4
import numpy as np
import pytest
import zarr

from conftest import run_atlasfs, write_config
from nc_layout import nc3_header

FORMATS = {"classic": "NETCDF3_CLASSIC", "offset64": "NETCDF3_64BIT_OFFSET",
           "cdf5": "NETCDF3_64BIT_DATA"}


def write_nc3(path, fmt: str) -> None:
    """Fixed-size variables x, weight, then the records time, temp and count."""
    rng = np.random.default_rng(3)
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = "NetCDF-3 integrity fixture"
        ds.createDimension("time", None)
        ds.createDimension("y", 3)
        ds.createDimension("x", 40)
        ds.createVariable("x", "f8", ("x",))[:] = np.arange(40) * 0.25
        ds.createVariable("weight", "i4", ("y", "x"))[:] = rng.integers(-9, 9, (3, 40))
        ds.createVariable("time", "f8", ("time",))[:] = np.arange(5) + 0.5
        temp = ds.createVariable("temp", "f4", ("time", "y", "x"))
        temp.units = "K"
        temp[:] = rng.standard_normal((5, 3, 40)).astype("f4")
        ds.createVariable("count", "i2", ("time",))[:] = np.arange(5) * 3


def fields(data: bytes) -> dict[str, tuple[int, int]]:
    """Header field label -> (offset, width); of a label found more than once (the name
    lengths), the first."""
    out = {}
    for f in nc3_header(data)[1]:
        out.setdefault(f.label, (f.offset, f.size))
    return out



def with_field(data: bytes, label: str, value) -> bytes:
    """``data`` with header field ``label`` set to ``value`` (or ``value(old)``)."""
    offset, size = fields(data)[label]
    if callable(value):
        value = value(int.from_bytes(data[offset:offset + size], "big"))
    return data[:offset] + value.to_bytes(size, "big") + data[offset + size:]


def header_end(data: bytes) -> int:
    return nc3_header(data)[0]


def without_name(data: bytes, label: str) -> bytes:
    """``data`` with the name whose length field is ``label`` emptied; the header shrinks and
    keeps its size by padding at its end, so every ``begin`` stays right."""
    offset, size = fields(data)[label]
    n = int.from_bytes(data[offset:offset + size], "big")
    padded = (n + 3) // 4 * 4
    end = header_end(data)
    return (data[:offset] + bytes(size) + data[offset + size + padded:end] + bytes(padded)
            + data[end:])


# Each case: what it breaks, the formats it applies to, the corruption, a word of the reason.
CASES = {
    "begin_in_header": (FORMATS, lambda d: with_field(d, "variable x begin", 8), "inside the"),
    "begin_minus_one": (FORMATS, lambda d: with_field(d, "variable weight begin",
                                                      lambda b: b - 1), "before the data"),
    "begin_plus_one": (FORMATS, lambda d: with_field(d, "variable weight begin",
                                                     lambda b: b + 1), "record data begins"),
    "record_begin_minus_one": (FORMATS, lambda d: with_field(d, "variable count begin",
                                                             lambda b: b - 1), "before the data"),
    "first_record_into_fixed": (FORMATS, lambda d: with_field(d, "variable time begin",
                                                              lambda b: b - 4),
                                "record data begins"),
    "unlimited_second": (FORMATS, lambda d: with_field(d, "variable temp dimension id 1", 0),
                         "NC_UNLIMITED in the wrong index"),
    "second_zero_length_dim": (FORMATS, lambda d: with_field(d, "dimension x length", 0),
                               "NC_UNLIMITED in the wrong index"),
    "int64_in_classic": ({"classic": FORMATS["classic"]},
                         lambda d: with_field(d, "variable weight type", 10), "record data begins"),
    "attribute_list_tag_zeroed": ({"cdf5": FORMATS["cdf5"]},
                                  lambda d: with_field(d, "global attribute list tag", 0),
                                  "attribute list has 1 entries under tag 0x0"),
    "dimension_of_2_64_minus_1": ({"cdf5": FORMATS["cdf5"]},
                                  lambda d: with_field(d, "dimension time length", 2**64 - 1),
                                  "overflows 64 bits (NC_EVARSIZE)"),
    "too_large_not_last": ({k: FORMATS[k] for k in ("classic", "offset64")},
                           lambda d: with_field(d, "dimension time length", 2**30),
                           "allowed only to the last one (NC_EVARSIZE)"),
}

CORRUPT = [(case, kind) for case, (kinds, _, _) in CASES.items() for kind in kinds]


def netcdf4_refuses(path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            netCDF4.Dataset(path).close()
        except OSError as e:
            return str(e)
    return ""


def reference(path) -> dict:
    """Every variable as netCDF4-python reads it (raw, unmasked)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with netCDF4.Dataset(path) as ds:
            ds.set_auto_maskandscale(False)
            return {name: np.asarray(var[...]) for name, var in ds.variables.items()}


def assert_served_like_netcdf4(mount, name, path, leave_out=()):
    group = zarr.open_group(str(mount / name), mode="r")
    expected = reference(path)
    assert set(group.array_keys()) == set(expected) - set(leave_out)
    for var in group.array_keys():
        np.testing.assert_array_equal(group[var][...], expected[var], err_msg=f"{name}:{var}")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Dataset name -> file: a good file per format, each corruption of each, and the files
    libnetcdf opens although they are unusual."""
    d = tmp_path_factory.mktemp("nc3")
    out = {}
    for kind, fmt in FORMATS.items():
        good = d / f"good_{kind}.nc"
        write_nc3(good, fmt)
        out[f"good_{kind}"] = good
        data = good.read_bytes()
        for case, (kinds, corrupt, _) in CASES.items():
            if kind in kinds:
                path = d / f"{case}_{kind}.nc"
                path.write_bytes(corrupt(data))
                out[f"{case}_{kind}"] = path
        unnamed = d / f"unnamed_{kind}.nc"
        unnamed.write_bytes(without_name(data, "variable name length"))
        out[f"unnamed_{kind}"] = unnamed
    data = out["good_classic"].read_bytes()
    (d / "uint_in_classic.nc").write_bytes(with_field(data, "variable weight type", 9))
    out["uint_in_classic"] = d / "uint_in_classic.nc"
    return out


@pytest.fixture(scope="module")
def mount(module_mounts, files):
    return module_mounts.mount([{"name": name, "files": str(path)}
                                for name, path in files.items()])


@pytest.mark.parametrize("case,kind", CORRUPT)
def test_a_header_libnetcdf_refuses_is_not_served(mount, files, case, kind):
    name = f"{case}_{kind}"
    path = files[name]
    refused = netcdf4_refuses(path)
    assert refused, f"netCDF4-python opens {name}: the corruption does not break the file"
    assert name not in {p.name for p in mount.path.iterdir()}
    reason = CASES[case][2]
    reported = [line for line in mount.output.splitlines()
                if f"left out {name}:" in line]
    assert reported and reason in reported[0], (name, reason, mount.output)


@pytest.mark.parametrize("kind", FORMATS)
def test_good_files_beside_them_read_like_netcdf4(mount, files, kind):
    assert_served_like_netcdf4(mount.path, f"good_{kind}", files[f"good_{kind}"])
    group = zarr.open_group(str(mount.path / f"good_{kind}"), mode="r")
    assert group["temp"].shape == (5, 3, 40)


def test_the_corruptions_are_reported_by_index(atlasfs_bin, files, tmp_path):
    names = [f"{case}_{kind}" for case, kind in CORRUPT]
    config = write_config(tmp_path / "c.toml", [{"name": n, "files": str(files[n])}
                                                for n in names + ["good_cdf5"]],
                          cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "index", config)
    text = res.stdout + res.stderr
    for name in names:
        case = name.rsplit("_", 1)[0]
        line = next((x for x in text.splitlines() if x.startswith(f"skipped {files[name]}:")),
                    None)
        assert line and CASES[case][2] in line, (name, text)
    assert f"skipped {files['good_cdf5']}" not in text


def test_a_cdf5_type_of_the_same_size_in_a_classic_file_reads_like_netcdf4(mount, files):
    path = files["uint_in_classic"]
    assert reference(path)["weight"].dtype == np.uint32  # libnetcdf opens it
    assert_served_like_netcdf4(mount.path, "uint_in_classic", path)


@pytest.mark.parametrize("kind", FORMATS)
def test_a_variable_with_an_empty_name_is_left_out(mount, files, kind):
    path = files[f"unnamed_{kind}"]
    expected = reference(path)
    assert "" in expected and "x" not in expected  # libnetcdf opens it, the first name empty
    assert_served_like_netcdf4(mount.path, f"unnamed_{kind}", path, leave_out=[""])
    assert "a variable with an empty name is not served" in mount.log_text()
