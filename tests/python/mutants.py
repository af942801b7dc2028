"""Seeded mutants of NetCDF files: the seeds, and corruptions of them.

The seeds are written with netCDF4-python (the writers of fixtures.py): NetCDF-3 classic, 64-bit
offset and CDF-5; NetCDF-4 contiguous, chunked with zlib + shuffle, Fletcher-32, groups, masked,
packed, unlimited dimensions; and one NetCDF-4 file behind a 512-byte user block.  Mutant ``i``
of campaign ``n`` is a pure function of ``(n, i)``: bit flips weighted toward headers and
metadata blocks (nc_layout.py finds them), huge or shifted values written into length / size /
address / offset fields (for HDF5 also with the block's checksum recomputed, so libhdf5 accepts
the lie), zeroed blocks, truncations, inserted and duplicated blocks, user blocks.

mutation_campaign.py mounts and judges them.  ``scripts/fuzz --seed N --mutant I --write DIR``
writes one again.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from nc_layout import Field, hdf5_data_ranges, hdf5_metadata, nc3_header, reseal

USERBLOCK_SEED = "nc4_masked"  # also served behind a 512-byte user block


# --------------------------------------------------------------------------
# seeds


@dataclass
class Seed:
    """A valid seed file: its bytes, format, metadata ranges, labelled blocks and fields."""

    name: str
    path: Path
    data: bytes
    fmt: str  # "nc3" or "hdf5"
    meta: list[tuple[int, int]]  # metadata byte ranges
    blocks: list[tuple[int, int, str]] = field(default_factory=list)  # metadata blocks, labelled
    fields: list[Field] = field(default_factory=list)


def _seed_writers() -> dict:
    import fixtures as fx

    return {
        "nc3_classic": lambda p: fx._write_nc3(p, "NETCDF3_CLASSIC", False),
        "nc3_64bit_offset": lambda p: fx._write_nc3(p, "NETCDF3_64BIT_OFFSET", False),
        "nc3_cdf5": lambda p: fx._write_nc3(p, "NETCDF3_64BIT_DATA", True),
        "nc3_one_record_var": fx._write_nc3_one_record_var,
        "nc4_contiguous": fx._write_nc4_contiguous,
        "nc4_chunked_zlib": fx._write_nc4_chunked_zlib,
        "nc4_fletcher32": fx._write_nc4_fletcher32,
        "nc4_groups": fx._write_nc4_groups,
        "nc4_masked": fx._write_nc4_masked,
        "nc4_packed": fx._write_nc4_packed,
    }


def write_seeds(outdir) -> list[Seed]:
    """Every seed file, written under ``outdir``, with its metadata layout."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    seeds = []
    for name, writer in _seed_writers().items():
        path = outdir / f"{name}.nc"
        if path.exists():
            path.unlink()
        writer(path)
        seeds.append(_layout(name, path))
        if name == USERBLOCK_SEED:
            seeds.append(_userblock_seed(seeds[-1], outdir))
    return seeds


def _layout(name: str, path: Path) -> Seed:
    data = path.read_bytes()
    if data[:3] == b"CDF":
        header_end, fields = nc3_header(data)
        return Seed(name, path, data, "nc3", [(0, header_end)], [(0, header_end, "header")], fields)
    meta = _complement(hdf5_data_ranges(path), len(data))
    blocks, fields = hdf5_metadata(data)
    return Seed(name, path, data, "hdf5", meta, blocks, fields)


def _userblock_seed(seed: Seed, outdir: Path, size: int = 512) -> Seed:
    """The same HDF5 file behind ``size`` zero bytes: libhdf5 finds the superblock there and
    reads every address relative to it."""
    path = outdir / f"{seed.name}_userblock.nc"
    path.write_bytes(bytes(size) + seed.data)
    return _behind_prefix(seed, size, f"{seed.name}_userblock", path, path.read_bytes())


def _behind_prefix(seed: Seed, size: int, name: str, path: Path, data: bytes) -> Seed:
    """``seed``'s layout moved ``size`` bytes on, behind a prefix (a user block)."""

    def shift(block):
        return None if block is None else (block[0] + size, block[1] + size)

    return Seed(
        name, path, data, seed.fmt,
        [(0, size)] + [(a + size, b + size) for a, b in seed.meta],
        [(0, size, "user block")] + [(a + size, b + size, lab) for a, b, lab in seed.blocks],
        [Field(f.offset + size, f.size, f.order, f.label, shift(f.block)) for f in seed.fields],
    )


# --------------------------------------------------------------------------
# mutants


@dataclass
class Mutant:
    """Mutant ``index`` of a campaign: the seed it came from, what was done, the bytes."""

    index: int
    seed: Seed
    kind: str
    desc: str
    data: bytes

    @property
    def name(self) -> str:
        return f"m{self.index:05d}"


KIND_WEIGHTS = (("flip", 30), ("field", 27), ("zero", 10), ("truncate", 9), ("insert", 9),
                ("userblock", 7), ("dataflip", 8))


def make_mutant(seeds: list[Seed], campaign: int, index: int) -> Mutant:
    """Mutant ``index`` of campaign ``campaign``: a pure function of the two (and the seeds)."""
    rng = random.Random(f"atlasfs-mutant:{campaign}:{index}")
    seed = seeds[index % len(seeds)]
    kinds, weights = zip(*KIND_WEIGHTS)
    kind = rng.choices(kinds, weights)[0]
    buf = bytearray(seed.data)
    desc = _mutate(rng, seed, buf, kind)
    return Mutant(index, seed, kind, desc, bytes(buf))


