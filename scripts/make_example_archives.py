#!/usr/bin/env python3
"""Writes the small synthetic archives the example mount configs serve:

    demo-data/examples/ismip6/   an ISMIP6-like model intercomparison (mount-configs/ismip6.toml)
    demo-data/examples/cmip6/    a CMIP6-like DRS tree + intake-esm catalogs (mount-configs/cmip6.toml)
    demo-data/examples/cases/    an ocean-CDR-atlas-like case archive with gaps (mount-configs/cases.toml)

The generators live in tests/python/archives.py (the test suite uses the same ones).

    python scripts/make_example_archives.py [OUT] [ismip6] [cmip6] [cases]

OUT defaults to demo-data/examples in the repository; with no kinds, all three are written.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))

import archives  # noqa: E402


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    out = Path(argv[0]) if argv and argv[0] not in archives.MAKERS else REPO / "demo-data" / "examples"
    kinds = [a for a in argv if a in archives.MAKERS] or list(archives.MAKERS)
    for kind in kinds:
        info = archives.MAKERS[kind](out / kind)
        print(f"{kind}: {len(info['files'])} files in {info['root']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
