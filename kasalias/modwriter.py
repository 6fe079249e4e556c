"""Writing modules: ``X.ko`` -> a NEW ``X.ko.aliased`` with alias symbols.

A module's kallsyms entries come from its own ``.symtab`` at load time, so
module aliases are real ELF symbols. binutils ``objcopy --add-symbol`` writes
them (the path comes from the caller, like Kbuild's ``$(OBJCOPY)``), through a
response file. objcopy cannot set a symbol's size, so the sizes of the new
symbols are filled into objcopy's output (a temp file) before it is checked
and renamed into place. The input is only ever read.

Placement: the module loader reports, for an address, the lowest-index symbol
there. objcopy appends a new local after all locals, and a new global after
all globals, so an alias of a local original is LOCAL, and an alias of a global
original is GLOBAL: either way it comes after its original.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from kasalias.aliastable import AliasTable, module_name
from kasalias.errors import KasaliasError
from kasalias.symbfreq import SymbolFrequency
from kasalias.symbols import STB_LOCAL, STT_FUNC, STT_OBJECT, ElfImage, Section, Symbol

if TYPE_CHECKING:
    from kasalias.policy import Policy
    from kasalias.srcloc import PathMapper

log = logging.getLogger(__name__)
SHT_RELA, SHT_REL = 4, 9
_REWRITTEN = {".symtab", ".strtab", ".shstrtab", ".symtab_shndx"}


@dataclass(frozen=True)
class NewSymbol:
    """An alias to add: the original's section, value, size, type and binding."""

    alias: str
    section: str
    value: int
    size: int
    type: int
    local: bool


def aliases_for_module(path: Path, table: AliasTable, freq: SymbolFrequency | None, paths: PathMapper | None,
                       policy: Policy | None) -> list[NewSymbol]:
    """The aliases of one module: from the analysis table if the module was analysed
    (in-tree), else computed against the shipped frequency table (built later, out of tree)."""
    name = module_name(path)
    with ElfImage(path) as img:
        if not img.is_relocatable:
            raise KasaliasError(f"{path}: not a relocatable ELF object: not a kernel module")
        symbols = img.symbols
        groups = img.file_groups()
        sections = img.sections
    if name in table.images:
        picked: list[tuple[Symbol, str]] = []
        for r, sym in table.by_key(name, symbols, groups):
            if sym is None:
                raise KasaliasError(f"{path}: symbol {r.symbol} ({r.file}) of the alias table is not in it; "
                                    "was the module rebuilt after the analysis?")
            picked.append((sym, r.alias))
    else:
        if freq is None or paths is None or policy is None:
            raise KasaliasError(f"{path}: module {name} is not in the alias table; "
                                "give --symbfreq to alias a module built out of tree")
        # Only a module built out of tree needs the analysis (DWARF) code.
        from kasalias.analysis import analyze, load_module

        image = load_module(path)
        own = SymbolFrequency(freq.counts.copy())
        own.add(s.name for s in image.visible)
        result = analyze([image], paths, policy, freq=own, taken=table.aliases())
        for p in result.problems:
            log.warning("%s", p)
        picked = [(sym, r.alias) for r, sym in result.table.by_key(name, symbols, groups) if sym is not None]
    out = []
    name_count: dict[str, int] = {}
    for sec in sections:
        name_count[sec.name] = name_count.get(sec.name, 0) + 1
    for sym, alias in sorted(picked, key=lambda p: p[1]):
        if sym.shndx >= len(sections):
            raise KasaliasError(f"{path}: {sym.name} is not in a section")
        if name_count[sections[sym.shndx].name] != 1:  # objcopy --add-symbol names its section
            raise KasaliasError(f"{path}: section name {sections[sym.shndx].name!r} is not unique; "
                                "objcopy cannot place a symbol in it")
        out.append(NewSymbol(alias, sections[sym.shndx].name, sym.value, sym.size, sym.type,
                             sym.bind == STB_LOCAL))
    return out


