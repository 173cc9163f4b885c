"""CRC-64/ECMA as mongodump computes it (Go's ``crc64.ECMA``, i.e. CRC-64/XZ).

mongorestore checks this CRC for every namespace of an archive, so the builtin dumper must
produce it at dump speed. liblzma (already loaded by Python's ``lzma`` module) exports the
same CRC with a vectorised implementation; a table-driven pure-Python version is the
fallback and the reference in tests.
"""

import ctypes
import ctypes.util
from collections.abc import Callable

_POLY = 0xC96C5795D7870F42
_MASK = 0xFFFFFFFFFFFFFFFF


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc64_python(data: bytes | memoryview, crc: int = 0) -> int:
    """Pure-Python CRC-64/XZ of ``data`` continuing from ``crc``."""
    value = crc ^ _MASK
    table = _TABLE
    for byte in bytes(data):
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ _MASK


def _load_liblzma() -> Callable[[bytes | memoryview, int], int] | None:
    name = ctypes.util.find_library("lzma") or "liblzma.so.5"
    try:
        lib = ctypes.CDLL(name)
        func = lib.lzma_crc64
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    func.restype = ctypes.c_uint64

    def crc64_native(data: bytes | memoryview, crc: int = 0) -> int:
        buf = bytes(data) if isinstance(data, memoryview) else data
        return int(func(buf, len(buf), crc))

    return crc64_native


crc64: Callable[[bytes | memoryview, int], int] = _load_liblzma() or crc64_python


def as_signed(crc: int) -> int:
    """The CRC as the signed int64 the archive stores."""
    return crc - (1 << 64) if crc & (1 << 63) else crc
