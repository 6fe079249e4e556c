"""The fast paths of dwarfscan (abbreviation tables by regular expression, skip plans,
line-table entries decoded when asked for) against straightforward decoding."""

from __future__ import annotations

import struct

import pytest

from kasalias import dwarfscan as ds
from kasalias.errors import KasaliasError


def leb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        done = (v == 0 and not b & 0x40) or (v == -1 and b & 0x40)
        out.append(b if done else b | 0x80)
        if done:
            return bytes(out)


Spec = tuple[int, ...]  # (attribute, form[, implicit constant])


def decl(code: int, tag: int, children: bool, attrs: list[Spec]) -> bytes:
    out = leb(code) + leb(tag) + bytes([int(children)])
    for a in attrs:
        out += leb(a[0]) + leb(a[1]) + (sleb(a[2]) if a[1] == ds.F_IMPLICIT_CONST else b"")
    return out + b"\0\0"


UNIT = ds.Unit(0, 0, 5, 1, 8, 0, 4, 0)

# Awkward cases: implicit constants 0 and 64 (0xc0 0x00: a zero byte inside), attributes and
# forms over 0x7f, an abbreviation without attributes, codes over 0x7f, inline names.
DECLS: list[tuple[int, int, bool, list[Spec]]] = [
    (1, ds.TAG_COMPILE_UNIT, True, [(ds.AT_NAME, ds.F_STRP), (ds.AT_STMT_LIST, ds.F_SEC_OFFSET)]),
    (2, ds.TAG_VARIABLE, False, [(ds.AT_NAME, ds.F_STRING), (ds.AT_DECL_FILE, ds.F_DATA1),
                                 (ds.AT_DECL_LINE, ds.F_IMPLICIT_CONST, 64), (ds.AT_LOCATION, ds.F_EXPRLOC)]),
    (3, 0x24, False, []),
    (200, ds.TAG_SUBPROGRAM, True, [(ds.AT_SIBLING, ds.F_REF4), (ds.AT_NAME, ds.F_STRP),
                                    (0x2137, ds.F_SEC_OFFSET), (ds.AT_DECL_LINE, ds.F_IMPLICIT_CONST, 0)]),
    (4, 0x0D, False, [(ds.AT_NAME, ds.F_STRING), (0x38, ds.F_UDATA), (0x3E, ds.F_BLOCK1),
                      (ds.AT_DECL_LINE, ds.F_IMPLICIT_CONST, -3), (0x49, ds.F_GNU_REF_ALT)]),
]


def table_bytes() -> bytes:
    return b"".join(decl(*d) for d in DECLS) + b"\0"


def test_abbrev_table_matches_declarations() -> None:
    table = ds.abbrev_table(table_bytes(), UNIT)
    assert sorted(table) == sorted(d[0] for d in DECLS)
    for code, tag, children, attrs in DECLS:
        ab = table[code]
        assert (ab.tag, ab.has_children) == (tag, children)
        assert [(a, f) for a, f, _s, _c in ab.attrs] == [(a[0], a[1]) for a in attrs]
        assert [c for _a, _f, _s, c in ab.attrs] == [a[2] if len(a) == 3 else 0 for a in attrs]
    assert table[2].inline_name_at == 0 and table[2].fixed_size is None
    assert table[200].sibling_at == (0, 4) and table[200].name_at == (4, ds.F_STRP, 4)
    assert table[200].fixed_size == 12
    assert table[3].fixed_size == 0 and not table[3].identifiable
    # Stops at the code asked for.
    assert sorted(ds.abbrev_table(table_bytes(), UNIT, upto=2)) == [1, 2]


def test_abbrev_table_malformed() -> None:
    with pytest.raises(KasaliasError):
        ds.abbrev_table(decl(1, 0x11, False, [(3, 8)])[:-2] + b"\x03", UNIT)


