"""`[cache] shared`: a tier of computed chunks on object storage, shared by every node.

Two mounts with cache dirs of their own and one shared tier on the loopback S3 server: once
mount A has read a pack view and a pyramid view, mount B serves the same bytes computing none
of them. A damaged entry in the shared tier is recomputed, never served; faults of the tier
(errors, resets, truncated bodies through the fault proxy) never yield a wrong byte; `warm` on
several workers fills the tier; an unreachable tier degrades to computing locally.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import view_fixtures as vf
from conftest import run_atlasfs
from s3server import CREDENTIALS, atlasfs_env, s3_url, storage_table
from test_cache import mount_stats
from view_fixtures import daily, source  # noqa: F401 (fixtures)

VIEWS = [
    {"name": "packed", "from": "daily", "pack": {"dtype": "int16", "range": "data"}},
    {"name": "pyr", "from": "daily",
     "pyramid": {"levels": 3, "method": "mean", "dims": ["lat", "lon"]}},
]


def shared_config(path: Path, daily_paths, cache: Path, url: str, endpoint: str) -> Path:  # noqa: F811
    config = vf.write_views_config(path, [vf.daily_entry(daily_paths)], VIEWS, cache_dir=cache)
    storage = storage_table(endpoint)
    text = config.read_text().replace(
        f"[cache]\ndir = ",
        f"[cache]\nshared = \"{url}\"\ndir = ", 1)
    text += "\n[cache.storage]\n" + "\n".join(
        f"{k} = {'true' if v is True else 'false' if v is False else repr(v)}"
        .replace("'", '"') for k, v in storage.items()) + "\n"
    config.write_text(text)
    return config


def view_chunks(root: Path) -> dict[str, bytes]:
    """Every chunk file of the views under a mount, by path."""
    out = {}
    for view in ("packed", "pyr"):
        for p in sorted((root / view).rglob("*")):
            if p.is_file() and p.name != "zarr.json" and "/c/" in str(p.relative_to(root)) + "/":
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def counters(atlasfs_bin, config, predicate=lambda c: True, timeout=10.0) -> dict:
    """The running mount's cache counters once ``predicate(cache counters)`` holds."""
    return mount_stats(atlasfs_bin, config, lambda m: predicate(m["cache"]),
                       timeout=timeout)["cache"]


def uploaded_all(c: dict) -> bool:
    return c["shared_tier"]["uploads"] == c["computed"] and c["pending_writes"] == 0


def settled(atlasfs_bin, config) -> dict:
    """A mount's counters once every chunk it computed (read-ahead included) is uploaded and
    nothing changed for two seconds."""
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        c = counters(atlasfs_bin, config, uploaded_all, timeout=30)
        if c == last and uploaded_all(c):
            return c
        last = c
        time.sleep(2.0)
    return last


@pytest.fixture
def env(tmp_path):
    return atlasfs_env(config_dir=tmp_path / "aws")


@pytest.fixture
def tier(s3_server):
    bucket = s3_server.create_bucket("shared")
    return {"bucket": bucket, "url": s3_url(bucket, "atlas-cache")}


def entries(s3_server, tier) -> list[str]:
    return s3_server.keys(tier["bucket"], "atlas-cache/")


def test_a_second_node_computes_nothing_the_first_computed(atlasfs_bin, mounts, daily,  # noqa: F811
                                                            tmp_path, s3_server, tier, env):
    a_cfg = shared_config(tmp_path / "a.toml", daily, tmp_path / "a-cache", tier["url"],
                          s3_server.endpoint)
    b_cfg = shared_config(tmp_path / "b.toml", daily, tmp_path / "b-cache", tier["url"],
                          s3_server.endpoint)
    a = mounts.mount_config(a_cfg, tmp_path / "a-cache", env=env)
    read_a = view_chunks(a.path)
    assert len(read_a) > 10
    # Every chunk A computed (the views' and the source chunks they read) goes to the tier.
    computed_a = settled(atlasfs_bin, a_cfg)
    assert uploaded_all(computed_a), computed_a
    assert computed_a["shared_tier"]["failures"] == 0, computed_a
    assert computed_a["computed"] > 0, computed_a
    assert len(entries(s3_server, tier)) == computed_a["shared_tier"]["uploads"]

    b = mounts.mount_config(b_cfg, tmp_path / "b-cache", env=env)
    before = counters(atlasfs_bin, b_cfg)["computed"]
    read_b = view_chunks(b.path)
    assert read_b == read_a
    after = counters(atlasfs_bin, b_cfg, lambda c: c["shared_tier"]["hits"] >= len(read_a))
    assert before == 0 and after["computed"] == 0, (before, after)
    assert after["shared_tier"]["hits"] >= len(read_a), after
    assert after["shared_tier"]["uploads"] == 0, after


def fill_tier(atlasfs_bin, mounts, daily, tmp_path, s3_server, tier, env):  # noqa: F811
    """Mount A reads the views and uploads every chunk; returns what it read."""
    a_cfg = shared_config(tmp_path / "a.toml", daily, tmp_path / "a-cache", tier["url"],
                          s3_server.endpoint)
    a = mounts.mount_config(a_cfg, tmp_path / "a-cache", env=env)
    read_a = view_chunks(a.path)
    assert uploaded_all(settled(atlasfs_bin, a_cfg))
    a.unmount()
    return read_a


