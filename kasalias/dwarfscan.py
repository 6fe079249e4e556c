"""A selective DWARF reader: unit headers, abbreviations, line-table file names, and a
DIE walk that finds named functions and variables in a compilation unit.

Why by hand (NOTES.md has the measurements): pyelftools builds construct
objects for every abbreviation, attribute and line-table header; on Debian's
6.12 vmlinux, opening the top DIE of each of its 2,728 units took 37 s, all
in abbreviation parsing. kasalias needs a few attributes of a few DIEs: this
module reads units and abbreviations with ``struct``, jumps over whole
subtrees with ``DW_AT_sibling`` (or a precomputed fixed size), and decodes
attributes only for ``DW_TAG_subprogram`` and ``DW_TAG_variable`` entries.
It reads DWARF 2 to 5 as GCC and clang write it, from a memoryview (a
mapped file or relocated bytes).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Callable

from kasalias.errors import KasaliasError

# Tags and attributes kasalias reads (DWARF 5 numbering, the same in earlier versions).
TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT, TAG_SKELETON_UNIT = 0x11, 0x3C, 0x4A
TAG_SUBPROGRAM, TAG_VARIABLE, TAG_LEXICAL_BLOCK, TAG_INLINED_SUBROUTINE = 0x2E, 0x34, 0x0B, 0x1D
AT_SIBLING, AT_LOCATION, AT_NAME, AT_STMT_LIST, AT_LOW_PC, AT_HIGH_PC = 0x01, 0x02, 0x03, 0x10, 0x11, 0x12
AT_COMP_DIR, AT_ABSTRACT_ORIGIN, AT_DECLARATION, AT_DECL_FILE, AT_DECL_LINE = 0x1B, 0x31, 0x3C, 0x3A, 0x3B
AT_SPECIFICATION, AT_RANGES, AT_STR_OFFSETS_BASE, AT_ADDR_BASE, AT_RNGLISTS_BASE = 0x47, 0x55, 0x72, 0x73, 0x74
AT_TYPE = 0x49
# What a function's signature is made of (signature.py reads these).
TAG_FORMAL_PARAMETER, TAG_UNSPECIFIED_PARAMETERS = 0x05, 0x18

# Forms.
F_ADDR, F_BLOCK2, F_BLOCK4, F_DATA2, F_DATA4, F_DATA8, F_STRING, F_BLOCK, F_BLOCK1 = 1, 3, 4, 5, 6, 7, 8, 9, 10
F_DATA1, F_FLAG, F_SDATA, F_STRP, F_UDATA, F_REF_ADDR = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10
F_REF1, F_REF2, F_REF4, F_REF8, F_REF_UDATA, F_INDIRECT = 0x11, 0x12, 0x13, 0x14, 0x15, 0x16
F_SEC_OFFSET, F_EXPRLOC, F_FLAG_PRESENT, F_STRX, F_ADDRX, F_REF_SUP4, F_STRP_SUP = 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D
F_DATA16, F_LINE_STRP, F_REF_SIG8, F_IMPLICIT_CONST, F_LOCLISTX, F_RNGLISTX = 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23
F_REF_SUP8, F_STRX1, F_STRX2, F_STRX3, F_STRX4, F_ADDRX1, F_ADDRX2, F_ADDRX3, F_ADDRX4 = range(0x24, 0x2D)
F_GNU_ADDR_INDEX, F_GNU_STR_INDEX, F_GNU_REF_ALT, F_GNU_STRP_ALT = 0x1F01, 0x1F02, 0x1F20, 0x1F21

_FIXED = {F_FLAG_PRESENT: 0, F_IMPLICIT_CONST: 0, F_DATA1: 1, F_REF1: 1, F_FLAG: 1, F_STRX1: 1, F_ADDRX1: 1,
          F_DATA2: 2, F_REF2: 2, F_STRX2: 2, F_ADDRX2: 2, F_STRX3: 3, F_ADDRX3: 3, F_DATA4: 4, F_REF4: 4,
          F_STRX4: 4, F_ADDRX4: 4, F_REF_SUP4: 4, F_DATA8: 8, F_REF8: 8, F_REF_SIG8: 8, F_REF_SUP8: 8,
          F_DATA16: 16}
_OFFSET_FORMS = {F_STRP, F_LINE_STRP, F_SEC_OFFSET, F_GNU_REF_ALT, F_GNU_STRP_ALT, F_STRP_SUP}
# Variable-size encodings, as negative size classes.
_LEB, _CSTR, _BLK1, _BLK2, _BLK4, _BLK, _INDIRECT = -1, -2, -3, -4, -5, -6, -7
_VARIABLE = {F_SDATA: _LEB, F_UDATA: _LEB, F_REF_UDATA: _LEB, F_STRX: _LEB, F_ADDRX: _LEB, F_LOCLISTX: _LEB,
             F_RNGLISTX: _LEB, F_GNU_ADDR_INDEX: _LEB, F_GNU_STR_INDEX: _LEB, F_STRING: _CSTR, F_BLOCK1: _BLK1,
             F_BLOCK2: _BLK2, F_BLOCK4: _BLK4, F_BLOCK: _BLK, F_EXPRLOC: _BLK, F_INDIRECT: _INDIRECT}
_RELOCATABLE = {F_ADDR, F_STRP, F_LINE_STRP, F_SEC_OFFSET, F_REF_ADDR}
_STRX_FORMS = {F_STRX, F_STRX1, F_STRX2, F_STRX3, F_STRX4, F_GNU_STR_INDEX}
_ADDRX_FORMS = {F_ADDRX, F_ADDRX1, F_ADDRX2, F_ADDRX3, F_ADDRX4, F_GNU_ADDR_INDEX}
_REF_FORMS = {F_REF1, F_REF2, F_REF4, F_REF8, F_REF_UDATA}
_SCOPES = (TAG_LEXICAL_BLOCK, TAG_INLINED_SUBROUTINE)  # where function-local statics can sit
_DW_OP_ADDR, _DW_OP_ADDRX, _DW_OP_GNU_ADDR_INDEX = 0x03, 0xA1, 0xFB

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_UNPACK = {1: struct.Struct("<B").unpack_from, 2: _U16.unpack_from, 4: _U32.unpack_from, 8: _U64.unpack_from}


def uleb(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos + 1
        shift += 7


def sleb(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return (result - (1 << shift) if b & 0x40 else result), pos


def uint(buf: bytes | memoryview, pos: int, size: int) -> int:
    f = _UNPACK.get(size)
    return f(buf, pos)[0] if f else int.from_bytes(buf[pos:pos + size], "little")


def cstring(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """The NUL-terminated string at ``pos`` and the position after its NUL."""
    chunk = bytes(buf[pos:pos + 128])
    i = chunk.find(b"\0")
    if i >= 0:  # nearly every string
        return chunk[:i], pos + i + 1
    # Longer: chunks of doubling size, joined once. Growing one bytes object 128 bytes at a
    # time copied it again each time: a string running to the end of a corrupted section of
    # megabytes took minutes.
    parts, size = [], 128
    while True:
        if not chunk:
            raise KasaliasError("bad DWARF: unterminated string")
        parts.append(chunk)
        pos += len(chunk)
        size *= 2
        chunk = bytes(buf[pos:pos + size])
        i = chunk.find(b"\0")
        if i >= 0:
            parts.append(chunk[:i])
            return b"".join(parts), pos + i + 1


@dataclass(frozen=True)
class Unit:
    """A unit header in .debug_info."""

    offset: int
    end: int
    version: int
    unit_type: int
    addr_size: int
    abbrev_offset: int
    offset_size: int
    die_offset: int


def units(info: memoryview) -> list[Unit]:
    out = []
    pos, size = 0, len(info)
    while pos + 11 <= size:
        start = pos
        (length,) = _U32.unpack_from(info, pos)
        if length == 0xFFFFFFFF:
            (length,) = _U64.unpack_from(info, pos + 4)
            pos, osz = pos + 12, 8
        else:
            pos, osz = pos + 4, 4
        end = pos + length
        if end > size or length < 7:
            raise KasaliasError(f"bad DWARF: unit at .debug_info+{start:#x} runs past the section")
        (version,) = _U16.unpack_from(info, pos)
        pos += 2
        if version >= 5:
            unit_type, addr_size = info[pos], info[pos + 1]
            abbrev = uint(info, pos + 2, osz)
            pos += 2 + osz
            if unit_type in (4, 5):  # skeleton/split: 8-byte id
                pos += 8
            elif unit_type in (2, 6):  # type units: signature + type offset
                pos += 8 + osz
        elif 2 <= version <= 4:
            unit_type = 1
            abbrev = uint(info, pos, osz)
            addr_size = info[pos + osz]
            pos += osz + 1
        else:
            raise KasaliasError(f"unsupported DWARF version {version} at .debug_info+{start:#x}")
        out.append(Unit(start, end, version, unit_type, addr_size, abbrev, osz, pos))
        pos = end
    return out


@dataclass(frozen=True)
class Abbrev:
    tag: int
    has_children: bool
    attrs: tuple[tuple[int, int, int, int], ...]  # (attribute, form, size class, implicit const)
    fixed_size: int | None  # total size when every form has a fixed size
    sibling_at: tuple[int, int] | None  # (offset in the DIE, size) of a fixed-position DW_AT_sibling
    name_at: tuple[int, int, int] | None  # (offset, form, size) of a fixed-position DW_AT_name
    # struct readers for those two (the walk's hot path)
    sibling_read: Callable[[bytes | memoryview, int], tuple[int, ...]] | None = None
    name_read: Callable[[bytes | memoryview, int], tuple[int, ...]] | None = None
    # Offset of a DW_FORM_string DW_AT_name after fixed-size attributes (GCC writes short names
    # inline): the walk rejects those by name too.
    inline_name_at: int | None = None
    # How to skip a DIE whose size varies: (fixed bytes before, size class) for each variable-size
    # attribute, then skip_tail fixed bytes; None with DW_FORM_indirect (decoded attribute by
    # attribute).
    skip_plan: tuple[tuple[int, int], ...] | None = None
    skip_tail: int = 0
    # Whether a DIE of this shape can name or hold an address: a DW_AT_name, a DW_AT_low_pc, or
    # a DW_AT_location that is an expression (not a location list). The walk skips the others.
    identifiable: bool = True
    declares: bool = False  # a DW_TAG_subprogram or DW_TAG_variable: the walk looks at its name
    # How the walk passes a DIE it skips at any depth (most of a unit: types and their members):
    # >= 0, a childless DIE with this many bytes of attributes; < 0, a DIE with children whose
    # 4-byte DW_AT_sibling is at offset -hop - 1. None: the walk decides by depth and tag.
    hop: int | None = None


def _size_class(form: int, offset_size: int, addr_size: int, version: int) -> int:
    if form in _FIXED:
        return _FIXED[form]
    if form in _OFFSET_FORMS:
        return offset_size
    if form == F_ADDR:
        return addr_size
    if form == F_REF_ADDR:
        return offset_size if version >= 3 else addr_size
    if form in _VARIABLE:
        return _VARIABLE[form]
    raise KasaliasError(f"unsupported DWARF form {form:#x}")


def size_class(form: int, unit: Unit) -> int:
    return _size_class(form, unit.offset_size, unit.addr_size, unit.version)


# One abbreviation declaration, as a regular expression over .debug_abbrev: the code (a
# ULEB128, not the table's terminating 0), then (group 2) the tag, the children flag and the
# (attribute, form) pairs up to (0, 0); DW_FORM_implicit_const (0x21) is followed by its value.
# Matching in C finds where each declaration is; only their contents are decoded in Python, and
# each distinct declaration once (_DECODED): a kernel's units share most of theirs.
_LEB_RE = rb"[\x80-\xff]*[\x00-\x7f]"
_ABBREV_DECL = re.compile(rb"(?!\x00)(" + _LEB_RE + rb")(" + _LEB_RE + rb"[\x00-\xff](?:(?!\x00\x00)"
                          + _LEB_RE + rb"(?:\x21" + _LEB_RE + rb"|" + _LEB_RE + rb"))*\x00\x00)")
# Attributes in one declaration: GCC and clang write at most a few dozen. A corrupted table whose
# (0, 0) terminators are gone reads as one declaration of thousands, which every DIE of that code
# would then walk attribute by attribute.
_MAX_ATTRS = 256
# (declaration after the code, offset size, address size, version) -> its Abbrev
_DECODED: dict[tuple[bytes, int, int, int], Abbrev] = {}


def abbrev_table(abbrev: bytes, unit: Unit, upto: int | None = None) -> dict[int, Abbrev]:
    """The unit's abbreviations (all, or those up to code ``upto``: enough for the unit DIE)."""
    table: dict[int, Abbrev] = {}
    pos = unit.abbrev_offset
    match = _ABBREV_DECL.match
    # Form sizes depend on these alone (DW_FORM_ref_addr: on whether the version is 2).
    osz, asz, version = unit.offset_size, unit.addr_size, min(unit.version, 3)
    while True:
        m = match(abbrev, pos)
        if m is None:
            if abbrev[pos] == 0:
                return table
            raise KasaliasError(f"bad DWARF: malformed abbreviation at .debug_abbrev+{pos:#x}")
        code_leb, decl = m.group(1, 2)
        code = code_leb[0] if len(code_leb) == 1 else uleb(code_leb, 0)[0]
        key = (decl, osz, asz, version)
        ab = _DECODED.get(key)
        if ab is None:
            ab = _DECODED[key] = _decode_abbrev(decl, osz, asz, version)
        table[code] = ab
        if upto is not None and code >= upto:
            return table
        pos = m.end()


