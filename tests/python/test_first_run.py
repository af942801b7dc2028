"""A first run without traps: what `atlasfs mount` says when it is ready, which mountpoints it
refuses (already mounted, not empty, missing) and which it repairs (a mount whose daemon was
killed), `atlasfs unmount` of a busy mount, error messages that say each cause once, logs
without colour codes, and the log line of a source changed since indexing.

Expected counts come from the test's own fixture files read with netCDF4-python.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import zarr

from conftest import (MOUNT_TIMEOUT, Mount, daemon_pids, force_unmount, is_mounted, run_atlasfs,
                      wait_for, write_config)

QUICK = 30
ZARR_METADATA = {"zarr.json", ".zgroup", ".zattrs", ".zmetadata"}


def variable_count(path) -> int:
    """Variables in every group of a NetCDF file."""
    def walk(group) -> int:
        return len(group.variables) + sum(walk(g) for g in group.groups.values())
    with netCDF4.Dataset(path) as ds:
        return walk(ds)


def mount_entries(path) -> int:
    """How many mounts the mount table has at ``path``."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f
                   if line.split()[4].encode().decode("unicode_escape") == target)


def first_values(mount_path: Path, dataset: str, source: str, variable: str) -> None:
    """``variable`` read through the mount equals netCDF4-python reading ``source``."""
    with netCDF4.Dataset(source) as ds:
        ds.set_auto_mask(False)
        expected = ds[variable][:]
    got = zarr.open_array(str(mount_path / dataset / variable), mode="r")[:]
    np.testing.assert_array_equal(got, expected)


def kill_daemon(mountpoint) -> None:
    pids = daemon_pids(mountpoint)
    assert pids, "no daemon found for the mount"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # its command line empties before its files close: wait until it has exited, so the
    # kernel has aborted the FUSE connection and every later request answers ENOTCONN
    assert wait_for(lambda: all(exited(pid) for pid in pids)), "the daemon survived kill -9"


