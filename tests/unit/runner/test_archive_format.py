"""The mongodump archive format: CRC, writer/reader round trip, corruption detection."""

import io
import os
import struct

import bson
import pytest
from bson import json_util

from backup_operator.runner.archive_format import (
    MAGIC_BYTES,
    TERMINATOR,
    ArchiveFormatError,
    ArchiveReader,
    ArchiveWriter,
    CollectionMeta,
    Documents,
    NamespaceEnd,
    metadata_json,
)
from backup_operator.runner.crc64 import as_signed, crc64, crc64_python

META = CollectionMeta(
    db="shop",
    collection="items",
    options={"validationLevel": "moderate"},
    indexes=[{"v": 2, "key": {"_id": 1}, "name": "_id_"}, {"v": 2, "key": {"n": -1}, "name": "n"}],
    uuid="0123456789abcdef0123456789abcdef",
)
EMPTY = CollectionMeta(db="shop", collection="empty")


def test_crc64_matches_the_xz_check_value_and_the_reference() -> None:
    assert crc64(b"123456789", 0) == 0x995DC9BBDF1939FA
    data = os.urandom(4096)
    assert crc64(data, 0) == crc64_python(data)
    assert crc64(data[100:], crc64(data[:100], 0)) == crc64(data, 0)


def test_signed_crc() -> None:
    assert as_signed(0xFFFFFFFFFFFFFFFF) == -1
    assert as_signed(5) == 5


def test_metadata_is_canonical_extended_json_with_indexes() -> None:
    doc = json_util.loads(metadata_json(META))
    assert doc["indexes"][1]["key"] == {"n": -1}
    assert doc["collectionName"] == "items"
    assert doc["uuid"] == META.uuid
    assert '"$numberInt": "2"' in metadata_json(META).replace('":"', '": "')


def _docs(count: int) -> list[bytes]:
    return [bson.encode({"_id": i, "nested": {"a": [i, "x" * (i % 7)]}}) for i in range(count)]


def _archive(docs: list[bytes]) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out.write)
    writer.prelude("7.0.0", "test", [META, EMPTY])
    batches = [b"".join(docs[:1500]), b"".join(docs[1500:])]
    assert writer.namespace("shop", "items", iter(batches)) == (len(docs), sum(map(len, docs)))
    assert writer.namespace("shop", "empty", iter([])) == (0, 0)
    return out.getvalue()


def test_round_trip_in_memory() -> None:
    docs = _docs(2500)
    data = _archive(docs)
    assert data.startswith(MAGIC_BYTES)
    reader = ArchiveReader(io.BytesIO(data))
    metas = reader.read_prelude()
    assert metas == [META, EMPTY]
    assert reader.header is not None
    assert reader.header.server_version == "7.0.0"
    events = list(reader.events())
    read = [d for e in events if isinstance(e, Documents) for d in e.documents]
    assert read == docs
    ends = [e for e in events if isinstance(e, NamespaceEnd)]
    assert ends == [NamespaceEnd("shop", "items", 2500), NamespaceEnd("shop", "empty", 0)]


def test_eof_header_carries_the_crc_of_all_documents() -> None:
    docs = _docs(10)
    data = _archive(docs)
    eof = bson.encode(
        {
            "db": "shop",
            "collection": "items",
            "EOF": True,
            "CRC": bson.Int64(as_signed(crc64(b"".join(docs), 0))),
        }
    )
    assert eof + TERMINATOR in data


def test_flipped_document_byte_is_a_crc_mismatch() -> None:
    docs = _docs(50)
    data = bytearray(_archive(docs))
    needle = b"x" * 6
    pos = data.index(needle)
    data[pos] = ord("y")
    reader = ArchiveReader(io.BytesIO(bytes(data)))
    reader.read_prelude()
    with pytest.raises(ArchiveFormatError, match="CRC mismatch"):
        list(reader.events())


@pytest.mark.parametrize("cut", [3, 60, -3])
def test_truncated_archives_are_refused(cut: int) -> None:
    data = _archive(_docs(20))
    reader = ArchiveReader(io.BytesIO(data[:cut]))

    def read_all() -> None:
        reader.read_prelude()
        list(reader.events())

    with pytest.raises(ArchiveFormatError):
        read_all()


def test_wrong_magic_is_refused() -> None:
    with pytest.raises(ArchiveFormatError, match="magic"):
        ArchiveReader(io.BytesIO(struct.pack("<I", 1) + b"\x00" * 10)).read_prelude()
