"""The command line: tree, check, mount/unmount and their failure modes."""

from __future__ import annotations

import json
import os
import shutil
import re
import signal
import subprocess
import time

import netCDF4
import numpy as np
import pytest

from conftest import daemon_pids, force_unmount, is_mounted, run_atlasfs, write_config

QUICK = 30  # seconds: a failing command must fail at least this fast
ZARR_METADATA = {"zarr.json", ".zgroup", ".zattrs", ".zmetadata"}


def dtype_pattern(dtype) -> str:
    """The dtype as numpy / Zarr v3 name it ("float32"), as a Zarr v2 type
    string ("<f4"), or in bits ("f32", "F32"); case-insensitive."""
    dt = np.dtype(dtype)
    names = {dt.name, f"{dt.kind}{dt.itemsize}", f"{dt.kind}{dt.itemsize * 8}"}
    return r"(?i)(?<![\w])[<>|]?(" + "|".join(sorted(names)) + r")\b"


def has_sequence(line: str, numbers) -> bool:
    """The integers of ``numbers`` appear consecutively among the integers of ``line``."""
    ints = [int(x) for x in re.findall(r"\d+", line)]
    n = len(numbers)
    return any(ints[i:i + n] == list(numbers) for i in range(len(ints) - n + 1))


@pytest.fixture
def config(tmp_path, fixture_files):
    return write_config(
        tmp_path / "atlasfs.toml",
        [
            {"name": "chunked", "files": fixture_files["nc4_chunked_zlib"]},
            {"name": "groups", "files": fixture_files["nc4_groups"]},
        ],
        cache_dir=tmp_path / "cache",
    )


def test_tree_prints_arrays_with_shapes_and_dtypes(atlasfs_bin, config, fixture_files):
    res = run_atlasfs(atlasfs_bin, "tree", config, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()

    def assert_listed(name, shape, dtype):
        hits = [l for l in lines if re.search(rf"\b{re.escape(name)}\b", l)
                and has_sequence(l, shape) and re.search(dtype_pattern(dtype), l)]
        assert hits, f"no line shows {name} {shape} {np.dtype(dtype).name}:\n{res.stdout}"

    with netCDF4.Dataset(fixture_files["nc4_chunked_zlib"]) as ds:
        for name, var in ds.variables.items():
            assert_listed(name, var.shape, var.dtype)
        # chunking is shown too: sst's native chunks, its small ones (6 KiB) joined along time
        chunks = [ds["sst"].shape[0]] + list(ds["sst"].chunking())[1:]
    assert any(re.search(r"\bsst\b", l) and has_sequence(l, chunks) for l in lines), (
        f"sst chunks {chunks} not shown:\n{res.stdout}")
    with netCDF4.Dataset(fixture_files["nc4_groups"]) as ds:
        ens = ds.groups["forecast"].groups["ensemble"]
        assert_listed("spread", ens["spread"].shape, ens["spread"].dtype)
        assert_listed("temp", ds.groups["forecast"]["temp"].shape, "f4")
    for group in ("chunked", "groups", "forecast", "ensemble", "obs"):
        assert re.search(rf"\b{group}\b", res.stdout), f"{group} not shown:\n{res.stdout}"


def test_tree_of_a_subpath(atlasfs_bin, config):
    res = run_atlasfs(atlasfs_bin, "tree", config, "groups/forecast", timeout=120)
    assert res.returncode == 0, res.stderr
    assert re.search(r"\btemp\b", res.stdout) and re.search(r"\bspread\b", res.stdout), res.stdout
    assert not re.search(r"\b(sst|root_v|obs_v)\b", res.stdout), res.stdout


def test_check_accepts_a_good_config(atlasfs_bin, config):
    res = run_atlasfs(atlasfs_bin, "check", config, timeout=QUICK)
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_rejects_an_unwritable_cache_dir(atlasfs_bin, tmp_path, fixture_files):
    # (the tests run as root, for whom permission bits do not stop writes:
    # the cache dir is put below a regular file instead)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    config = write_config(tmp_path / "bad_cache.toml",
                          [{"name": "x", "files": fixture_files["nc4_contiguous"]}],
                          cache_dir=blocker / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config, timeout=QUICK)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "cache" in out.lower(), out


def test_check_rejects_a_glob_that_matches_nothing(atlasfs_bin, tmp_path):
    pattern = str(tmp_path / "nowhere" / "*.nc")
    config = write_config(tmp_path / "empty_glob.toml",
                          [{"name": "ghost", "files": pattern}], cache_dir=tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "check", config, timeout=QUICK)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "ghost" in out or pattern in out, out


