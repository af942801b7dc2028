#!/usr/bin/env python3
"""An HTTP proxy that adds a fixed latency to every request, for benchmarks of object storage at
the distance users' granules really are (10-30 ms), not on loopback.

It is the test suite's fault-injecting proxy (tests/python/faulty_proxy.py) with one permanent
`delay` fault, run in a process of its own so that its threads never wait on the interpreter
lock of the S3 server they forward to:

    scripts/latency_proxy.py UPSTREAM_PORT --latency-ms 20

prints `listening PORT` once it accepts connections and serves until its standard input is
closed (or SIGTERM). Each request is held for the latency, then forwarded on a kept-alive
connection of its own; requests on different connections overlap, as they do against a real
store. On exit it prints one JSON line: requests forwarded, response body bytes sent and the CPU
time the proxy used.
"""
from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

from faulty_proxy import FaultyProxy  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("upstream_port", type=int, help="port of the server on 127.0.0.1")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added to every request (default 20)")
    args = p.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    proxy = FaultyProxy("127.0.0.1", args.upstream_port)
    proxy.inject("delay", times=None, seconds=args.latency_ms / 1e3)
    print(f"listening {proxy.port}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    reqs = proxy.requests()
    proxy.close()
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"requests": len(reqs), "body_bytes": sum(r.body_bytes for r in reqs),
                      "cpu_s": use.ru_utime + use.ru_stime}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
