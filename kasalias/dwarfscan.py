"""A selective DIE scanner: finds named functions and variables in a compilation unit.

pyelftools decodes every attribute of every DIE through construct, at tens of
microseconds a DIE; a kernel CU holds tens of thousands of DIEs, almost all of
them types, members and parameters that kasalias never needs. This scanner
takes pyelftools' abbreviation tables and CU headers, and walks the DIE tree
itself: it jumps over whole subtrees with ``DW_AT_sibling`` (or a precomputed
fixed size), and decodes attributes only for ``DW_TAG_subprogram`` and
``DW_TAG_variable`` entries. See NOTES.md ("Why a hand-written DIE walk").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from elftools.dwarf.compileunit import CompileUnit

from kasalias.errors import KasaliasError

# What the walk does with a tag.
_SKIP, _SUBPROGRAM, _VARIABLE, _SCOPE = 0, 1, 2, 3
_TAG_KIND = {
    "DW_TAG_subprogram": _SUBPROGRAM,
    "DW_TAG_variable": _VARIABLE,
    "DW_TAG_lexical_block": _SCOPE,
}

# Attributes decoded on interesting DIEs.
_A_OTHER, _A_NAME, _A_FILE, _A_LINE, _A_LOWPC, _A_LOC, _A_ORIGIN, _A_SPEC, _A_DECL, _A_SIBLING = range(10)
_ATTR_KIND = {
    "DW_AT_name": _A_NAME,
    "DW_AT_decl_file": _A_FILE,
    "DW_AT_decl_line": _A_LINE,
    "DW_AT_low_pc": _A_LOWPC,
    "DW_AT_location": _A_LOC,
    "DW_AT_abstract_origin": _A_ORIGIN,
    "DW_AT_specification": _A_SPEC,
    "DW_AT_declaration": _A_DECL,
    "DW_AT_sibling": _A_SIBLING,
}

# Form classes: a fixed size, or one of these variable encodings.
_F_LEB, _F_CSTR, _F_BLOCK1, _F_BLOCK2, _F_BLOCK4, _F_BLOCK, _F_INDIRECT = -1, -2, -3, -4, -5, -6, -7
_FIXED_FORMS = {
    "DW_FORM_flag_present": 0, "DW_FORM_implicit_const": 0,
    "DW_FORM_data1": 1, "DW_FORM_ref1": 1, "DW_FORM_flag": 1, "DW_FORM_strx1": 1, "DW_FORM_addrx1": 1,
    "DW_FORM_data2": 2, "DW_FORM_ref2": 2, "DW_FORM_strx2": 2, "DW_FORM_addrx2": 2,
    "DW_FORM_strx3": 3, "DW_FORM_addrx3": 3,
    "DW_FORM_data4": 4, "DW_FORM_ref4": 4, "DW_FORM_strx4": 4, "DW_FORM_addrx4": 4, "DW_FORM_ref_sup4": 4,
    "DW_FORM_data8": 8, "DW_FORM_ref8": 8, "DW_FORM_ref_sig8": 8, "DW_FORM_ref_sup8": 8,
    "DW_FORM_data16": 16,
}
_OFFSET_FORMS = {"DW_FORM_strp", "DW_FORM_line_strp", "DW_FORM_sec_offset", "DW_FORM_GNU_ref_alt",
                 "DW_FORM_GNU_strp_alt", "DW_FORM_strp_sup"}
_VAR_FORMS = {
    "DW_FORM_sdata": _F_LEB, "DW_FORM_udata": _F_LEB, "DW_FORM_ref_udata": _F_LEB, "DW_FORM_strx": _F_LEB,
    "DW_FORM_addrx": _F_LEB, "DW_FORM_loclistx": _F_LEB, "DW_FORM_rnglistx": _F_LEB,
    "DW_FORM_GNU_addr_index": _F_LEB, "DW_FORM_GNU_str_index": _F_LEB,
    "DW_FORM_string": _F_CSTR, "DW_FORM_block1": _F_BLOCK1, "DW_FORM_block2": _F_BLOCK2,
    "DW_FORM_block4": _F_BLOCK4, "DW_FORM_block": _F_BLOCK, "DW_FORM_exprloc": _F_BLOCK,
    "DW_FORM_indirect": _F_INDIRECT,
}
_DW_OP_ADDR, _DW_OP_ADDRX, _DW_OP_GNU_ADDR_INDEX = 0x03, 0xA1, 0xFB


@dataclass
class Entry:
    """A subprogram or variable DIE, with the attributes kasalias uses."""

    offset: int
    tag: int  # _SUBPROGRAM or _VARIABLE
    name: bytes | None
    decl_file: int | None
    decl_line: int | None
    low_pc: int | None
    location: int | None  # DW_OP_addr of a static variable
    origin: int | None  # DW_AT_abstract_origin or DW_AT_specification target (.debug_info offset)
    declaration: bool
    file_scope: bool

    @property
    def is_subprogram(self) -> bool:
        return self.tag == _SUBPROGRAM


@dataclass(frozen=True)
class _Abbrev:
    kind: int
    has_children: bool
    attrs: tuple[tuple[int, str, int, int], ...]  # (attr kind, form, size class, implicit const)
    fixed_size: int | None  # total size when every form is fixed
    sibling_at: tuple[int, int] | None  # (offset in DIE, size) of a fixed-position DW_AT_sibling


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos


class CUScanner:
    """Walks one CU's DIEs, collecting subprograms and variables with wanted names."""

    def __init__(self, cu: CompileUnit, info: bytes, strings: Callable[[int, str], bytes],
                 addr_at: Callable[[int], int]) -> None:
        self.cu = cu
        self.info = info
        self.version = cu["version"]
        self.offset_size = 8 if cu.dwarf_format() == 64 else 4
        self.addr_size = cu["address_size"]
        self.start = cu.cu_die_offset
        self.end = cu.cu_offset + cu.size
        self._strings = strings  # (offset or index, form) -> bytes
        self._addr_at = addr_at  # addrx index -> address
        self._abbrevs = self._compile(cu)

    def _size_class(self, form: str) -> int:
        if form in _FIXED_FORMS:
            return _FIXED_FORMS[form]
        if form in _OFFSET_FORMS:
            return self.offset_size
        if form == "DW_FORM_addr":
            return self.addr_size
        if form == "DW_FORM_ref_addr":
            return self.offset_size if self.version >= 3 else self.addr_size
        if form in _VAR_FORMS:
            return _VAR_FORMS[form]
        raise KasaliasError(f"unsupported DWARF form {form}")

    def _compile(self, cu: CompileUnit) -> dict[int, _Abbrev]:
        table = cu.get_abbrev_table()
        out: dict[int, _Abbrev] = {}
        for code, decl in table._abbrev_map.items():  # pyelftools keeps no public iterator
            attrs = []
            fixed: int | None = 0
            sibling_at = None
            for spec in decl["attr_spec"]:
                size = self._size_class(spec.form)
                kind = _ATTR_KIND.get(spec.name, _A_OTHER)
                if kind == _A_SIBLING and fixed is not None and size > 0:
                    sibling_at = (fixed, size)
                attrs.append((kind, spec.form, size, spec.get("value", 0) or 0))
                fixed = fixed + size if fixed is not None and size >= 0 else None
            out[code] = _Abbrev(_TAG_KIND.get(decl["tag"], _SKIP), decl.has_children(), tuple(attrs),
                                fixed, sibling_at)
        return out

    def _uint(self, pos: int, size: int) -> int:
        return int.from_bytes(self.info[pos:pos + size], "little")

    def _skip_attrs(self, ab: _Abbrev, pos: int) -> int:
        if ab.fixed_size is not None:
            return pos + ab.fixed_size
        info = self.info
        for _kind, form, size, _c in ab.attrs:
            pos = self._skip_form(form, size, pos, info)
        return pos

    def _skip_form(self, form: str, size: int, pos: int, info: bytes) -> int:
        if size >= 0:
            return pos + size
        if size == _F_LEB:
            while info[pos] & 0x80:
                pos += 1
            return pos + 1
        if size == _F_CSTR:
            return info.index(b"\0", pos) + 1
        if size == _F_BLOCK1:
            return pos + 1 + info[pos]
        if size == _F_BLOCK2:
            return pos + 2 + self._uint(pos, 2)
        if size == _F_BLOCK4:
            return pos + 4 + self._uint(pos, 4)
        if size == _F_BLOCK:
            n, pos = _leb(info, pos)
            return pos + n
        real, pos = _leb(info, pos)  # DW_FORM_indirect
        from elftools.dwarf.enums import ENUM_DW_FORM

        name = next(k for k, v in ENUM_DW_FORM.items() if v == real)
        return self._skip_form(name, self._size_class(name), pos, info)

    def _decode(self, ab: _Abbrev, offset: int, pos: int, file_scope: bool) -> tuple[Entry, int]:
        info = self.info
        e = Entry(offset, ab.kind, None, None, None, None, None, None, False, file_scope)
        cu_offset = self.cu.cu_offset
        for kind, form, size, const in ab.attrs:
            if kind == _A_OTHER or kind == _A_SIBLING:
                pos = self._skip_form(form, size, pos, info)
                continue
            start = pos
            pos = self._skip_form(form, size, pos, info)
            if kind == _A_NAME:
                if form == "DW_FORM_string":
                    e.name = bytes(info[start:pos - 1])
                elif form in ("DW_FORM_strx", "DW_FORM_GNU_str_index"):
                    e.name = self._strings(_leb(info, start)[0], form)
                else:
                    e.name = self._strings(self._uint(start, size), form)
            elif kind in (_A_FILE, _A_LINE):
                if form == "DW_FORM_implicit_const":
                    v = const
                elif size == _F_LEB:
                    v = _leb(info, start)[0]
                else:
                    v = self._uint(start, size)
                if kind == _A_FILE:
                    e.decl_file = v
                else:
                    e.decl_line = v
            elif kind == _A_LOWPC:
                if form == "DW_FORM_addr":
                    e.low_pc = self._uint(start, size)
                elif form.startswith("DW_FORM_addrx") or form == "DW_FORM_GNU_addr_index":
                    idx = _leb(info, start)[0] if size == _F_LEB else self._uint(start, size)
                    e.low_pc = self._addr_at(idx)
            elif kind == _A_LOC:
                e.location = self._static_address(form, start, pos)
            elif kind in (_A_ORIGIN, _A_SPEC):
                if form == "DW_FORM_ref_addr":
                    e.origin = self._uint(start, size)
                elif form == "DW_FORM_ref_udata":
                    e.origin = cu_offset + _leb(info, start)[0]
                elif form.startswith("DW_FORM_ref") and form not in ("DW_FORM_ref_sig8",):
                    e.origin = cu_offset + self._uint(start, size)
            elif kind == _A_DECL:
                e.declaration = form == "DW_FORM_flag_present" or bool(info[start])
        return e, pos

    def _static_address(self, form: str, start: int, end: int) -> int | None:
        """The address of ``DW_OP_addr A`` (alone) in an exprloc/block location."""
        info = self.info
        if form == "DW_FORM_exprloc" or form == "DW_FORM_block":
            n, p = _leb(info, start)
        elif form == "DW_FORM_block1":
            n, p = info[start], start + 1
        else:
            return None
        if n == 1 + self.addr_size and info[p] == _DW_OP_ADDR:
            return self._uint(p + 1, self.addr_size)
        if n >= 2 and info[p] in (_DW_OP_ADDRX, _DW_OP_GNU_ADDR_INDEX):
            idx, q = _leb(info, p + 1)
            if q == p + n:
                return self._addr_at(idx)
        return None

    def scan(self, names: set[bytes], local_statics: bool) -> list[Entry]:
        """Subprogram and variable entries named in ``names`` (and every unnamed one with an origin).

        ``local_statics`` also descends into function bodies, for GCC's
        numbered function-local statics (``count.0``).
        """
        info, abbrevs, cu_offset = self.info, self.abbrevs_or_none(), self.cu.cu_offset
        found: list[Entry] = []
        pos, end = self.start, self.end
        # Per nesting level: are DIEs at this level interesting (1), scopes to enter (2), or skipped (0)?
        levels: list[int] = []
        code, pos = _leb(info, pos)
        if code == 0:
            return found
        top = abbrevs[code]
        pos = self._skip_attrs(top, pos)
        if not top.has_children:
            return found
        levels.append(1)
        while pos < end and levels:
            die_offset = pos
            code = info[pos]
            pos += 1
            if code >= 0x80:
                code, pos = _leb(info, die_offset)
            if code == 0:
                levels.pop()
                continue
            ab = abbrevs.get(code)
            if ab is None:
                raise KasaliasError(f"bad DWARF: abbreviation {code} at .debug_info+{die_offset:#x}")
            level = levels[-1]
            if level and ab.kind in (_SUBPROGRAM, _VARIABLE):
                e, pos = self._decode(ab, die_offset, pos, len(levels) == 1)
                if e.name in names or (e.name is None and e.origin is not None):
                    found.append(e)
                if ab.has_children:
                    levels.append(1 if local_statics and ab.kind == _SUBPROGRAM else 0)
                continue
            if ab.has_children:
                if level and local_statics and ab.kind == _SCOPE and len(levels) > 1:
                    pos = self._skip_attrs(ab, pos)
                    levels.append(1)
                    continue
                if ab.sibling_at is not None:
                    off, size = ab.sibling_at
                    pos = cu_offset + self._uint(pos + off, size)
                    continue
                pos = self._skip_attrs(ab, pos)
                levels.append(0)
                continue
            pos = self._skip_attrs(ab, pos)
        return found

    def abbrevs_or_none(self) -> dict[int, _Abbrev]:
        return self._abbrevs

    def entry_at(self, offset: int) -> Entry | None:
        """Decode the single DIE at ``offset`` (for abstract origins and specifications)."""
        if not self.start <= offset < self.end:
            return None
        code, pos = _leb(self.info, offset)
        ab = self._abbrevs.get(code)
        if ab is None or ab.kind not in (_SUBPROGRAM, _VARIABLE):
            return None
        return self._decode(ab, offset, pos, False)[0]


def read_cstring(data: bytes, offset: int) -> bytes:
    """The NUL-terminated string at ``offset``."""
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else len(data)]