def test_damaged_shared_entries_are_recomputed_and_replaced(atlasfs_bin, mounts, daily,  # noqa: F811
                                                            tmp_path, s3_server, tier, env):
    read_a = fill_tier(atlasfs_bin, mounts, daily, tmp_path, s3_server, tier, env)
    names = sorted(entries(s3_server, tier))
    originals = {k: s3_server.get(tier["bucket"], k) for k in names}
    # Every entry damaged: a flipped byte of the chunk (its checksum no longer holds), or
    # truncated.
    for i, name in enumerate(names):
        data = bytearray(originals[name])
        if i % 2:
            data = data[:-20]
        else:
            data[0] ^= 0x01
        s3_server.upload_bytes(tier["bucket"], name, bytes(data))

    b_cfg = shared_config(tmp_path / "b.toml", daily, tmp_path / "b-cache", tier["url"],
                          s3_server.endpoint)
    b = mounts.mount_config(b_cfg, tmp_path / "b-cache", env=env)
    assert view_chunks(b.path) == read_a
    c = settled(atlasfs_bin, b_cfg)
    t = c["shared_tier"]
    # Every lookup found a damaged entry, computed the chunk and replaced the entry.
    assert t["hits"] == 0 and t["damaged"] >= len(read_a), c
    assert c["computed"] == t["damaged"] == t["uploads"], c
    replaced = [n for n in names if s3_server.get(tier["bucket"], n) == originals[n]]
    assert len(replaced) == t["uploads"], (len(replaced), c)
    log = (tmp_path / "b-cache" / "atlasfs.log").read_text()
    assert log.count("is damaged") == t["damaged"], log[-3000:]


@pytest.mark.parametrize("fault", [
    {"kind": "error", "status": 503},
    {"kind": "error", "status": 403},
    {"kind": "reset"},
    {"kind": "truncate", "keep": 0.5},
])
def test_faults_of_the_shared_tier_never_yield_a_wrong_byte(atlasfs_bin, mounts, daily,  # noqa: F811
                                                            tmp_path, s3_server, s3_proxy,
                                                            tier, env, fault):
    read_a = fill_tier(atlasfs_bin, mounts, daily, tmp_path, s3_server, tier, env)
    f = s3_proxy.inject(**fault, times=None, method="GET", bucket=tier["bucket"],
                        key_prefix="atlas-cache/")
    b_cfg = shared_config(tmp_path / "b.toml", daily, tmp_path / "b-cache", tier["url"],
                          s3_proxy.endpoint)
    b = mounts.mount_config(b_cfg, tmp_path / "b-cache", env=env)
    assert view_chunks(b.path) == read_a
    assert f.applied >= 1
    c = counters(atlasfs_bin, b_cfg, lambda c: c["shared_tier"]["failures"] >= 1)
    assert c["shared_tier"]["failures"] >= 1 and c["shared_tier"]["hits"] == 0, c
    # The tier pauses after a failure: one warning, the chunks computed here.
    log = (tmp_path / "b-cache" / "atlasfs.log").read_text()
    assert log.count("computing chunks here for the next") == 1, log[-3000:]
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in log


def test_an_unreachable_tier_degrades_to_computing_here(atlasfs_bin, mounts, daily,  # noqa: F811
                                                        tmp_path, tier, env, source):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    cfg = shared_config(tmp_path / "c.toml", daily, tmp_path / "cache", tier["url"],
                        f"http://127.0.0.1:{port}")
    started = time.monotonic()
    m = mounts.mount_config(cfg, tmp_path / "cache", env=env)
    chunks = view_chunks(m.path)
    assert len(chunks) > 10
    assert time.monotonic() - started < 60
    c = counters(atlasfs_bin, cfg, lambda c: c["shared_tier"]["failures"] >= 1)
    assert c["shared_tier"]["failures"] >= 1 and c["computed"] > 0, c
    assert c["shared_tier"]["hits"] == 0, c
    log = (tmp_path / "cache" / "atlasfs.log").read_text()
    assert log.count("computing chunks here for the next") == 1, log[-3000:]


def test_warm_shards_fill_the_tier_for_every_node(atlasfs_bin, mounts, daily, tmp_path,  # noqa: F811
                                                  s3_server, tier, env):
    import subprocess
    import os

    configs = [shared_config(tmp_path / f"w{k}.toml", daily, tmp_path / f"w{k}-cache",
                             tier["url"], s3_server.endpoint) for k in range(2)]
    full_env = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    for k in env:
        if env[k] is None:
            full_env.pop(k, None)
    workers = [subprocess.Popen([atlasfs_bin, "warm", str(cfg), "packed", "pyr",
                                 "--shard", f"{k}/2"], env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k, cfg in enumerate(configs)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    uploaded = sum(int(out.split("shared cache: ")[1].split(" uploaded")[0].split(", ")[-1])
                   for out, _ in outputs)
    assert uploaded == len(entries(s3_server, tier)) > 0, outputs

    node = shared_config(tmp_path / "n.toml", daily, tmp_path / "n-cache", tier["url"],
                         s3_server.endpoint)
    m = mounts.mount_config(node, tmp_path / "n-cache", env=env)
    view_chunks(m.path)
    c = counters(atlasfs_bin, node, lambda c: c["shared_tier"]["hits"] > 0)
    # The views' chunks all came from the tier (the source chunks the range scan reads are
    # computed by whichever node reads them first, and may be computed here).
    assert c["shared_tier"]["hits"] > 0, c
    assert c["computed"] <= c["shared_tier"]["misses"], c


def test_a_shared_tier_that_is_no_url_is_refused(atlasfs_bin, daily, tmp_path):  # noqa: F811
    cfg = shared_config(tmp_path / "c.toml", daily, tmp_path / "cache", "/tmp/not-a-url",
                        "http://127.0.0.1:9")
    res = run_atlasfs(atlasfs_bin, "check", cfg)
    assert res.returncode != 0
    assert "[cache] shared" in res.stderr and "object-store URL" in res.stderr, res.stderr