def exited(pid) -> bool:
    """Whether every thread of a process is gone or a zombie: the last one to exit closes the
    process's files, the FUSE device among them (the leader turns zombie before the others)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return False
        except OSError:
            continue
    return True


def adopt(mounts, config, mountpoint, cache) -> Mount:
    """A Mount object for cleanup of a mount started by hand."""
    m = Mount(mounts.bin, config, mountpoint, cache)
    mounts.mounts.append(m)
    return m


@pytest.fixture
def single(mounts, fixture_files) -> Mount:
    """A mount of one dataset `a`: nc4_contiguous."""
    return mounts.mount([{"name": "a", "files": fixture_files["nc4_contiguous"]}])


def some_variable(path) -> str:
    with netCDF4.Dataset(path) as ds:
        return next(name for name, v in ds.variables.items() if v.ndim >= 1)


# --------------------------------------------------------------------------
# the summary line


def test_mount_prints_one_summary_line_with_the_configs_counts(mounts, fixture_files, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = [shutil.copy(f, src) for f in fixture_files["agg_standard"]]
    (src / "notes.nc").write_text("not a NetCDF file\n")
    data = Path(fixture_files["nc3_classic"]).read_bytes()
    (src / "truncated.nc").write_bytes(data[: len(data) // 2])
    datasets = [
        {"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time"},
        {"name": "classic", "files": fixture_files["nc3_classic"]},
        {"name": "grouped", "files": fixture_files["nc4_groups"]},
    ]
    m = mounts.mount(datasets)
    arrays = (variable_count(good[0]) + variable_count(fixture_files["nc3_classic"])
              + variable_count(fixture_files["nc4_groups"]))
    files = len(good) + 2

    lines = [line for line in m.output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{m.output}"
    match = re.fullmatch(
        r"mounted (\S+): (\d+) datasets, (\d+) arrays, (\d+) files indexed, (\d+) skipped "
        r"\(details: atlasfs index (\S+), log (\S+)\)", lines[0])
    assert match, lines[0]
    assert match.group(1) == str(m.path)
    assert [int(match.group(i)) for i in (2, 3, 4, 5)] == [3, arrays, files, 2], lines[0]
    assert os.path.samefile(match.group(6), m.config)
    assert os.path.samefile(match.group(7), m.log_path)
    # what it says is what is served
    assert sorted(set(os.listdir(m.path)) - ZARR_METADATA) == ["classic", "grouped", "sst"]


def test_the_summary_counts_datasets_left_out(mounts, fixture_files, tmp_path):
    m = mounts.mount([
        {"name": "a", "files": fixture_files["nc4_contiguous"]},
        {"name": "ghost", "files": str(tmp_path / "nowhere" / "*.nc")},
    ])
    arrays = variable_count(fixture_files["nc4_contiguous"])
    assert re.search(rf"^mounted \S+: 1 dataset \(1 left out\), {arrays} arrays, 1 file indexed, "
                     r"0 skipped \(", m.output, re.M), m.output
    assert "left out ghost" in m.output, m.output


# --------------------------------------------------------------------------
# mountpoints refused


def test_mounting_on_an_atlasfs_mountpoint_is_refused_and_the_first_keeps_working(
        mounts, single, fixture_files, atlasfs_bin, tmp_path):
    other = write_config(tmp_path / "other.toml",
                         [{"name": "b", "files": fixture_files["nc3_classic"]}],
                         cache_dir=tmp_path / "other-cache")
    res = run_atlasfs(atlasfs_bin, "mount", other, single.path, timeout=QUICK)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert f"{single.path} is already an atlasfs mount" in res.stderr, out
    assert f"atlasfs unmount {single.path}" in res.stderr, out
    assert mount_entries(single.path) == 1
    assert set(os.listdir(single.path)) - ZARR_METADATA == {"a"}
    source = fixture_files["nc4_contiguous"]
    first_values(single.path, "a", source, some_variable(source))


def test_a_non_empty_directory_needs_allow_non_empty(mounts, fixture_files, atlasfs_bin,
                                                    tmp_path):
    config = write_config(tmp_path / "c.toml",
                          [{"name": "a", "files": fixture_files["nc4_contiguous"]}],
                          cache_dir=tmp_path / "cache")
    mountpoint = tmp_path / "busy"
    mountpoint.mkdir()
    (mountpoint / "README.txt").write_text("mine\n")
    adopt(mounts, config, mountpoint, tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "mount", config, mountpoint, timeout=QUICK)
    assert res.returncode != 0, res.stdout + res.stderr
    assert f"mountpoint {mountpoint} is not empty" in res.stderr, res.stderr
    assert "README.txt" in res.stderr and "--allow-non-empty" in res.stderr, res.stderr
    assert not is_mounted(mountpoint)

    res = run_atlasfs(atlasfs_bin, "mount", config, mountpoint, "--allow-non-empty",
                      timeout=MOUNT_TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert is_mounted(mountpoint)
    assert set(os.listdir(mountpoint)) - ZARR_METADATA == {"a"}
    res = run_atlasfs(atlasfs_bin, "unmount", mountpoint, timeout=QUICK)
    assert res.returncode == 0, res.stderr
    assert (mountpoint / "README.txt").read_text() == "mine\n"


def test_a_missing_mountpoint_is_named_and_mkdir_creates_it(mounts, fixture_files, atlasfs_bin,
                                                            tmp_path):
    config = write_config(tmp_path / "c.toml",
                          [{"name": "a", "files": fixture_files["nc4_contiguous"]}],
                          cache_dir=tmp_path / "cache")
    mountpoint = tmp_path / "not" / "yet"
    adopt(mounts, config, mountpoint, tmp_path / "cache")
    res = run_atlasfs(atlasfs_bin, "mount", config, mountpoint, timeout=QUICK)
    assert res.returncode != 0
    assert f"mountpoint {mountpoint} does not exist" in res.stderr, res.stderr
    assert "--mkdir" in res.stderr, res.stderr
    assert "is not a directory" not in res.stderr
    assert not mountpoint.exists()

    res = run_atlasfs(atlasfs_bin, "mount", config, mountpoint, "--mkdir", timeout=MOUNT_TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert is_mounted(mountpoint)
    assert set(os.listdir(mountpoint)) - ZARR_METADATA == {"a"}


# --------------------------------------------------------------------------
# a daemon killed with kill -9


def test_a_killed_daemons_mount_is_named_and_cleared(mounts, single, fixture_files, atlasfs_bin,
                                                     tmp_path):
    kill_daemon(single.path)
    with pytest.raises(OSError) as exc:
        os.listdir(single.path)
    assert exc.value.errno == errno.ENOTCONN

    # any command that meets it says what it is and what clears it
    res = run_atlasfs(atlasfs_bin, "check", single.path / "atlasfs.toml", timeout=QUICK)
    assert res.returncode != 0
    assert "Transport endpoint is not connected" in res.stderr, res.stderr
    assert f"atlasfs unmount {single.path}" in res.stderr, res.stderr

    # mount clears it and says so
    res = run_atlasfs(atlasfs_bin, "mount", single.config, single.path, timeout=MOUNT_TIMEOUT)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert f"cleared a stale atlasfs mount at {single.path}" in out, out
    assert mount_entries(single.path) == 1
    source = fixture_files["nc4_contiguous"]
    first_values(single.path, "a", source, some_variable(source))

    # and unmount clears one too
    kill_daemon(single.path)
    res = run_atlasfs(atlasfs_bin, "unmount", single.path, timeout=QUICK)
    assert res.returncode == 0, res.stderr
    assert not is_mounted(single.path)
    assert os.listdir(single.path) == []


# --------------------------------------------------------------------------
# unmount of a busy mount


HOLD_OPEN = "import sys, time; f = open(sys.argv[1], 'rb'); print('ready', flush=True); time.sleep(120)"


@pytest.mark.parametrize("hold", ["open_file", "cwd"])
def test_unmount_of_a_busy_mount_names_the_holder_and_lazy_detaches(single, atlasfs_bin, hold):
    if hold == "open_file":
        holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(single / "a" / "zarr.json")],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert holder.stdout.readline().strip() == b"ready"
    else:
        holder = subprocess.Popen(["sleep", "120"], cwd=single / "a", stdin=subprocess.DEVNULL)
        assert wait_for(lambda: os.path.realpath(f"/proc/{holder.pid}/cwd")
                        == os.path.realpath(single / "a"))
    daemons = daemon_pids(single.path)
    try:
        res = run_atlasfs(atlasfs_bin, "unmount", single.path, timeout=QUICK)
        assert res.returncode != 0, res.stdout + res.stderr
        assert "busy" in res.stderr, res.stderr
        assert f"pid {holder.pid} (" in res.stderr, res.stderr
        assert "--lazy" in res.stderr, res.stderr
        assert is_mounted(single.path)

        res = run_atlasfs(atlasfs_bin, "unmount", "--lazy", single.path, timeout=QUICK)
        assert res.returncode == 0, res.stderr
        assert not is_mounted(single.path)
    finally:
        holder.kill()
        holder.wait()
    # the daemon ends once the last holder is gone
    assert daemons
    assert wait_for(lambda: not daemon_pids(single.path)), "the daemon kept running"


# --------------------------------------------------------------------------
# messages and logs


@pytest.mark.parametrize("command", ["mount", "index", "tree", "check"])
def test_a_missing_config_says_no_such_file_once(atlasfs_bin, tmp_path, command):
    missing = tmp_path / "nowhere.toml"
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    args = [command, missing] + ([mountpoint] if command == "mount" else [])
    try:
        res = run_atlasfs(atlasfs_bin, *args, timeout=QUICK)
    finally:
        force_unmount(mountpoint)
    assert res.returncode != 0
    assert str(missing) in res.stderr, res.stderr
    assert res.stderr.count("No such file or directory") == 1, res.stderr


def test_foreground_log_to_a_pipe_and_the_log_file_have_no_colour_codes(
        atlasfs_bin, fixture_files, tmp_path, mounts):
    config = write_config(tmp_path / "fg.toml",
                          [{"name": "a", "files": fixture_files["nc4_contiguous"]}],
                          cache_dir=tmp_path / "cache")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    proc = subprocess.Popen([atlasfs_bin, "mount", str(config), str(mountpoint), "--foreground"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "ATLASFS_LOG": "debug"})
    try:
        assert wait_for(lambda: is_mounted(mountpoint) or proc.poll() is not None, timeout=120)
        assert is_mounted(mountpoint)
        os.listdir(mountpoint / "a")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=QUICK)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        force_unmount(mountpoint)
    assert b"mounted " in err and b"INFO" in err, err[-2000:]
    assert b"\x1b[" not in err, err[-2000:]

    m = mounts.mount([{"name": "a", "files": fixture_files["nc4_contiguous"]}],
                     env={"ATLASFS_LOG": "debug"})
    assert "mounted " in m.log_text()
    assert "\x1b[" not in m.log_text()


# --------------------------------------------------------------------------
# the stale-source log line


def utc(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns % 10**9:09d} UTC"


def read_some_chunk(dataset: Path) -> OSError:
    """Reads every chunk file under ``dataset``; returns the first error."""
    for root, _, names in os.walk(dataset):
        for name in names:
            if name in ZARR_METADATA:
                continue
            try:
                with open(os.path.join(root, name), "rb") as f:
                    f.read()
            except OSError as e:
                return e
    raise AssertionError(f"no chunk under {dataset} failed")


def test_a_stale_source_log_line_names_what_changed(mounts, fixture_files, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "data.nc"
    shutil.copy(fixture_files["nc4_contiguous"], path)
    m = mounts.mount([{"name": "d", "files": str(path)}])
    before = os.stat(path)

    later = before.st_mtime_ns + 5 * 10**9 + 123
    os.utime(path, ns=(later, later))
    assert read_some_chunk(m / "d").errno == errno.EIO
    mtime_line = f"{path} changed since it was indexed (mtime {utc(before.st_mtime_ns)} → {utc(later)})"
    assert wait_for(lambda: mtime_line in m.log_text()), m.log_text()[-3000:]

    with open(path, "ab") as f:
        f.write(b"\0" * 10)
    os.utime(path, ns=(before.st_mtime_ns, before.st_mtime_ns))
    assert read_some_chunk(m / "d").errno == errno.EIO
    size_line = (f"{path} changed since it was indexed "
                 f"(size {before.st_size} → {before.st_size + 10} bytes)")
    assert wait_for(lambda: size_line in m.log_text()), m.log_text()[-3000:]
