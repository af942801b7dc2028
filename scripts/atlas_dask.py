#!/usr/bin/env python3
"""Run ``atlasfs warm`` or ``atlasfs export`` over a Dask cluster, one ``--shard K/N`` per task.

Each task runs the ``atlasfs`` binary on the node of the Dask worker that picks it up, with the
configuration file at the given path *on that node* (so each node uses the cache dir its own
config names). Shards are deterministic and disjoint: task K of N runs
``atlasfs warm CONFIG PATH... --shard K/N`` (or ``atlasfs export CONFIG PATH DEST --shard K/N``).
A shard that fails is run once more (an export shard with ``--resume``, so the chunks it already
wrote are kept); an export then runs ``atlasfs export ... --finalize`` once, which writes the
store's metadata, or refuses, naming the first missing chunk.

Where the bytes go:

- ``warm`` fills the cache dir of the node each shard ran on. Nodes whose configs name one cache
  dir on a shared filesystem (with working ``flock``) fill it together; with node-local cache
  dirs each node holds the chunks of the shards it ran.
- ``export`` writes DEST from every node, so DEST must be reachable from all of them: a
  directory on a shared filesystem or an object-store URL (``s3://…``).

Command line (``-- ARGS`` passes more options to every ``atlasfs`` run, e.g. ``--jobs 8`` or
``--zarr-format 2``)::

    python scripts/atlas_dask.py warm   --scheduler tcp://head:8786 CONFIG PATH... [--tasks N]
    python scripts/atlas_dask.py export --local 4 CONFIG PATH DEST [--tasks N] [-- ARGS]

``--local N`` starts a ``LocalCluster`` of N single-threaded worker processes on this machine;
``--tasks`` defaults to the number of workers. ``--shards 0,2`` runs only those shards and
``--no-finalize`` leaves the metadata to a later ``--finalize`` run. The binary is
``--atlasfs PATH`` or ``atlasfs`` on each worker's PATH. The exit status is 0 only when every
shard (and the finalize step) succeeded; a failure prints the shard, its exit status and the
tail of its stderr.

From Python (the same module, importable)::

    from distributed import Client
    import atlas_dask

    client = Client("tcp://head:8786")
    summary = atlas_dask.run_export(client, "/etc/atlasfs/era5.toml", "era5", "s3://b/era5.zarr")
    print(summary.report())
    summary.check()                       # raises ShardsFailed unless everything succeeded

On Slurm, start the Dask workers with dask-jobqueue (``SLURMCluster(cores=…, memory=…,
processes=1)``, then ``cluster.scale(jobs=N)`` and ``Client(cluster)``); one worker process per
node lets each ``atlasfs`` run use the node's cores (``--jobs``). scripts/slurm/ has plain
array-job scripts that need no Dask.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STDERR_TAIL = 20  # lines of a failed run's stderr shown in a report


class ShardsFailed(RuntimeError):
    """Raised by :meth:`Summary.check` when a shard or the finalize step failed."""

    def __init__(self, summary: Summary):
        super().__init__(summary.report())
        self.summary = summary


@dataclass
class Attempt:
    """One run of ``atlasfs`` on a worker."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    worker: str | None = None
    host: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary_line(self) -> str:
        """The run's summary line (``warmed …``, ``exported …``), else its last line."""
        lines = [line.strip() for line in self.stdout.splitlines() if line.strip()]
        found = [line for line in lines if line.startswith(("warmed ", "exported "))]
        return (found or lines or [""])[-1]

    def stderr_tail(self, lines: int = STDERR_TAIL) -> str:
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])

    def where(self) -> str:
        return f"{self.worker or '?'} ({self.host or '?'})"


@dataclass
class ShardResult:
    """A shard and every attempt at it (the last one decides)."""

    index: int
    count: int
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]


@dataclass
class Summary:
    """What a distributed ``warm`` or ``export`` did."""

    command: str
    tasks: int
    shards: list[ShardResult]
    finalize: Attempt | None = None
    finalize_wanted: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> list[ShardResult]:
        return [s for s in self.shards if not s.ok]

    @property
    def ok(self) -> bool:
        if self.failed:
            return False
        return not self.finalize_wanted or (self.finalize is not None and self.finalize.ok)

    @property
    def workers(self) -> set[str]:
        return {a.worker for s in self.shards for a in s.attempts if a.worker}

    def report(self) -> str:
        """A few lines for a person: one per shard, a failure's stderr tail, the finalize step."""
        head = (f"atlasfs {self.command}: {len(self.shards)} of {self.tasks} shard(s) on "
                f"{len(self.workers)} worker(s), {len(self.shards) - len(self.failed)} ok, "
                f"{len(self.failed)} failed")
        if self.finalize_wanted:
            if self.finalize is None:
                head += "; finalize not run (shards failed)"
            else:
                head += "; finalize " + ("ok" if self.finalize.ok else "FAILED")
        lines = [f"{head}; in {self.seconds:.2f} s"]
        for shard in self.shards:
            last = shard.last
            name = f"shard {shard.index}/{shard.count}"
            tries = f" after {len(shard.attempts)} attempts" if len(shard.attempts) > 1 else ""
            if last.ok:
                lines.append(f"  {name} ok{tries} on {last.where()} in {last.seconds:.2f} s: "
                             f"{last.summary_line()}")
            else:
                lines.append(f"  {name} FAILED (exit {last.returncode}){tries}, last on "
                             f"{last.where()}: {last.summary_line()}")
                lines += _tail(last)
        if self.finalize is not None:
            if self.finalize.ok:
                lines.append(f"  finalize ok on {self.finalize.where()}: "
                             f"{self.finalize.summary_line()}")
            else:
                lines.append(f"  finalize FAILED (exit {self.finalize.returncode}) on "
                             f"{self.finalize.where()}: {self.finalize.summary_line()}")
                lines += _tail(self.finalize)
        return "\n".join(lines)

    def check(self) -> Summary:
        """Returns the summary, or raises :class:`ShardsFailed` (its message is the report)."""
        if not self.ok:
            raise ShardsFailed(self)
        return self


