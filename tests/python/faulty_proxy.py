"""A fault-injecting HTTP/1.1 proxy for the object-storage tests.

It listens on 127.0.0.1 and forwards every request to one upstream HTTP server (the loopback S3
server), so a client pointed at the proxy's endpoint talks S3 as usual, except where a test told
the proxy to misbehave.  Every request is recorded (method, path, Range header, status, body
bytes sent back, the fault applied, whether it was signed), so a test can assert how a client
read, e.g. that a chunk read used ranged GETs only.

Faults apply to the next N requests that match a filter (or to every matching request, until
removed)::

    proxy = FaultyProxy("127.0.0.1", s3_port)
    f = proxy.inject("error", status=503, times=2, method="GET", ranged=True, key="b/k.nc")
    ...                      # the client reads; the first two ranged GETs of b/k.nc get 503
    assert f.applied == 2
    proxy.clear_faults()

Kinds of fault:

``delay``     wait ``seconds`` (default 1.0), then forward the request normally;
``error``     answer ``status`` (default 500) with an S3 XML error body, without forwarding;
              503 says ``SlowDown`` (throttling), 500 ``InternalError``, 403 ``AccessDenied``,
              404 ``NoSuchKey``; the connection stays usable;
``reset``     close the client connection with a TCP reset (SO_LINGER 0), without answering;
``truncate``  forward the request, send the response headers with the full Content-Length,
              then only ``keep`` of the body (a fraction < 1, or a byte count >= 1; default
              0.5), then close the connection.

Filters (all optional, all must hold): ``method`` ("GET", "HEAD", ...), ``ranged`` (True: has a
Range header; False: has none), ``bucket``, ``key`` (exact object key, without the bucket),
``key_prefix``, ``path_regex`` (searched in the raw request target, query included), and
``where`` (a callable taking the Request).  ``times=None`` applies the fault to every matching
request until it is removed.

The proxy re-frames responses (it reads each upstream response whole and sends it back with a
Content-Length), which is transparent to HTTP clients; request bodies are forwarded unchanged
(a chunked request body is de-chunked and sent with a Content-Length).
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

FAULT_KINDS = ("delay", "error", "reset", "truncate")

ERROR_CODES = {
    400: ("BadRequest", "Bad Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad Gateway"),
    503: ("SlowDown", "Please reduce your request rate."),
}

# Headers that belong to one connection, not to the message; the proxy sets its own framing.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "expect", "content-length",
}


@dataclass
class Request:
    """One request as the proxy saw it, and what it did with it."""

    method: str
    target: str                      # the raw request target: path and query
    headers: dict                    # lower-case name -> value (last one wins)
    request_bytes: int = 0           # request body bytes received
    status: int | None = None        # status sent back (None: no response, e.g. a reset)
    body_bytes: int = 0              # response body bytes actually sent to the client
    fault: str | None = None         # the kind of fault applied, if any
    started: float = 0.0
    finished: float = 0.0
    header_list: list = field(default_factory=list, repr=False)  # as sent, in order

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def ranged(self) -> bool:
        return "range" in self.headers

    @property
    def signed(self) -> bool:
        return "authorization" in self.headers

    @property
    def bucket(self) -> str | None:
        """The bucket of a path-style request (``/bucket/key``)."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[0] or None

    @property
    def key(self) -> str | None:
        """The object key of a path-style request; None for bucket-level requests (LIST)."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 and parts[1] else None

    def __repr__(self) -> str:
        extra = f" range={self.range}" if self.range else ""
        fault = f" fault={self.fault}" if self.fault else ""
        return f"<{self.method} {self.target}{extra} -> {self.status} {self.body_bytes} B{fault}>"


@dataclass
class Fault:
    """A fault rule; ``applied`` counts the requests it was applied to."""

    kind: str
    times: int | None = 1
    seconds: float = 1.0
    status: int = 500
    keep: float = 0.5
    method: str | None = None
    ranged: bool | None = None
    bucket: str | None = None
    key: str | None = None
    key_prefix: str | None = None
    path_regex: str | None = None
    where: object = None
    applied: int = 0
    requests: list = field(default_factory=list)

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        if self.method is not None and req.method.upper() != self.method.upper():
            return False
        if self.ranged is not None and req.ranged != self.ranged:
            return False
        if self.bucket is not None and req.bucket != self.bucket:
            return False
        if self.key is not None and req.key != self.key:
            return False
        if self.key_prefix is not None and not (req.key or "").startswith(self.key_prefix):
            return False
        if self.path_regex is not None and not re.search(self.path_regex, req.target):
            return False
        if self.where is not None and not self.where(req):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times


class _Reset(Exception):
    """The client connection was (deliberately or not) torn down."""


class FaultyProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of ``upstream_host:upstream_port``."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0,
                 upstream_timeout: float = 60.0):
        self.upstream = (upstream_host, upstream_port)
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[Request] = []
        self._conns: set[socket.socket] = set()
        self._closing = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, name="faulty-proxy",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def inject(self, kind: str, *, times: int | None = 1, **kw) -> Fault:
        """Apply a fault to the next ``times`` matching requests (``None``: all, until removed).
        See the module docstring for kinds and filters."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        fault = Fault(kind=kind, times=times, **kw)
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def requests(self, *, method: str | None = None, bucket: str | None = None,
                 key: str | None = None, key_prefix: str | None = None,
                 ranged: bool | None = None, since: float | None = None) -> list[Request]:
        """Recorded requests (finished or not) matching all the given filters, in arrival order."""
        with self._lock:
            out = list(self._log)
        sel = []
        for r in out:
            if method is not None and r.method.upper() != method.upper():
                continue
            if bucket is not None and r.bucket != bucket:
                continue
            if key is not None and r.key != key:
                continue
            if key_prefix is not None and not (r.key or "").startswith(key_prefix):
                continue
            if ranged is not None and r.ranged != ranged:
                continue
            if since is not None and r.started < since:
                continue
            sel.append(r)
        return sel

    def body_bytes(self, **filters) -> int:
        """Response body bytes sent back for the matching requests."""
        return sum(r.body_bytes for r in self.requests(**filters))

    def close(self) -> None:
        self._closing = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="faulty-proxy-conn").start()

    def _pick_fault(self, req: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(req):
                    fault.applied += 1
                    fault.requests.append(req)
                    return fault
        return None

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = conn.makefile("rb")
        upstream = None
        try:
            while not self._closing:
                req, body, keep_alive = self._read_request(rfile, conn)
                if req is None:
                    return
                with self._lock:
                    self._log.append(req)
                fault = self._pick_fault(req)
                if fault is not None:
                    req.fault = fault.kind
                if fault is not None and fault.kind == "reset":
                    req.finished = time.monotonic()
                    rfile.close()  # the socket closes only once its file object is closed
                    _reset(conn)
                    raise _Reset()
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                if fault is not None and fault.kind == "error":
                    self._send_error(conn, req, fault.status)
                    req.finished = time.monotonic()
                    if not keep_alive:
                        return
                    continue
                if upstream is None:
                    upstream = http.client.HTTPConnection(*self.upstream,
                                                          timeout=self.upstream_timeout)
                try:
                    status, reason, headers, rbody = _forward(upstream, req, body)
                except (OSError, http.client.HTTPException):
                    upstream.close()
                    upstream = None
                    self._send_error(conn, req, 502)
                    req.finished = time.monotonic()
                    return
                if fault is not None and fault.kind == "truncate":
                    keep = fault.keep
                    n = int(len(rbody) * keep) if keep < 1 else min(int(keep), len(rbody))
                    if n >= len(rbody) and rbody:
                        n = len(rbody) - 1
                    self._send_response(conn, req, status, reason, headers, rbody,
                                        body_limit=n)
                    req.finished = time.monotonic()
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self._send_response(conn, req, status, reason, headers, rbody)
                req.finished = time.monotonic()
                if not keep_alive:
                    return
        except (_Reset, OSError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            try:
                rfile.close()
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._conns.discard(conn)

    def _read_request(self, rfile, conn):
        line = rfile.readline(65537)
        if not line or not line.strip():
            # tolerate a stray CRLF between requests; EOF ends the connection
            if not line:
                return None, None, False
            line = rfile.readline(65537)
            if not line:
                return None, None, False
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            return None, None, False
        method, target, version = parts
        header_list = []
        while True:
            h = rfile.readline(65537)
            if not h:
                return None, None, False
            if h in (b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").partition(":")
            header_list.append((name.strip(), value.strip()))
        headers = {k.lower(): v for k, v in header_list}
        req = Request(method=method, target=target, headers=headers, started=time.monotonic(),
                      header_list=header_list)
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size_line = rfile.readline(65537)
                if not size_line:
                    return None, None, False
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        t = rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(rfile.read(size))
                rfile.readline(65537)
            body = b"".join(chunks)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = rfile.read(n)
            if len(body) != n:
                return None, None, False
        req.request_bytes = len(body)
        conn_hdr = headers.get("connection", "").lower()
        keep_alive = (version == "HTTP/1.1" and "close" not in conn_hdr) or (
            version == "HTTP/1.0" and "keep-alive" in conn_hdr)
        return req, body, keep_alive

    def _send_error(self, conn, req: Request, status: int) -> None:
        code, message = ERROR_CODES.get(status, ("Error", "Error"))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{req.path}</Resource><RequestId>faulty-proxy</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "faulty-proxy")]
        if status == 503:
            headers.append(("Retry-After", "0"))
        reason = http.client.responses.get(status, "Error")
        self._send_response(conn, req, status, reason, headers, body)

    def _send_response(self, conn, req: Request, status: int, reason: str, headers, body: bytes,
                       body_limit: int | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        no_body = req.method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200
        for name, value in headers:
            low = name.lower()
            if low in HOP_BY_HOP and not (low == "content-length" and no_body):
                continue
            lines.append(f"{name}: {value}")
        if not no_body:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = b"" if no_body else body
        if body_limit is not None:
            payload = payload[:body_limit]
        req.status = status
        conn.sendall(head)
        if payload:
            conn.sendall(payload)
        req.body_bytes = len(payload)


def _forward(upstream: http.client.HTTPConnection, req: Request, body: bytes):
    """Send ``req`` upstream; returns (status, reason, headers, body)."""
    for attempt in (0, 1):
        try:
            upstream.putrequest(req.method, req.target, skip_host=True,
                                skip_accept_encoding=True)
            for name, value in req.header_list:
                if name.lower() in HOP_BY_HOP:
                    continue
                upstream.putheader(name, value)
            if body or "content-length" in req.headers or "transfer-encoding" in req.headers:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body if body else None)
            resp = upstream.getresponse()
            rbody = resp.read()
            headers = resp.getheaders()
            if resp.will_close:
                upstream.close()
            return resp.status, resp.reason, headers, rbody
        except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest,
                http.client.BadStatusLine):
            # a kept-alive upstream connection the server had closed: reconnect once
            upstream.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP RST instead of a FIN."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass
