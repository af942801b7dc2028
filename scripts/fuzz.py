#!/usr/bin/env python3
"""Mutation (corruption) campaigns against a real atlasfs mount.

    scripts/fuzz                      the CI-sized campaign (the one tests/python/test_mutation.py runs)
    scripts/fuzz --long               a long campaign (5,000 mutants, another campaign seed)
    scripts/fuzz --seed N [--count K] campaign N with K mutants
    scripts/fuzz --seed N --mutant I --write DIR
                                      writes mutant I of campaign N (and its seed files) to DIR

Prints the counts (mutants, panics, daemon deaths, hangs, silent wrong values, peak daemon RSS)
and every finding with the campaign seed, mutant, mutation and variable; exits 1 if any bad count
is not zero.  ``--json PATH`` also writes the counts and findings as JSON.  The mutants come from
tests/python/mutants.py, the campaign from tests/python/mutation_campaign.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))

import mutants  # noqa: E402
import mutation_campaign as mc  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true", help="a long campaign")
    ap.add_argument("--seed", type=int, help="campaign seed")
    ap.add_argument("--count", type=int, help="number of mutants")
    ap.add_argument("--batch", type=int, default=mc.BATCH, help="mutants per mount")
    ap.add_argument("--mutant", type=int, help="with --write: the mutant to write")
    ap.add_argument("--write", type=Path, help="with --mutant: directory to write it to")
    ap.add_argument("--json", type=Path, help="write the counts and findings here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    seed = args.seed if args.seed is not None else (mc.LONG_SEED if args.long else mc.CI_SEED)
    if args.mutant is not None or args.write is not None:
        if args.mutant is None or args.write is None:
            ap.error("--mutant and --write go together")
        path, m = mutants.write_mutant(args.write, seed, args.mutant)
        print(f"{path}: seed {m.seed.name} ({m.seed.path}), {m.desc}")
        return 0
    count = args.count or (mc.LONG_COUNT if args.long else mc.CI_COUNT)

    from conftest import MountManager

    binary = os.environ.get("ATLASFS_BIN") or str(REPO / "target" / "release" / "atlasfs")
    if not os.access(binary, os.X_OK):
        print(f"{binary} not found: run `cargo build --release`", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="atlasfs-fuzz-"))
    mgr = MountManager(binary, workdir / "mounts")
    try:
        campaign = mc.Campaign(mgr, workdir / "campaign", seed, count, batch=args.batch)
        report = campaign.run()
        if args.json:
            args.json.write_text(json.dumps({**report.counts(), "findings": report.findings},
                                            indent=2))
        print(report.text())
    finally:
        for m in mgr.mounts:
            m.unmount()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if report.bad() else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
