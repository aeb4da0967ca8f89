"""Compact storage of an aggregate document's facts (issue 14): one binary field instead of nested dicts.

FerretDB v1 decodes and re-encodes every stored document from its JSON form, field by field, on
every read and write; an aggregate document is mostly its `facts` (a list of nested dicts, 10–20 KB
for a penalty case), which no query filters or projects on. `pack` stores those fields (`PACKED_FIELDS`)
as one `bson.Binary`: their BSON, compressed with Zstandard (level 1; format byte 2). The database
then handles one opaque value. Documents written before 2026-12-06 hold zlib (format byte 1): read
as they are, written with Zstandard at their next save. Zstandard compresses the same facts to the
same size as zlib at level 1 in a quarter of the CPU (≈ 27 µs against 96 µs for 7 KB of case facts;
compressing was 4% of penalty's and 6% of personnel's CPU in a burst, forty-sixth session).

- Exact: the inner encoding is BSON, the same the driver uses for the document today, so `unpack`
  returns exactly what a read of the unpacked document returned (types, datetimes to the
  millisecond, time zones per the collection's codec options, Chinese text).
- Both forms read: `unpack` of a document stored before packing (plain `facts`) returns it as it is,
  so no migration is needed; the next save of it writes it packed.
- Which fields are packed is declared per aggregate (`Layout`; services/kernel/manifest.py
  `Aggregate(packed=..., lifted=...)`). The default packs `facts` and `emitted` only. An aggregate
  whose snapshot no database query reads field by field packs `snapshot` and `fact_ids` too (penalty
  cases, personnel officers: their snapshots hold ~100–250 nested fields, which FerretDB v1 decodes
  on every read and every write). `lifted` paths inside a packed field (`snapshot.status`) are kept
  readable beside it (a copy: `snapshot: {status: ...}` stored, the whole snapshot packed) so
  queries and indexes on them keep working; `unpack` puts the packed whole back over the copy.
- Never packed (the kernel filters or projects on them): `_id`, `version`, `dept`, `due_at`,
  `outbox`, `findings_open` (the open-findings index reads it), `findings_count`.

A reader that asked for `{"facts": 1}` asks for `FACTS` (both forms); one that excluded `facts`
excludes `WITHOUT_FACTS`. A reader of a field a layout may pack asks for `reading(field, ...)` and
unpacks: it gets the field in either form (and the other packed fields with it). Pure functions, no I/O.
"""
from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Iterable, Mapping

import bson
import zstandard
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON
from bson.raw_bson import RawBSONDocument

PACKED = "packed"
PACKED_FIELDS = ("facts", "emitted")
# the first byte: how the rest is encoded (a later format can be added beside)
FORMAT_BSON_ZLIB = b"\x01"  # BSON, zlib (written until 2026-12-06; still read)
FORMAT_BSON_ZSTD = b"\x02"  # BSON, Zstandard frame with its content size (written since)
LEVEL = 1  # Zstandard level (3 measured the same within the noise here: 23–27 µs, 0.32 of the size, both)

# Zstandard contexts, one pair per operating-system thread: a context is not for two threads at once (the
# library lets go of the GIL while it works), and one made per call costs more than the compression
# (≈ 20 µs). Green threads share their OS thread's pair: none of them runs while another is inside it.
_contexts: dict[int, tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]] = {}


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    key = threading.get_native_id()
    pair = _contexts.get(key)
    if pair is None:
        if len(_contexts) > 64:  # (threads come and go: ids of ended ones are not kept forever)
            _contexts.clear()
        pair = _contexts[key] = (zstandard.ZstdCompressor(level=LEVEL, write_content_size=True),
                                 zstandard.ZstdDecompressor())
    return pair

# what the kernel's clients decode with (services/kernel/mongo.py: tz_aware=True, UTC)
KERNEL_CODEC = CodecOptions(tz_aware=True, tzinfo=timezone.utc)

FACTS = {"facts": 1, PACKED: 1}  # projection: the facts in either form
WITHOUT_FACTS = {"facts": 0, "emitted": 0, PACKED: 0}  # exclusion projection of the packed fields
# fields the kernel filters or projects on in the database (aggregates, outbox, findings index)
NEVER_PACKED = frozenset({"_id", "version", "dept", "due_at", "outbox", "outbox_pending", "findings_open",
                          "findings_count", "evaluated_at"})


class PackingError(ValueError):
    """A packed field this code cannot read (an unknown format byte or damaged data)."""


def pack(doc: Mapping[str, Any], fields: Iterable[str] = PACKED_FIELDS, lifted: Iterable[str] = ()) -> dict:
    """The document to store: `fields` present in `doc` moved into one compressed binary field, with
    copies of the `lifted` dotted paths (inside those fields) kept readable at their place.

    A document without any of them is returned as a plain copy (nothing to pack)."""
    return _packed(doc, tuple(fields), lifted)[0]


def _packed(doc: Mapping[str, Any], fields: tuple[str, ...], lifted: Iterable[str]) -> tuple[dict, bytes | None]:
    """`pack`'s document and the BSON of the fields it packed (None: nothing to pack)."""
    inner = {k: doc[k] for k in fields if k in doc}
    out = {k: v for k, v in doc.items() if k not in fields}
    if not inner:
        return out, None
    if PACKED in doc:
        raise PackingError(f"document {doc.get('_id')!r} holds both {PACKED!r} and unpacked fields")
    for path in lifted:
        _lift(out, inner, path.split("."))
    raw = bson.encode(inner)
    out[PACKED] = Binary(FORMAT_BSON_ZSTD + _zstd()[0].compress(raw))
    return out, raw


