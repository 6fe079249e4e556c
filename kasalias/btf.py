"""BTF (the kernel's BPF Type Format): read a ``.BTF`` section, look up functions, append FUNCs.

Issue 22 (NOTES.md "fentry/fexit on one copy"): each aliased copy of a duplicated static
function gets a BTF FUNC under the alias spelled with ``.`` for ``@``
(``type_show.net_core_net_sysfs_c_116``), static linkage, pointing to a FUNC_PROTO matching that
copy. This module is the BTF half of that: a reader for base (vmlinux) and split (module) BTF,
lookups of FUNCs and protos, and a writer that appends FUNC and FUNC_PROTO records and their
names. It only uses ``struct``: the module step (one process per group of modules) imports it,
and must not pay for pyelftools.

The format is include/uapi/linux/btf.h (Linux 6.1 to 7.3; 7.2 added an optional "layout"
section between types and strings, described by a 32-byte header). The checks follow the
kernel's own parser, kernel/bpf/btf.c (``btf_parse_hdr``, ``btf_check_sec_info``,
``btf_parse_str_sec``, ``btf_check_meta``, ``btf_func_check_meta``, ``btf_func_check``,
``btf_func_proto_check``, ``btf_name_valid_identifier``), so that what is appended here is what
the kernel accepts at boot (vmlinux) or module load (a refused module BTF refuses the module).

Split BTF (a module's ``.BTF`` on vmlinux's): type ids continue after the base's last id and
string offsets below the base's string length are the base's strings (libbpf ``btf__parse_split``:
``start_str_off = base.start_str_off + base.str_len``; the kernel's ``btf_parse_module``:
``start_str_off = base_btf->hdr.str_len``, the same for a base that is not split itself).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from kasalias.errors import KasaliasError
from kasalias.series import KSYM_NAME_LEN  # include/linux/kallsyms.h

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
BTF_MAX_TYPE = 0x000FFFFF  # the largest type id
BTF_MAX_NAME_OFFSET = 0x00FFFFFF  # the largest string offset
BTF_MAX_VLEN_6 = 0xFFFF  # 6.x: vlen is 16 bits (7.2 widened it to 24): stay within both

# BTF kinds (include/uapi/linux/btf.h)
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD = 1, 2, 3, 4, 5, 6, 7
KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 8, 9, 10, 11
KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_FLOAT = 12, 13, 14, 15, 16
KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 17, 18, 19
KIND_NAMES = {KIND_INT: "INT", KIND_PTR: "PTR", KIND_ARRAY: "ARRAY", KIND_STRUCT: "STRUCT", KIND_UNION: "UNION",
              KIND_ENUM: "ENUM", KIND_FWD: "FWD", KIND_TYPEDEF: "TYPEDEF", KIND_VOLATILE: "VOLATILE",
              KIND_CONST: "CONST", KIND_RESTRICT: "RESTRICT", KIND_FUNC: "FUNC", KIND_FUNC_PROTO: "FUNC_PROTO",
              KIND_VAR: "VAR", KIND_DATASEC: "DATASEC", KIND_FLOAT: "FLOAT", KIND_DECL_TAG: "DECL_TAG",
              KIND_TYPE_TAG: "TYPE_TAG", KIND_ENUM64: "ENUM64"}
FUNC_STATIC, FUNC_GLOBAL, FUNC_EXTERN = 0, 1, 2  # enum btf_func_linkage (a FUNC's vlen)

# What follows the 12-byte struct btf_type, per kind: one record of the first format, or vlen
# records of the second (the same sizes as libbpf's kind layouts table, tools/lib/bpf/btf.c).
_RECORDS: dict[int, tuple[str, str]] = {
    KIND_INT: ("I", ""),  # encoding, offset, bits
    KIND_PTR: ("", ""),
    KIND_ARRAY: ("III", ""),  # struct btf_array: type, index_type, nelems
    KIND_STRUCT: ("", "III"),  # struct btf_member: name_off, type, offset
    KIND_UNION: ("", "III"),
    KIND_ENUM: ("", "Ii"),  # struct btf_enum: name_off, val
    KIND_FWD: ("", ""),
    KIND_TYPEDEF: ("", ""),
    KIND_VOLATILE: ("", ""),
    KIND_CONST: ("", ""),
    KIND_RESTRICT: ("", ""),
    KIND_FUNC: ("", ""),
    KIND_FUNC_PROTO: ("", "II"),  # struct btf_param: name_off, type
    KIND_VAR: ("I", ""),  # struct btf_var: linkage
    KIND_DATASEC: ("", "III"),  # struct btf_var_secinfo: type, offset, size
    KIND_FLOAT: ("", ""),
    KIND_DECL_TAG: ("i", ""),  # struct btf_decl_tag: component_idx
    KIND_TYPE_TAG: ("", ""),
    KIND_ENUM64: ("", "III"),  # struct btf_enum64: name_off, val_lo32, val_hi32
}
_MODIFIERS = frozenset({KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG})
_HAS_SIZE = frozenset({KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_DATASEC, KIND_FLOAT, KIND_ENUM64})
_HDR_LEN = 24  # struct btf_header up to 7.1: magic, version, flags, hdr_len, type_off/len, str_off/len
_HDR_LEN_LAYOUT = 32  # 7.2+: layout_off, layout_len follow


def _kind(info: int) -> int:
    # 7.2's BTF_INFO_KIND (7 bits); the same as 6.x's 5 bits on any BTF 6.x accepts (bits
    # 29-30 must be zero there: BTF_INFO_MASK)
    return (info >> 24) & 0x7F


def _vlen(info: int) -> int:
    return info & 0xFFFFFF  # 7.2's 24 bits; 6.x requires bits 16-23 zero


@dataclass(frozen=True)
class BtfType:
    """One type: its id, the three fields of struct btf_type and the raw bytes that follow.

    ``records`` decodes those bytes by kind (``_RECORDS``): tuples of ints, e.g. a FUNC_PROTO's
    (name_off, type) per parameter. ``name`` is read from the string table (base's or own)."""

    id: int
    name_off: int
    info: int
    size_or_type: int  # "size" for INT, STRUCT, ...; "type" for PTR, FUNC, FUNC_PROTO (return), ...
    extra: bytes
    name: str
    endian: str  # struct's byte order character, '<' or '>'

    @property
    def kind(self) -> int:
        return _kind(self.info)

    @property
    def vlen(self) -> int:
        return _vlen(self.info)

    @property
    def kflag(self) -> int:
        return self.info >> 31

    @property
    def records(self) -> list[tuple[int, ...]]:
        one, each = _RECORDS.get(self.kind, ("", ""))
        fmt = one or each
        if not fmt:
            return []
        s = struct.Struct(self.endian + fmt)
        return [s.unpack_from(self.extra, off) for off in range(0, len(self.extra), s.size)]

    def encode(self) -> bytes:
        """The type's bytes: struct btf_type packed from the fields, then ``records`` packed
        again (so a round trip checks the decoding, not only a copy)."""
        out = struct.pack(self.endian + "III", self.name_off, self.info, self.size_or_type)
        one, each = _RECORDS.get(self.kind, ("", ""))
        fmt = one or each
        if not fmt:
            return out + self.extra  # a kind known only from the layout section: kept as is
        s = struct.Struct(self.endian + fmt)
        return out + b"".join(s.pack(*r) for r in self.records)


@dataclass(frozen=True)
class Param:
    """One parameter of a FUNC_PROTO: its name ('' for the trailing ``...``) and type id."""

    name: str
    type_id: int


@dataclass(frozen=True)
class FuncProto:
    """A FUNC_PROTO: its id, return type id (0: void) and parameters."""

    id: int
    ret_type_id: int
    params: tuple[Param, ...]


def _fail(what: str, msg: str) -> KasaliasError:
    return KasaliasError(f"{what}: {msg}")


class Btf:
    """One parsed ``.BTF`` section (base, or split on ``base``). Read-only: appending makes
    new bytes (``BtfAppender``), parsed again if needed."""

    # header fields (struct btf_header), as read
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int
    layout_off: int
    layout_len: int

    def __init__(self, data: bytes, base: Btf | None = None, what: str = "BTF") -> None:
        """Parse ``data`` (the whole section); ``what`` names it in error messages."""
        self.what, self.base = what, base
        data = bytes(data)
        if len(data) < 8:
            raise _fail(what, f"{len(data)} bytes: too short for a BTF header")
        if data[:2] == b"\x9f\xeb":
            self.endian = "<"
        elif data[:2] == b"\xeb\x9f":
            self.endian = ">"  # libbpf reads a foreign byte order; the kernel only its own
        else:
            raise _fail(what, f"bad magic {data[:2].hex()} (not BTF)")
        e = self.endian
        magic, self.version, self.flags, self.hdr_len = struct.unpack_from(e + "HBBI", data, 0)
        if self.version != BTF_VERSION:
            raise _fail(what, f"unsupported BTF version {self.version}")
        if self.flags:
            raise _fail(what, f"unsupported BTF header flags {self.flags:#x}")  # btf_parse_hdr refuses them
        if self.hdr_len < _HDR_LEN or self.hdr_len > len(data):
            raise _fail(what, f"bad header length {self.hdr_len} in {len(data)} bytes")
        if _HDR_LEN < self.hdr_len < _HDR_LEN_LAYOUT:
            raise _fail(what, f"bad header length {self.hdr_len}")
        self.type_off, self.type_len, self.str_off, self.str_len = struct.unpack_from(e + "IIII", data, 8)
        self.layout_off = self.layout_len = 0
        if self.hdr_len >= _HDR_LEN_LAYOUT:
            self.layout_off, self.layout_len = struct.unpack_from(e + "II", data, 24)
            if any(data[_HDR_LEN_LAYOUT:self.hdr_len]):  # btf_parse_hdr: unknown fields must be zero
                raise _fail(what, "unsupported BTF header fields")
        self.header_tail = data[_HDR_LEN_LAYOUT:self.hdr_len]  # zeros; kept for a byte-exact round trip
        self._check_sections(len(data) - self.hdr_len)
        body = data[self.hdr_len:]
        self.strings = body[self.str_off:self.str_off + self.str_len]
        self.layout = body[self.layout_off:self.layout_off + self.layout_len]
        self._check_strings()
        self.start_id = base.next_id if base else 1
        self.start_str_off = base.str_end if base else 0
        self.type_bytes = body[self.type_off:self.type_off + self.type_len]
        # Each type's offset, from a walk that checks what the kernel checks of its layout and
        # name; the BtfType objects are made when first asked for: a module's split BTF needs
        # only its base's type count and strings
        self._offsets = self._walk_types(self.type_bytes)
        self._types: list[BtfType] | None = None
        self._func_index: dict[str, list[int]] | None = None
        self._str_index: dict[bytes, int] | None = None

    # -- parsing --------------------------------------------------------------------------

    def _sections(self) -> list[tuple[int, int, str]]:
        secs = [(self.type_off, self.type_len, "types"), (self.str_off, self.str_len, "strings")]
        if self.hdr_len >= _HDR_LEN_LAYOUT and self.layout_len:
            secs.append((self.layout_off, self.layout_len, "layout"))
        return sorted(secs)

    def _check_sections(self, data_len: int) -> None:
        # btf_check_sec_info: the sections tile the data after the header, no gap, no overlap
        total = 0
        for off, length, name in self._sections():
            if off != total:
                raise _fail(self.what, f"{name} section at {off}, expected {total} (gap or overlap)")
            total += length
        if total != data_len:
            raise _fail(self.what, f"sections cover {total} of {data_len} bytes")
        if self.str_off + self.str_len != data_len:  # btf_parse_str_sec (and libbpf: layout before strings)
            raise _fail(self.what, "string section is not at the end")
        if self.type_off % 4:
            raise _fail(self.what, "unaligned type section")
        if self.hdr_len >= _HDR_LEN_LAYOUT and self.layout_len and (self.layout_off % 4 or self.layout_len % 4):
            raise _fail(self.what, "unaligned layout section")  # btf_parse_layout_sec

    def _check_strings(self) -> None:
        # btf_parse_str_sec: NUL-terminated, and a base's table starts with the empty string
        if self.base is not None and not self.str_len:
            return
        if not self.str_len or self.str_len - 1 > BTF_MAX_NAME_OFFSET or self.strings[-1]:
            raise _fail(self.what, "invalid string section")
        if self.base is None and self.strings[0]:
            raise _fail(self.what, "invalid string section (does not start with an empty string; split BTF "
                                   "without its base?)")

    def _record_sizes(self, kind: int, type_id: int) -> tuple[int, int]:
        fmts = _RECORDS.get(kind)
        if fmts is not None:
            return struct.calcsize(fmts[0]), struct.calcsize(fmts[1]) if fmts[1] else 0
        # 7.2+: a kind this reader does not know may be described by the layout section
        # (struct btf_layout per kind: u8 info_sz, u8 elem_sz, u16 flags); the base's serves split BTF
        btf: Btf | None = self
        while btf is not None and not btf.layout:
            btf = btf.base
        if kind and btf is not None and kind * 4 + 4 <= len(btf.layout):
            return btf.layout[kind * 4], btf.layout[kind * 4 + 1]
        raise _fail(self.what, f"type [{type_id}]: unknown kind {kind}")

    def _walk_types(self, sec: bytes) -> list[int]:
        e, pos, n = self.endian, 0, len(sec)
        hdr = struct.Struct(e + "III")
        offsets: list[int] = []
        append = offsets.append
        str_end = self.str_end
        sizes: dict[int, tuple[int, int]] = {}
        while pos < n:
            if n - pos < 12:
                raise _fail(self.what, f"type [{self.start_id + len(offsets)}]: truncated at byte {pos} of the "
                                       "type section")
            name_off, info, _size_or_type = hdr.unpack_from(sec, pos)
            kind, vlen = (info >> 24) & 0x7F, info & 0xFFFFFF  # _kind, _vlen
            if kind not in sizes:
                sizes[kind] = self._record_sizes(kind, self.start_id + len(offsets))
            one, each = sizes[kind]
            end = pos + 12 + one + each * vlen
            if end > n:
                raise _fail(self.what, f"type [{self.start_id + len(offsets)}] ({KIND_NAMES.get(kind, kind)}, "
                                       f"vlen {vlen}): runs past the type section")
            if name_off >= str_end or name_off > BTF_MAX_NAME_OFFSET:  # btf_name_offset_valid
                raise _fail(self.what, f"type [{self.start_id + len(offsets)}]: name offset {name_off} outside "
                                       "the string section")
            append(pos)
            pos = end
        if self.start_id + len(offsets) - 1 > BTF_MAX_TYPE:
            raise _fail(self.what, f"{self.start_id + len(offsets) - 1} types: more than BTF allows")
        return offsets

    def _type_at(self, index: int) -> BtfType:
        """This BTF's own type ``index`` (the walk checked its layout and name)."""
        sec, pos = self.type_bytes, self._offsets[index]
        name_off, info, size_or_type = struct.unpack_from(self.endian + "III", sec, pos)
        end = self._offsets[index + 1] if index + 1 < len(self._offsets) else len(sec)
        return BtfType(self.start_id + index, name_off, info, size_or_type, sec[pos + 12:end],
                       self.string_at(name_off) or "", self.endian)

    def kinds(self) -> list[int]:
        """The kind of each of this BTF's own types, in id order (read without making the types)."""
        info = struct.Struct(self.endian + "I")
        sec = self.type_bytes
        return [(info.unpack_from(sec, off + 4)[0] >> 24) & 0x7F for off in self._offsets]

    @property
    def types(self) -> list[BtfType]:
        """This BTF's own types, in id order."""
        if self._types is None:
            self._types = [self._type_at(i) for i in range(len(self._offsets))]
        return self._types

    # -- reading --------------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        """The id the next type appended would get (a split BTF on this one starts there)."""
        return self.start_id + len(self._offsets)

    @property
    def last_id(self) -> int:
        return self.next_id - 1

    @property
    def str_end(self) -> int:
        """The first string offset past this BTF's strings (a split BTF's strings start there)."""
        return self.start_str_off + self.str_len

    def string_at(self, off: int) -> str | None:
        """The NUL-terminated string at ``off`` (base's below ``start_str_off``), or None if out
        of range (btf_str_by_offset)."""
        btf: Btf | None = self
        while btf is not None and off < btf.start_str_off:
            btf = btf.base
        if btf is None or off > BTF_MAX_NAME_OFFSET:
            return None
        rel = off - btf.start_str_off
        if rel >= btf.str_len:
            return None
        end = btf.strings.index(b"\0", rel)  # the table ends in NUL (checked)
        return btf.strings[rel:end].decode("latin-1")  # bytes as they are: names are ASCII in practice

    def type_by_id(self, type_id: int) -> BtfType:
        """Type ``type_id`` (here or in the base); KasaliasError for 0 (void) or out of range."""
        btf: Btf | None = self
        while btf is not None and type_id < btf.start_id:
            btf = btf.base
        if btf is None or type_id - btf.start_id >= len(btf._offsets) or type_id <= 0:
            raise _fail(self.what, f"no type [{type_id}] (types 1..{self.last_id})")
        if btf._types is not None:
            return btf._types[type_id - btf.start_id]
        return btf._type_at(type_id - btf.start_id)

    def find_funcs(self, name: str, include_base: bool = True) -> list[BtfType]:
        """The FUNCs named ``name`` (base's first, then own), in id order."""
        found = self.base.find_funcs(name) if (include_base and self.base) else []
        if self._func_index is None:
            index: dict[str, list[int]] = {}
            for t in self.types:
                if t.kind == KIND_FUNC:
                    index.setdefault(t.name, []).append(t.id)
            self._func_index = index
        return found + [self.types[i - self.start_id] for i in self._func_index.get(name, ())]

    def has_func(self, name: str) -> bool:
        """Whether a FUNC is named ``name`` here or in the base. A base BTF's types name only its
        own strings: without that string it has no such FUNC, and its types are not read."""
        if self.base is not None:
            return self.base.has_func(name) or bool(self.find_funcs(name, include_base=False))
        return self.find_string(name.encode("latin-1")) is not None and bool(self.find_funcs(name, include_base=False))

    def func_proto_id(self, name: str, include_base: bool = True) -> int:
        """The FUNC_PROTO id of the one FUNC named ``name`` (several FUNCs of that name with
        the same proto count as one); KasaliasError if none or if their protos differ."""
        protos = sorted({t.size_or_type for t in self.find_funcs(name, include_base)})
        if not protos:
            raise _fail(self.what, f"no FUNC named {name!r}")
        if len(protos) > 1:
            raise _fail(self.what, f"FUNCs named {name!r} have different protos: {protos}")
        return protos[0]

    def proto(self, type_id: int) -> FuncProto:
        """The FUNC_PROTO ``type_id``: return type and parameters."""
        t = self.type_by_id(type_id)
        if t.kind != KIND_FUNC_PROTO:
            raise _fail(self.what, f"type [{type_id}] is a {KIND_NAMES.get(t.kind, t.kind)}, not a FUNC_PROTO")
        params = []
        for name_off, ptype in t.records:
            pname = self.string_at(name_off)
            if pname is None:
                raise _fail(self.what, f"type [{type_id}]: parameter name offset {name_off} out of range")
            params.append(Param(pname, ptype))
        return FuncProto(type_id, t.size_or_type, tuple(params))

    def is_sized(self, type_id: int) -> bool:
        """Whether ``type_id`` may be a return or parameter type: one with a size once
        modifiers are followed (btf_type_id_size; void, FWD, FUNC, FUNC_PROTO have none)."""
        seen = 0
        while type_id and seen < 64:  # modifier chains are short; a loop is malformed BTF
            try:
                t = self.type_by_id(type_id)
            except KasaliasError:
                return False
            if t.kind in _HAS_SIZE or t.kind in (KIND_PTR, KIND_ARRAY):
                return True
            if t.kind not in _MODIFIERS:
                return False
            type_id, seen = t.size_or_type, seen + 1
        return False

    def to_bytes(self) -> bytes:
        """The section again: header repacked, every type re-encoded from its fields, the
        layout and strings; the input's bytes for any BTF this class parsed."""
        return _serialize(self, b"".join(t.encode() for t in self.types), self.strings)

    def _string_index(self) -> dict[bytes, int]:
        """Own strings by content -> first offset (absolute), for reuse when appending."""
        if self._str_index is None:
            index: dict[bytes, int] = {}
            pos = 0
            for s in self.strings.split(b"\0")[:-1]:
                index.setdefault(s, self.start_str_off + pos)
                pos += len(s) + 1
            self._str_index = index
        return self._str_index

    def find_string(self, s: bytes) -> int | None:
        """The offset of a whole string equal to ``s``: the base's first (as libbpf's
        btf__add_str does in split BTF), then own."""
        if self.base is not None:
            off = self.base.find_string(s)
            if off is not None:
                return off
        if self.base is not None and not self.str_len:
            return None
        return self._string_index().get(s)


def _serialize(btf: Btf, types: bytes, strings: bytes) -> bytes:
    """Header + sections in the input's order (types, [layout], strings), contiguous."""
    lengths = {"types": len(types), "layout": len(btf.layout), "strings": len(strings)}
    offsets: dict[str, int] = {}
    pos = 0
    for _off, _len, name in btf._sections():
        offsets[name] = pos
        pos += lengths[name]
    e = btf.endian
    hdr = struct.pack(e + "HBBIIIII", BTF_MAGIC, btf.version, btf.flags, btf.hdr_len, offsets["types"],
                      len(types), offsets["strings"], len(strings))
    if btf.hdr_len >= _HDR_LEN_LAYOUT:
        # an empty layout section keeps its offset (0 in what libbpf writes) as it is
        hdr += struct.pack(e + "II", offsets.get("layout", btf.layout_off), len(btf.layout)) + btf.header_tail
    body = {"types": types, "layout": btf.layout, "strings": strings}
    return hdr + b"".join(body[name] for _o, _l, name in btf._sections())


def check_name(name: str, what: str = "BTF name") -> None:
    """Refuse a name the kernel would refuse for a FUNC or parameter.

    kernel/bpf/btf.c (6.1 to 7.3), ``btf_name_valid_identifier`` and ``__btf_name_char_ok``:
    the first character passes ``isalpha``, ``_`` or ``.``, the others ``isalnum``, ``_`` or
    ``.``; the walk stops at KSYM_NAME_LEN, so the kernel takes up to 512 characters. The
    kernel's ``isalpha`` also passes Latin-1 letters (lib/ctype.c): refused here, ASCII only.
    The name is also a kallsyms name (kallsyms_lookup_name finds the address by it), and
    scripts/kallsyms takes names shorter than KSYM_NAME_LEN: 511 characters at most.
    """
    if not isinstance(name, str) or not name:
        raise KasaliasError(f"{what} {name!r}: empty")
    if len(name) > KSYM_NAME_LEN - 1:
        raise KasaliasError(f"{what} {name[:40]!r}...: {len(name)} characters, more than {KSYM_NAME_LEN - 1}")
    first, rest = name[0], name[1:]
    if not (first.isascii() and (first.isalpha() or first in "_.")):
        raise KasaliasError(f"{what} {name!r}: starts with {first!r} (BTF takes A-Z, a-z, _ or .)")
    bad = [c for c in rest if not (c.isascii() and (c.isalnum() or c in "_."))]
    if bad:
        raise KasaliasError(f"{what} {name!r}: {bad[0]!r} is not valid in BTF (A-Z, a-z, 0-9, _ or .; "
                            f"spell '@' as '.')")


class BtfAppender:
    """New FUNC and FUNC_PROTO records on top of a parsed ``Btf``, serialized by ``to_bytes``.

    Records go at the end of the type section (ids after the last; existing ids, and so
    .BTF_ids and the base's ids for a module, stay valid), names at the end of the string
    section unless the same whole string is already there (the base's first, then own; as
    libbpf does). Same calls in the same order give the same bytes."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._types: list[bytes] = []
        self._new_strings: dict[bytes, int] = {}
        self._str_len = btf.str_len
        self._names: set[str] = set()  # FUNC names added here
        self._protos: dict[int, FuncProto] = {}  # protos added here, by id

    @property
    def next_id(self) -> int:
        return self.btf.next_id + len(self._types)

    def _add_string(self, name: str) -> int:
        s = name.encode("ascii")  # checked names are ASCII
        off = self.btf.find_string(s)
        if off is not None:
            return off
        if s in self._new_strings:
            return self._new_strings[s]
        off = self.btf.start_str_off + self._str_len
        if off + len(s) > BTF_MAX_NAME_OFFSET:
            raise _fail(self.btf.what, f"string table full (offset {off}) adding {name!r}")
        self._new_strings[s] = off
        self._str_len += len(s) + 1
        return off

    def _add_type(self, name_off: int, kind: int, vlen: int, size_or_type: int, extra: bytes) -> int:
        type_id = self.next_id
        if type_id > BTF_MAX_TYPE:
            raise _fail(self.btf.what, f"type id {type_id} is past BTF's limit {BTF_MAX_TYPE}")
        e = self.btf.endian
        self._types.append(struct.pack(e + "III", name_off, (kind << 24) | vlen, size_or_type) + extra)
        return type_id

    def _proto(self, type_id: int) -> FuncProto:
        return self._protos[type_id] if type_id in self._protos else self.btf.proto(type_id)

    def _sized(self, type_id: int) -> bool:
        return type_id not in self._protos and type_id < self.btf.next_id and self.btf.is_sized(type_id)

    def add_func_proto(self, ret_type_id: int, params: Sequence[tuple[str, int]]) -> int:
        """Append a FUNC_PROTO returning ``ret_type_id`` (0: void) with ``params`` (name,
        type id); a last ('', 0) is ``...``. Returns its id. Types must exist and have a size
        (btf_func_proto_check); names must be valid, as a FUNC on it requires (btf_func_check)."""
        what = self.btf.what
        if len(params) > BTF_MAX_VLEN_6:
            raise _fail(what, f"{len(params)} parameters: more than BTF takes")
        if ret_type_id and not self._sized(ret_type_id):
            raise _fail(what, f"return type [{ret_type_id}] does not exist or has no size")
        recs = []
        for i, (pname, ptype) in enumerate(params):
            if ptype == 0 and pname == "" and i == len(params) - 1:
                recs.append((0, 0))  # ... (vararg)
                continue
            check_name(pname, "BTF parameter name")
            if not self._sized(ptype):
                raise _fail(what, f"parameter {pname!r}: type [{ptype}] does not exist or has no size")
            recs.append((self._add_string(pname), ptype))
        s = struct.Struct(self.btf.endian + "II")
        type_id = self._add_type(0, KIND_FUNC_PROTO, len(recs), ret_type_id, b"".join(s.pack(*r) for r in recs))
        self._protos[type_id] = FuncProto(type_id, ret_type_id, tuple(Param(n, t) for n, t in params))
        return type_id

    def add_func(self, name: str, proto_id: int, linkage: int = FUNC_STATIC) -> int:
        """Append a FUNC ``name`` on FUNC_PROTO ``proto_id``; returns its id. Refuses a name
        already a FUNC here or in the base (appending twice to the same bytes)."""
        what = self.btf.what
        check_name(name, "BTF FUNC name")
        if linkage not in (FUNC_STATIC, FUNC_GLOBAL):  # btf_func_check_meta: vlen <= BTF_FUNC_GLOBAL
            raise _fail(what, f"FUNC {name!r}: linkage {linkage} not accepted by the kernel")
        if name in self._names or self.btf.has_func(name):
            raise _fail(what, f"FUNC {name!r} is already there")
        try:
            proto = self._proto(proto_id)
        except KasaliasError as exc:
            raise _fail(what, f"FUNC {name!r}: proto [{proto_id}]: {exc}") from None
        for i, p in enumerate(proto.params):  # btf_func_check: every argument but ... has a name
            if not p.name and p.type_id:
                raise _fail(what, f"FUNC {name!r}: proto [{proto_id}] argument {i + 1} has no name")
        self._names.add(name)
        return self._add_type(self._add_string(name), KIND_FUNC, linkage, proto_id, b"")

    def to_bytes(self) -> bytes:
        """The section with the new types and strings; the input's bytes if nothing was added."""
        btf = self.btf
        tail = b"".join(s + b"\0" for s in self._new_strings)  # dict order: insertion order
        # the input's type bytes as they are (Btf.to_bytes re-encodes them: the same bytes)
        types = btf.type_bytes + b"".join(self._types)
        return _serialize(btf, types, btf.strings + tail)


def append_funcs(section: bytes, funcs: Sequence[tuple[str, int]], base: bytes | Btf | None = None,
                 what: str = "BTF") -> bytes:
    """``section`` with a static FUNC per (name, proto type id) of ``funcs`` appended, in
    order; ``base`` is vmlinux's ``.BTF`` when ``section`` is a module's (split) one."""
    base_btf = Btf(base, what="base BTF") if isinstance(base, (bytes, bytearray, memoryview)) else base
    app = BtfAppender(Btf(section, base_btf, what))
    for name, proto_id in funcs:
        app.add_func(name, proto_id)
    return app.to_bytes()


def alias_btf_name(alias: str) -> str:
    """The BTF spelling of a kasalias alias: each '@' as '.' (``type_show@net_core_net_sysfs_c_116``
    -> ``type_show.net_core_net_sysfs_c_116``); checked like any FUNC name."""
    name = alias.replace("@", ".")
    check_name(name, "BTF FUNC name")
    return name