def test_skip_plan_matches_attribute_walk() -> None:
    table = ds.abbrev_table(table_bytes(), UNIT)
    ab = table[4]
    # name "x", udata 300, block1 of 3 bytes, implicit const (no bytes), 4-byte alt ref
    die = b"x\0" + leb(300) + b"\x03abc" + struct.pack("<I", 7) + b"\xff"
    reader = ds.UnitReader(UNIT, memoryview(die), table, lambda v, f: b"", lambda i: 0)
    assert reader._skip_variable(die, ab, 0) == len(die) - 1
    assert reader._skip_attrs(die, ab, 0) == len(die) - 1


def line_header_v5(dir_fmt: bytes, dirs: bytes, ndirs: int, file_fmt: bytes, files: bytes, nfiles: int) -> bytes:
    rest = bytes([1, 1, 1, 0xFB, 14, 13]) + bytes(12)  # min_inst, max_ops, is_stmt, base, range, opcode_base
    rest += dir_fmt + leb(ndirs) + dirs + file_fmt + leb(nfiles) + files
    body = struct.pack("<H", 5) + bytes([8, 0]) + struct.pack("<I", len(rest)) + rest
    program = b"\x00\x01\x01"  # the line program follows the header
    return struct.pack("<I", len(body) + len(program)) + body + program


def test_line_table_v5_entries_on_demand() -> None:
    strings = {0: b"/src", 5: b"include", 13: b"a.c", 17: b"b.h"}
    asked: list[int] = []

    def string(v: int, form: int) -> bytes:
        asked.append(v)
        return strings[v]

    dir_fmt = bytes([1]) + leb(1) + leb(ds.F_LINE_STRP)
    dirs = struct.pack("<II", 0, 5)
    # path (line_strp), directory (udata), MD5 (data16)
    file_fmt = bytes([3]) + leb(1) + leb(ds.F_LINE_STRP) + leb(2) + leb(ds.F_UDATA) + leb(5) + leb(ds.F_DATA16)
    files = struct.pack("<I", 13) + leb(0) + bytes(16) + struct.pack("<I", 17) + leb(1) + b"\x80" * 16
    hdr = line_header_v5(dir_fmt, dirs, 2, file_fmt, files, 2)
    t = ds.line_table_files(memoryview(hdr), 0, string, "/cd")
    assert (t.version, len(t), t.directory_count()) == (5, 2, 2)
    assert asked == []
    assert t.file(1) == ("b.h", 1) and t.directory(1) == "include"
    assert t.file(0) == ("a.c", 0) and t.directory(0) == "/src"
    assert sorted(asked) == [0, 5, 13, 17]


def test_line_table_v5_block_and_string_forms() -> None:
    dir_fmt = bytes([1]) + leb(1) + leb(ds.F_STRING)
    dirs = b"/src\0"
    # a block field: read entry by entry, not by pattern
    file_fmt = bytes([3]) + leb(1) + leb(ds.F_STRING) + leb(0x2001) + leb(ds.F_BLOCK) + leb(2) + leb(ds.F_DATA1)
    files = b"a.c\0" + leb(2) + b"\0\0" + b"\x00" + b"x.h\0" + leb(0) + b"\x00"
    hdr = line_header_v5(dir_fmt, dirs, 1, file_fmt, files, 2)
    t = ds.line_table_files(memoryview(hdr), 0, lambda v, f: b"", "/cd")
    assert [t.file(i) for i in range(len(t))] == [("a.c", 0), ("x.h", 0)]
    assert t.directory(0) == "/src"


def test_line_table_v4() -> None:
    rest = bytes([1, 1, 1, 0xFB, 14, 13]) + bytes(12) + b"include\0\0" + b"a.c\0\x00\x00\x00" + b"b.h\0\x01\x00\x00\0"
    body = struct.pack("<H", 4) + struct.pack("<I", len(rest)) + rest
    hdr = struct.pack("<I", len(body)) + body
    t = ds.line_table_files(memoryview(hdr), 0, lambda v, f: b"", "/cd")
    assert (t.version, len(t)) == (4, 2)
    assert t.file(1) == ("b.h", 1) and t.directory(1) == "include" and t.directory(0) == "/cd"