def _tail(attempt: Attempt) -> list[str]:
    return [f"    | {line}" for line in attempt.stderr_tail().splitlines()]


# --------------------------------------------------------------------------
# on the worker


def run_atlasfs(argv: list[str], binary: str | None = None) -> dict:
    """Runs ``atlasfs ARGV`` here (on a Dask worker: on its node); returns the fields of an
    :class:`Attempt` (a plain dict, so the worker needs none of this module's classes).

    ``binary`` is the executable; ``None`` looks ``atlasfs`` up on this node's PATH.
    """
    import shutil
    import socket
    import subprocess

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    done = {"argv": argv, "returncode": 127, "stdout": "", "stderr": "", "worker": worker,
            "host": socket.gethostname(), "seconds": 0.0}
    exe = binary or shutil.which("atlasfs")
    if exe is None:
        return {**done, "stderr": "atlasfs is not on this node's PATH (give --atlasfs PATH)"}
    started = time.monotonic()
    try:
        proc = subprocess.run([exe, *argv], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", check=False)
    except OSError as e:
        return {**done, "stderr": f"cannot run {exe}: {e}"}
    return {**done, "returncode": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr, "seconds": time.monotonic() - started}


# --------------------------------------------------------------------------
# on the client


def _default_tasks(client) -> int:
    workers = len(client.nthreads())
    if workers == 0:
        raise ValueError("the Dask cluster has no workers (yet): start some, or give --tasks")
    return workers


def _check_extra(extra: Sequence[str]) -> list[str]:
    for arg in extra:
        if arg.split("=", 1)[0] in ("--shard", "--finalize"):
            raise ValueError(f"{arg}: the helper sets --shard and --finalize itself")
    return list(extra)


def _shard_list(tasks: int, shards: Iterable[int] | None) -> list[int]:
    chosen = list(range(tasks)) if shards is None else sorted(set(shards))
    bad = [k for k in chosen if not 0 <= k < tasks]
    if tasks < 1 or bad:
        raise ValueError(f"shards {bad} are not in 0..{tasks - 1}" if bad else
                         f"tasks must be at least 1, not {tasks}")
    return chosen


def _submit(client, argv: list[str], binary: str | None, key: str):
    if __name__ != "__main__":  # workers need not import this module: send the task by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return client.submit(run_atlasfs, argv, binary, key=key, pure=False)


def _attempt(future, argv: list[str]) -> Attempt:
    """The attempt a finished task made; a task that raised (its worker died, the cluster
    went away) is a failed attempt."""
    try:
        return Attempt(**future.result())
    except Exception as e:  # noqa: BLE001 (a task's failure is the shard's failure)
        return Attempt(argv, -1, "", f"the Dask task failed: {type(e).__name__}: {e}")


def _run_shards(client, command: str, base: list[str], tasks: int, shards: list[int],
                retry_with: list[str], binary: str | None, retries: int) -> list[ShardResult]:
    """Runs ``atlasfs BASE --shard K/N`` for every K in ``shards``, each failure again up to
    ``retries`` times with ``retry_with`` added."""
    from distributed import as_completed

    results = {k: ShardResult(k, tasks) for k in shards}
    token = f"{time.time_ns():x}"
    pending = {}
    for k in shards:
        argv = [command, *base, "--shard", f"{k}/{tasks}"]
        future = _submit(client, argv, binary, f"atlasfs-{command}-{token}-{k}-of-{tasks}-try0")
        pending[future] = (k, argv)
    running = as_completed(list(pending))
    for future in running:
        k, argv = pending.pop(future)
        attempt = _attempt(future, argv)
        shard = results[k]
        shard.attempts.append(attempt)
        if not attempt.ok and len(shard.attempts) <= retries:
            again = [*argv, *[a for a in retry_with if a not in argv]]
            retry = _submit(client, again, binary,
                            f"atlasfs-{command}-{token}-{k}-of-{tasks}-try{len(shard.attempts)}")
            pending[retry] = (k, again)
            running.add(retry)
    return [results[k] for k in shards]


def run_warm(client, config: str, paths: Sequence[str], tasks: int | None = None, *,
             extra: Sequence[str] = (), atlasfs: str | None = None, shards: Iterable[int] | None
             = None, retries: int = 1) -> Summary:
    """Warms the tree ``paths`` of ``config`` over the cluster of ``client``.

    ``tasks`` shards (default: one per worker), each ``atlasfs warm CONFIG PATHS --shard K/N
    EXTRA`` on a worker; ``shards`` runs only those shard numbers; a failed shard runs again up
    to ``retries`` times. Returns a :class:`Summary` (``.ok``, ``.report()``, ``.check()``).
    """
    started = time.monotonic()
    tasks = tasks or _default_tasks(client)
    base = [str(config), *map(str, paths), *_check_extra(extra)]
    results = _run_shards(client, "warm", base, tasks, _shard_list(tasks, shards), [],
                          atlasfs, retries)
    return Summary("warm", tasks, results, seconds=time.monotonic() - started)


def finalize_export(client, config: str, path: str, dest: str, *, extra: Sequence[str] = (),
                    atlasfs: str | None = None) -> Attempt:
    """Runs ``atlasfs export CONFIG PATH DEST --finalize EXTRA`` once, on a worker: writes the
    metadata when every chunk is at DEST, else fails naming the first missing one."""
    argv = ["export", str(config), str(path), str(dest), "--finalize", *_check_extra(extra)]
    return _attempt(_submit(client, argv, atlasfs, f"atlasfs-finalize-{time.time_ns():x}"),
                    argv)


def run_export(client, config: str, path: str, dest: str, tasks: int | None = None, *,
               extra: Sequence[str] = (), atlasfs: str | None = None,
               shards: Iterable[int] | None = None, finalize: bool = True,
               retries: int = 1) -> Summary:
    """Exports the tree ``path`` of ``config`` to the Zarr store ``dest`` over the cluster.

    ``tasks`` shards (default: one per worker), each ``atlasfs export CONFIG PATH DEST --shard
    K/N EXTRA`` on a worker; a failed shard runs again with ``--resume`` up to ``retries``
    times; then, if every shard succeeded and ``finalize`` is true, ``--finalize`` runs once.
    ``shards`` runs only those shard numbers (with ``finalize=False``, a "shard-only" run).
    Returns a :class:`Summary`.
    """
    started = time.monotonic()
    tasks = tasks or _default_tasks(client)
    extra = _check_extra(extra)
    base = [str(config), str(path), str(dest), *extra]
    results = _run_shards(client, "export", base, tasks, _shard_list(tasks, shards),
                          ["--resume"], atlasfs, retries)
    summary = Summary("export", tasks, results, finalize_wanted=finalize)
    if finalize and not summary.failed:
        summary.finalize = finalize_export(client, config, path, dest, extra=extra,
                                           atlasfs=atlasfs)
    summary.seconds = time.monotonic() - started
    return summary


# --------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas_dask.py",
        description="Run atlasfs warm/export over a Dask cluster, one --shard K/N per task. "
                    "Options after `--` go to every atlasfs run.")
    commands = parser.add_subparsers(dest="command", required=True)
    warm = commands.add_parser("warm", help="warm the chunk cache of the workers' nodes")
    warm.add_argument("config", help="mount config (the same path on every node)")
    warm.add_argument("paths", nargs="+", metavar="PATH", help="tree paths (`/` is all)")
    export = commands.add_parser("export", help="write a Zarr store from every worker")
    export.add_argument("config", help="mount config (the same path on every node)")
    export.add_argument("path", help="tree path to export")
    export.add_argument("dest", help="store: a shared directory or an object-store URL")
    export.add_argument("--no-finalize", dest="finalize", action="store_false",
                        help="run the shards only; the metadata waits for a --finalize run")
    for sub in (warm, export):
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--scheduler", metavar="ADDR", help="a running scheduler's address")
        where.add_argument("--local", metavar="N", type=int,
                           help="start a LocalCluster of N worker processes here")
        sub.add_argument("--tasks", type=int, metavar="N",
                         help="number of shards [default: number of workers]")
        sub.add_argument("--shards", metavar="K,K…", type=_int_list,
                         help="run only these shards (0-based) of the N")
        sub.add_argument("--atlasfs", metavar="PATH",
                         help="the atlasfs binary on the workers [default: atlasfs on PATH]")
        sub.add_argument("--retries", type=int, default=1, metavar="N",
                         help="runs of a failed shard again [default: 1]")
    return parser


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,2,3") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = _parser().parse_args(argv)

    from distributed import Client, LocalCluster

    cluster = None
    if args.local is not None:
        cluster = LocalCluster(n_workers=args.local, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        with Client(cluster if cluster is not None else args.scheduler) as client:
            common = {"extra": extra, "atlasfs": args.atlasfs, "shards": args.shards,
                      "retries": args.retries}
            if args.command == "warm":
                summary = run_warm(client, args.config, args.paths, args.tasks, **common)
            else:
                summary = run_export(client, args.config, args.path, args.dest, args.tasks,
                                     finalize=args.finalize, **common)
    except ValueError as e:
        print(f"atlas_dask: {e}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.close()
    print(summary.report(), file=sys.stdout if summary.ok else sys.stderr)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
