"""The object-storage test harness itself: the loopback S3 server (s3server.py) and the
fault-injecting proxy in front of it (faulty_proxy.py), exercised with boto3 and plain
http.client, without atlasfs.  test_object_store.py relies on every behaviour checked here."""

from __future__ import annotations

import errno
import http.client
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from s3server import CREDENTIALS, atlasfs_env, storage_table

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte position distinguishable


@pytest.fixture
def bucket(s3_server):
    name = s3_server.create_bucket("harness", public=True)  # raw_get's requests are unsigned
    s3_server.upload_bytes(name, "dir/data.bin", DATA)
    s3_server.upload_bytes(name, "dir/other.bin", b"other object")
    return name


def raw_get(proxy, path, headers=None, conn=None):
    """(status, headers, body) of one GET through the proxy with http.client."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        if own:
            conn.close()


def test_upload_tree_and_list(s3_server, tmp_path):
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "top.nc").write_bytes(b"1")
    (tree / "a" / "mid.nc").write_bytes(b"22")
    (tree / "a" / "b" / "deep.nc").write_bytes(b"333")
    bucket = s3_server.create_bucket("tree")
    keys = s3_server.upload_tree(bucket, "pre/fix", tree)
    assert keys == ["pre/fix/a/b/deep.nc", "pre/fix/a/mid.nc", "pre/fix/top.nc"]
    assert s3_server.keys(bucket) == keys
    assert s3_server.keys(bucket, "pre/fix/a/") == keys[:2]
    assert s3_server.get(bucket, "pre/fix/a/b/deep.nc") == b"333"
    s3_server.delete(bucket, "pre/fix/top.nc")
    assert s3_server.keys(bucket) == keys[:2]
    other = s3_server.create_bucket("tree")
    assert other != bucket and s3_server.keys(other) == []


def test_proxy_forwards_and_records(s3_server, s3_proxy, bucket):
    client = s3_server.client(s3_proxy.endpoint)
    t0 = time.monotonic()
    assert client.get_object(Bucket=bucket, Key="dir/data.bin")["Body"].read() == DATA
    part = client.get_object(Bucket=bucket, Key="dir/data.bin", Range="bytes=1000-1999")
    assert part["Body"].read() == DATA[1000:2000]
    assert part["ContentRange"] == f"bytes 1000-1999/{len(DATA)}"
    assert client.head_object(Bucket=bucket, Key="dir/data.bin")["ContentLength"] == len(DATA)
    listed = client.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/data.bin", "dir/other.bin"]
    client.put_object(Bucket=bucket, Key="dir/put.bin", Body=b"x" * 100_000)
    assert s3_server.get(bucket, "dir/put.bin") == b"x" * 100_000

    reqs = s3_proxy.requests(bucket=bucket, since=t0)
    assert [(r.method, r.key, r.range, r.status) for r in reqs] == [
        ("GET", "dir/data.bin", None, 200),
        ("GET", "dir/data.bin", "bytes=1000-1999", 206),
        ("HEAD", "dir/data.bin", None, 200),
        ("GET", None, None, 200),
        ("PUT", "dir/put.bin", None, 200),
    ]
    assert "list-type=2" in reqs[3].query and reqs[3].bucket == bucket
    assert [r.body_bytes for r in reqs[:3]] == [len(DATA), 1000, 0]
    assert reqs[4].request_bytes >= 100_000
    assert all(r.signed and r.fault is None for r in reqs)
    assert CREDENTIALS["AWS_ACCESS_KEY_ID"] in reqs[0].headers["authorization"]
    ranged = s3_proxy.requests(bucket=bucket, key="dir/data.bin", ranged=True, since=t0)
    assert ranged == [reqs[1]]
    assert s3_proxy.body_bytes(bucket=bucket, method="GET", key="dir/data.bin",
                               since=t0) == len(DATA) + 1000


def test_keep_alive_connection_serves_many_requests(s3_proxy, bucket):
    conn = http.client.HTTPConnection(s3_proxy.host, s3_proxy.port, timeout=30)
    try:
        for i in range(5):
            status, _, body = raw_get(s3_proxy, f"/{bucket}/dir/data.bin",
                                      {"Range": f"bytes={i * 10}-{i * 10 + 9}"}, conn=conn)
            assert status == 206 and body == DATA[i * 10:i * 10 + 10]
        sock = conn.sock
        assert sock is not None, "the proxy closed a kept-alive connection"
    finally:
        conn.close()


def test_unsigned_requests_reach_public_buckets_only(s3_server, s3_proxy, bucket):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"{s3_proxy.endpoint}/{bucket}/dir/other.bin", timeout=30) as r:
        assert r.read() == b"other object"
    with urllib.request.urlopen(f"{s3_proxy.endpoint}/{bucket}?list-type=2", timeout=30) as r:
        assert b"<Key>dir/data.bin</Key>" in r.read()
    private = s3_server.create_bucket("private")
    s3_server.upload_bytes(private, "k", b"secret")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{s3_proxy.endpoint}/{private}/k", timeout=30)
    assert info.value.code == 403
    reqs = s3_proxy.requests(bucket=bucket, since=t0)
    assert [(r.signed, r.status) for r in reqs] == [(False, 200), (False, 200)]


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "SlowDown"),
                                         (403, "AccessDenied"), (404, "NoSuchKey")])
def test_error_fault(s3_server, s3_proxy, bucket, status, code):
    client = s3_server.client(s3_proxy.endpoint)  # no retries
    fault = s3_proxy.inject("error", status=status, times=2, method="GET", ranged=True,
                            key="dir/data.bin")
    # an unranged GET and another object do not match
    assert client.get_object(Bucket=bucket, Key="dir/data.bin")["Body"].read() == DATA
    assert client.get_object(Bucket=bucket, Key="dir/other.bin", Range="bytes=0-4")[
        "Body"].read() == b"other"
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            client.get_object(Bucket=bucket, Key="dir/data.bin", Range="bytes=0-9")
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    got = client.get_object(Bucket=bucket, Key="dir/data.bin", Range="bytes=0-9")
    assert got["Body"].read() == DATA[:10]
    assert fault.applied == 2 and fault.exhausted
    assert [r.fault for r in fault.requests] == ["error", "error"]
    assert [r.status for r in fault.requests] == [status, status]


def test_reset_fault_is_a_tcp_reset(s3_proxy, bucket):
    fault = s3_proxy.inject("reset", times=1, key="dir/data.bin")
    conn = http.client.HTTPConnection(s3_proxy.host, s3_proxy.port, timeout=30)
    try:
        conn.request("GET", f"/{bucket}/dir/data.bin")
        with pytest.raises(ConnectionResetError) as info:
            conn.getresponse().read()
        assert info.value.errno == errno.ECONNRESET
    finally:
        conn.close()
    assert fault.applied == 1
    assert fault.requests[0].status is None
    assert raw_get(s3_proxy, f"/{bucket}/dir/data.bin")[2] == DATA


@pytest.mark.parametrize("keep", [0.5, 100, 0])
def test_truncate_fault_sends_the_full_length_then_closes(s3_proxy, bucket, keep):
    fault = s3_proxy.inject("truncate", times=1, keep=keep, method="GET", ranged=True)
    conn = http.client.HTTPConnection(s3_proxy.host, s3_proxy.port, timeout=30)
    try:
        conn.request("GET", f"/{bucket}/dir/data.bin", headers={"Range": "bytes=0-9999"})
        resp = conn.getresponse()
        assert resp.status == 206
        assert resp.getheader("Content-Length") == "10000"
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        want = 5000 if keep == 0.5 else keep
        assert info.value.partial == DATA[:want]
    finally:
        conn.close()
    assert fault.applied == 1 and fault.requests[0].body_bytes == want
    status, _, body = raw_get(s3_proxy, f"/{bucket}/dir/data.bin", {"Range": "bytes=0-9999"})
    assert status == 206 and body == DATA[:10000]


def test_delay_fault(s3_proxy, bucket):
    fault = s3_proxy.inject("delay", seconds=0.4, times=2, method="GET")
    t0 = time.monotonic()
    for _ in range(2):
        assert raw_get(s3_proxy, f"/{bucket}/dir/other.bin")[2] == b"other object"
    delayed = time.monotonic() - t0
    t1 = time.monotonic()
    assert raw_get(s3_proxy, f"/{bucket}/dir/other.bin")[2] == b"other object"
    assert delayed >= 0.8 and time.monotonic() - t1 < 0.4
    assert fault.applied == 2


def test_persistent_fault_until_removed(s3_proxy, bucket):
    fault = s3_proxy.inject("error", status=500, times=None, key_prefix="dir/d")
    for _ in range(5):
        assert raw_get(s3_proxy, f"/{bucket}/dir/data.bin")[0] == 500
    assert raw_get(s3_proxy, f"/{bucket}/dir/other.bin")[0] == 200
    assert fault.applied == 5 and not fault.exhausted
    s3_proxy.remove(fault)
    assert raw_get(s3_proxy, f"/{bucket}/dir/data.bin")[0] == 200


def test_faults_apply_in_order(s3_proxy, bucket):
    kinds = ["error", "reset", "truncate", "delay"]
    faults = [s3_proxy.inject(k, times=1, seconds=0.1, key="dir/data.bin") for k in kinds]
    outcomes = []
    for _ in range(5):
        try:
            status, _, body = raw_get(s3_proxy, f"/{bucket}/dir/data.bin")
            outcomes.append(status if body == DATA or status != 200 else "short")
        except (ConnectionError, http.client.HTTPException) as e:
            outcomes.append(type(e).__name__)
    assert outcomes == [500, "ConnectionResetError", "IncompleteRead", 200, 200]
    assert [f.applied for f in faults] == [1, 1, 1, 1]


def test_atlasfs_env_and_storage_table(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "somebody")
    env = atlasfs_env(config_dir=tmp_path / "aws", log="trace")
    assert {k: env[k] for k in CREDENTIALS} == CREDENTIALS
    assert env["AWS_PROFILE"] is None and env["ATLASFS_LOG"] == "trace"
    assert os.path.getsize(env["AWS_SHARED_CREDENTIALS_FILE"]) == 0
    anon = atlasfs_env(credentials=False)
    assert all(anon[k] is None for k in CREDENTIALS)
    assert storage_table("http://127.0.0.1:9", anonymous=True) == {
        "region": "us-east-1", "endpoint": "http://127.0.0.1:9", "anonymous": True}


def test_concurrent_clients_with_a_fault_on_one_object(s3_proxy, bucket):
    fault = s3_proxy.inject("reset", times=None, key="dir/other.bin")
    results = {}

    def worker(i):
        try:
            if i % 4 == 0:
                raw_get(s3_proxy, f"/{bucket}/dir/other.bin")
                results[i] = "no error"
            else:
                lo = i * 1000
                status, _, body = raw_get(s3_proxy, f"/{bucket}/dir/data.bin",
                                          {"Range": f"bytes={lo}-{lo + 9999}"})
                results[i] = status == 206 and body == DATA[lo:lo + 10000]
        except (ConnectionError, http.client.HTTPException) as e:
            results[i] = type(e).__name__

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(results[i] == "ConnectionResetError" for i in range(0, 16, 4)), results
    assert all(results[i] is True for i in range(16) if i % 4), results
    assert fault.applied == 4