def _decode_abbrev(decl: bytes, offset_size: int, addr_size: int, version: int) -> Abbrev:
    """One declaration (tag, children flag, attribute specifications) as an Abbrev."""
    tag, pos = uleb(decl, 0)
    has_children = decl[pos] == 1
    pos += 1
    attrs = []
    fixed: int | None = 0
    run = 0  # fixed-size bytes since the last variable-size attribute
    plan: list[tuple[int, int]] | None = []
    sibling_at = name_at = None
    inline_name_at = None
    identifiable = False
    while True:
        attr, pos = uleb(decl, pos)
        form, pos = uleb(decl, pos)
        const = 0
        if form == F_IMPLICIT_CONST:
            const, pos = sleb(decl, pos)
        elif attr == 0 and form == 0:
            break
        if len(attrs) == _MAX_ATTRS:
            raise KasaliasError(f"bad DWARF: an abbreviation with more than {_MAX_ATTRS} attributes")
        size = _size_class(form, offset_size, addr_size, version)
        if attr in (AT_NAME, AT_LOW_PC) or (attr == AT_LOCATION and form in (F_EXPRLOC, F_BLOCK, F_BLOCK1)):
            identifiable = True
        if fixed is not None:
            if attr == AT_SIBLING and size > 0:
                sibling_at = (fixed, size)
            elif attr == AT_NAME and size >= 0:
                name_at = (fixed, form, size)
            elif attr == AT_NAME and form == F_STRING:
                inline_name_at = fixed
            fixed = fixed + size if size >= 0 else None
        if size >= 0:
            run += size
        elif plan is not None:
            plan = None if size == _INDIRECT else plan + [(run, size)]
            run = 0
        attrs.append((attr, form, size, const))
    declares = tag in (TAG_SUBPROGRAM, TAG_VARIABLE)
    hop = None
    if not declares and not has_children and fixed is not None:
        hop = fixed
    elif not declares and tag not in _SCOPES and sibling_at is not None and sibling_at[1] == 4:
        hop = -sibling_at[0] - 1
    return Abbrev(tag, has_children, tuple(attrs), fixed, sibling_at, name_at,
                  _UNPACK.get(sibling_at[1]) if sibling_at else None,
                  _UNPACK.get(name_at[2]) if name_at and name_at[1] == F_STRP else None,
                  inline_name_at, tuple(plan) if plan is not None else None, run, identifiable,
                  declares, hop)