def write_module(src: Path, dst: Path, new: list[NewSymbol], objcopy: str) -> None:
    """Write ``dst`` from ``src`` with ``new`` symbols added; ``src`` is never modified."""
    if not src.is_file():
        raise KasaliasError(f"{src}: no such file")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise KasaliasError(f"{dst}: directory {parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if not new:
            shutil.copyfile(src, tmp)  # nothing to add: the same bytes, no objcopy
        else:
            _run_objcopy(objcopy, src, tmp, new)
            _set_sizes(tmp, new)
            check_output(src, tmp, new, objcopy)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except OSError as e:
        raise KasaliasError(f"{dst}: cannot write: {e.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _run_objcopy(objcopy: str, src: Path, dst: Path, new: list[NewSymbol]) -> None:
    lines = []
    for s in new:
        flags = ["local" if s.local else "global",
                 "function" if s.type == STT_FUNC else "object" if s.type == STT_OBJECT else "notype"]
        flags = [f for f in flags if f != "notype"]
        lines.append(f"--add-symbol={s.alias}={s.section}:0x{s.value:x},{','.join(flags)}\n")
    with tempfile.NamedTemporaryFile("w", prefix=".kasalias-objcopy.", suffix=".rsp",
                                     dir=dst.parent, delete=False) as rsp:
        rsp.writelines(lines)
    try:
        proc = subprocess.run([objcopy, f"@{rsp.name}", str(src), str(dst)], capture_output=True, text=True)
    except OSError as e:
        raise KasaliasError(f"cannot run objcopy {objcopy!r}: {e.strerror}") from None
    finally:
        os.unlink(rsp.name)
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise KasaliasError(f"{objcopy} failed on {src}: {msg}")


def _set_sizes(path: Path, new: list[NewSymbol]) -> None:
    """objcopy --add-symbol has no size; give each alias its original's st_size."""
    want = {s.alias: s.size for s in new if s.size}
    if not want:
        return
    with ElfImage(path) as img:
        symtab = img.symtab
        strtab = img.section_data(img.sections[symtab.link])
        data = img.section_data(symtab)
    patches = []
    for i, (st_name, _info, _o, _sh, _v, size) in enumerate(struct.iter_unpack("<IBBHQQ", data)):
        name = strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape")
        if name in want and size == 0:
            patches.append((symtab.offset + i * 24 + 16, want[name]))
    with open(path, "r+b") as f:
        for off, size in patches:
            f.seek(off)
            f.write(struct.pack("<Q", size))


def check_output(src: Path, out: Path, new: list[NewSymbol], tool: str) -> None:
    """The checks every written module passes before it is renamed into place."""
    with ElfImage(src) as a, ElfImage(out) as b:
        _check_symtab_order(b, tool)
        a_syms, b_syms = a.symbols, b.symbols
        b_by_name: dict[str, list[Symbol]] = {}
        for s in b_syms:
            b_by_name.setdefault(s.name, []).append(s)
        for n in new:
            got = b_by_name.get(n.alias, [])
            ok = [s for s in got if b.sections[s.shndx].name == n.section and s.value == n.value
                  and s.size == n.size and s.type == n.type and (s.bind == STB_LOCAL) == n.local]
            if len(got) != 1 or not ok:
                raise KasaliasError(f"{tool} output for {src}: alias {n.alias} missing or wrong")
        if len(b_syms) != len(a_syms) + len(new):
            raise KasaliasError(f"{tool} output for {src}: {len(b_syms)} symbols, expected "
                                f"{len(a_syms)} + {len(new)}")
        n_new_locals = sum(1 for n in new if n.local)
        _check_sections(a, b, tool, src, n_new_locals)


def _check_symtab_order(img: ElfImage, tool: str) -> None:
    symtab = img.symtab
    first_global = None
    for i, (_n, info, _o, _s, _v, _z) in enumerate(struct.iter_unpack("<IBBHQQ", img.section_data(symtab))):
        local = info >> 4 == STB_LOCAL
        if not local and first_global is None:
            first_global = i
        elif local and first_global is not None:
            raise KasaliasError(f"{tool} wrote an invalid symbol table in {img.path}: local symbol {i} after "
                                f"global symbol {first_global}; use GNU objcopy from binutils")
    if first_global is not None and symtab.info != first_global:
        raise KasaliasError(f"{tool} wrote an invalid symbol table in {img.path}: sh_info {symtab.info}, "
                            f"first global is {first_global}")


def _symbol_names(img: ElfImage) -> list[str]:
    """What each .symtab index names: the symbol's name, or its section for STT_SECTION."""
    strtab = img.section_data(img.sections[img.symtab.link])
    out = []
    for st_name, info, _o, shndx, _v, _s in struct.iter_unpack("<IBBHQQ", img.section_data(img.symtab)):
        if info & 0xF == 3:
            out.append("section:" + (img.sections[shndx].name if shndx < len(img.sections) else str(shndx)))
        else:
            out.append(strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape"))
    return out


def _reloc_view(img: ElfImage, sec: Section, names: list[str]) -> list[tuple[int, int, int, str]]:
    """(offset, type, addend, symbol name or section name) of each relocation."""
    data = img.section_data(sec)
    if sec.type == SHT_RELA:
        return [(off, info & 0xFFFFFFFF, add, names[info >> 32]) for off, info, add in
                struct.iter_unpack("<QQq", data)]
    return [(off, info & 0xFFFFFFFF, 0, names[info >> 32]) for off, info in struct.iter_unpack("<QQ", data)]


def _same_relocations(a: bytes, b: bytes, entry: int, first_global: int, shift: int) -> bool:
    """Whether relocations ``b`` are ``a`` with the symbol indices objcopy's insertion moves:
    ``shift`` new locals before the first global. Compared column by column at C speed; a
    False sends the caller to the slower comparison by symbol name."""
    if len(a) != len(b) or len(a) % entry:
        return False
    words = entry // 4  # RELA: offset (2 words), type, symbol, addend (2); REL: no addend
    wa, wb = memoryview(a).cast("I"), memoryview(b).cast("I")
    for column in range(words):
        if column != 3 and wa[column::words] != wb[column::words]:
            return False
    return [i + shift if i >= first_global else i for i in wa[3::words].tolist()] == wb[3::words].tolist()


def _check_sections(a: ElfImage, b: ElfImage, tool: str, src: Path, n_new_locals: int) -> None:
    b_by_name: dict[str, list[int]] = {}
    for s in b.sections:
        b_by_name.setdefault(s.name, []).append(s.index)
    a_names = [s.name for s in a.sections]
    if sorted(a_names) != sorted(s.name for s in b.sections):
        raise KasaliasError(f"{tool} output for {src}: the set of sections changed")
    seen: dict[str, int] = {}
    names: tuple[list[str], list[str]] | None = None
    for s in a.sections:
        k = seen.get(s.name, 0)
        seen[s.name] = k + 1
        t = b.sections[b_by_name[s.name][k]]
        if s.name in _REWRITTEN:
            continue
        if s.type in (SHT_RELA, SHT_REL):
            # objcopy appends the new locals after the old ones: relocations against locals keep
            # their symbol index, those against globals move by the number of new locals.
            if _same_relocations(a.section_data(s), b.section_data(t), 24 if s.type == SHT_RELA else 16,
                                 a.symtab.info, n_new_locals):
                continue
            if names is None:
                names = (_symbol_names(a), _symbol_names(b))
            if _reloc_view(a, s, names[0]) != _reloc_view(b, t, names[1]):
                raise KasaliasError(f"{tool} output for {src}: relocations in {s.name} changed")
        elif a.section_data(s) != b.section_data(t):
            raise KasaliasError(f"{tool} output for {src}: bytes of section {s.name} changed")
