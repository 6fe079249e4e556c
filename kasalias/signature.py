"""A function's C signature, read from DWARF and matched with BTF types (fentry on one copy).

A BTF FUNC for one copy of a duplicated static (issue 22) needs that copy's FUNC_PROTO: with
pahole 1.24 the bare name's FUNC has some copy's proto, with 1.31+ none. Both sides are written
in one form, so that a copy's DWARF signature finds its BTF types by comparing strings:

    v            void (no DW_AT_type; BTF type 0)
    I:name       a base type (DW_TAG_base_type; BTF INT or FLOAT)
    P(t)         a pointer to t
    C(t) V(t) R(t)   const, volatile, restrict t
    T:name       a typedef (not followed: its name is the type)
    S:name U:name E:name   a struct, union, enum (by tag name; a BTF FWD is its struct or union)
    F(r;a,b)     a function type returning r taking a, b (... as ...)

An anonymous struct, union or enum, an array, an atomic or any other type has no string: a
signature that holds one is not matched (its copy gets no FUNC, and is reported), rather than
matched wrongly: a proto that does not fit the copy would give fentry programs wrong ``args``.
BTF type tags (``__user``) are left out on the BTF side: GCC's DWARF does not carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kasalias.btf import (KIND_ARRAY, KIND_CONST, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM, KIND_ENUM64, KIND_FLOAT,
                          KIND_FUNC, KIND_FUNC_PROTO, KIND_FWD, KIND_INT, KIND_PTR, KIND_RESTRICT, KIND_STRUCT,
                          KIND_TYPE_TAG, KIND_TYPEDEF, KIND_UNION, KIND_VAR, KIND_VOLATILE, Btf, BtfAppender)
from kasalias.dwarfscan import TAG_FORMAL_PARAMETER, TAG_UNSPECIFIED_PARAMETERS

if TYPE_CHECKING:
    from kasalias.dwarfscan import Entry
    from kasalias.srcloc import DwarfSource

VOID = "v"
VARARGS = "..."
# DWARF tags of types (DWARF 5 numbering)
_BASE, _POINTER, _CONST, _VOLATILE, _RESTRICT, _TYPEDEF = 0x24, 0x0F, 0x26, 0x35, 0x37, 0x16
_STRUCT, _UNION, _ENUM, _SUBROUTINE = 0x13, 0x17, 0x04, 0x15
_WRAPPERS = {_POINTER: "P", _CONST: "C", _VOLATILE: "V", _RESTRICT: "R"}
_NAMED = {_BASE: "I", _TYPEDEF: "T", _STRUCT: "S", _UNION: "U", _ENUM: "E"}
_BTF_WRAPPERS = {KIND_PTR: "P", KIND_CONST: "C", KIND_VOLATILE: "V", KIND_RESTRICT: "R"}
_BTF_NAMED = {KIND_INT: "I", KIND_FLOAT: "I", KIND_TYPEDEF: "T", KIND_STRUCT: "S", KIND_UNION: "U",
              KIND_ENUM: "E", KIND_ENUM64: "E"}
_UNNAMED_KINDS = frozenset({KIND_FUNC, KIND_VAR, KIND_DATASEC, KIND_DECL_TAG, KIND_ARRAY})  # render() gives None
_DEPTH = 32  # type chains are short; a longer one is a loop in corrupt input


@dataclass(frozen=True)
class Signature:
    """Return type and (name, type) parameters; a last parameter ('', '...') is varargs."""

    ret: str
    params: tuple[tuple[str, str], ...]

    def render(self) -> str:
        return f"F({self.ret};{','.join(t for _n, t in self.params)})"


def dwarf_signature(src: DwarfSource, entry: Entry) -> Signature | None:
    """The signature a function's DIE declares (an out-of-line instance's from its abstract
    origin), or None if a type has no string form or a parameter no name."""
    seen = 0
    while entry.origin is not None and seen < 8:  # concrete instance -> abstract DIE
        nxt = src.die(entry.origin)
        if nxt is None:
            return None
        entry, seen = nxt, seen + 1
    types: dict[int, str | None] = {}
    ret = _dwarf_type(src, entry.type_ref, types, 0)
    if ret is None:
        return None
    params: list[tuple[str, str]] = []
    for p in src.children(entry.offset, (TAG_FORMAL_PARAMETER, TAG_UNSPECIFIED_PARAMETERS)):
        if p.tag == TAG_UNSPECIFIED_PARAMETERS:
            params.append(("", VARARGS))
            break
        t = _dwarf_type(src, p.type_ref, types, 0)
        if t is None or not p.name or t == VOID:
            return None
        params.append((p.name.decode("utf-8", "surrogateescape"), t))
    return Signature(ret, tuple(params))


def _dwarf_type(src: DwarfSource, ref: int | None, memo: dict[int, str | None], depth: int) -> str | None:
    if ref is None:
        return VOID
    if ref in memo:
        return memo[ref]
    e = src.die(ref) if depth < _DEPTH else None
    out: str | None = None
    if e is not None:
        if e.tag in _WRAPPERS:
            inner = _dwarf_type(src, e.type_ref, memo, depth + 1)
            out = f"{_WRAPPERS[e.tag]}({inner})" if inner is not None else None
        elif e.tag in _NAMED and e.name:
            out = f"{_NAMED[e.tag]}:{e.name.decode('utf-8', 'surrogateescape')}"
        elif e.tag == _SUBROUTINE:
            ret = _dwarf_type(src, e.type_ref, memo, depth + 1)
            args: list[str | None] = []
            for p in src.children(e.offset, (TAG_FORMAL_PARAMETER, TAG_UNSPECIFIED_PARAMETERS)):
                args.append(VARARGS if p.tag == TAG_UNSPECIFIED_PARAMETERS
                            else _dwarf_type(src, p.type_ref, memo, depth + 1))
            if ret is not None and None not in args:
                out = f"F({ret};{','.join(a for a in args if a is not None)})"
    memo[ref] = out
    return out


class BtfTypes:
    """The string form of every type of a BTF (its base's too) and the ids of each form.
    ``base``: the same for the BTF's base, shared by the modules of a group (each split BTF
    renders and indexes its own types only)."""

    def __init__(self, btf: Btf, base: BtfTypes | None = None) -> None:
        if base is not None and base.btf is not btf.base:
            raise ValueError("BtfTypes: base is not of the BTF's base")
        self.btf, self.base = btf, base
        self._memo: dict[int, str | None] = {0: VOID}
        self._ids: dict[str, list[int]] | None = None

    def render(self, type_id: int, depth: int = 0) -> str | None:
        if self.base is not None and type_id < self.btf.start_id:
            return self.base.render(type_id, depth)
        if type_id in self._memo:
            return self._memo[type_id]
        out: str | None = None
        if depth < _DEPTH:
            t = self.btf.type_by_id(type_id)
            kind = t.kind
            if kind in _BTF_WRAPPERS:
                inner = self.render(t.size_or_type, depth + 1)
                out = f"{_BTF_WRAPPERS[kind]}({inner})" if inner is not None else None
            elif kind == KIND_TYPE_TAG:
                out = self.render(t.size_or_type, depth + 1)
            elif kind in _BTF_NAMED and t.name:
                out = f"{_BTF_NAMED[kind]}:{t.name}"
            elif kind == KIND_FWD and t.name:
                out = f"{'U' if t.kflag else 'S'}:{t.name}"
            elif kind == KIND_FUNC_PROTO:
                ret = self.render(t.size_or_type, depth + 1)
                args = [VARARGS if (ptype == 0 and i == t.vlen - 1) else self.render(ptype, depth + 1)
                        for i, (_name_off, ptype) in enumerate(t.records)]
                if ret is not None and None not in args:
                    out = f"F({ret};{','.join(a for a in args if a is not None)})"
        self._memo[type_id] = out
        return out

    def ids(self, form: str) -> list[int]:
        """The type ids whose string form is ``form``, in id order."""
        if self._ids is None:
            index: dict[str, list[int]] = {}
            if self.base is None and self.btf.base is not None:  # no BtfTypes of the base: indexed here
                self._index_types(self.btf.base, index)
            self._index_types(self.btf, index)
            self._ids = index
        own = self._ids.get(form, [])
        return self.base.ids(form) + own if self.base is not None else own

    def _index_types(self, btf: Btf, index: dict[str, list[int]]) -> None:
        """``btf``'s own types by form, but for the kinds no form names (half of vmlinux's types
        are FUNCs: they are not even read)."""
        for type_id, kind in enumerate(btf.kinds(), btf.start_id):
            if kind not in _UNNAMED_KINDS:
                r = self.render(type_id)
                if r is not None:
                    index.setdefault(r, []).append(type_id)

    def type_id(self, form: str) -> int | None:
        """The one type of this form (0 for void); None if there is none or several that are
        not the same type (two structs of one name), or if only a forward declaration is."""
        if form == VOID:
            return 0
        ids = self.ids(form)
        if len(ids) > 1:
            # A forward declaration and the full type are one type for a parameter: prefer
            # a chain that ends in the full type.
            ids = [i for i in ids if not self._ends_in_fwd(i)] or ids
        if len(ids) > 1 and len({self._expanded(i) for i in ids} - {None}) == 1 and self._expanded(ids[0]):
            ids = ids[:1]  # typedefs of one name for the same type (BTF keeps both): the same type
        return ids[0] if len(ids) == 1 else None

    def _expanded(self, type_id: int, depth: int = 0) -> str | None:
        """The string form with typedefs followed to what they name."""
        if type_id == 0:
            return VOID
        t = self.btf.type_by_id(type_id)
        if depth >= _DEPTH:
            return None
        if t.kind == KIND_TYPEDEF or t.kind == KIND_TYPE_TAG:
            return self._expanded(t.size_or_type, depth + 1)
        if t.kind in _BTF_WRAPPERS:
            inner = self._expanded(t.size_or_type, depth + 1)
            return f"{_BTF_WRAPPERS[t.kind]}({inner})" if inner is not None else None
        return self.render(type_id)

    def _ends_in_fwd(self, type_id: int) -> bool:
        for _ in range(_DEPTH):
            t = self.btf.type_by_id(type_id)
            if t.kind == KIND_FWD:
                return True
            if t.kind not in _BTF_WRAPPERS and t.kind != KIND_TYPE_TAG:
                return False
            type_id = t.size_or_type
            if type_id == 0:
                return False
        return False


class ProtoMaker:
    """FUNC_PROTOs for signatures: an existing one with the same types and parameter names
    (the lowest id), else one appended to ``app`` from the types' ids (once per signature)."""

    def __init__(self, types: BtfTypes, app: BtfAppender) -> None:
        self.types, self.app = types, app
        self._made: dict[tuple[str, tuple[str, ...]], int] = {}

    def proto(self, sig: Signature) -> int | None:
        """None if a type of ``sig`` has no one BTF type."""
        names = tuple(n for n, _t in sig.params)
        key = (sig.render(), names)
        if key in self._made:
            return self._made[key]
        for type_id in self.types.ids(key[0]):
            if tuple(p.name for p in self.types.btf.proto(type_id).params) == names:
                return type_id
        ret = self.types.type_id(sig.ret)
        if ret is None:
            return None
        params: list[tuple[str, int]] = []
        for name, form in sig.params:
            if form == VARARGS:
                params.append(("", 0))
                continue
            tid = self.types.type_id(form)
            if not tid:
                return None
            params.append((name, tid))
        made = self._made[key] = self.app.add_func_proto(ret, params)
        return made
