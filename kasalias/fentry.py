"""BTF FUNCs for aliased copies of functions: what fentry/fexit attach to (issue 22).

The kernel attaches a BPF trampoline by a BTF FUNC's name: the FUNC gives the arguments (its
FUNC_PROTO), and the address is the kallsyms (vmlinux) or module symbol of the same name, by
exact name (NOTES.md "fentry/fexit on one copy"). A duplicated static has at most one FUNC of its
bare name (pahole 1.24: some copy's proto; 1.31+: none), so each aliased copy gets its own: the
alias spelled with '.' for '@' (a BTF name takes no '@'), static linkage, and the FUNC_PROTO of
that copy's DWARF signature (signature.py), existing or appended. In a module, a copy that is
its name's only function there takes the proto of the FUNC pahole wrote for that name, if any:
pahole read the same DWARF, and no DWARF need be read.

A copy is left out, with a reason, when its types do not map to exactly one BTF type each,
when it is a compiler clone (``foo.isra.0``, ``foo.constprop.0``): a clone's arguments are not
its declaration's, and when ftrace cannot patch it (the image's mcount table has no entry in it):
fentry attaches only where ftrace can.

The module step imports this module for every group of modules: the DWARF reader (srcloc,
signature) is imported only when a copy needs it.
"""

from __future__ import annotations

import bisect
import contextlib
import re
import struct
from collections import Counter
from typing import TYPE_CHECKING, Callable

from kasalias.aliastable import VMLINUX
from kasalias.btf import KIND_FUNC, Btf, BtfAppender, alias_btf_name
from kasalias.elfwrite import with_section
from kasalias.errors import KasaliasError
from kasalias.fsutil import open_input, read_input, write_atomic
from kasalias.loader_rules import FTRACE_CALLSITES
from kasalias.symbols import ELF64_SYM, MACHINES, SHT_RELA, ElfImage, base_name

if TYPE_CHECKING:
    from kasalias.aliastable import AliasTable
    from kasalias.fsutil import StrPath
    from kasalias.signature import BtfTypes
    from kasalias.srcloc import DwarfSource, PathMapper
    from kasalias.symbols import Section, Symbol

_ELF_MAGIC = b"\x7fELF"
# A static that LTO made global keeps its arguments under a new name: Clang ThinLTO's
# ``foo.llvm.<hash>``, GCC LTO's ``foo.lto_priv.<n>``
_PROMOTED = re.compile(r"\.(?:llvm|lto_priv)\.\d+$")


def is_clone(name: str) -> bool:
    """Whether a function symbol is a compiler clone (``foo.isra.0``, ``foo.constprop.0``,
    ``foo.part.0``, ``foo.cold``), whose arguments need not be its declaration's; a static
    promoted by LTO is the function itself."""
    name = _PROMOTED.sub("", name)
    return base_name(name) != name


def copy_funcs(picks: list[tuple[Symbol, str]], app: BtfAppender, where: str,
               dwarf: Callable[[], DwarfSource], types: Callable[[], BtfTypes],
               reuse: Callable[[Symbol], int | None] | None = None) -> tuple[list[tuple[Symbol, str]], list[str]]:
    """Append to ``app`` a FUNC for each function copy (symbol, alias) of ``picks`` that can
    have one, in alias order. Returns the (symbol, FUNC name) of those added and the reasons
    for those left out, one line each, starting with ``where``. A copy's FUNC_PROTO is
    ``reuse(symbol)`` where that gives one, else made from its DWARF signature: ``dwarf()``
    and ``types()`` (the BTF's types by form) are called only if some copy needs them."""
    texts = sorted(((s, a) for s, a in picks if s.is_text), key=lambda p: p[1])
    problems: list[str] = []
    protos: dict[int, int] = {}  # symbol index -> FUNC_PROTO id
    need_dwarf: list[tuple[Symbol, str]] = []
    for sym, alias in texts:
        if is_clone(sym.name):
            problems.append(f"{where}: {alias}: a compiler clone; its arguments are not its declaration's: "
                            "no BTF FUNC")
            continue
        proto_id = reuse(sym) if reuse is not None else None
        if proto_id is None:
            need_dwarf.append((sym, alias))
        else:
            protos[sym.index] = proto_id
    if need_dwarf:
        protos.update(_dwarf_protos(need_dwarf, app, where, dwarf, types, problems))
    added: list[tuple[Symbol, str]] = []
    for sym, alias in texts:
        if sym.index not in protos:
            continue
        name = alias_btf_name(alias)
        try:
            app.add_func(name, protos[sym.index])
        except KasaliasError as e:
            problems.append(f"{where}: {alias}: {e}: no BTF FUNC")
            continue
        added.append((sym, name))
    return added, problems