@dataclass
class Entry:
    """A DIE with the attributes kasalias uses."""

    offset: int
    tag: int
    name: bytes | None = None
    decl_file: int | None = None
    decl_line: int | None = None
    low_pc: int | None = None
    high_pc: int | None = None
    high_pc_is_offset: bool = False
    location: int | None = None  # DW_OP_addr of a static variable
    origin: int | None = None  # DW_AT_abstract_origin / DW_AT_specification target (.debug_info offset)
    type_ref: int | None = None  # DW_AT_type target (.debug_info offset)
    declaration: bool = False
    file_scope: bool = False
    comp_dir: bytes | None = None
    stmt_list: int | None = None
    str_offsets_base: int | None = None
    addr_base: int | None = None
    ranges: int | None = None  # DW_AT_ranges: a section offset, or an index (ranges_is_index)
    ranges_is_index: bool = False
    rnglists_base: int | None = None

    @property
    def is_subprogram(self) -> bool:
        return self.tag == TAG_SUBPROGRAM


class _StrpThrough(dict[int, bytes]):
    """DW_FORM_strp strings read through a string function, each once."""

    def __init__(self, string: Callable[[int, int], bytes]) -> None:
        super().__init__()
        self._string = string

    def __missing__(self, offset: int) -> bytes:
        s = self[offset] = self._string(offset, F_STRP)
        return s


