"""Avro object container files (the alert packets' format) read with bounded memory.

fastavro inflates a whole block of a container before decoding it, and decodes every record
of a block into Python objects: a small file can inflate to gigabytes (a deflate, bzip2 or
xz bomb, or one packet with a million history rows). Here each block is inflated a step
at a time, at most ``MAX_BLOCK_BYTES``, and a file at most ``MAX_FILE_BYTES`` in all,
before its records are decoded (fastavro's ``schemaless_reader``, one record at a time);
a block past either bound is refused, never inflated further. The codecs read are those
fastavro reads without extra libraries: null, deflate, bzip2 and xz.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path

import fastavro

from convention.errors import ConventionError

MAGIC = b"Obj\x01"
SYNC_BYTES = 16
MAX_BLOCK_BYTES = 4 * 2**20  # a ZTF alert with its three cutouts is about 60 kB
MAX_FILE_BYTES = 64 * 2**20
INFLATE_STEP = 2**16
CODECS = ("null", "deflate", "bzip2", "xz")


class _Cursor:
    """Bytes read from the front: Avro's zig-zag varint longs and byte strings."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.position, self.path = data, 0, path

    def long(self) -> int:
        shift = result = 0
        while True:
            if self.position >= len(self.data):
                raise ConventionError("truncated Avro file", path=self.path)
            byte = self.data[self.position]
            self.position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ConventionError(
                    "corrupt Avro file (a varint of over 64 bits)", path=self.path
                )

    def take(self, n: int) -> bytes:
        if n < 0 or self.position + n > len(self.data):
            raise ConventionError("truncated Avro file", path=self.path)
        chunk = self.data[self.position : self.position + n]
        self.position += n
        return chunk

    @property
    def done(self) -> bool:
        return self.position >= len(self.data)


def records(data: bytes, path: str | Path) -> Iterator[dict]:
    """The records of an Avro container's bytes, each block inflated within the bounds.

    Records are yielded as they are decoded; the first block that breaks a bound or does
    not decode raises (the records before it were yielded).

    Raises:
        ConventionError: empty, not Avro, truncated or corrupt, an unread codec, or a
            block or file that inflates past its bound.
    """
    path = Path(path)
    if not data:
        raise ConventionError("empty file", path=path)
    if data[: len(MAGIC)] != MAGIC:
        raise ConventionError(f"not an Avro alert file (starts with {data[:4]!r})", path=path)
    cursor = _Cursor(data, path)
    cursor.take(len(MAGIC))
    metadata = _metadata(cursor)
    sync = cursor.take(SYNC_BYTES)
    codec = metadata.get("avro.codec", b"null").decode(errors="replace")
    if codec not in CODECS:
        raise ConventionError(
            f"Avro codec {codec!r} is not read (codecs: {', '.join(CODECS)})", path=path
        )
    try:
        schema = fastavro.parse_schema(json.loads(metadata["avro.schema"]))
    except Exception as err:  # a missing, unparsable or invalid schema
        raise ConventionError(f"corrupt Avro file (its schema: {err})", path=path) from None
    inflated = 0
    while not cursor.done:
        count, size = cursor.long(), cursor.long()
        block = _inflate(codec, cursor.take(size), path)
        if cursor.take(SYNC_BYTES) != sync:
            raise ConventionError("corrupt Avro file (a block's sync marker differs)", path=path)
        inflated += len(block)
        if inflated > MAX_FILE_BYTES:
            raise ConventionError(f"Avro file inflates past {MAX_FILE_BYTES:,} bytes", path=path)
        if not 0 <= count <= max(len(block), 1):  # every alert record takes bytes
            raise ConventionError(f"corrupt Avro file (a block of {count} records)", path=path)
        stream = io.BytesIO(block)
        for _ in range(count):
            try:
                yield fastavro.schemaless_reader(stream, schema, None)
            except Exception as err:  # fastavro raises many types on corrupt records
                cause = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                raise ConventionError(f"corrupt Avro file ({cause})", path=path) from None


def _metadata(cursor: _Cursor) -> dict[str, bytes]:
    """The container header's metadata map (an Avro map of bytes)."""
    metadata: dict[str, bytes] = {}
    while True:
        count = cursor.long()
        if count == 0:
            return metadata
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            cursor.long()
        for _ in range(count):
            key = cursor.take(cursor.long()).decode(errors="replace")
            metadata[key] = cursor.take(cursor.long())


def _inflate(codec: str, payload: bytes, path: Path) -> bytes:
    """A block's bytes inflated, at most ``MAX_BLOCK_BYTES``.

    Raises:
        ConventionError: more bytes than that, or corrupt compressed data.
    """
    try:
        if codec == "null":
            out = payload
        elif codec == "deflate":
            out = _inflate_zlib(zlib.decompressobj(-15), payload)
        else:
            decompressor = bz2.BZ2Decompressor() if codec == "bzip2" else lzma.LZMADecompressor()
            out = _inflate_stream(decompressor, payload)
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as err:
        raise ConventionError(f"corrupt Avro file ({codec}: {err})", path=path) from None
    if len(out) > MAX_BLOCK_BYTES:
        raise ConventionError(f"an Avro block inflates past {MAX_BLOCK_BYTES:,} bytes", path=path)
    return out


def _inflate_zlib(inflater, payload: bytes) -> bytes:
    """Raw deflate, a step at a time, stopping one step past the bound."""
    out = bytearray()
    pending = payload
    while not inflater.eof and len(out) <= MAX_BLOCK_BYTES:
        piece = inflater.decompress(pending, INFLATE_STEP)
        pending = inflater.unconsumed_tail
        if not piece and not pending:
            break
        out += piece
    return bytes(out)


def _inflate_stream(decompressor, payload: bytes) -> bytes:
    """bzip2 or xz, a step at a time, stopping one step past the bound."""
    out = bytearray()
    pending = payload
    while not decompressor.eof and len(out) <= MAX_BLOCK_BYTES:
        piece = decompressor.decompress(pending, INFLATE_STEP)
        pending = b""  # the decompressor keeps what it has not inflated yet
        if not piece and decompressor.needs_input:
            break
        out += piece
    return bytes(out)