def _dwarf_protos(picks: list[tuple[Symbol, str]], app: BtfAppender, where: str, dwarf: Callable[[], DwarfSource],
                  types: Callable[[], BtfTypes], problems: list[str]) -> dict[int, int]:
    """The FUNC_PROTO of each copy of ``picks`` from its DWARF signature, by symbol index
    (existing, or appended to ``app``); a reason in ``problems`` for each copy without one."""
    from kasalias.signature import ProtoMaker, dwarf_signature

    try:
        source = dwarf()
    except KasaliasError as e:
        problems.extend(f"{where}: {alias}: {e}: no BTF FUNC" for _s, alias in picks)
        return {}
    maker = ProtoMaker(types(), app)
    entries = source.functions([s for s, _a in picks])
    out: dict[int, int] = {}
    for sym, alias in picks:
        entry = entries.get(sym.index)
        sig = dwarf_signature(source, entry) if entry is not None else None
        if sig is None:
            problems.append(f"{where}: {alias}: no DWARF signature with types BTF can name: no BTF FUNC")
            continue
        proto = maker.proto(sig)
        if proto is None:
            problems.append(f"{where}: {alias}: a type of {sig.render()} is not one BTF type: no BTF FUNC")
            continue
        out[sym.index] = proto
    return out


# ---------------------------------------------------------------------------
# vmlinux's BTF at its link (the `btf` verb; NOTES.md "fentry/fexit on one copy")


def _is_object(path: StrPath) -> bool:
    with open_input(path) as f:
        return f.read(4) == _ELF_MAGIC


def _btf_section(img: ElfImage) -> Section:
    sec = img.section_by_name(".BTF")
    if sec is None:
        raise KasaliasError(f"{img.path}: no .BTF section")
    return sec


def read_btf_file(path: StrPath) -> bytes:
    """The BTF in ``path``: a raw BTF file (pahole's detached output, Linux 7.x's gen-btf.sh)
    or an object file's ``.BTF`` section (6.x's ``.btf.o``)."""
    if not _is_object(path):
        return read_input(path)
    with ElfImage(path) as img:
        return bytes(img.section_view(_btf_section(img)))


