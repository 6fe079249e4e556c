"""BTF FUNCs for aliased copies of functions: what fentry/fexit attach to (issue 22).

The kernel attaches a BPF trampoline by a BTF FUNC's name: the FUNC gives the arguments (its
FUNC_PROTO), and the address is the kallsyms (vmlinux) or module symbol of the same name, by
exact name (NOTES.md "fentry/fexit on one copy"). A duplicated static has at most one FUNC of its
bare name (pahole 1.24: some copy's proto; 1.31+: none), so each aliased copy gets its own: the
alias spelled with '.' for '@' (a BTF name takes no '@'), static linkage, and the FUNC_PROTO of
that copy's DWARF signature (signature.py), existing or appended.

A copy is left out, with a reason, when its types do not map to exactly one BTF type each,
when it is a compiler clone (``foo.isra.0``, ``foo.constprop.0``): a clone's arguments are not
its declaration's, and when ftrace cannot patch it (vmlinux's mcount table has no entry in it):
fentry attaches only where ftrace can.
"""

from __future__ import annotations

import bisect
import contextlib
import struct
from typing import TYPE_CHECKING

from kasalias.aliastable import VMLINUX
from kasalias.btf import KIND_FUNC, Btf, BtfAppender, alias_btf_name
from kasalias.errors import KasaliasError
from kasalias.fsutil import open_input, read_input, write_atomic
from kasalias.modwriter import with_section
from kasalias.signature import BtfTypes, ProtoMaker, dwarf_signature
from kasalias.srcloc import DwarfSource, base_name
from kasalias.symbols import ElfImage

if TYPE_CHECKING:
    from kasalias.aliastable import AliasTable
    from kasalias.fsutil import StrPath
    from kasalias.srcloc import PathMapper
    from kasalias.symbols import Section, Symbol

_ELF_MAGIC = b"\x7fELF"


def append_copy_funcs(dwarf: DwarfSource, picks: list[tuple[Symbol, str]], btf: Btf) -> tuple[bytes, list[str]]:
    """``btf`` (the image's .BTF, parsed on its base for a module) with a FUNC for each
    (function symbol, alias) of ``picks`` that can have one, in alias order; and the reasons
    for those left out, one line each."""
    app = BtfAppender(btf)
    protos = ProtoMaker(BtfTypes(btf), app)
    entries = dwarf.functions([s for s, _a in picks if s.is_text])
    problems: list[str] = []
    where = dwarf.image.path
    for sym, alias in sorted(picks, key=lambda p: p[1]):
        if not sym.is_text:
            continue
        if base_name(sym.name) != sym.name:
            problems.append(f"{where}: {alias}: a compiler clone; its arguments are not its declaration's: no BTF FUNC")
            continue
        entry = entries.get(sym.index)
        sig = dwarf_signature(dwarf, entry) if entry is not None else None
        if sig is None:
            problems.append(f"{where}: {alias}: no DWARF signature with types BTF can name: no BTF FUNC")
            continue
        proto = protos.proto(sig)
        if proto is None:
            problems.append(f"{where}: {alias}: a type of {sig.render()} is not one BTF type: no BTF FUNC")
            continue
        try:
            app.add_func(alias_btf_name(alias), proto)
        except KasaliasError as e:
            problems.append(f"{where}: {alias}: {e}: no BTF FUNC")
    return app.to_bytes(), problems


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
        img = stack.enter_context(ElfImage(dwarf_path))
        dwarf = stack.enter_context(DwarfSource(img, paths))
        pairs = table.by_key(VMLINUX, img.symbols, img.file_groups(), img.hidden_symbols())
        locations = ftrace_locations(img)
        picks, untraced = [], []
        for row, sym in pairs:
            if sym is None:
                continue
            if locations is not None and sym.is_text and not _has_location(locations, img.address(sym), sym.size):
                untraced.append(f"{img.path}: {row.alias}: no ftrace location (notrace, or not instrumented): "
                                "fentry cannot attach: no BTF FUNC")
            else:
                picks.append((sym, row.alias))
        out, problems = append_copy_funcs(dwarf, picks, btf)
        write_atomic(dst, out if obj is None or sec is None else b"".join(with_section(obj, sec.index, out)))
    return sum(1 for sym, _alias in picks if sym.is_text) - len(problems), sorted(problems + untraced)


def copy_func_names(path: StrPath) -> frozenset[str]:
    """The FUNC names of the BTF in ``path`` (raw or an object file's ``.BTF``)."""
    return frozenset(t.name for t in Btf(read_btf_file(path), what=f"{path}: .BTF").types
                     if t.kind == KIND_FUNC and t.name)