class UnitReader:
    """Decodes DIEs of one unit; strings and indexed addresses come from the caller.

    Methods work on a buffer and its base: ``.debug_info`` itself (base 0) for the few DIEs
    read one by one, or (scan) a copy of the unit as ``bytes`` (base: the unit's offset),
    which Python indexes and searches faster than a memoryview of a mapped file.
    """

    def __init__(self, unit: Unit, info: memoryview, abbrevs: dict[int, Abbrev],
                 string: Callable[[int, int], bytes], address: Callable[[int], int],
                 relocated: Callable[[int, int], int] | None = None,
                 strp: dict[int, bytes] | None = None) -> None:
        self.unit = unit
        self.info = info
        self.abbrevs = abbrevs
        self._string = string  # (value, form) -> bytes; value is an offset or a strx index
        self._address = address  # addrx index -> address
        # In a relocatable file: (position, stored value) -> the relocated value. Only the
        # fields read are relocated, not the whole unit.
        self._relocated = relocated
        # DW_FORM_strp strings by offset (a dict that reads what it lacks from .debug_str),
        # looked up in the walk without a call; without one, through ``string``.
        self._strp = strp if strp is not None else _StrpThrough(string)

    def _field(self, buf: bytes | memoryview, base: int, pos: int, size: int) -> int:
        """An address or section offset stored at ``pos`` (relocated where needed)."""
        v = uint(buf, pos, size)
        return self._relocated(base + pos, v) if self._relocated is not None else v

    def _skip(self, buf: bytes | memoryview, size: int, form: int, pos: int) -> int:
        if size >= 0:
            return pos + size
        if size == _LEB:
            while buf[pos] & 0x80:
                pos += 1
            return pos + 1
        if size == _CSTR:
            return cstring(buf, pos)[1]
        if size == _BLK1:
            return pos + 1 + buf[pos]
        if size == _BLK2:
            return pos + 2 + uint(buf, pos, 2)
        if size == _BLK4:
            return pos + 4 + uint(buf, pos, 4)
        if size == _BLK:
            n, pos = uleb(buf, pos)
            return pos + n
        real, pos = uleb(buf, pos)  # DW_FORM_indirect
        return self._skip(buf, size_class(real, self.unit), real, pos)

    def _skip_attrs(self, buf: bytes | memoryview, ab: Abbrev, pos: int) -> int:
        if ab.fixed_size is not None:
            return pos + ab.fixed_size
        for _a, form, size, _c in ab.attrs:
            pos = self._skip(buf, size, form, pos)
        return pos

    def _value(self, buf: bytes | memoryview, base: int, form: int, size: int, const: int, pos: int) -> int:
        if form == F_IMPLICIT_CONST:
            return const
        if form in _RELOCATABLE:
            return self._field(buf, base, pos, size)
        if size == _LEB:
            return sleb(buf, pos)[0] if form == F_SDATA else uleb(buf, pos)[0]
        return uint(buf, pos, size)

    def decode(self, ab: Abbrev, offset: int, pos: int, file_scope: bool = False) -> tuple[Entry, int]:
        """Decode the attributes of the DIE at ``offset`` (attributes start at ``pos``)."""
        return self._decode(self.info, 0, ab, offset, pos, file_scope)

    def _decode(self, buf: bytes | memoryview, base: int, ab: Abbrev, offset: int, pos: int,
                file_scope: bool) -> tuple[Entry, int]:
        """``decode`` on ``buf`` (``base``: the .debug_info offset of its first byte); ``pos``
        is in ``buf``, ``offset`` in .debug_info."""
        unit = self.unit
        e = Entry(offset, ab.tag, file_scope=file_scope)
        for attr, form, size, const in ab.attrs:
            start = pos
            pos = self._skip(buf, size, form, pos)
            if attr == AT_NAME or attr == AT_COMP_DIR:
                if form == F_STRING:
                    s = bytes(buf[start:pos - 1])
                else:
                    s = self._string(self._value(buf, base, form, size, const, start), form)
                if attr == AT_NAME:
                    e.name = s
                else:
                    e.comp_dir = s
            elif attr == AT_DECL_FILE:
                e.decl_file = self._value(buf, base, form, size, const, start)
            elif attr == AT_DECL_LINE:
                e.decl_line = self._value(buf, base, form, size, const, start)
            elif attr == AT_LOW_PC:
                if form == F_ADDR:
                    e.low_pc = self._field(buf, base, start, size)
                elif form in _ADDRX_FORMS:
                    e.low_pc = self._address(self._value(buf, base, form, size, const, start))
            elif attr == AT_HIGH_PC:
                if form == F_ADDR:
                    e.high_pc = self._field(buf, base, start, size)
                elif form in _ADDRX_FORMS:
                    e.high_pc = self._address(self._value(buf, base, form, size, const, start))
                else:
                    e.high_pc, e.high_pc_is_offset = self._value(buf, base, form, size, const, start), True
            elif attr == AT_LOCATION:
                e.location = self._static_address(buf, base, form, start)
            elif attr == AT_ABSTRACT_ORIGIN or attr == AT_SPECIFICATION or attr == AT_TYPE:
                ref = None
                if form == F_REF_ADDR:
                    ref = self._field(buf, base, start, size)
                elif form in _REF_FORMS:
                    ref = unit.offset + self._value(buf, base, form, size, const, start)
                if attr == AT_TYPE:
                    e.type_ref = ref
                else:
                    e.origin = ref
            elif attr == AT_DECLARATION:
                e.declaration = form == F_FLAG_PRESENT or buf[start] != 0
            elif attr == AT_STMT_LIST:
                e.stmt_list = self._value(buf, base, form, size, const, start)
            elif attr == AT_STR_OFFSETS_BASE:
                e.str_offsets_base = self._value(buf, base, form, size, const, start)
            elif attr == AT_ADDR_BASE:
                e.addr_base = self._value(buf, base, form, size, const, start)
            elif attr == AT_RANGES:
                e.ranges, e.ranges_is_index = self._value(buf, base, form, size, const, start), form == F_RNGLISTX
            elif attr == AT_RNGLISTS_BASE:
                e.rnglists_base = self._value(buf, base, form, size, const, start)
        return e, pos

    def _static_address(self, buf: bytes | memoryview, base: int, form: int, start: int) -> int | None:
        """The address of a location that is exactly ``DW_OP_addr A`` (or ``DW_OP_addrx``)."""
        if form == F_EXPRLOC or form == F_BLOCK:
            n, p = uleb(buf, start)
        elif form == F_BLOCK1:
            n, p = buf[start], start + 1
        else:
            return None
        if n == 1 + self.unit.addr_size and buf[p] == _DW_OP_ADDR:
            return self._field(buf, base, p + 1, self.unit.addr_size)
        if n >= 2 and buf[p] in (_DW_OP_ADDRX, _DW_OP_GNU_ADDR_INDEX):
            idx, q = uleb(buf, p + 1)
            if q == p + n:
                return self._address(idx)
        return None

    def unit_entry(self) -> Entry:
        code, pos = uleb(self.info, self.unit.die_offset)
        ab = self.abbrevs.get(code)
        if ab is None:
            raise KasaliasError(f"bad DWARF: unit at .debug_info+{self.unit.offset:#x} has no unit DIE")
        return self.decode(ab, self.unit.die_offset, pos)[0]

    def entry_at(self, offset: int) -> Entry | None:
        """The subprogram or variable DIE at ``offset`` (for abstract origins and specifications)."""
        if not self.unit.die_offset <= offset < self.unit.end:
            return None
        code, pos = uleb(self.info, offset)
        ab = self.abbrevs.get(code)
        if ab is None or ab.tag not in (TAG_SUBPROGRAM, TAG_VARIABLE):
            return None
        return self.decode(ab, offset, pos)[0]

    def die_at(self, offset: int) -> tuple[Entry, Abbrev, int] | None:
        """The DIE at ``offset`` whatever its tag, its abbreviation and where its attributes
        end (its first child, if it has children); None outside the unit or at a null entry."""
        if not self.unit.die_offset <= offset < self.unit.end:
            return None
        code, pos = uleb(self.info, offset)
        ab = self.abbrevs.get(code)
        if ab is None:
            return None
        e, pos = self.decode(ab, offset, pos)
        return e, ab, pos

    def children(self, offset: int, tags: tuple[int, ...]) -> list[Entry]:
        """The children of the DIE at ``offset`` that lead its list with a tag in ``tags`` (a
        function's parameters come before its locals and blocks): up to the first other child."""
        top = self.die_at(offset)
        out: list[Entry] = []
        if top is None or not top[1].has_children:
            return out
        pos = top[2]
        while pos < self.unit.end:
            code, after = uleb(self.info, pos)
            ab = self.abbrevs.get(code)
            if ab is None or ab.tag not in tags:
                break  # the end of the children (code 0), or the first of another kind
            e, pos = self.decode(ab, pos, after)
            out.append(e)
            if ab.has_children:
                pos = self._past_children(pos)
        return out

    def _past_children(self, pos: int) -> int:
        """Past the children of a DIE whose attributes end at ``pos``."""
        depth = 1
        while depth:
            if pos >= self.unit.end:
                raise KasaliasError(f"bad DWARF: children past the end of the unit at .debug_info+{self.unit.offset:#x}")
            code, pos = uleb(self.info, pos)
            if code == 0:
                depth -= 1
                continue
            ab = self.abbrevs.get(code)
            if ab is None:
                raise KasaliasError(f"bad DWARF: unknown abbreviation {code} in .debug_info")
            pos = self._skip_attrs(self.info, ab, pos)
            depth += ab.has_children
        return pos

    def _skip_variable(self, data: bytes, ab: Abbrev, pos: int) -> int:
        """Past the attributes of a DIE whose size varies, by the abbreviation's skip plan."""
        plan = ab.skip_plan
        if plan is None:
            return self._skip_attrs(data, ab, pos)
        for run, size in plan:
            pos += run
            if size == _CSTR:
                pos = data.index(0, pos) + 1
            elif size == _LEB:
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif size == _BLK:
                n, pos = uleb(data, pos)
                pos += n
            elif size == _BLK1:
                pos += 1 + data[pos]
            elif size == _BLK2:
                pos += 2 + _U16.unpack_from(data, pos)[0]
            else:  # _BLK4
                pos += 4 + _U32.unpack_from(data, pos)[0]
        return pos + ab.skip_tail

    def scan(self, names: set[bytes], addresses: set[int], local_statics: bool) -> list[Entry]:
        """Subprograms and variables named in ``names``, and unnamed ones (clones, concrete
        instances) whose address is in ``addresses``.

        ``local_statics`` also walks function bodies, for GCC's numbered
        function-local statics (``count.2``).
        """
        unit = self.unit
        base = unit.offset
        # Positions below are in this copy of the unit; sibling references are unit-relative,
        # so they are positions in it as they stand.
        data = bytes(self.info[base:unit.end])
        abbrevs, strp = self.abbrevs, self._strp
        found: list[Entry] = []
        pos, end = unit.die_offset - base, len(data)
        code, pos = uleb(data, pos)
        top = abbrevs.get(code)
        if top is None or not top.has_children:
            return found
        pos = self._skip_attrs(data, top, pos)
        # One flag per open nesting level: are DIEs there worth decoding?
        levels = [True]
        relocated = self._relocated
        skip_variable = self._skip_variable
        # Abbrev.hop by the first byte of a DIE, for the codes that take one byte: the DIEs
        # passed the same way at any depth.
        hops: list[int | None] = [None] * 256
        for code, ab in abbrevs.items():
            if code < 0x80:
                hops[code] = ab.hop
        u32 = _U32.unpack_from
        while pos < end and levels:
            hop = hops[data[pos]]
            if hop is not None:  # the common case (types), as the code below would pass it
                if hop >= 0:
                    pos += 1 + hop
                else:
                    pos = _forward(pos, u32(data, pos - hop)[0], base)
                continue
            die = pos
            code = data[pos]
            pos += 1
            if code >= 0x80:
                code, pos = uleb(data, die)
            if code == 0:
                levels.pop()
                continue
            try:
                ab = abbrevs[code]
            except KeyError:
                raise KasaliasError(f"bad DWARF: unknown abbreviation {code} at .debug_info+{base + die:#x}") from None
            level = levels[-1]
            if level and ab.declares:
                tag = ab.tag
                # The common case: reject by name before decoding anything else.
                name: bytes | None = None
                name_read = ab.name_read
                if name_read is not None:
                    at = pos + ab.name_at[0]  # type: ignore[index]
                    offset = name_read(data, at)[0]
                    if relocated is not None:
                        offset = relocated(base + at, offset)
                    name = strp[offset]
                elif ab.inline_name_at is not None:
                    at = pos + ab.inline_name_at
                    name = data[at:data.index(0, at)]
                if (name is not None and name not in names) or not ab.identifiable:
                    if ab.has_children:
                        sib = ab.sibling_read
                        if sib is not None and not (local_statics and tag == TAG_SUBPROGRAM):
                            pos = _forward(die, sib(data, pos + ab.sibling_at[0])[0], base)  # type: ignore[index]
                            continue
                        fixed = ab.fixed_size
                        pos = pos + fixed if fixed is not None else skip_variable(data, ab, pos)
                        levels.append(local_statics and tag == TAG_SUBPROGRAM)
                        continue
                    fixed = ab.fixed_size
                    pos = pos + fixed if fixed is not None else skip_variable(data, ab, pos)
                    continue
                e, pos = self._decode(data, base, ab, base + die, pos, len(levels) == 1)
                if e.name in names or (e.name is None and (e.low_pc in addresses or e.location in addresses)):
                    found.append(e)
                if ab.has_children:
                    levels.append(local_statics and tag == TAG_SUBPROGRAM)
                continue
            if ab.has_children:
                if level and local_statics and ab.tag in _SCOPES and len(levels) > 1:
                    fixed = ab.fixed_size
                    pos = pos + fixed if fixed is not None else skip_variable(data, ab, pos)
                    levels.append(True)
                    continue
                sib = ab.sibling_read
                if sib is not None:
                    pos = _forward(die, sib(data, pos + ab.sibling_at[0])[0], base)  # type: ignore[index]
                    continue
                fixed = ab.fixed_size
                pos = pos + fixed if fixed is not None else skip_variable(data, ab, pos)
                levels.append(False)
                continue
            fixed = ab.fixed_size
            pos = pos + fixed if fixed is not None else skip_variable(data, ab, pos)
        return found


