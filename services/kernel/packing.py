"""Compact storage of an aggregate document's facts (issue 14): one binary field instead of nested dicts.

FerretDB v1 decodes and re-encodes every stored document from its JSON form, field by field, on
every read and write; an aggregate document is mostly its `facts` (a list of nested dicts, 10–20 KB
for a penalty case), which no query filters or projects on. `pack` stores those fields (`PACKED_FIELDS`)
as one `bson.Binary`: their BSON, compressed with zlib. The database then handles one opaque value.

- Exact: the inner encoding is BSON, the same the driver uses for the document today, so `unpack`
  returns exactly what a read of the unpacked document returned (types, datetimes to the
  millisecond, time zones per the collection's codec options, Chinese text).
- Both forms read: `unpack` of a document stored before packing (plain `facts`) returns it as it is,
  so no migration is needed; the next save of it writes it packed.
- Fields that queries filter or project on stay as they are: `fact_ids` (fact status, dedupe),
  `snapshot`, `findings_open`, `findings_count`, `due_at`, `version`, `dept`, `outbox`.

A reader that asked for `{"facts": 1}` asks for `FACTS` (both forms); one that excluded `facts`
excludes `WITHOUT_FACTS`. Pure functions, no I/O.
"""
from __future__ import annotations

import zlib
from datetime import timezone
from typing import Any, Mapping

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON

PACKED = "packed"
PACKED_FIELDS = ("facts", "emitted")
FORMAT_BSON_ZLIB = b"\x01"  # the first byte: how the rest is encoded (a later format can be added beside)
LEVEL = 1  # zlib level: 1 costs half the CPU of 6 for ~5% more bytes (measured on case facts)

# what the kernel's clients decode with (services/kernel/mongo.py: tz_aware=True, UTC)
KERNEL_CODEC = CodecOptions(tz_aware=True, tzinfo=timezone.utc)

FACTS = {"facts": 1, PACKED: 1}  # projection: the facts in either form
WITHOUT_FACTS = {"facts": 0, "emitted": 0, PACKED: 0}  # exclusion projection of the packed fields


class PackingError(ValueError):
    """A packed field this code cannot read (an unknown format byte or damaged data)."""


def pack(doc: Mapping[str, Any]) -> dict:
    """The document to store: `PACKED_FIELDS` present in `doc` moved into one compressed binary field.

    A document without any of them is returned as a plain copy (nothing to pack)."""
    inner = {k: doc[k] for k in PACKED_FIELDS if k in doc}
    out = {k: v for k, v in doc.items() if k not in PACKED_FIELDS}
    if not inner:
        return out
    if PACKED in doc:
        raise PackingError(f"document {doc.get('_id')!r} holds both {PACKED!r} and unpacked fields")
    out[PACKED] = Binary(FORMAT_BSON_ZLIB + zlib.compress(bson.encode(inner), LEVEL))
    return out


def unpack(stored: Mapping[str, Any] | None, codec_options: CodecOptions = KERNEL_CODEC) -> dict | None:
    """The document as the domain sees it: the packed field expanded back into its fields.

    A document stored before packing (or projected without the packed field) comes back as a copy
    unchanged. `codec_options` should be the reading collection's (`col.codec_options`) so datetimes
    carry the same time zone as the rest of the document."""
    if stored is None:
        return None
    doc = dict(stored)
    data = doc.pop(PACKED, None)
    if data is None:
        return doc
    data = bytes(data)
    if data[:1] != FORMAT_BSON_ZLIB:
        raise PackingError(f"unknown packed format {data[:1]!r} in document {doc.get('_id')!r}")
    try:
        inner = bson.decode(zlib.decompress(data[1:]), codec_options=codec_options)
    except (zlib.error, InvalidBSON) as exc:
        raise PackingError(f"damaged packed field in document {doc.get('_id')!r}: {exc}") from exc
    doc.update(inner)
    return doc


def unpack_from(collection, stored: Mapping[str, Any] | None) -> dict | None:
    """`unpack` with the codec options of the collection the document was read from."""
    return unpack(stored, getattr(collection, "codec_options", KERNEL_CODEC))
