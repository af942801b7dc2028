"""`atlasfs serve`: the tree over HTTP, read with real clients.

xarray + zarr-python (fsspec's HTTP store) read datasets, a DataTree and a pyramid view over
HTTP; the same config mounted with FUSE is the reference (its fidelity to the files is what
the FUSE tests check), in Zarr v3 and v2. The protocol (HEAD, Range, ETag/304, caching, CORS,
gzip, token auth, concurrent clients) is checked with `requests`; a truncated source must answer
500 and an object store failing through a fault-injecting proxy 503, each naming the file and
the chunk, never with a partial body. SIGHUP reloads (keeping `--zarr-format`), SIGTERM stops
with status 0.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import requests
import xarray as xr

import view_fixtures as vf
from conftest import run_atlasfs, wait_for
from view_fixtures import cases, daily  # noqa: F401 (fixtures)

READY_TIMEOUT = 180  # seconds for `atlasfs serve` to index and print its ready line
STOP_TIMEOUT = 40
IMMUTABLE = "public, max-age=31536000, immutable"


class Server:
    """A running `atlasfs serve` on a free loopback port (the port the OS picks for port 0,
    read from the ready line)."""

    def __init__(self, bin_path, config: Path, *args, env: dict | None = None,
                 listen: str = "127.0.0.1:0"):
        self.config = Path(config)
        self.log_path = self.config.with_suffix(".log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        for name, value in (env or {}).items():  # None removes a variable
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        self.proc = subprocess.Popen(
            [bin_path, "serve", str(config), "--listen", listen, *map(str, args)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, env=full_env,
        )
        self.ready = self._ready_line()
        host = listen.rsplit(":", 1)[0]
        assert self.ready.startswith(f"serving {config} at http://{host}:"), self.ready
        port = self.ready.split(" at ", 1)[1].split(" ", 1)[0].rstrip("/").rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{port}"  # requests go to loopback only

    def _ready_line(self) -> str:
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT)
        if not line or not line[0]:
            self.stop()
            raise AssertionError(f"no ready line from `atlasfs serve`:\n{self.log_text()}")
        return line[0].decode().strip()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, key: str, **kw) -> requests.Response:
        return requests.get(f"{self.url}/{key}", timeout=60, **kw)

    def head(self, key: str, **kw) -> requests.Response:
        return requests.head(f"{self.url}/{key}", timeout=60, **kw)

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


class Servers:
    """Starts servers and configs under a directory; stops every server at the end."""

    def __init__(self, bin_path, base: Path):
        self.bin = bin_path
        self.base = Path(base)
        self.running: list[Server] = []

    def config(self, datasets, views=(), *, zarr_format: int = 3) -> Path:
        work = self.base / f"s{len(list(self.base.glob('s*')))}"
        work.mkdir(parents=True)
        return vf.write_views_config(work / "atlasfs.toml", datasets, list(views),
                                     cache_dir=work / "cache", zarr_format=zarr_format)

    def start(self, config, *args, env: dict | None = None, **kw) -> Server:
        server = Server(self.bin, config, *args, env=env, **kw)
        self.running.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.running:
            code = server.stop()
            if code != 0:
                print(f"`atlasfs serve` exited {code}:\n{server.log_text()[-3000:]}")
        self.running.clear()


@pytest.fixture(scope="module")
def servers(atlasfs_bin, tmp_path_factory):
    manager = Servers(atlasfs_bin, tmp_path_factory.mktemp("servers"))
    yield manager
    manager.stop_all()


def open_zarr(url) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(url, chunks=None) as ds:
            return ds.load()


def open_tree(url) -> xr.DataTree:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = xr.open_datatree(url, engine="zarr")
        tree.load()
    tree.close()
    return tree


PYRAMID = {"name": "pyr", "from": "daily", "pyramid": {"levels": 3, "method": "mean"}}


@pytest.fixture(scope="module")
def archive(daily, cases):  # noqa: F811 (fixtures)
    """The datasets served: the daily NetCDF archive joined along time, a DataTree of cases
    and a pyramid view of the daily archive."""
    return [vf.daily_entry(daily), vf.cases_entry(cases)], [PYRAMID]


@pytest.fixture(scope="module", params=[3, 2], ids=lambda f: f"zarr{f}")
def served(request, servers, module_mounts, archive):
    """(server, mount) of the same datasets in one Zarr format: the server is started with
    `--zarr-format N` over a config of the other format, the mount from a config in N."""
    datasets, views = archive
    fmt = request.param
    config = servers.config(datasets, views, zarr_format=5 - fmt)
    server = servers.start(config, "--zarr-format", fmt)
    mount = vf.mount_views(module_mounts, datasets, views, zarr_format=fmt)
    return server, mount, fmt


def test_ready_line_counts_the_datasets(served):
    server, _, _ = served
    assert server.ready.endswith("(3 datasets)"), server.ready


def test_xarray_reads_a_joined_dataset_as_the_mount_serves_it(served, daily):  # noqa: F811
    server, mount, _ = served
    got = open_zarr(f"{server.url}/daily")
    want = open_zarr(str(mount / "daily"))
    assert got.sizes["time"] == vf.NTIME
    xr.testing.assert_identical(got, want)
    # and the values are the files' (the mount's fidelity, checked here once more)
    files = vf.open_daily(daily)
    for name in ("sst", "sal"):
        np.testing.assert_array_equal(got[name].values, files[name].values)


def test_xarray_reads_a_datatree_as_the_mount_serves_it(served):
    server, mount, _ = served
    got = open_tree(f"{server.url}/cases")
    want = open_tree(str(mount / "cases"))
    assert set(got.groups) == set(want.groups)
    assert "/north/m1" in got.groups and "/south/m3" in got.groups
    xr.testing.assert_identical(got, want)


def test_xarray_reads_a_pyramid_view_as_the_mount_serves_it(served):
    server, mount, _ = served
    got = open_tree(f"{server.url}/pyr")
    want = open_tree(str(mount / "pyr"))
    assert {"/0", "/1", "/2"} <= set(got.groups)
    xr.testing.assert_identical(got, want)


def test_chunk_bytes_are_the_mounts(served):
    server, mount, fmt = served
    key = "daily/sst/c/3/0/0" if fmt == 3 else "daily/sst/3.0.0"
    body = server.get(key)
    assert body.status_code == 200
    assert body.content == (mount / key).read_bytes()


# --------------------------------------------------------------------------
# the protocol, with requests


@pytest.fixture(scope="module")
def daily_server(servers, daily):  # noqa: F811 (fixture)
    return servers.start(servers.config([vf.daily_entry(daily)]))


CHUNK = "daily/sst/c/2/0/0"
META = "daily/zarr.json"


def test_head_has_the_gets_length_and_cors(daily_server):
    plain = {"Accept-Encoding": "identity"}
    for key in (META, CHUNK):
        got = daily_server.get(key, headers=plain)
        head = daily_server.head(key, headers=plain)
        assert got.status_code == head.status_code == 200
        assert int(got.headers["Content-Length"]) == len(got.content) > 0
        assert int(head.headers["Content-Length"]) == len(got.content), key
        assert head.content == b""
        assert head.headers["ETag"] == got.headers["ETag"]
        for response in (got, head):
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            exposed = response.headers["Access-Control-Expose-Headers"]
            for name in ("ETag", "Content-Range", "Content-Length"):
                assert name in exposed
    assert daily_server.get(CHUNK).headers["Cache-Control"] == IMMUTABLE
    assert daily_server.get(META).headers["Cache-Control"] == "no-cache"
    assert json.loads(daily_server.get(META).content)["node_type"] == "group"


def test_ranges_are_slices_of_the_whole_body(daily_server):
    whole = daily_server.get(CHUNK).content
    n = len(whole)
    for spec, (start, end) in {"bytes=3-10": (3, 10), "bytes=5-": (5, n - 1),
                               "bytes=-7": (n - 7, n - 1), f"bytes=10-{n + 50}": (10, n - 1)}.items():
        part = daily_server.get(CHUNK, headers={"Range": spec})
        assert part.status_code == 206, spec
        assert part.content == whole[start:end + 1], spec
        assert part.headers["Content-Range"] == f"bytes {start}-{end}/{n}", spec
        assert int(part.headers["Content-Length"]) == end - start + 1
    past = daily_server.get(CHUNK, headers={"Range": f"bytes={n}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{n}"
    meta = daily_server.get(META).content
    part = daily_server.get(META, headers={"Range": "bytes=0-0"})
    assert part.status_code == 206 and part.content == meta[:1] == b"{"


def test_etags_revalidate_with_304(daily_server):
    chunk = daily_server.get(CHUNK)
    other = daily_server.get("daily/sst/c/3/0/0")
    assert chunk.headers["ETag"] != other.headers["ETag"], "equal tags for different chunks"
    again = daily_server.get(CHUNK, headers={"If-None-Match": chunk.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == chunk.headers["ETag"]
    stale = daily_server.get(CHUNK, headers={"If-None-Match": other.headers["ETag"]})
    assert stale.status_code == 200 and stale.content == chunk.content
    meta = daily_server.get(META)
    assert daily_server.get(META, headers={"If-None-Match": meta.headers["ETag"]}).status_code == 304


def test_missing_keys_and_directories_are_404(daily_server):
    for key in ("daily/nope/zarr.json", "daily/sst/c/999/0/0", "daily/sst/c/2/0", "daily",
                "daily/sst", "daily/sst/c/02/0/0", "nope"):
        response = daily_server.get(key)
        assert response.status_code == 404, key
        assert daily_server.head(key).status_code == 404, key
    assert requests.post(f"{daily_server.url}/{META}", timeout=30).status_code == 405


def test_json_is_gzipped_when_asked(daily_server):
    plain = daily_server.get(META, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    zipped = daily_server.get(META, headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) == len(raw)
    assert gzip.decompress(raw) == plain.content
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    chunk = daily_server.get(CHUNK, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in chunk.headers, "chunks are served as they are"


def test_concurrent_clients_get_whole_values(daily_server):
    plain = {"Accept-Encoding": "identity"}
    keys = [META] + [f"daily/{v}/c/{t}/0/0" for v in ("sst", "sal") for t in range(vf.NTIME)]
    with ThreadPoolExecutor(32) as pool:
        got = list(pool.map(lambda k: (k, daily_server.get(k, headers=plain)), keys * 6))
    want = {key: daily_server.get(key, headers=plain).content for key in keys}
    assert all(want.values())
    for key, response in got:
        assert response.status_code == 200, key
        assert response.content == want[key], key


def test_a_token_is_required_when_set(servers, daily):  # noqa: F811 (fixture)
    server = servers.start(servers.config([vf.daily_entry(daily)]),
                           env={"ATLASFS_TOKEN": "s3cret-token"})
    assert server.get(META).status_code == 401
    assert server.get(META, headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = server.get(META, headers={"Authorization": "Bearer s3cret-token"})
    assert good.status_code == 200 and json.loads(good.content)["node_type"] == "group"
    opts = {"client_kwargs": {"headers": {"Authorization": "Bearer s3cret-token"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(f"{server.url}/daily", chunks=None, storage_options=opts) as ds:
            assert ds.sst.shape[0] == vf.NTIME
            assert np.isfinite(ds.sst.isel(time=0).values).any()


def test_loopback_by_default_and_a_warning_for_other_addresses(servers, daily, atlasfs_bin):  # noqa: F811
    usage = run_atlasfs(atlasfs_bin, "serve", "--help")
    assert "127.0.0.1:8700" in usage.stdout, usage.stdout
    config = servers.config([vf.daily_entry(daily)])
    bad = run_atlasfs(atlasfs_bin, "serve", config, "--zarr-format", "4")
    assert bad.returncode != 0 and "2 or 3" in bad.stderr, bad.stderr
    quiet = servers.start(config)
    assert "warning" not in quiet.log_text()
    taken = quiet.url.removeprefix("http://")
    busy = run_atlasfs(atlasfs_bin, "serve", config, "--listen", taken, timeout=60)
    assert busy.returncode != 0 and f"listening on {taken}" in busy.stderr, busy.stderr
    quiet.stop()
    servers.running.remove(quiet)
    wide = servers.start(config, listen="0.0.0.0:0")
    warning = [line for line in wide.log_text().splitlines() if "warning" in line]
    assert warning and "no authentication" in warning[0] and "ATLASFS_TOKEN" in warning[0], \
        wide.log_text()
    assert wide.get(META).status_code == 200


def test_a_truncated_source_is_500_naming_file_and_chunk(servers, tmp_path, fixture_files):
    src = tmp_path / "src"
    src.mkdir()
    files = [shutil.copy(f, src) for f in fixture_files["agg_standard"]]
    server = servers.start(servers.config(
        [{"name": "sst", "files": str(src / "*.nc"), "concat_dim": "time",
          "chunks": {"time": 1}}]))
    good = server.get("sst/sst/c/0/0/0")
    assert good.status_code == 200
    with xr.open_dataset(files[0]) as first:
        days = first.sizes["time"]
    victim = files[1]
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    key = f"sst/sst/c/{days + 1}/0/0"
    response = server.get(key)
    assert response.status_code == 500, response.content[:300]
    text = response.content.decode()
    assert victim in text and f"c/{days + 1}/0/0" in text, text
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert server.head(key).status_code == 500
    # the other files still serve
    again = server.get("sst/sst/c/0/0/0")
    assert again.status_code == 200 and again.content == good.content


def test_an_unreachable_object_store_is_503(servers, s3_server, s3_proxy, s3_env,
                                             fixture_files):
    from s3server import s3_url, storage_table

    bucket = s3_server.create_bucket("http")
    files = fixture_files["agg_standard"]
    keys = [s3_server.upload_file(bucket, f"agg/{Path(f).name}", f) for f in files]
    server = servers.start(servers.config(
        [{"name": "sst", "files": s3_url(bucket, "agg/*.nc"), "concat_dim": "time",
          "chunks": {"time": 1}, "storage": storage_table(s3_proxy.endpoint)}]),
        "--zarr-format", "3", env=s3_env)
    with xr.open_dataset(files[0]) as first:
        days = first.sizes["time"]
    assert server.get("sst/sst/c/0/0/0").status_code == 200
    s3_proxy.inject("error", times=None, method="GET", ranged=True, bucket=bucket,
                    key=keys[1], status=503)
    key = f"sst/sst/c/{days}/0/0"
    response = server.get(key)
    assert response.status_code == 503, response.content[:300]
    text = response.content.decode()
    assert s3_url(bucket, keys[1]) in text and f"c/{days}/0/0" in text, text
    assert int(response.headers["Content-Length"]) == len(response.content)
    # the store recovers: the failure was not cached
    s3_proxy.clear_faults()
    again = server.get(key)
    assert again.status_code == 200
    with netCDF4.Dataset(files[1]) as second:  # the stored values, undecoded
        second.set_auto_maskandscale(False)
        stored = np.asarray(second["sst"][0])
    assert again.content == stored.astype(stored.dtype.newbyteorder("<")).tobytes()


def test_sighup_reloads_and_sigterm_stops_cleanly(servers, tmp_path, daily):  # noqa: F811
    src = tmp_path / "grow"
    src.mkdir()
    for path in daily[:-1]:
        shutil.copy(path, src)
    config = servers.config([{**vf.daily_entry(daily), "files": str(src / "*.nc")}])
    server = servers.start(config, "--zarr-format", "2")

    def times():
        return json.loads(server.get("daily/time/.zarray").content)["shape"][0]

    before = times()
    assert before == vf.NTIME - vf.DAYS_PER_FILE
    shutil.copy(daily[-1], src)
    server.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: times() == vf.NTIME, timeout=60), server.log_text()[-2000:]
    got = open_zarr(f"{server.url}/daily")
    np.testing.assert_array_equal(got.sst.values, vf.open_daily(daily).sst.values)
    assert server.stop() == 0, server.log_text()[-2000:]
    servers.running.remove(server)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/daily/.zattrs", timeout=5)


def test_a_held_chunk_is_304_without_computing_and_stats_are_live(servers, daily_server,
                                                                   daily, atlasfs_bin):  # noqa: F811
    """A client holding a chunk (its ETag, the cache key, from any server of the same config)
    gets 304 from a fresh server that computes nothing; `atlasfs cache stats` shows a running
    server's counters as it shows a mount's."""
    from test_cache import mount_stats

    tag = daily_server.get(CHUNK).headers["ETag"]
    config = servers.config([vf.daily_entry(daily)])
    fresh = servers.start(config)
    held = fresh.get(CHUNK, headers={"If-None-Match": tag})
    assert held.status_code == 304 and held.headers["ETag"] == tag
    assert "immutable" in held.headers["Cache-Control"]
    counters = mount_stats(atlasfs_bin, config, lambda m: True)
    assert counters["mountpoint"].startswith("http://127.0.0.1:"), counters
    assert counters["cache"]["computed"] == 0, counters
    assert fresh.get(CHUNK).status_code == 200
    counters = mount_stats(atlasfs_bin, config, lambda m: m["cache"]["computed"] >= 1)
    assert counters["cache"]["computed"] >= 1 and not counters["finished"], counters