def _forward(die: int, sibling: int, base: int) -> int:
    """A DW_AT_sibling target, which must lie after its DIE: a corrupted one pointing at its
    own DIE or back would make the walk go round for ever."""
    if sibling <= die:
        raise KasaliasError(f"bad DWARF: DW_AT_sibling of the DIE at .debug_info+{base + die:#x} points back")
    return sibling


# Line-table header content types (DWARF 5).
_LNCT_PATH, _LNCT_DIRECTORY_INDEX = 1, 2
_LINE_STRING_FORMS = {F_STRP, F_LINE_STRP, F_STRX, F_STRX1, F_STRX2, F_STRX3, F_STRX4}
# A DWARF 5 directory or file entry as a regular expression, per entry format (a tuple of size
# classes): where the entries are is found in C; an entry is decoded only when asked for.
_ENTRY_RES: dict[tuple[int, ...], re.Pattern[bytes] | None] = {}


def _entry_re(sizes: tuple[int, ...]) -> re.Pattern[bytes] | None:
    """The pattern of one entry of the given field sizes (None if a field is a block)."""
    if sizes not in _ENTRY_RES:
        parts: list[bytes] | None = []
        for size in sizes:
            if parts is None:
                break
            if size >= 0:
                parts.append(b"[\\x00-\\xff]{%d}" % size)
            elif size == _LEB:
                parts.append(_LEB_RE)
            elif size == _CSTR:
                parts.append(rb"[^\x00]*\x00")
            else:
                parts = None
        # An entry that can be empty would not advance: read those field by field.
        _ENTRY_RES[sizes] = re.compile(b"".join(parts)) if parts is not None and any(sizes) else None
    return _ENTRY_RES[sizes]


