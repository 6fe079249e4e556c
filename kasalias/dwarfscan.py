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


def uleb(buf: memoryview, pos: int) -> tuple[int, int]:
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


def sleb(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return (result - (1 << shift) if b & 0x40 else result), pos


def uint(buf: memoryview, pos: int, size: int) -> int:
    f = _UNPACK.get(size)
    return f(buf, pos)[0] if f else int.from_bytes(buf[pos:pos + size], "little")


def cstring(buf: memoryview, pos: int) -> tuple[bytes, int]:
    """The NUL-terminated string at ``pos`` and the position after its NUL."""
    out = b""
    while True:
        chunk = bytes(buf[pos:pos + 128])
        i = chunk.find(b"\0")
        if i >= 0:
            return out + chunk[:i], pos + i + 1
        if not chunk:
            raise KasaliasError("bad DWARF: unterminated string")
        out += chunk
        pos += len(chunk)


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
    sibling_read: Callable[[memoryview, int], tuple[int, ...]] | None = None
    name_read: Callable[[memoryview, int], tuple[int, ...]] | None = None


def size_class(form: int, unit: Unit) -> int:
    if form in _FIXED:
        return _FIXED[form]
    if form in _OFFSET_FORMS:
        return unit.offset_size
    if form == F_ADDR:
        return unit.addr_size
    if form == F_REF_ADDR:
        return unit.offset_size if unit.version >= 3 else unit.addr_size
    if form in _VARIABLE:
        return _VARIABLE[form]
    raise KasaliasError(f"unsupported DWARF form {form:#x}")


def abbrev_table(abbrev: memoryview, unit: Unit, upto: int | None = None) -> dict[int, Abbrev]:
    """The unit's abbreviations (all, or those up to code ``upto``: enough for the unit DIE)."""
    table: dict[int, Abbrev] = {}
    pos = unit.abbrev_offset
    sizes: dict[int, int] = {}
    while True:
        code, pos = uleb(abbrev, pos)
        if code == 0:
            return table
        tag, pos = uleb(abbrev, pos)
        has_children = abbrev[pos] == 1
        pos += 1
        attrs = []
        fixed: int | None = 0
        sibling_at = name_at = None
        while True:
            attr = abbrev[pos]
            if attr < 0x80:
                pos += 1
            else:
                attr, pos = uleb(abbrev, pos)
            form = abbrev[pos]
            if form < 0x80:
                pos += 1
            else:
                form, pos = uleb(abbrev, pos)
            const = 0
            if form == F_IMPLICIT_CONST:
                const, pos = sleb(abbrev, pos)
            elif attr == 0 and form == 0:
                break
            size = sizes.get(form)
            if size is None:
                size = sizes[form] = size_class(form, unit)
            if fixed is not None:
                if attr == AT_SIBLING and size > 0:
                    sibling_at = (fixed, size)
                elif attr == AT_NAME and size >= 0:
                    name_at = (fixed, form, size)
                fixed = fixed + size if size >= 0 else None
            attrs.append((attr, form, size, const))
        table[code] = Abbrev(tag, has_children, tuple(attrs), fixed, sibling_at, name_at,
                             _UNPACK.get(sibling_at[1]) if sibling_at else None,
                             _UNPACK.get(name_at[2]) if name_at and name_at[1] == F_STRP else None)
        if upto is not None and code >= upto:
            return table


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


class UnitReader:
    """Decodes DIEs of one unit; strings and indexed addresses come from the caller."""

    def __init__(self, unit: Unit, info: memoryview, abbrevs: dict[int, Abbrev],
                 string: Callable[[int, int], bytes], address: Callable[[int], int],
                 relocated: Callable[[int, int], int] | None = None) -> None:
        self.unit = unit
        self.info = info
        self.abbrevs = abbrevs
        self._string = string  # (value, form) -> bytes; value is an offset or a strx index
        self._address = address  # addrx index -> address
        # In a relocatable file: (position, stored value) -> the relocated value. Only the
        # fields read are relocated, not the whole unit.
        self._relocated = relocated

    def _field(self, pos: int, size: int) -> int:
        """An address or section offset stored at ``pos`` (relocated where needed)."""
        v = uint(self.info, pos, size)
        return self._relocated(pos, v) if self._relocated is not None else v

    def _skip(self, size: int, form: int, pos: int) -> int:
        if size >= 0:
            return pos + size
        info = self.info
        if size == _LEB:
            while info[pos] & 0x80:
                pos += 1
            return pos + 1
        if size == _CSTR:
            return cstring(info, pos)[1]
        if size == _BLK1:
            return pos + 1 + info[pos]
        if size == _BLK2:
            return pos + 2 + uint(info, pos, 2)
        if size == _BLK4:
            return pos + 4 + uint(info, pos, 4)
        if size == _BLK:
            n, pos = uleb(info, pos)
            return pos + n
        real, pos = uleb(info, pos)  # DW_FORM_indirect
        return self._skip(size_class(real, self.unit), real, pos)

    def _skip_attrs(self, ab: Abbrev, pos: int, start: int = 0) -> int:
        if ab.fixed_size is not None and start == 0:
            return pos + ab.fixed_size
        for _a, form, size, _c in ab.attrs[start:]:
            pos = self._skip(size, form, pos)
        return pos

    def _value(self, form: int, size: int, const: int, pos: int) -> int:
        if form == F_IMPLICIT_CONST:
            return const
        if form in _RELOCATABLE:
            return self._field(pos, size)
        if size == _LEB:
            return sleb(self.info, pos)[0] if form == F_SDATA else uleb(self.info, pos)[0]
        return uint(self.info, pos, size)

    def decode(self, ab: Abbrev, offset: int, pos: int, file_scope: bool = False) -> tuple[Entry, int]:
        """Decode the attributes of the DIE at ``offset`` (attributes start at ``pos``)."""
        info, unit = self.info, self.unit
        e = Entry(offset, ab.tag, file_scope=file_scope)
        for attr, form, size, const in ab.attrs:
            start = pos
            pos = self._skip(size, form, pos)
            if attr == AT_NAME or attr == AT_COMP_DIR:
                if form == F_STRING:
                    s = bytes(info[start:pos - 1])
                else:
                    s = self._string(self._value(form, size, const, start), form)
                if attr == AT_NAME:
                    e.name = s
                else:
                    e.comp_dir = s
            elif attr == AT_DECL_FILE:
                e.decl_file = self._value(form, size, const, start)
            elif attr == AT_DECL_LINE:
                e.decl_line = self._value(form, size, const, start)
            elif attr == AT_LOW_PC:
                if form == F_ADDR:
                    e.low_pc = self._field(start, size)
                elif form in _ADDRX_FORMS:
                    e.low_pc = self._address(self._value(form, size, const, start))
            elif attr == AT_HIGH_PC:
                if form == F_ADDR:
                    e.high_pc = self._field(start, size)
                elif form in _ADDRX_FORMS:
                    e.high_pc = self._address(self._value(form, size, const, start))
                else:
                    e.high_pc, e.high_pc_is_offset = self._value(form, size, const, start), True
            elif attr == AT_LOCATION:
                e.location = self._static_address(form, start)
            elif attr == AT_ABSTRACT_ORIGIN or attr == AT_SPECIFICATION:
                if form == F_REF_ADDR:
                    e.origin = self._field(start, size)
                elif form in _REF_FORMS:
                    e.origin = unit.offset + self._value(form, size, const, start)
            elif attr == AT_DECLARATION:
                e.declaration = form == F_FLAG_PRESENT or info[start] != 0
            elif attr == AT_STMT_LIST:
                e.stmt_list = self._value(form, size, const, start)
            elif attr == AT_STR_OFFSETS_BASE:
                e.str_offsets_base = self._value(form, size, const, start)
            elif attr == AT_ADDR_BASE:
                e.addr_base = self._value(form, size, const, start)
            elif attr == AT_RANGES:
                e.ranges, e.ranges_is_index = self._value(form, size, const, start), form == F_RNGLISTX
            elif attr == AT_RNGLISTS_BASE:
                e.rnglists_base = self._value(form, size, const, start)
        return e, pos

    def _static_address(self, form: int, start: int) -> int | None:
        """The address of a location that is exactly ``DW_OP_addr A`` (or ``DW_OP_addrx``)."""
        info = self.info
        if form == F_EXPRLOC or form == F_BLOCK:
            n, p = uleb(info, start)
        elif form == F_BLOCK1:
            n, p = info[start], start + 1
        else:
            return None
        if n == 1 + self.unit.addr_size and info[p] == _DW_OP_ADDR:
            return self._field(p + 1, self.unit.addr_size)
        if n >= 2 and info[p] in (_DW_OP_ADDRX, _DW_OP_GNU_ADDR_INDEX):
            idx, q = uleb(info, p + 1)
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

    def scan(self, names: set[bytes], addresses: set[int], local_statics: bool) -> list[Entry]:
        """Subprograms and variables named in ``names``, and unnamed ones (clones, concrete
        instances) whose address is in ``addresses``.

        ``local_statics`` also walks function bodies, for GCC's numbered
        function-local statics (``count.2``).
        """
        info, abbrevs, unit_offset = self.info, self.abbrevs, self.unit.offset
        string = self._string
        found: list[Entry] = []
        pos, end = self.unit.die_offset, self.unit.end
        code, pos = uleb(info, pos)
        top = abbrevs.get(code)
        if top is None or not top.has_children:
            return found
        pos = self._skip_attrs(top, pos)
        # One flag per open nesting level: are DIEs there worth decoding?
        levels = [True]
        wanted_tags = (TAG_SUBPROGRAM, TAG_VARIABLE)
        relocated = self._relocated
        skip_attrs = self._skip_attrs
        while pos < end and levels:
            die = pos
            code = info[pos]
            pos += 1
            if code >= 0x80:
                code, pos = uleb(info, die)
            if code == 0:
                levels.pop()
                continue
            ab = abbrevs.get(code)
            if ab is None:
                raise KasaliasError(f"bad DWARF: unknown abbreviation {code} at .debug_info+{die:#x}")
            level = levels[-1]
            if level and ab.tag in wanted_tags:
                name_read = ab.name_read
                if name_read is not None:
                    # The common case: reject by name before decoding anything else.
                    at = pos + ab.name_at[0]  # type: ignore[index]
                    offset = name_read(info, at)[0]
                    if relocated is not None:
                        offset = relocated(at, offset)
                    if string(offset, F_STRP) not in names:
                        if ab.has_children:
                            sib = ab.sibling_read
                            if sib is not None and not (local_statics and ab.tag == TAG_SUBPROGRAM):
                                pos = unit_offset + sib(info, pos + ab.sibling_at[0])[0]  # type: ignore[index]
                                continue
                            pos = skip_attrs(ab, pos)
                            levels.append(local_statics and ab.tag == TAG_SUBPROGRAM)
                            continue
                        fixed = ab.fixed_size
                        pos = pos + fixed if fixed is not None else skip_attrs(ab, pos)
                        continue
                e, pos = self.decode(ab, die, pos, len(levels) == 1)
                if e.name in names or (e.name is None and (e.low_pc in addresses or e.location in addresses)):
                    found.append(e)
                if ab.has_children:
                    levels.append(local_statics and ab.tag == TAG_SUBPROGRAM)
                continue
            if ab.has_children:
                if level and local_statics and ab.tag in _SCOPES and len(levels) > 1:
                    pos = skip_attrs(ab, pos)
                    levels.append(True)
                    continue
                sib = ab.sibling_read
                if sib is not None:
                    pos = unit_offset + sib(info, pos + ab.sibling_at[0])[0]  # type: ignore[index]
                    continue
                pos = skip_attrs(ab, pos)
                levels.append(False)
                continue
            fixed = ab.fixed_size
            pos = pos + fixed if fixed is not None else skip_attrs(ab, pos)
        return found


# Line-table header content types (DWARF 5).
_LNCT_PATH, _LNCT_DIRECTORY_INDEX = 1, 2


def line_table_files(line: memoryview, offset: int, string: Callable[[int, int], bytes],
                     comp_dir: str) -> tuple[int, list[str], list[tuple[str, int]]]:
    """(version, directories, files as (name, directory index)) from a line-table header.

    Directories are as in DWARF 5 (index 0 is the unit's directory); DWARF 2-4
    tables are converted to that numbering, files keep their own numbering
    (1-based before DWARF 5; the caller adjusts).
    """
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
        return version, dirs, files
    fake = Unit(0, 0, version, 1, 8, 0, osz, 0)

    def entries(pos: int) -> tuple[list[dict[int, object]], int]:
        nformats = line[pos]
        pos += 1
        formats = []
        for _ in range(nformats):
            ct, pos = uleb(line, pos)
            form, pos = uleb(line, pos)
            formats.append((ct, form))
        count, pos = uleb(line, pos)
        out = []
        for _ in range(count):
            item: dict[int, object] = {}
            for ct, form in formats:
                if form == F_STRING:
                    s, pos = cstring(line, pos)
                    item[ct] = s
                    continue
                size = size_class(form, fake)
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
                if form in (F_STRP, F_LINE_STRP, F_STRX, F_STRX1, F_STRX2, F_STRX3, F_STRX4):
                    item[ct] = string(uint(line, start, size) if size > 0 else uleb(line, start)[0], form)
                elif ct == _LNCT_DIRECTORY_INDEX:
                    item[ct] = uint(line, start, size) if size > 0 else uleb(line, start)[0]
            out.append(item)
        return out, pos

    dir_entries, pos = entries(pos)
    file_entries, pos = entries(pos)
    def text(v: object) -> str:
        return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else ""

    def number(v: object) -> int:
        return v if isinstance(v, int) else 0

    dirs = [text(d.get(_LNCT_PATH)) for d in dir_entries]
    files = [(text(f.get(_LNCT_PATH)), number(f.get(_LNCT_DIRECTORY_INDEX))) for f in file_entries]
    return version, dirs, files


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
