"""The byte layout of NetCDF files, for corrupting them where it matters.

NetCDF-3: every number field of the header (counts, dimension lengths, attribute lengths and
types, variable ranks, dimension ids, types, ``vsize`` and ``begin``) and where the header ends.
HDF5 (NetCDF-4): the raw-data byte ranges of every dataset (h5py), the metadata blocks
(superblock v2/v3, v2 object headers and their continuation blocks, v1 B-tree nodes of chunk
indexes, heaps) and the number fields in them (dataspace dimensions, datatype sizes, layout
addresses, sizes and chunk dimensions, chunk sizes, offsets and addresses in B-tree keys), each
with the checksummed block it sits in, and the lookup3 checksum libhdf5 verifies on those blocks.
Read only valid seed files with it; it makes no attempt to survive corrupt input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NC3_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
M32 = 0xFFFFFFFF


@dataclass
@dataclass
class Field:
    """A number in a file's metadata: offset, width, byte order, what it is, and for HDF5 the
    checksummed block ``(start, end)`` holding it (checksum in the block's last 4 bytes)."""

    offset: int
    size: int
    order: str
    label: str
    block: tuple[int, int] | None = None


def nc3_header(data: bytes) -> tuple[int, list[Field]]:
    """End of the header of a valid NetCDF-3 file, and every number field in it."""
    version = data[3]
    nn = 8 if version == 5 else 4  # NON_NEG width
    offset_size = 4 if version == 1 else 8
    fields: list[Field] = []
    pos = 4

    def num(size: int, label: str) -> int:
        nonlocal pos
        value = int.from_bytes(data[pos:pos + size], "big")
        fields.append(Field(pos, size, "big", label))
        pos += size
        return value

    def name(what: str) -> str:
        nonlocal pos
        n = num(nn, f"{what} name length")
        text = data[pos:pos + n].decode("utf-8", "replace")
        pos += (n + 3) // 4 * 4
        return text

    def attrs(owner: str) -> None:
        nonlocal pos
        num(4, f"{owner} attribute list tag")
        for _ in range(num(nn, f"{owner} attribute count")):
            a = name(f"{owner} attribute")
            typ = num(4, f"attribute {owner}:{a} type")
            n = num(nn, f"attribute {owner}:{a} length")
            pos += (n * NC3_TYPE_SIZES.get(typ, 1) + 3) // 4 * 4

    num(nn, "numrecs")
    num(4, "dimension list tag")
    for _ in range(num(nn, "dimension count")):
        d = name("dimension")
        num(nn, f"dimension {d} length")
    attrs("global")
    num(4, "variable list tag")
    for _ in range(num(nn, "variable count")):
        v = name("variable")
        for i in range(num(nn, f"variable {v} rank")):
            num(nn, f"variable {v} dimension id {i}")
        attrs(v)
        num(4, f"variable {v} type")
        num(nn, f"variable {v} vsize")
        num(offset_size, f"variable {v} begin")
    return pos, fields


def hdf5_data_ranges(path) -> list[tuple[int, int]]:
    """Byte ranges of raw data (chunks and contiguous storage) of every dataset, per h5py."""
    import h5py

    ranges = []

    def visit(_name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        dsid = obj.id
        layout = dsid.get_create_plist().get_layout()
        if layout == h5py.h5d.CHUNKED:
            for i in range(dsid.get_num_chunks()):
                info = dsid.get_chunk_info(i)
                if info.byte_offset is not None:
                    ranges.append((info.byte_offset, info.byte_offset + info.size))
        elif layout == h5py.h5d.CONTIGUOUS and dsid.get_offset() is not None:
            ranges.append((dsid.get_offset(), dsid.get_offset() + dsid.get_storage_size()))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return ranges


def _u(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos:pos + size], "little")


def hdf5_metadata(data: bytes) -> tuple[list[tuple[int, int, str]], list[Field]]:
    """Metadata blocks (superblock, object headers and their continuations, B-tree nodes, heaps)
    and the number fields found in them: dimension sizes, chunk dimensions, datatype sizes,
    storage addresses and sizes, chunk sizes and addresses in B-tree nodes."""
    blocks: list[tuple[int, int, str]] = []
    fields: list[Field] = []
    if data[:8] != b"\x89HDF\r\n\x1a\n" or data[8] not in (2, 3):
        return blocks, fields
    sb = (0, 48)
    blocks.append((0, 48, "superblock"))
    for off, label in ((12, "base address"), (20, "superblock extension address"),
                       (28, "end-of-file address"), (36, "root object header address")):
        fields.append(Field(off, 8, "little", f"superblock {label}", sb))
    chunk_btrees: dict[int, int] = {}  # B-tree address -> chunk dimensionality
    pending: list[tuple[int, int, int, int, int]] = []  # messages to parse: (start, stop,
    # block end, block start, object header flags)
    for m in re.finditer(b"OHDR", data):
        pos = m.start()
        if data[pos + 4] != 2:
            continue
        flags = data[pos + 5]
        p = pos + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = _u(data, p, width)
        end = p + width + size + 4
        if end > len(data):
            continue
        blocks.append((pos, end, "object header"))
        fields.append(Field(p, width, "little", "object header chunk size", (pos, end)))
        pending.append((p + width, p + width + size, end, pos, flags))
    seen_ochk = set()
    while pending:
        start, stop, end, bstart, flags = pending.pop()
        block = (bstart, end)
        p = start
        while p + 4 <= stop:
            mtype, msize = data[p], _u(data, p + 1, 2)
            d = p + 4 + (2 if flags & 0x04 else 0)
            if d + msize > stop:
                break
            fields.append(Field(p + 1, 2, "little", f"message 0x{mtype:02x} size", block))
            _message_fields(data, mtype, d, msize, block, fields, chunk_btrees)
            if mtype == 0x10 and msize >= 16:
                addr, length = _u(data, d, 8), _u(data, d + 8, 8)
                if addr not in seen_ochk and data[addr:addr + 4] == b"OCHK" and addr + length <= len(data):
                    seen_ochk.add(addr)
                    blocks.append((addr, addr + length, "object header continuation"))
                    pending.append((addr + 4, addr + length - 4, addr + length, addr, flags))
            p = d + msize
    for addr, dimensionality in chunk_btrees.items():
        _btree_fields(data, addr, dimensionality, blocks, fields)
    for sig in (b"HEAP", b"GCOL", b"SNOD", b"FRHP", b"FHDB", b"FHIB", b"BTHD", b"BTLF", b"BTIN",
                b"FSHD", b"FSSE"):
        for m in re.finditer(re.escape(sig), data):
            blocks.append((m.start(), min(len(data), m.start() + 128), sig.decode()))
    return blocks, fields


def _message_fields(data, mtype, d, msize, block, fields, chunk_btrees) -> None:
    def add(off, size, label):
        if off + size <= d + msize:
            fields.append(Field(off, size, "little", label, block))

    version = data[d]
    if mtype == 0x01:  # dataspace
        rank = data[d + 1]
        first = d + (4 if version == 2 else 8)
        for i in range(rank):
            add(first + 8 * i, 8, f"dataspace dimension {i}")
            if data[d + 2] & 1:
                add(first + 8 * (rank + i), 8, f"dataspace max dimension {i}")
    elif mtype == 0x03:  # datatype
        add(d + 4, 4, "datatype size")
    elif mtype == 0x08 and version == 3:  # data layout
        cls = data[d + 1]
        if cls == 0:
            add(d + 2, 2, "compact data size")
        elif cls == 1:
            add(d + 2, 8, "contiguous data address")
            add(d + 10, 8, "contiguous data size")
        elif cls == 2:
            dimensionality = data[d + 2]
            add(d + 3, 8, "chunk index address")
            for i in range(dimensionality):
                add(d + 11 + 4 * i, 4, f"chunk dimension {i}")
            chunk_btrees[_u(data, d + 3, 8)] = dimensionality
    elif mtype == 0x0B:  # filter pipeline
        add(d + 1, 1, "filter count")
    elif mtype == 0x05:  # fill value
        add(d + 4, 4, "fill value size")


def _btree_fields(data, addr, dimensionality, blocks, fields) -> None:
    """Chunk sizes, filter masks, offsets and addresses in a v1 B-tree leaf of chunks."""
    if data[addr:addr + 4] != b"TREE" or data[addr + 4] != 1:
        return
    entries = _u(data, addr + 6, 2)
    key = 8 + 8 * dimensionality
    end = addr + 24 + entries * (key + 8) + key
    if end > len(data):
        return
    blocks.append((addr, end, "chunk B-tree node"))
    fields.append(Field(addr + 6, 2, "little", "B-tree entries used"))
    leaf = data[addr + 5] == 0
    p = addr + 24
    for i in range(entries):
        fields.append(Field(p, 4, "little", f"B-tree key {i} chunk size"))
        fields.append(Field(p + 4, 4, "little", f"B-tree key {i} filter mask"))
        for j in range(dimensionality):
            fields.append(Field(p + 8 + 8 * j, 8, "little", f"B-tree key {i} offset {j}"))
        what = "chunk address" if leaf else "child node address"
        fields.append(Field(p + key, 8, "little", f"B-tree {what} {i}"))
        p += key + 8


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 metadata blocks."""
    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & M32

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & M32
    i = 0
    while n > 12:
        a = (a + _u(data, i, 4)) & M32
        b = (b + _u(data, i + 4, 4)) & M32
        c = (c + _u(data, i + 8, 4)) & M32
        a = (a - c) & M32; a ^= rot(c, 4); c = (c + b) & M32  # noqa: E702
        b = (b - a) & M32; b ^= rot(a, 6); a = (a + c) & M32  # noqa: E702
        c = (c - b) & M32; c ^= rot(b, 8); b = (b + a) & M32  # noqa: E702
        a = (a - c) & M32; a ^= rot(c, 16); c = (c + b) & M32  # noqa: E702
        b = (b - a) & M32; b ^= rot(a, 19); a = (a + c) & M32  # noqa: E702
        c = (c - b) & M32; c ^= rot(b, 4); b = (b + a) & M32  # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:i + n] + bytes(12 - n)
    a = (a + _u(tail, 0, 4)) & M32
    b = (b + _u(tail, 4, 4)) & M32
    c = (c + _u(tail, 8, 4)) & M32
    c ^= b; c = (c - rot(b, 14)) & M32  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & M32  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & M32  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & M32  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & M32  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & M32  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & M32  # noqa: E702
    return c


def reseal(buf: bytearray, block: tuple[int, int]) -> None:
    """Recompute the lookup3 checksum in the last 4 bytes of an HDF5 metadata block."""
    start, end = block
    buf[end - 4:end] = lookup3(bytes(buf[start:end - 4])).to_bytes(4, "little")
