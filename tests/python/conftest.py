"""Shared pytest fixtures and helpers for the atlasfs Python test suite.

The tests mount for real: ``atlasfs mount CONFIG MOUNTPOINT`` (FUSE, needs
/dev/fuse and root or fusermount3) and read through the mount with xarray and
zarr-python.  Expected values always come from netCDF4-python / xarray reading
the original files.

The binary is ``$ATLASFS_BIN`` or ``<repo>/target/release/atlasfs``.
"""

from __future__ import annotations

import errno as errno_mod
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fixtures import make_all

REPO = Path(__file__).resolve().parents[2]
MOUNT_TIMEOUT = 180  # seconds for `atlasfs mount` to return (it indexes first)
UNMOUNT_TIMEOUT = 30


# --------------------------------------------------------------------------
# the binary and running it


@pytest.fixture(scope="session")
def atlasfs_bin() -> str:
    path = os.environ.get("ATLASFS_BIN") or str(REPO / "target" / "release" / "atlasfs")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"atlasfs binary not found at {path}: run `cargo build --release` "
            "(scripts/setup does) or set ATLASFS_BIN",
            pytrace=False,
        )
    if not os.path.exists("/dev/fuse"):
        pytest.fail("/dev/fuse is missing: these tests mount for real", pytrace=False)
    return path


