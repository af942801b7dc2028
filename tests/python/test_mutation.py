"""Mutation (corruption) test: atlasfs never hands a reader a wrong number without an error.

A seeded campaign (mutation_campaign.py; the mutants come from mutants.py) mounts hundreds of
corrupted NetCDF-3 and NetCDF-4 files, each as its own dataset, through real mounts, reads every
array with zarr-python (raw values) and checks: no panic, no daemon death, no hang, the daemon's peak RSS under a bound, and
every array either fails to read or equals netCDF4-python's raw values on the mutant or on the
unmutated seed.  The counts are printed (and written as JSON to ``$ATLASFS_MUTATION_RESULTS``
when set); every silent wrong value names the campaign seed, mutant, mutation and variable —
``scripts/fuzz --seed N --mutant I --write DIR`` writes that file again.

The other tests here check the harness itself, so that a campaign cannot pass by comparing
nothing.
"""

from __future__ import annotations

import json
import os

import netCDF4
import numpy as np
import pytest

import mutants
import nc_layout
from mutation_campaign import (CI_COUNT, CI_SEED, Campaign, judge, read_mount_dataset, read_netcdf,
                               run_jobs)


def test_corrupt_files_never_serve_wrong_values(mounts, tmp_path, capsys):
    campaign = Campaign(mounts, tmp_path / "campaign", CI_SEED, CI_COUNT)
    report = campaign.run()
    text = report.text()
    results = os.environ.get("ATLASFS_MUTATION_RESULTS") or tmp_path / "mutation.json"
    with open(results, "w") as f:
        json.dump({**report.counts(), "findings": report.findings}, f, indent=2)
    with capsys.disabled():  # the counts show in the CI log, passed or failed
        print("\n" + "\n".join(text.splitlines()[:3]) + f"\n  (counts and findings: {results})")
    assert report.mutants == CI_COUNT
    # the campaign really read through mounts, and saw both outcomes
    assert report.datasets_served >= CI_COUNT // 5, text
    assert report.arrays_ok_mutant >= CI_COUNT, text
    assert report.datasets_left_out + report.arrays_failed > 0, text
    bad = report.bad()
    assert bad == 0, text


# Mutants of the long campaign (seed 2) that once served wrong values or killed the daemon: a
# chunk dimension of 2^32 - 1 (an unbounded allocation), dataspace extents that disagree with
# the variables' dimensions (libnetcdf refuses those files), a moved B-tree key.
# Campaign seed -> its mutants that once served wrong values or killed the daemon.
LONG_CAMPAIGN_REGRESSIONS = {
    2: [757, 1745, 1954, 2539, 2657, 4353, 4561],
    # the element size a version-3 layout message repeats, changed (libhdf5 refuses the dataset)
    1: [1297, 4036],
}


@pytest.mark.parametrize("seed", sorted(LONG_CAMPAIGN_REGRESSIONS))
def test_long_campaign_regressions_stay_fixed(mounts, tmp_path, seed):
    indices = LONG_CAMPAIGN_REGRESSIONS[seed]
    campaign = Campaign(mounts, tmp_path / "campaign", seed, 0, indices=indices)
    report = campaign.run()
    text = report.text()
    assert report.mutants == len(indices), text
    assert [m.index for m in campaign.mutants] == indices
    assert report.daemon_deaths == 0, text
    assert report.silent_wrong == 0, text
    assert report.bad() == 0, text
    # the mutants were really mounted and judged: every one is left out or read and failed
    assert report.datasets_left_out + report.datasets_served == len(indices)
    assert report.arrays_failed > 0 or report.datasets_left_out > 0, text


def test_unmutated_seeds_read_exactly_like_netcdf4(mounts, tmp_path):
    """The judge's positive path: every array of every seed is served and matches."""
    seeds = mutants.write_seeds(tmp_path / "seeds")
    m = mounts.mount([{"name": s.name, "files": str(s.path)} for s in seeds])
    for s in seeds:
        ref = read_netcdf(str(s.path))
        served = read_mount_dataset(str(m / s.name))
        assert served["open_error"] is None, (s.name, served["open_error"])
        assert set(served["arrays"]) == set(ref["arrays"]), s.name
        wrong, counts = judge(served, ref, ref)
        assert not wrong, wrong
        assert counts == {"arrays_ok_mutant": len(ref["arrays"]), "arrays_ok_seed": 0,
                          "arrays_failed": 0}, (s.name, counts)