class LineFiles:
    """The directory and file tables of a line-table header, decoded an entry at a time.

    Directories are as in DWARF 5 (index 0 is the unit's directory); DWARF 2-4
    tables are converted to that numbering, files keep their own numbering
    (1-based before DWARF 5; the caller adjusts).
    """

    def __init__(self, version: int, dirs: list[str] | list[bytes], files: list[tuple[str, int]] | list[bytes],
                 formats: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None = None,
                 string: Callable[[int, int], bytes] | None = None) -> None:
        self.version = version
        # Decoded entries, or (DWARF 5) the raw bytes of each, decoded by _entry() when asked for.
        self._dirs = dirs
        self._files = files
        self._formats = formats
        self._string = string
        self._decoded: dict[tuple[int, int], dict[int, object]] = {}

    def __len__(self) -> int:
        return len(self._files)

    def directory_count(self) -> int:
        return len(self._dirs)

    def directory(self, index: int) -> str:
        d = self._dirs[index]
        return d if isinstance(d, str) else _text(self._entry(0, index).get(_LNCT_PATH))

    def file(self, index: int) -> tuple[str, int]:
        """(name, directory index) of file ``index`` (0 <= index < len(self))."""
        f = self._files[index]
        if isinstance(f, tuple):
            return f
        item = self._entry(1, index)
        d = item.get(_LNCT_DIRECTORY_INDEX)
        return _text(item.get(_LNCT_PATH)), d if isinstance(d, int) else 0

    def _entry(self, table: int, index: int) -> dict[int, object]:
        """Entry ``index`` of the directory (0) or file (1) table, by content type."""
        item = self._decoded.get((table, index))
        if item is None:
            assert self._formats is not None and self._string is not None
            raw = (self._dirs if table == 0 else self._files)[index]
            assert isinstance(raw, bytes)
            item = self._decoded[(table, index)] = _decode_entry(raw, 0, self._formats[table], self._string)[0]
        return item