def ftrace_locations(img: ElfImage) -> list[int] | None:
    """The sorted addresses ftrace can patch in a linked image, from its mcount table (between
    ``__start_mcount_loc`` and ``__stop_mcount_loc``, where vmlinux.lds puts it, else a
    ``__mcount_loc`` section): fentry attaches only there, and pahole writes FUNCs only for
    functions that hold one. None when there is no usable table: no ftrace, a relocatable
    object (its table is still relocations), or one whose entries the link left to dynamic
    relocations (arm64's ``--no-apply-dynamic-relocs``: zeros)."""
    if img.is_relocatable:
        return None
    bounds = {s.name: s for s in img.symbols if s.name in ("__start_mcount_loc", "__stop_mcount_loc")}
    if len(bounds) == 2 and bounds["__start_mcount_loc"].shndx < len(img.sections):
        start, stop = bounds["__start_mcount_loc"], bounds["__stop_mcount_loc"]
        sec = img.sections[start.shndx]
        data = bytes(img.section_view(sec)[start.value - sec.addr:stop.value - sec.addr])
    else:
        sec = img.section_by_name("__mcount_loc")
        if sec is None:
            return None
        data = bytes(img.section_view(sec))
    entries = [v for (v,) in struct.iter_unpack("<Q", data[:len(data) // 8 * 8])]
    if not entries or sum(1 for v in entries if v) * 2 < len(entries):
        return None
    return sorted(entries)


def _has_location(locations: list[int], start: int, size: int) -> bool:
    i = bisect.bisect_left(locations, start)
    return i < len(locations) and locations[i] < start + max(size, 1)


def _traceable(picks: list[tuple[Symbol, str]], where: str, located: Callable[[Symbol], bool] | None,
               ) -> tuple[list[tuple[Symbol, str]], list[str]]:
    """``picks`` without the function copies ftrace cannot patch (``located`` false; None: the
    image says nothing of ftrace, keep all), and a reason for each left out."""
    keep, untraced = [], []
    for sym, alias in picks:
        if located is not None and sym.is_text and not located(sym):
            untraced.append(f"{where}: {alias}: no ftrace location (notrace, or not instrumented): "
                            "fentry cannot attach: no BTF FUNC")
        else:
            keep.append((sym, alias))
    return keep, untraced


def vmlinux_copy_funcs(src: StrPath, dst: StrPath, dwarf_path: StrPath, table: AliasTable,
                       paths: PathMapper) -> tuple[int, list[str]]:
    """Write ``dst``: vmlinux's BTF ``src`` (raw, or an object file's ``.BTF``; written in the
    same form) with a FUNC for each aliased function copy of ``table`` that can have one, its
    signature read from ``dwarf_path`` (the image pahole read, or vmlinux.o). Returns how many
    FUNCs were added and the reasons for the copies left out."""
    with contextlib.ExitStack() as stack:
        obj, sec = None, None  # the object file holding the BTF, and its .BTF
        if _is_object(src):
            obj = stack.enter_context(ElfImage(src))
            sec = _btf_section(obj)
        btf = Btf(read_input(src) if obj is None or sec is None else bytes(obj.section_view(sec)),
                  what=f"{src}: .BTF")
        from kasalias.signature import BtfTypes
        from kasalias.srcloc import DwarfSource

        img = stack.enter_context(ElfImage(dwarf_path))
        dwarf = stack.enter_context(DwarfSource(img, paths))
        pairs = table.by_key(VMLINUX, img.symbols, img.file_groups(), img.hidden_symbols())
        locations = ftrace_locations(img)
        picks, untraced = _traceable([(sym, row.alias) for row, sym in pairs if sym is not None], img.path, None
                                     if locations is None else
                                     lambda sym: _has_location(locations, img.address(sym), sym.size))
        app = BtfAppender(btf)
        added, problems = copy_funcs(picks, app, img.path, lambda: dwarf, lambda: BtfTypes(btf))
        out = app.to_bytes()
        write_atomic(dst, out if obj is None or sec is None else b"".join(with_section(obj, sec.index, out)))
    return len(added), sorted(problems + untraced)


def copy_func_names(path: StrPath) -> frozenset[str]:
    """The FUNC names of the BTF in ``path`` (raw or an object file's ``.BTF``)."""
    return frozenset(t.name for t in Btf(read_btf_file(path), what=f"{path}: .BTF").types
                     if t.kind == KIND_FUNC and t.name)


# ---------------------------------------------------------------------------
# A module's split BTF (the module step, modwriter; NOTES.md "fentry/fexit on one copy")


class BaseBtf:
    """The BTF a module's split BTF is made on, and its types by form, each read when first
    needed: vmlinux's (``path``: read once for a group of modules), or a module's own
    distilled ``.BTF.base`` (``btf``)."""

    def __init__(self, path: StrPath | None = None, btf: Btf | None = None) -> None:
        self.path = path
        self._btf = btf
        self._types: BtfTypes | None = None

    @property
    def btf(self) -> Btf:
        if self._btf is None:
            self._btf = Btf(read_btf_file(self.path or ""), what=f"{self.path}: .BTF")
        return self._btf

    def types(self) -> BtfTypes:
        from kasalias.signature import BtfTypes

        if self._types is None:
            self._types = BtfTypes(self.btf)
        return self._types


def module_ftrace_locations(img: ElfImage) -> tuple[dict[int, list[int]], int] | None:
    """Where ftrace can patch a module: sorted offsets by section index, read from the
    relocations of its callsite table (each entry is relocated to its place at load), and how
    far before a function's symbol its entry may be. None when it has no table (a kernel
    without ftrace: nothing to check)."""
    found = next(((s, before) for name, before in FTRACE_CALLSITES[MACHINES[img.machine]]
                  for s in img.sections if s.name == name), None)
    if found is None:
        return None
    table, before = found
    out: dict[int, list[int]] = {}
    symtab = img.section_view(img.symtab)
    for rela in img.sections:
        if rela.type != SHT_RELA or rela.info != table.index:
            continue
        for _offset, info, addend in struct.iter_unpack("<QQq", img.section_view(rela)):
            if (info >> 32) * 24 + 24 > len(symtab):
                raise KasaliasError(f"{img.path}: {rela.name}: a relocation names no symbol")
            _name, _info, _other, shndx, value, _size = ELF64_SYM.unpack_from(symtab, (info >> 32) * 24)
            out.setdefault(shndx, []).append(value + addend)
    for offsets in out.values():
        offsets.sort()
    return out, before


def module_copy_funcs(img: ElfImage, picks: list[tuple[Symbol, str]], vmlinux: BaseBtf,
                      paths: PathMapper | None = None) -> tuple[bytes, list[tuple[Symbol, str]], list[str]] | None:
    """The module's ``.BTF`` with a FUNC for each function copy of ``picks`` that can have one;
    the (symbol, FUNC name) of those added; the reasons for those left out. Its base is the
    module's own ``.BTF.base`` (a distilled base: a module built out of tree, 6.12+), else
    ``vmlinux``'s BTF. None when the module has no ``.BTF`` or no function copy."""
    sec = img.section_by_name(".BTF")
    texts = [(s, a) for s, a in picks if s.is_text]
    if sec is None or not texts:
        return None
    distilled = img.section_by_name(".BTF.base")
    base = vmlinux if distilled is None else BaseBtf(btf=Btf(img.section_data(distilled),
                                                             what=f"{img.path}: .BTF.base"))
    btf = Btf(img.section_data(sec), base.btf, what=f"{img.path}: .BTF")
    found = module_ftrace_locations(img)
    keep, untraced = _traceable(texts, img.path, None if found is None else lambda sym: _has_location(
        found[0].get(sym.shndx, []), sym.value - found[1], sym.size + found[1]))
    counts = Counter(s.name for s in img.symbols if s.is_text)

    def reuse(sym: Symbol) -> int | None:
        # the name's one function here: pahole's FUNC of the name describes this copy
        protos = {t.size_or_type for t in btf.find_funcs(sym.name, include_base=False)}
        return protos.pop() if counts[sym.name] == 1 and len(protos) == 1 else None

    def types() -> BtfTypes:
        from kasalias.signature import BtfTypes

        return BtfTypes(btf, base.types())

    with contextlib.ExitStack() as stack:
        def dwarf() -> DwarfSource:
            from kasalias.srcloc import DwarfSource, PathMapper

            return stack.enter_context(DwarfSource(img, paths or PathMapper()))

        app = BtfAppender(btf)
        added, problems = copy_funcs(keep, app, img.path, dwarf, types, reuse)
        return app.to_bytes(), added, sorted(problems + untraced)
