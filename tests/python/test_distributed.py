"""`warm` and `export` on a distributed engine: scripts/atlas_dask.py over a Dask cluster, and the
Slurm array-job scripts of scripts/slurm/ run under a simulated Slurm environment.

The cluster is a real ``LocalCluster`` of 2 worker processes; each task runs the atlasfs binary
with ``--shard K/N``. The dataset is a six-file archive joined along time in chunks of 8 days
(fixtures.py's ``agg_standard``). A store written by the shards is read with ``xr.open_zarr``
and compared with the NetCDF files read by xarray (``open_mfdataset``); its files are compared
byte for byte with a plain one-process ``atlasfs export``. The chunk count every run must reach
is worked out from the files: 3 arrays along time in ceil(days/8) chunks, and 3 of one chunk.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import REPO, assert_same_dataset, run_atlasfs, write_config
from fixtures import _write_agg_standard

sys.path.insert(0, str(REPO / "scripts"))
import atlas_dask  # noqa: E402 (scripts/ is not a package)

HELPER = REPO / "scripts" / "atlas_dask.py"
SLURM = REPO / "scripts" / "slurm"
DAYS_PER_CHUNK = 8
PROVENANCE = "atlasfs_export"
COUNT = re.compile(r"(\d+) (written|computed|already present|already cached)")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> list[str]:
    return _write_agg_standard(tmp_path_factory.mktemp("archive") / "sst")


@pytest.fixture(scope="module")
def total_chunks(archive) -> int:
    days = 0
    for path in archive:
        with netCDF4.Dataset(path) as ds:
            days += ds.dimensions["time"].size
    return 3 * math.ceil(days / DAYS_PER_CHUNK) + 3  # sst, time, time_bnds; lat, lon, land_mask


@pytest.fixture(scope="module")
def reference(archive) -> xr.Dataset:
    """The files joined along time by xarray (variables without time from the first file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset(sorted(archive), combine="by_coords", data_vars="minimal",
                               coords="minimal", compat="override", join="exact") as ds:
            return ds.load()


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def config(tmp_path, archive) -> Path:
    """A config of the archive with a cache dir of its own."""
    return make_config(tmp_path / "atlasfs.toml", archive, cache_dir=tmp_path / "cache")


def make_config(path: Path, archive, cache_dir=None) -> Path:
    dataset = {"name": "sst", "files": str(Path(archive[0]).parent / "*.nc"),
               "concat_dim": "time", "chunks": {"time": DAYS_PER_CHUNK}}
    return write_config(path, [dataset], cache_dir=cache_dir)


def counts(stdout: str, what: str) -> int:
    """The count of ``what`` (``written``, ``computed``, ``already present``, ...) in an atlasfs
    summary line."""
    found = [int(n) for n, kind in COUNT.findall(stdout) if kind == what]
    assert len(found) == 1, f"no single {what!r} count in {stdout!r}"
    return found[0]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def assert_store_equals_files(dest: Path, reference: xr.Dataset) -> None:
    """``xr.open_zarr(dest)`` equals the files: values, dims, dtypes, attributes; the joined
    times (re-encoded to the first file's units) to a microsecond."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(dest), chunks=None) as ds:
            got = ds.load()
    assert set(got.attrs.pop(PROVENANCE)) == {"version", "config_hash", "path",
                                              "source_fingerprint"}
    for name in ("time", "time_bnds"):
        gap = np.abs(got[name].values - reference[name].values).max()
        assert gap <= np.timedelta64(1, "us"), f"{name} off by {gap}"
        got[name] = got[name].copy(data=reference[name].values)
    assert_same_dataset(reference, got, str(dest))


def plain_export(atlasfs_bin, config, dest) -> dict[str, bytes]:
    res = run_atlasfs(atlasfs_bin, "export", config, "sst", dest)
    assert res.returncode == 0, res.stdout + res.stderr
    return files(dest)


# --------------------------------------------------------------------------
# Dask


@pytest.mark.parametrize("tasks", [2, 3])
def test_export_over_the_cluster_equals_the_files(atlasfs_bin, client, config, tmp_path,
                                                  reference, total_chunks, tasks):
    dest = tmp_path / "store.zarr"
    summary = atlas_dask.run_export(client, str(config), "sst", str(dest), tasks=tasks,
                                    atlasfs=atlasfs_bin)
    assert summary.ok, summary.report()
    assert [(s.index, s.count, len(s.attempts)) for s in summary.shards] == \
        [(k, tasks, 1) for k in range(tasks)]
    assert summary.workers == set(client.nthreads()), summary.report()  # both workers ran shards
    # disjoint shards that together are every chunk
    assert sum(counts(s.last.stdout, "written") for s in summary.shards) == total_chunks
    assert summary.finalize is not None and "metadata written" in summary.finalize.stdout
    assert_store_equals_files(dest, reference)
    if tasks == 3:
        assert files(dest) == plain_export(atlasfs_bin, config, tmp_path / "one.zarr")


def test_no_metadata_before_every_shard_and_finalize(atlasfs_bin, client, config, tmp_path,
                                                    reference, total_chunks):
    dest = tmp_path / "store.zarr"
    part = atlas_dask.run_export(client, str(config), "sst", str(dest), tasks=3, shards=[0, 2],
                                 finalize=False, atlasfs=atlasfs_bin)
    assert part.ok and part.finalize is None, part.report()
    assert [s.index for s in part.shards] == [0, 2]
    assert len(files(dest)) == sum(counts(s.last.stdout, "written") for s in part.shards) > 0
    assert not list(dest.rglob("zarr.json")), "metadata written before every chunk was there"

    refused = atlas_dask.finalize_export(client, str(config), "sst", str(dest),
                                         atlasfs=atlasfs_bin)
    assert not refused.ok
    assert "not written yet" in refused.stderr, refused.stderr
    assert not list(dest.rglob("zarr.json"))

    done = atlas_dask.run_export(client, str(config), "sst", str(dest), tasks=3,
                                 extra=["--resume"], atlasfs=atlasfs_bin)
    assert done.ok, done.report()
    present = [counts(s.last.stdout, "already present") for s in done.shards]
    written = [counts(s.last.stdout, "written") for s in done.shards]
    assert written[0] == written[2] == 0 and present[1] == 0, done.report()
    assert sum(present) + written[1] == total_chunks
    assert done.finalize.ok, done.report()
    assert_store_equals_files(dest, reference)


def test_warm_over_the_cluster_caches_every_chunk(atlasfs_bin, client, config, tmp_path,
                                                 reference, total_chunks, mounts):
    res = subprocess.run(
        [sys.executable, str(HELPER), "warm", "--scheduler", client.scheduler.address,
         str(config), "sst", "--atlasfs", atlasfs_bin, "--", "--jobs", "2"],
        capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 of 2 shard(s) on 2 worker(s), 2 ok, 0 failed" in res.stdout, res.stdout
    shard_lines = [line for line in res.stdout.splitlines() if "warmed " in line]
    assert [f"shard {k}/2 ok" in line for k, line in enumerate(shard_lines)] == [True, True]
    assert sum(counts(line, "computed") for line in shard_lines) == total_chunks

    again = run_atlasfs(atlasfs_bin, "warm", config, "sst")
    assert again.returncode == 0, again.stdout + again.stderr
    assert counts(again.stdout, "computed") == 0
    assert counts(again.stdout, "already cached") == total_chunks

    # a mount serves every chunk from the disk cache: nothing computed
    mount = mounts.mount_config(config, tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(mount / "sst"), chunks=None) as ds:
            got = ds.load()
    for name in ("sst", "land_mask", "lat", "lon"):
        np.testing.assert_array_equal(got[name].values, reference[name].values, err_msg=name)
    mount.unmount()
    stats = run_atlasfs(atlasfs_bin, "cache", "stats", config, "--json")
    assert stats.returncode == 0, stats.stderr
    stats = json.loads(stats.stdout)
    assert stats["entries"] == total_chunks, stats
    cache = stats["mount"]["cache"]
    assert (cache["computed"], cache["disk"]["misses"]) == (0, 0), cache
    assert cache["disk"]["hits"] >= total_chunks, cache


def blocked_store(tmp_path) -> Path:
    """A store where one chunk's key is taken by a directory, so the shard that writes that
    chunk fails (and fails again when retried); the other shards can write theirs."""
    dest = tmp_path / "blocked.zarr"
    (dest / "sst" / "c" / "9" / "0" / "0").mkdir(parents=True)
    return dest


def test_a_failing_shard_is_retried_reported_and_fails_the_run(atlasfs_bin, client, config,
                                                               tmp_path):
    dest = blocked_store(tmp_path)
    summary = atlas_dask.run_export(client, str(config), "sst", str(dest), tasks=3,
                                    atlasfs=atlasfs_bin)
    assert not summary.ok
    [failed] = summary.failed
    assert [a.argv.count("--resume") for a in failed.attempts] == [0, 1]  # retried, resuming
    assert summary.finalize is None
    assert all(len(s.attempts) == 1 for s in summary.shards if s is not failed)
    report = summary.report()
    assert f"shard {failed.index}/3 FAILED (exit 1) after 2 attempts" in report, report
    assert "Is a directory" in report and "finalize not run" in report, report
    with pytest.raises(atlas_dask.ShardsFailed, match=f"shard {failed.index}/3 FAILED"):
        summary.check()
    assert not (dest / "zarr.json").exists()

    # the command line (with a cluster of its own) exits non-zero with the same report
    dest = blocked_store(tmp_path / "cli")
    res = subprocess.run(
        [sys.executable, str(HELPER), "export", "--local", "2", str(config), "sst", str(dest),
         "--tasks", "3", "--atlasfs", atlasfs_bin],
        capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"shard {failed.index}/3 FAILED" in res.stderr and "Is a directory" in res.stderr, \
        res.stderr
    assert not (dest / "zarr.json").exists()


# --------------------------------------------------------------------------
# Slurm: the scripts run by bash with the variables Slurm sets for an array task


def slurm_env(task: int | None = None, count: int | None = None, first: int = 0, **more) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    if task is not None:
        env.update(SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_COUNT=str(count),
                   SLURM_ARRAY_TASK_MIN=str(first), SLURM_ARRAY_TASK_MAX=str(first + count - 1),
                   SLURM_ARRAY_JOB_ID="77", SLURM_JOB_ID=str(100 + task))
    env.update(more)
    return env


def run_script(name: str, *args, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SLURM / name), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_slurm_array_tasks_then_finalize_write_the_store(atlasfs_bin, config, tmp_path,
                                                         reference, total_chunks):
    dest = tmp_path / "store.zarr"
    # an array submitted as --array=1-3: tasks 1, 2, 3 are shards 0/3, 1/3, 2/3
    for task in (1, 2):
        res = run_script("export.sbatch", config, "sst", dest,
                         env=slurm_env(task, 3, first=1, ATLASFS=atlasfs_bin))
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"--shard {task - 1}/3" in res.stdout, res.stdout
    assert not list(dest.rglob("zarr.json"))
    early = run_script("finalize.sbatch", config, "sst", dest, env=slurm_env(ATLASFS=atlasfs_bin))
    assert early.returncode != 0 and "not written yet" in early.stderr, early.stdout + early.stderr
    assert not list(dest.rglob("zarr.json"))

    res = run_script("export.sbatch", config, "sst", dest,
                     env=slurm_env(3, 3, first=1, ATLASFS=atlasfs_bin, SLURM_CPUS_PER_TASK="2"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "--shard 2/3 --jobs 2" in res.stdout, res.stdout
    final = run_script("finalize.sbatch", config, "sst", dest, env=slurm_env(ATLASFS=atlasfs_bin))
    assert final.returncode == 0 and "metadata written" in final.stdout, final.stdout + final.stderr
    assert_store_equals_files(dest, reference)
    assert files(dest) == plain_export(atlasfs_bin, config, tmp_path / "one.zarr")


def test_slurm_warm_tasks_fill_the_cache_home(atlasfs_bin, archive, tmp_path, total_chunks):
    config = make_config(tmp_path / "nocache.toml", archive)  # no [cache] dir
    home = tmp_path / "cache-home"
    for task in (0, 1):
        res = run_script("warm.sbatch", config, "sst",
                         env=slurm_env(task, 2, ATLASFS=atlasfs_bin, ATLASFS_CACHE_HOME=str(home)))
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"shard {task}/2 of {total_chunks} chunks" in res.stdout, res.stdout
    again = run_atlasfs(atlasfs_bin, "warm", config, "sst", env={"XDG_CACHE_HOME": str(home)})
    assert counts(again.stdout, "already cached") == total_chunks, again.stdout
    assert str(home / "atlasfs") in again.stdout


@pytest.mark.parametrize("script,args", [
    ("warm.sbatch", ["sst"]),
    ("export.sbatch", ["sst", "DEST"]),
])
def test_slurm_array_scripts_refuse_to_run_outside_an_array(atlasfs_bin, config, tmp_path,
                                                            script, args):
    args = [tmp_path / "store.zarr" if a == "DEST" else a for a in args]
    res = run_script(script, config, *args, env=slurm_env(ATLASFS=atlasfs_bin))
    assert res.returncode == 2
    assert f"{script}: not running as a Slurm array task" in res.stderr, res.stderr
    # an array with gaps (--array=0,2,4) has no shard numbering
    gaps = slurm_env(2, 3, ATLASFS=atlasfs_bin, SLURM_ARRAY_TASK_MAX="4")
    res = run_script(script, config, *args, env=gaps)
    assert res.returncode == 2 and "one contiguous range" in res.stderr, res.stderr
    assert not (tmp_path / "store.zarr").exists()
    assert not (tmp_path / "cache").exists()  # atlasfs never ran
    res = run_script("finalize.sbatch", config, "sst", tmp_path / "store.zarr",
                     env=slurm_env(0, 2, ATLASFS=atlasfs_bin))
    assert res.returncode == 2 and "not as an array task" in res.stderr, res.stderr


FAKE_SBATCH = """#!{python}
# Records its arguments (a JSON line) and plays Slurm: an array job runs every task in turn,
# a job --dependency=afterok:ID runs if every task of ID succeeded; prints the job id as
# `sbatch --parsable` does (the second one with a cluster name).
import json, os, re, subprocess, sys
log = os.environ["FAKE_SBATCH_LOG"]
args = sys.argv[1:]
jobs = [json.loads(line) for line in open(log)] if os.path.exists(log) else []
if os.environ.get("FAKE_SBATCH_FAIL"):
    sys.exit("sbatch: error: Batch job submission failed: Invalid account")
job = 4242 + len(jobs)
ok = True
opts = [a for a in args if a.startswith("-")]
script = next(i for i, a in enumerate(args) if a.endswith(".sbatch"))
dep = [a.split(":")[1] for a in opts if a.startswith("--dependency=afterok:")]
if not dep or all(j["ok"] for j in jobs if str(j["id"]) in dep):
    array = [a.split("=")[1] for a in opts if a.startswith("--array=")]
    first, last = map(int, array[0].split("-")) if array else (None, None)
    tasks = range(first, last + 1) if array else [None]
    for task in tasks:
        env = {{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}}
        if task is not None:
            env.update(SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN=str(first),
                       SLURM_ARRAY_TASK_MAX=str(last), SLURM_ARRAY_TASK_COUNT=str(len(tasks)))
        with open(f"{{log}}.{{job}}_{{task}}.out", "w") as out:  # as Slurm's --output
            ran = subprocess.run(["bash", *args[script:]], env=env, stdout=out, stderr=out)
        ok = ok and ran.returncode == 0
with open(log, "a") as f:
    f.write(json.dumps({{"id": job, "args": args, "ok": ok}}) + "\\n")
print(job if len(jobs) == 0 else f"{{job}};cluster1")
"""


def fake_sbatch(tmp_path) -> tuple[dict, Path]:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH.format(python=sys.executable))
    sbatch.chmod(0o755)
    log = tmp_path / "sbatch.log"
    env = slurm_env(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_SBATCH_LOG=str(log))
    return env, log


def sbatch_calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_submit_queues_the_array_and_a_dependent_finalize(atlasfs_bin, config, tmp_path,
                                                          reference):
    env, log = fake_sbatch(tmp_path)
    env["ATLASFS"] = atlasfs_bin
    res = run_script("submit.sh", config, "sst", "store.zarr", "--tasks", "3",
                     "--partition=debug", "--time", "00:10:00", "--", "--jobs", "2",
                     env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    dest = tmp_path / "store.zarr"  # made absolute: the jobs may start elsewhere
    tail = [str(config), "sst", str(dest), "--jobs", "2"]
    calls = sbatch_calls(log)
    assert [c["args"] for c in calls] == [
        ["--parsable", "--array=0-2", "--partition=debug", "--time", "00:10:00",
         str(SLURM / "export.sbatch"), *tail],
        ["--parsable", "--dependency=afterok:4242", "--kill-on-invalid-dep=yes",
         "--partition=debug", "--time", "00:10:00", str(SLURM / "finalize.sbatch"), *tail],
    ]
    assert "export array job 4242: 3 tasks" in res.stdout, res.stdout
    assert "finalize job 4243:" in res.stdout, res.stdout
    assert [c["ok"] for c in calls] == [True, True]
    assert_store_equals_files(dest, reference)


def test_submit_refuses_bad_arguments_and_reports_a_failed_submission(config, tmp_path):
    env, log = fake_sbatch(tmp_path)
    res = run_script("submit.sh", config, "sst", tmp_path / "s.zarr", env=env)
    assert res.returncode == 2 and "--tasks N" in res.stderr, res.stderr
    res = run_script("submit.sh", config, "sst", tmp_path / "s.zarr", "--tasks", "2",
                     "--array=0-9", env=env)
    assert res.returncode == 2 and "the array comes from --tasks" in res.stderr, res.stderr
    assert sbatch_calls(log) == []
    res = run_script("submit.sh", config, "sst", tmp_path / "s.zarr", "--tasks", "2",
                     env={**env, "FAKE_SBATCH_FAIL": "1"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Invalid account" in res.stderr and "submitting the export array failed" in res.stderr
    assert "finalize job" not in res.stdout