@dataclass(frozen=True)
class Encoded:
    """A document packed and encoded once, for both the write and a process's cache: `stored` is the
    BSON sent to the database (the driver writes a RawBSONDocument's bytes as they are), `inner` the
    uncompressed BSON of its packed fields (None when nothing was packed). `decode` returns what a read
    of `stored` followed by `unpack` returns, without decompressing."""

    stored: RawBSONDocument
    inner: bytes | None

    @property
    def size(self) -> int:
        return len(self.stored.raw) + len(self.inner or b"")

    def decode(self, codec_options: CodecOptions = KERNEL_CODEC) -> dict:
        return decode_parts(self.stored.raw, self.inner, codec_options)


def decode_parts(stored: bytes, inner: bytes | None, codec_options: CodecOptions = KERNEL_CODEC) -> dict:
    """The unpacked document from the BSON of the stored document and of its packed fields (`Encoded`)."""
    doc = bson.decode(stored, codec_options=codec_options)
    return doc if inner is None else _expanded(doc, inner, codec_options)


def encode(doc: Mapping[str, Any], fields: Iterable[str] = PACKED_FIELDS, lifted: Iterable[str] = ()) -> Encoded:
    """`pack(doc, fields, lifted)` encoded as BSON, `_id` first (the driver moves it first when it
    encodes a document it is given to insert; it writes a RawBSONDocument's bytes as they are)."""
    out, inner = _packed(doc, tuple(fields), lifted)
    if "_id" in out and next(iter(out)) != "_id":
        out = {"_id": out["_id"], **out}
    return Encoded(RawBSONDocument(bson.encode(out)), inner)


def _lift(out: dict, inner: Mapping[str, Any], parts: list[str]) -> None:
    """Copy `inner[parts...]` to `out[parts...]` (creating the parents), if it is there."""
    value: Any = inner
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return
        value = value[part]
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


@dataclass(frozen=True)
class Layout:
    """Which fields of an aggregate's documents are packed (`packed`) and which dotted paths inside
    them stay readable for queries (`lifted`); the default is the kernel's since issue 14."""

    packed: tuple[str, ...] = PACKED_FIELDS
    lifted: tuple[str, ...] = ()

    def __post_init__(self):
        kept = NEVER_PACKED.intersection(self.packed)
        if kept:
            raise ValueError(f"fields the kernel reads in the database cannot be packed: {sorted(kept)}")
        loose = [p for p in self.lifted if p.split(".", 1)[0] not in self.packed or "." not in p]
        if loose:
            raise ValueError(f"lifted paths must lie inside a packed field: {loose}")

    def pack(self, doc: Mapping[str, Any]) -> dict:
        return pack(doc, self.packed, self.lifted)

    def encode(self, doc: Mapping[str, Any]) -> Encoded:
        return encode(doc, self.packed, self.lifted)


DEFAULT_LAYOUT = Layout()


def reading(*fields: str) -> dict:
    """Projection of `fields` in either form: each of them, and the packed field (which brings every
    packed field with it; `unpack` the result). For a reader of fields some layout may pack."""
    return {**{f: 1 for f in fields}, PACKED: 1}


def holds_fact(stored: Mapping[str, Any] | None, event_id: str) -> bool:
    """Whether a stored document (read with `reading("fact_ids")`) lists `event_id` in its `fact_ids`,
    packed or not. A packed one is decoded only when the id's bytes occur in it at all."""
    if stored is None:
        return False
    if event_id in (stored.get("fact_ids") or ()):
        return True
    raw = _packed_bson(stored)
    if raw is None or event_id.encode() not in raw:
        return False
    return event_id in ((unpack(stored) or {}).get("fact_ids") or ())


def unpack(stored: Mapping[str, Any] | None, codec_options: CodecOptions = KERNEL_CODEC) -> dict | None:
    """The document as the domain sees it: the packed field expanded back into its fields.

    A document stored before packing (or projected without the packed field) comes back as a copy
    unchanged. `codec_options` should be the reading collection's (`col.codec_options`) so datetimes
    carry the same time zone as the rest of the document."""
    if stored is None:
        return None
    doc = dict(stored)
    raw = _packed_bson(doc)
    return doc if raw is None else _expanded(doc, raw, codec_options)


def _expanded(doc: dict, inner: bytes, codec_options: CodecOptions) -> dict:
    """`doc` with its packed field replaced by the fields whose BSON is `inner` (changed in place)."""
    try:
        fields = bson.decode(inner, codec_options=codec_options)
    except InvalidBSON as exc:
        raise PackingError(f"damaged packed field in document {doc.get('_id')!r}: {exc}") from exc
    del doc[PACKED]
    doc.update(fields)
    return doc


def _packed_bson(stored: Mapping[str, Any]) -> bytes | None:
    """The BSON of a stored document's packed fields (None when it has no packed field)."""
    data = stored.get(PACKED)
    if data is None:
        return None
    data = bytes(data)
    form = data[:1]
    try:
        if form == FORMAT_BSON_ZSTD:
            return _zstd()[1].decompress(data[1:])
        if form == FORMAT_BSON_ZLIB:
            return zlib.decompress(data[1:])
    except (zlib.error, zstandard.ZstdError) as exc:
        raise PackingError(f"damaged packed field in document {stored.get('_id')!r}: {exc}") from exc
    raise PackingError(f"unknown packed format {form!r} in document {stored.get('_id')!r}")


def unpack_from(collection, stored: Mapping[str, Any] | None) -> dict | None:
    """`unpack` with the codec options of the collection the document was read from."""
    return unpack(stored, getattr(collection, "codec_options", KERNEL_CODEC))