def _text(v: object) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else ""


def _decode_entry(line: bytes | memoryview, pos: int, formats: tuple[tuple[int, int, int], ...],
                  string: Callable[[int, int], bytes] | None) -> tuple[dict[int, object], int]:
    """The fields of the entry at ``pos`` (paths and directory indexes; with ``string``
    None only the end is wanted) and the position after it."""
    item: dict[int, object] = {}
    for ct, form, size in formats:
        if form == F_STRING:
            s, pos = cstring(line, pos)
            item[ct] = s
            continue
        start = pos
        if size >= 0:
            pos += size
        elif size == _LEB:
            _, pos = uleb(line, pos)
        elif size in (_BLK, _BLK1):
            n, p = (uleb(line, pos) if size == _BLK else (line[pos], pos + 1))
            pos = p + n
        else:
            raise KasaliasError(f"unsupported form {form:#x} in a line-table header")
        if string is None:
            continue
        if form in _LINE_STRING_FORMS:
            item[ct] = string(uint(line, start, size) if size > 0 else uleb(line, start)[0], form)
        elif ct == _LNCT_DIRECTORY_INDEX:
            item[ct] = uint(line, start, size) if size > 0 else uleb(line, start)[0]
    return item, pos


def line_table_files(line: memoryview, offset: int, string: Callable[[int, int], bytes],
                     comp_dir: str) -> LineFiles:
    """The directory and file tables of the line-table header at ``offset``."""
    pos = offset
    (length,) = _U32.unpack_from(line, pos)
    if length == 0xFFFFFFFF:
        osz, pos = 8, pos + 12
    else:
        osz, pos = 4, pos + 4
    (version,) = _U16.unpack_from(line, pos)
    pos += 2
    if version >= 5:
        pos += 2  # address_size, segment_selector_size
    header_end = pos + osz + uint(line, pos, osz)  # where the line program starts
    pos += osz  # header_length
    pos += 4 if version >= 4 else 3  # min_inst_length, [max_ops], default_is_stmt, line_base
    line_range_and_base = pos
    opcode_base = line[line_range_and_base + 1]
    pos = line_range_and_base + 2 + (opcode_base - 1)
    if version < 5:
        dirs = [comp_dir]
        while True:
            s, pos = cstring(line, pos)
            if not s:
                break
            dirs.append(s.decode("utf-8", "surrogateescape"))
        files = []
        while True:
            s, pos = cstring(line, pos)
            if not s:
                break
            d, pos = uleb(line, pos)
            _, pos = uleb(line, pos)
            _, pos = uleb(line, pos)
            files.append((s.decode("utf-8", "surrogateescape"), d))
        return LineFiles(version, dirs, files)
    # The rest of the header as bytes: patterns and slices then give bytes, not memoryviews.
    header = bytes(line[pos:header_end])
    pos = 0
    tables: list[list[bytes]] = []
    formats: list[tuple[tuple[int, int, int], ...]] = []
    for _table in range(2):  # directories, files
        nformats = header[pos]
        pos += 1
        fmt = []
        for _ in range(nformats):
            ct, pos = uleb(header, pos)
            form, pos = uleb(header, pos)
            fmt.append((ct, form, _size_class(form, osz, 8, version)))
        count, pos = uleb(header, pos)
        # The count is the file's word: an entry takes at least a byte (an entry of no bytes
        # names nothing), so more entries than bytes left is corrupt, and the loops below
        # stay bounded by the header's size (2^40 empty entries would never end).
        if count > len(header) - pos:
            raise KasaliasError(f"bad DWARF: the line-table header at .debug_line+{offset:#x} lists {count} "
                                f"{('directories', 'files')[_table]} in {len(header) - pos} bytes")
        entries: list[bytes] = []
        pattern = _entry_re(tuple(size for _ct, _form, size in fmt))
        if pattern is not None and count:
            # Entries follow each other, each matching the pattern, up to the end of the header.
            entries = pattern.findall(header, pos)[:count]
            pos += sum(map(len, entries))
        for _ in range(count - len(entries)):  # block fields (or a truncated table)
            start = pos
            pos = _decode_entry(header, pos, tuple(fmt), None)[1]
            if pos > len(header) or pos == start:
                raise KasaliasError(f"bad DWARF: the line-table header at .debug_line+{offset:#x} has "
                                    f"entries of no bytes or past its end")
            entries.append(header[start:pos])
        tables.append(entries)
        formats.append(tuple(fmt))
    return LineFiles(version, tables[0], tables[1], (formats[0], formats[1]), string)