def test_judge_flags_values_neither_reference_has(tmp_path):
    seeds = mutants.write_seeds(tmp_path / "seeds")
    seed = next(s for s in seeds if s.name == "nc4_groups")
    ref = read_netcdf(str(seed.path))
    served = read_netcdf(str(seed.path))
    entry = served["arrays"]["forecast/temp"]
    box, status, values = entry["boxes"][0]
    changed = values.copy()
    changed[1, 2] = np.nextafter(changed[1, 2], np.float32(np.inf))
    entry["boxes"][0] = (box, status, changed)
    wrong, _ = judge(served, None, ref)
    assert len(wrong) == 1 and "forecast/temp" in wrong[0] and "[1, 2]" in wrong[0], wrong
    # a read that failed is fine, and so is a value equal to the mutant's reference
    entry["boxes"][0] = (box, "err", "OSError: [Errno 5] Input/output error")
    assert judge(served, None, ref)[0] == []
    entry["boxes"][0] = (box, status, changed)
    assert judge(served, served, ref)[0] == []
    # a renamed array is matched by value against every array of the references
    served["arrays"]["forecast/tenp"] = served["arrays"].pop("forecast/temp")
    assert len(judge(served, None, ref)[0]) == 1
    served["arrays"]["forecast/tenp"]["boxes"][0] = (box, status, values)
    assert judge(served, None, ref)[0] == []


def test_mutants_are_reproducible_and_checksums_real(tmp_path):
    seeds = mutants.write_seeds(tmp_path / "a")
    again = mutants.write_seeds(tmp_path / "b")
    assert [s.data for s in seeds] == [s.data for s in again], "seed files are not deterministic"
    made = [mutants.make_mutant(seeds, 7, i) for i in range(200)]
    assert [m.data for m in made] == [mutants.make_mutant(again, 7, i).data for i in range(200)]
    assert sum(m.data != m.seed.data for m in made) >= 190
    assert {m.kind for m in made} == {k for k, _ in mutants.KIND_WEIGHTS}
    assert {m.seed.name for m in made} == {s.name for s in seeds}
    # the lookup3 checksums this module recomputes are the ones libhdf5 checks
    checked = 0
    for s in seeds:
        for start, end, label in s.blocks:
            if label in ("superblock", "object header", "object header continuation"):
                stored = int.from_bytes(s.data[end - 4:end], "little")
                assert nc_layout.lookup3(s.data[start:end - 4]) == stored, (s.name, label, start)
                checked += 1
    assert checked > 50
    # a resealed header with a changed dimension size still opens in netCDF4-python
    seed = next(s for s in seeds if s.name == "nc4_contiguous")
    f = next(f for f in seed.fields if f.label == "contiguous data size" and f.block)
    buf = bytearray(seed.data)
    buf[f.offset:f.offset + f.size] = (int.from_bytes(buf[f.offset:f.offset + 8], "little") + 8
                                       ).to_bytes(8, "little")
    nc_layout.reseal(buf, f.block)
    path = tmp_path / "resealed.nc"
    path.write_bytes(bytes(buf))
    with netCDF4.Dataset(path) as ds:
        assert ds.variables


def test_worker_deadline_turns_a_stuck_read_into_a_hang(tmp_path):
    fifo = tmp_path / "never.nc"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: the worker must be killed
    seed = mutants.write_seeds(tmp_path / "seeds")[0]
    results = run_jobs("ref", [str(fifo), str(seed.path)], tmp_path / "jobs", 3.0)
    assert [r["status"] for r in results] == ["hang", "ok"], results
    assert results[1]["result"]["open_error"] is None


def test_campaign_counts_a_daemon_death_and_memory_over_the_bound(mounts, tmp_path, monkeypatch):
    """The daemon is killed before the first batch is read: the death is counted and blamed on
    the first dataset read, the rest of the batch is mounted and read again; a 1 MiB bound on
    the daemon's peak RSS is exceeded."""
    import signal

    import mutation_campaign
    from conftest import daemon_pids

    real_run_jobs = mutation_campaign.run_jobs
    killed = []

    def kill_then_read(mode, jobs, workdir, timeout, stop_after_hang=False):
        if mode == "read" and not killed and jobs:
            mountpoint = os.path.dirname(jobs[0])
            for pid in daemon_pids(mountpoint):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return real_run_jobs(mode, jobs, workdir, timeout, stop_after_hang)

    monkeypatch.setattr(mutation_campaign, "run_jobs", kill_then_read)
    campaign = Campaign(mounts, tmp_path / "campaign", CI_SEED, 30, batch=30, rss_bound_mib=1)
    report = campaign.run()
    text = report.text()
    assert killed, "no daemon found to kill"
    assert report.daemon_deaths == 1, text
    assert any(f.startswith("DAEMON DIED while reading campaign") for f in report.findings), text
    # the rest of the batch went to a second mount, whose daemon is measured (the first is gone)
    assert report.mounts == 2 and report.datasets_served >= 1, text
    assert report.rss_over_bound == 1 and report.max_rss_mib > 1, text