@pytest.mark.parametrize("problem", ["glob_matches_nothing", "invalid_toml", "missing_config"])
def test_mount_with_a_bad_config_fails_fast(atlasfs_bin, tmp_path, problem):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    config = tmp_path / "bad.toml"
    if problem == "glob_matches_nothing":
        write_config(config, [{"name": "ghost", "files": str(tmp_path / "none" / "*.nc")}],
                     cache_dir=tmp_path / "cache")
    elif problem == "invalid_toml":
        config.write_text("[mount\nzarr_format = = 3\n")
    try:
        res = run_atlasfs(atlasfs_bin, "mount", config, mountpoint, timeout=QUICK)
        assert res.returncode != 0
        assert res.stderr.strip(), "no message on stderr"
        assert not is_mounted(mountpoint)
        time.sleep(0.2)
        assert not daemon_pids(mountpoint), "a daemon was left behind"
    finally:
        force_unmount(mountpoint)
        for pid in daemon_pids(mountpoint):
            os.kill(pid, signal.SIGKILL)


def test_listing_shows_the_datasets_as_soon_as_mount_returns(mounts, fixture_files):
    names = ["alpha", "beta", "gamma"]
    kinds = ["nc4_contiguous", "nc3_classic", "nc4_groups"]
    m = mounts.mount([{"name": n, "files": fixture_files[k]} for n, k in zip(names, kinds)])
    # no waiting: mount returned once ready.  The root may itself be a Zarr
    # group (metadata files); everything else in it is a dataset.
    assert sorted(set(os.listdir(m.path)) - ZARR_METADATA) == names
    for n in names:
        assert os.path.isdir(m / n)
        assert "zarr.json" in os.listdir(m / n)
    assert {"forecast", "obs", "root_v", "x"} <= set(os.listdir(m / "gamma"))


def test_unmount_waits_for_the_daemon(mounts, atlasfs_bin, fixture_files):
    m = mounts.mount([{"name": "a", "files": fixture_files["nc4_contiguous"]}])
    pids = daemon_pids(m.path)
    assert pids, "no daemon process found for the mount"
    res = run_atlasfs(atlasfs_bin, "unmount", m.path, timeout=QUICK)
    assert res.returncode == 0, res.stderr
    assert not is_mounted(m.path)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}") and _state(p) != "Z"]
    assert not alive, f"daemon still running after unmount returned: {alive}"


def _state(pid) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_mount_unmounts_cleanly_on_signal(atlasfs_bin, tmp_path, fixture_files, sig):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    config = write_config(tmp_path / "fg.toml",
                          [{"name": "a", "files": fixture_files["nc4_contiguous"]}],
                          cache_dir=tmp_path / "cache")
    log = open(tmp_path / "fg.log", "wb")
    proc = subprocess.Popen([atlasfs_bin, "mount", str(config), str(mountpoint), "--foreground"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not is_mounted(mountpoint):
            assert proc.poll() is None, f"exited {proc.returncode}: {(tmp_path / 'fg.log').read_text()}"
            assert time.monotonic() < deadline, "not mounted within 120 s"
            time.sleep(0.1)
        assert set(os.listdir(mountpoint)) - ZARR_METADATA == {"a"}
        proc.send_signal(sig)
        rc = proc.wait(timeout=QUICK)
        # a clean exit: 0, or the shell convention 128 + signal number; not
        # killed by the signal (negative return code)
        assert rc in (0, 128 + int(sig)), f"exit code {rc}: {(tmp_path / 'fg.log').read_text()}"
        assert not is_mounted(mountpoint)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if is_mounted(mountpoint):
            subprocess.run(["fusermount3", "-uz", str(mountpoint)], capture_output=True)
        log.close()


def _index_counts(out: str) -> tuple[int, int]:
    """(files read now, files unchanged) from the summary line of `atlasfs index`."""
    m = re.search(r"\((\d+) read now, (\d+) unchanged", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def test_index_is_incremental_and_persisted_in_binary(atlasfs_bin, tmp_path, fixture_files):
    src = tmp_path / "src"
    src.mkdir()
    files = fixture_files["agg_standard"]
    for f in files:
        shutil.copy2(f, src)
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "c.toml",
                          [{"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time"}],
                          cache_dir=cache)
    first = run_atlasfs(atlasfs_bin, "index", config, timeout=QUICK)
    assert first.returncode == 0, first.stderr
    assert _index_counts(first.stdout) == (len(files), 0)
    catalog = (cache / "catalog.bin").read_bytes()
    with pytest.raises(ValueError):
        json.loads(catalog.decode("utf-8", errors="strict"))

    again = run_atlasfs(atlasfs_bin, "index", config, timeout=QUICK)
    assert _index_counts(again.stdout) == (0, len(files)), "unchanged files were read again"

    touched = src / os.path.basename(files[2])
    st = os.stat(touched)
    os.utime(touched, (st.st_atime, st.st_mtime + 5))
    after_touch = run_atlasfs(atlasfs_bin, "index", config, timeout=QUICK)
    assert _index_counts(after_touch.stdout) == (1, len(files) - 1)

    (src / os.path.basename(files[0])).unlink()
    after_delete = run_atlasfs(atlasfs_bin, "index", config, timeout=QUICK)
    assert re.search(rf"^{len(files) - 1} files", after_delete.stdout, re.M), after_delete.stdout