def run_atlasfs(bin_path: str, *args, timeout: float = 120, env: dict | None = None):
    """Run the CLI to completion; stdout/stderr go to files, not pipes, so a
    daemon that keeps an inherited descriptor open cannot make this hang.
    ``env`` overrides the environment; a ``None`` value removes that variable."""
    full_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:  # None removes a variable
            full_env.pop(name, None)
        else:
            full_env[name] = value
    out = _tmpfile("out")
    err = _tmpfile("err")
    try:
        with open(out, "w+b") as fo, open(err, "w+b") as fe:
            proc = subprocess.Popen(
                [bin_path, *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=full_env,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(
                    f"`atlasfs {' '.join(map(str, args))}` did not finish within {timeout} s"
                )
            fo.seek(0)
            fe.seek(0)
            stdout = fo.read().decode("utf-8", "replace")
            stderr = fe.read().decode("utf-8", "replace")
    finally:
        for p in (out, err):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    return subprocess.CompletedProcess(proc.args, rc, stdout, stderr)


_tmp_counter = [0]


def _tmpfile(tag: str) -> str:
    _tmp_counter[0] += 1
    return os.path.join(tempfile.gettempdir(), f"atlasfs-test-{os.getpid()}-{_tmp_counter[0]}.{tag}")


# --------------------------------------------------------------------------
# configs


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def write_config(path, datasets, *, zarr_format: int = 3, cache_dir=None,
                 mount: dict | None = None) -> Path:
    """Write a mount config.  ``datasets``: dicts with name, files and optional
    concat_dim / chunks, written in that order; ``mount``: more ``[mount]`` keys."""
    path = Path(path)
    lines = ["[mount]", f"zarr_format = {zarr_format}"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in (mount or {}).items()] + [""]
    if cache_dir is not None:
        lines += ["[cache]", f"dir = {_toml_value(cache_dir)}", ""]
    for ds in datasets:
        lines.append("[[dataset]]")
        for key, value in ds.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------
# mounts


def is_mounted(path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            if mp == target:
                return True
    return False


def daemon_pids(mountpoint) -> list[int]:
    """Processes whose command line names this mountpoint (the daemon)."""
    target = os.path.realpath(mountpoint)
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if any(os.path.realpath(a) == target for a in argv if a.startswith("/")):
            pids.append(int(entry))
    return pids


def wait_for(predicate, timeout=15.0, interval=0.1):
    """Polls ``predicate`` until it returns something true or ``timeout`` seconds pass;
    returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def force_unmount(path) -> None:
    for cmd in (["fusermount3", "-uz", str(path)], ["umount", "-l", str(path)]):
        if not is_mounted(path):
            return
        if shutil.which(cmd[0]):
            subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


class Mount:
    """A running atlasfs mount (background daemon)."""

    def __init__(self, bin_path, config, mountpoint, cache_dir):
        self.bin = bin_path
        self.config = Path(config)
        self.path = Path(mountpoint)
        self.cache_dir = Path(cache_dir)
        self.log_path = self.cache_dir / "atlasfs.log"
        self.output = ""  # stdout + stderr of `atlasfs mount`

    def __truediv__(self, other) -> Path:
        return self.path / other

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def unmount(self) -> None:
        if not is_mounted(self.path):
            return
        try:
            res = run_atlasfs(self.bin, "unmount", self.path, timeout=UNMOUNT_TIMEOUT)
            if res.returncode != 0:
                print(f"atlasfs unmount {self.path} failed: {res.stderr}")
        except AssertionError as e:
            print(e)
        if is_mounted(self.path):
            print(f"{self.path} still mounted after `atlasfs unmount`; forcing")
            force_unmount(self.path)
        for pid in daemon_pids(self.path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def print_log_tail(self, n: int = 40) -> None:
        lines = self.log_text().splitlines()
        if lines:
            print(f"---- last {min(n, len(lines))} lines of {self.log_path} ----")
            print("\n".join(lines[-n:]))


class MountManager:
    """Creates mounts under a temporary directory and unmounts them all at the end."""

    def __init__(self, bin_path: str, base: Path):
        self.bin = bin_path
        self.base = Path(base)
        self.mounts: list[Mount] = []

    def new_dir(self, name: str) -> Path:
        i = 0
        while (self.base / f"{name}{i}").exists():
            i += 1
        d = self.base / f"{name}{i}"
        d.mkdir(parents=True)
        return d

    def mount(self, datasets, *, zarr_format: int = 3, env: dict | None = None,
              args=(), mount: dict | None = None) -> Mount:
        """Writes a config for ``datasets`` (with its own cache dir and ``mount`` as more
        ``[mount]`` keys) and mounts it; ``args`` are more options of ``atlasfs mount``."""
        work = self.new_dir("m")
        cache = work / "cache"
        config = write_config(work / "atlasfs.toml", datasets, zarr_format=zarr_format,
                              cache_dir=cache, mount=mount)
        return self.mount_config(config, cache, env=env, args=args)

    def mount_config(self, config, cache_dir, *, env: dict | None = None, args=()) -> Mount:
        """Mounts an existing config whose cache dir is ``cache_dir`` on a new mountpoint."""
        mountpoint = self.new_dir("mnt")
        m = Mount(self.bin, config, mountpoint, cache_dir)
        self.mounts.append(m)  # cleaned up even if `mount` below hangs or fails
        res = run_atlasfs(self.bin, "mount", config, mountpoint, *args, timeout=MOUNT_TIMEOUT,
                          env=env)
        m.output = res.stdout + res.stderr
        if res.returncode != 0 or not is_mounted(mountpoint):
            m.print_log_tail()
            raise AssertionError(
                f"`atlasfs mount` exited {res.returncode}; mounted: {is_mounted(mountpoint)}\n"
                f"config:\n{config.read_text()}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
            )
        return m

    def cleanup(self) -> None:
        for m in reversed(self.mounts):
            m.print_log_tail()
            m.unmount()
        self.mounts.clear()


@pytest.fixture
def mounts(atlasfs_bin, tmp_path):
    """Function-scoped mount factory: ``mounts.mount(datasets, zarr_format=3)``."""
    mgr = MountManager(atlasfs_bin, tmp_path / "mounts")
    yield mgr
    mgr.cleanup()


@pytest.fixture(scope="module")
def module_mounts(atlasfs_bin, tmp_path_factory):
    """Module-scoped mount factory."""
    mgr = MountManager(atlasfs_bin, tmp_path_factory.mktemp("mounts"))
    yield mgr
    mgr.cleanup()


@pytest.fixture(scope="session")
def fixture_files(tmp_path_factory) -> dict:
    """Every fixture kind, written once per session (see fixtures.py)."""
    return make_all(tmp_path_factory.mktemp("fixtures"))


# --------------------------------------------------------------------------
# object storage: a loopback S3 server and a fault-injecting proxy in front of it


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 (s3server.S3Server), one per session."""
    from s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_proxy_session(s3_server):
    from faulty_proxy import FaultyProxy

    proxy = FaultyProxy(s3_server.host, s3_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def s3_proxy(s3_proxy_session):
    """The session's faulty_proxy.FaultyProxy in front of ``s3_server``; a test's faults are
    removed when it ends (so no fault outlives the test that injected it)."""
    s3_proxy_session.clear_faults()
    yield s3_proxy_session
    s3_proxy_session.clear_faults()


@pytest.fixture
def s3_env(tmp_path):
    """Environment overrides for `atlasfs` with the fake credentials (s3server.atlasfs_env)."""
    from s3server import atlasfs_env

    return atlasfs_env(config_dir=tmp_path / "aws")


# --------------------------------------------------------------------------
# comparing datasets


def open_mounted(path) -> xr.Dataset:
    """A dataset as xarray reads it through the mount (consolidated metadata, no dask), loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), consolidated=True, chunks=None) as ds:
            return ds.load()


def find_oserror(exc: BaseException, err: int) -> OSError | None:
    """The OSError with errno ``err`` in ``exc``'s cause/context chain."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == err:
            return e
        stack.extend([e.__cause__, e.__context__])
        stack.extend(getattr(e, "exceptions", ()) or ())
    return None


def is_eio(exc: BaseException) -> bool:
    return find_oserror(exc, errno_mod.EIO) is not None


def dtype_class(values) -> str:
    """The dtype, with inherent representation details folded together.

    - byte order is ignored (NetCDF-3 is big-endian on disk; readers may
      return either order);
    - variable-length text is one class whether numpy holds it as fixed
      unicode ``U`` (netCDF4 backend), ``StringDType`` (zarr-python) or an
      object array of ``str``.
    """
    dt = values.dtype
    if dt.kind in "UT":
        return "text"
    if dt.kind == "O":
        flat = np.asarray(values, dtype=object).ravel()
        if flat.size and all(isinstance(x, str) for x in flat):
            return "text"
        return "object"
    if dt.kind in "biufc":
        return dt.newbyteorder("=").str
    return dt.str


def _attr_elements(value) -> np.ndarray:
    """An attribute value as an object array (keeps big uint64 exact)."""
    if isinstance(value, np.ndarray):
        return value.astype(object)
    return np.asarray(value, dtype=object)


def _attr_kind(elements: np.ndarray) -> str:
    kinds = set()
    for x in elements.ravel():
        if isinstance(x, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(x, (int, np.integer)):
            kinds.add("int")
        elif isinstance(x, (float, np.floating)):
            kinds.add("float")
        elif isinstance(x, (str, bytes, np.str_, np.bytes_)):
            kinds.add("text")
        else:
            kinds.add(type(x).__name__)
    if not kinds:
        return "empty"
    return "/".join(sorted(kinds))


def assert_attrs_equal(orig: dict, got: dict, where: str) -> None:
    """Attributes equal by value.

    The mount's attributes are JSON, so numeric arrays arrive as lists and
    numeric scalars as Python ints/floats.  Compared: the key set; the kind
    (int / float / text); the shape (a one-element netCDF attribute is a
    scalar on both sides); the values exactly — a float32 attribute is
    compared in float32 (both the exact widening 0.10000000149011612 and the
    shortest repr 0.1 carry the same float32), float64 exactly, NaN == NaN.
    """
    assert set(orig) == set(got), (
        f"{where}: attribute names differ: missing {sorted(set(orig) - set(got))}, "
        f"extra {sorted(set(got) - set(orig))}"
    )
    for key in orig:
        o, g = orig[key], got[key]
        eo, eg = _attr_elements(o), _attr_elements(g)
        ko, kg = _attr_kind(eo), _attr_kind(eg)
        msg = f"{where}: attribute {key!r}: {o!r} vs {g!r}"
        assert ko == kg, f"{msg} (kind {ko} vs {kg})"
        assert eo.shape == eg.shape, f"{msg} (shape {eo.shape} vs {eg.shape})"
        if ko == "text":
            def as_text(x):
                return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
            assert [as_text(x) for x in eo.ravel()] == [as_text(x) for x in eg.ravel()], msg
        elif ko == "float":
            odt = np.asarray(o).dtype
            dt = odt if odt.kind == "f" and odt.itemsize < 8 else np.dtype("f8")
            assert np.array_equal(eo.astype(dt), eg.astype(dt), equal_nan=True), msg
        else:
            assert [int(x) if ko == "int" else x for x in eo.ravel()] == [
                int(x) if ko == "int" else x for x in eg.ravel()
            ], msg


def assert_same_dataset(orig: xr.Dataset, got: xr.Dataset, where: str, *,
                        float_width_ok=()) -> None:
    """``got`` (read through the mount) is identical to ``orig`` (read from the
    original file(s)): names, dims, sizes, coordinates, dtypes, attributes and
    values.  Both must be loaded.

    ``float_width_ok``: variables allowed to differ only in float width (the
    packed variables whose float32 scale_factor/add_offset become JSON
    float64); their values are compared with assert_allclose.
    """
    assert set(orig.variables) == set(got.variables), (
        f"{where}: variables differ: missing {sorted(set(orig.variables) - set(got.variables))}, "
        f"extra {sorted(set(got.variables) - set(orig.variables))}"
    )
    assert set(orig.coords) == set(got.coords), (
        f"{where}: coordinates {sorted(orig.coords)} vs {sorted(got.coords)}"
    )
    assert dict(orig.sizes) == dict(got.sizes), f"{where}: sizes {dict(orig.sizes)} vs {dict(got.sizes)}"
    assert_attrs_equal(orig.attrs, got.attrs, f"{where}: global attributes")
    for name in orig.variables:
        o, g = orig.variables[name], got.variables[name]
        w = f"{where}: variable {name!r}"
        assert o.dims == g.dims, f"{w}: dims {o.dims} vs {g.dims}"
        assert_attrs_equal(o.attrs, g.attrs, w)
        if name in float_width_ok:
            assert o.dtype.kind == "f" and g.dtype.kind == "f", f"{w}: dtype {o.dtype} vs {g.dtype}"
            assert g.dtype.itemsize >= o.dtype.itemsize, f"{w}: dtype {o.dtype} vs {g.dtype}"
            np.testing.assert_allclose(
                np.asarray(g.values, dtype="f8"), np.asarray(o.values, dtype="f8"),
                rtol=1e-6, atol=0, equal_nan=True, err_msg=w,
            )
            continue
        assert dtype_class(o.values) == dtype_class(g.values), (
            f"{w}: dtype {o.dtype} vs {g.dtype}"
        )
    # Values, names and coordinates once more through xarray itself.
    # Attributes were compared above (by value, JSON-aware); copy them over
    # so assert_identical does not trip on list-vs-array representations.
    o2 = orig.drop_vars(list(float_width_ok))
    g2 = got.drop_vars(list(float_width_ok)).copy()
    g2.attrs = dict(o2.attrs)
    for name in o2.variables:
        g2.variables[name].attrs = dict(o2.variables[name].attrs)
    xr.testing.assert_identical(o2, g2)