def range_list(unit: Unit, top: Entry, ranges: memoryview | None, rnglists: memoryview | None,
               address: Callable[[int], int]) -> list[tuple[int, int]]:
    """The address ranges of a unit DIE's DW_AT_ranges (.debug_ranges or .debug_rnglists)."""
    out: list[tuple[int, int]] = []
    if top.ranges is None:
        return out
    base = top.low_pc or 0
    asz = unit.addr_size
    if unit.version < 5:
        if ranges is None:
            return out
        pos, top_addr = top.ranges, (1 << (8 * asz)) - 1
        while pos + 2 * asz <= len(ranges):
            lo, hi = uint(ranges, pos, asz), uint(ranges, pos + asz, asz)
            pos += 2 * asz
            if lo == 0 and hi == 0:
                break
            if lo == top_addr:
                base = hi
            elif hi > lo:
                out.append((base + lo, base + hi))
        return out
    if rnglists is None:
        return out
    pos = top.ranges
    if top.ranges_is_index:
        rbase = top.rnglists_base if top.rnglists_base is not None else 12
        pos = rbase + uint(rnglists, rbase + top.ranges * unit.offset_size, unit.offset_size)
    while pos < len(rnglists):
        kind = rnglists[pos]
        pos += 1
        if kind == 0:  # DW_RLE_end_of_list
            break
        if kind == 1:  # base_addressx
            i, pos = uleb(rnglists, pos)
            base = address(i)
        elif kind == 2:  # startx_endx
            a, pos = uleb(rnglists, pos)
            b, pos = uleb(rnglists, pos)
            out.append((address(a), address(b)))
        elif kind == 3:  # startx_length
            a, pos = uleb(rnglists, pos)
            n, pos = uleb(rnglists, pos)
            lo = address(a)
            out.append((lo, lo + n))
        elif kind == 4:  # offset_pair
            a, pos = uleb(rnglists, pos)
            b, pos = uleb(rnglists, pos)
            out.append((base + a, base + b))
        elif kind == 5:  # base_address
            base, pos = uint(rnglists, pos, asz), pos + asz
        elif kind == 6:  # start_end
            out.append((uint(rnglists, pos, asz), uint(rnglists, pos + asz, asz)))
            pos += 2 * asz
        elif kind == 7:  # start_length
            lo = uint(rnglists, pos, asz)
            n, pos = uleb(rnglists, pos + asz)
            out.append((lo, lo + n))
        else:
            raise KasaliasError(f"bad DWARF: range list entry kind {kind}")
    return [(lo, hi) for lo, hi in out if hi > lo]