def _region_offset(rng: random.Random, seed: Seed, n: int = 1) -> tuple[int, str]:
    """An offset in metadata (weighted toward the first KiBs and the parsed blocks)."""
    size = len(seed.data)
    roll = rng.random()
    if seed.blocks and roll < 0.45:
        start, end, label = rng.choice(seed.blocks)
        return rng.randrange(start, max(start + 1, end - n + 1)), label
    if roll < 0.75:
        limit = min(size, 4096)
        return rng.randrange(0, max(1, limit - n + 1)), "first 4 KiB"
    lengths = [b - a for a, b in seed.meta]
    start, end = rng.choices(seed.meta, lengths)[0]
    return rng.randrange(start, max(start + 1, end - n + 1)), "metadata"


def _field_value(rng: random.Random, f: Field, old: int) -> tuple[int, str]:
    top = (1 << (8 * f.size)) - 1
    choices = [0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, top, top >> 1, 0, old + 1, old - 1,
               old * 2, old + 4096, old ^ (1 << rng.randrange(8 * f.size))]
    value = rng.choice(choices) & top
    return value, f"{value:#x}"


def _mutate(rng: random.Random, seed: Seed, buf: bytearray, kind: str) -> str:
    size = len(buf)
    if kind == "flip":
        descs = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            off, where = _region_offset(rng, seed)
            mask = 1 << rng.randrange(8) if rng.random() < 0.6 else rng.randrange(1, 256)
            buf[off] ^= mask
            descs.append(f"flip byte {off:#x} ^ {mask:#04x} ({where})")
        return "; ".join(descs)
    if kind == "dataflip":
        data_ranges = _complement(seed.meta, size)
        if not data_ranges:
            return _mutate(rng, seed, buf, "flip")
        start, end = rng.choices(data_ranges, [b - a for a, b in data_ranges])[0]
        off = rng.randrange(start, end)
        mask = 1 << rng.randrange(8)
        buf[off] ^= mask
        return f"flip data byte {off:#x} ^ {mask:#04x}"
    if kind == "field":
        if not seed.fields:
            return _mutate(rng, seed, buf, "flip")
        weights = [1 if re.search(r"name length|tag|message 0x", f.label) else 4
                   for f in seed.fields]
        f = rng.choices(seed.fields, weights)[0]
        old = int.from_bytes(buf[f.offset:f.offset + f.size], f.order)
        value, text = _field_value(rng, f, old)
        if value == old:
            value = (1 << (8 * f.size)) - 1 - old
            text = f"{value:#x}"
        buf[f.offset:f.offset + f.size] = value.to_bytes(f.size, f.order)
        desc = f"set {f.label} at {f.offset:#x} ({f.size} bytes) {old:#x} -> {text}"
        if f.block is not None and rng.random() < 0.6:
            reseal(buf, f.block)
            desc += f", checksum of block {f.block[0]:#x}..{f.block[1]:#x} recomputed"
        return desc
    if kind == "zero":
        n = rng.choice((4, 8, 16, 64, 256, 1024))
        off, where = _region_offset(rng, seed, n)
        buf[off:off + n] = bytes(len(buf[off:off + n]))
        return f"zero {n} bytes at {off:#x} ({where})"
    if kind == "truncate":
        if rng.random() < 0.5:
            off, where = _region_offset(rng, seed)
        else:
            off, where = rng.randrange(1, size), "anywhere"
        del buf[off:]
        return f"truncate to {off} bytes ({where})"
    if kind == "insert":
        n = rng.choice((1, 4, 8, 16, 64, 512))
        off, where = _region_offset(rng, seed)
        if rng.random() < 0.5:
            src = max(0, off - n)
            block = bytes(buf[src:off])
            how = f"duplicate the {len(block)} bytes before {off:#x}"
        else:
            src = rng.randrange(0, max(1, size - n))
            block = bytes(buf[src:src + n])
            how = f"insert a copy of the {len(block)} bytes at {src:#x} at {off:#x}"
        buf[off:off] = block
        return f"{how} ({where})"
    # userblock
    n, fill = rng.choice(((512, 0), (512, 0), (1024, 0), (2048, 0xFF), (512, None), (100, 0)))
    block = bytes(rng.randrange(256) for _ in range(n)) if fill is None else bytes([fill]) * n
    buf[0:0] = block
    what = "random" if fill is None else f"{fill:#04x}"
    desc = f"prepend a {n}-byte user block of {what} bytes"
    if rng.random() < 0.4:
        shifted = _behind_prefix(seed, n, seed.name, seed.path, bytes(buf))
        desc += "; then " + _mutate(rng, shifted, buf, "flip")
    return desc


def _complement(ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The parts of ``[0, size)`` outside ``ranges``."""
    out, pos = [], 0
    for a, b in sorted(ranges):
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < size:
        out.append((pos, size))
    return out


def write_mutant(outdir, campaign: int, index: int) -> tuple[Path, Mutant]:
    """Writes the seeds and mutant ``index`` of ``campaign`` under ``outdir`` (to reproduce)."""
    outdir = Path(outdir)
    seeds = write_seeds(outdir / "seeds")
    m = make_mutant(seeds, campaign, index)
    path = outdir / f"{m.name}.nc"
    path.write_bytes(m.data)
    return path, m
