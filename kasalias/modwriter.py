"""Writing modules: ``X.ko`` -> a NEW ``X.ko.aliased`` with alias symbols.

A module's kallsyms entries come from its own ``.symtab`` at load time, so
module aliases are real ELF symbols. kasalias writes them itself (add_symbols),
in the layout of binutils ``objcopy --add-symbol``; given a path (``--objcopy``,
like Kbuild's ``$(OBJCOPY)``), binutils writes them instead, through a response
file, and the sizes objcopy cannot set are filled in afterwards. Either output
goes to a temp file, is checked (check_output) and renamed into place. The
input is only ever read. NOTES.md, "Module writer", says why by hand.

Placement: the module loader gives an address the name of the lowest-index
symbol there. A new local goes after all locals, and a new global after all
globals, so an alias keeps its original's binding (LOCAL, GLOBAL or WEAK) and
comes after its original. With the table's alias-first placement the two swap
names: the original's entry takes the alias's name and the new entry the
original's, so the alias is the name the kernel gives the address while every
relocation keeps its symbol index; the originals' new entries keep their old
order, and with it livepatch's sympos among same-named symbols.
"""

from __future__ import annotations

import logging
import os
import struct
import subprocess
from typing import TYPE_CHECKING

from kasalias.aliastable import ALIAS_FIRST, AliasTable, module_name, read_aliases
from kasalias.elfwrite import layout
from kasalias.errors import KasaliasError
from kasalias.fentry import BaseBtf, module_copy_funcs
from kasalias.fsutil import check_output as check_paths
from kasalias.fsutil import copy_file, create_temp_beside, same_contents
from kasalias.symbols import (ELF64_SYM, SHN_LORESERVE, SHN_XINDEX, SHT_GROUP, SHT_LLVM_ADDRSIG, SHT_NOBITS,
                              SHT_REL, SHT_RELA, SHT_SYMTAB_SHNDX, STB_LOCAL, STB_WEAK, STT_FUNC, STT_OBJECT, ElfImage,
                              Section, Symbol)

if TYPE_CHECKING:
    from collections.abc import Callable

    from kasalias.fsutil import StrPath
    from kasalias.policy import Policy
    from kasalias.srcloc import PathMapper

_REWRITTEN = {".symtab", ".strtab", ".shstrtab", ".symtab_shndx"}
log = logging.getLogger(__name__)


class NewSymbol:
    """An alias to add: the original's section, value, size, type and binding."""

    __slots__ = ("alias", "section", "value", "size", "type", "bind", "shndx", "name", "index", "swaps")

    def __init__(self, alias: str, section: str, value: int, size: int, type: int, bind: int,
                 shndx: int = 0, name: str = "", index: int = 0, swaps: bool = True) -> None:
        self.alias, self.section, self.value, self.size, self.type, self.bind = \
            alias, section, value, size, type, bind
        self.shndx = shndx  # the section's index (the built-in writer); objcopy goes by name
        self.name, self.index = name, index  # the original's name and .symtab index (alias-first)
        self.swaps = swaps  # alias-first: takes its original's entry (a BTF FUNC's name does not)

    @property
    def local(self) -> bool:
        return self.bind == STB_LOCAL

    def __repr__(self) -> str:
        return f"NewSymbol({self.alias!r}, {self.section!r}, {self.value:#x})"


class ModuleStep:
    """The module step: ``X.ko`` -> ``X.ko.aliased``, for any number of modules in one process
    (the build runs one per group of modules: buildgen.module_groups). Each module reads its
    own rows through the table's index; the whole table's aliases (the names a module built
    out of tree must not take) are read once, when the first such module asks. With
    ``btf_base`` (vmlinux, whose BTF the modules' is split on), each function copy that can
    have one gets a BTF FUNC and a symbol of its name (fentry.module_copy_funcs)."""

    def __init__(self, aliases: str, symbfreq: str | None = None, paths: PathMapper | None = None,
                 policy: Policy | None = None, objcopy: str | None = None, btf_base: StrPath | None = None) -> None:
        self.aliases, self.symbfreq, self.paths, self.policy = aliases, symbfreq, paths, policy
        self.objcopy = objcopy
        self.vmlinux_btf = BaseBtf(btf_base) if btf_base is not None else None
        self._taken: frozenset[str] | None = None

    def taken(self) -> frozenset[str]:
        if self._taken is None:
            self._taken = read_aliases(self.aliases)
        return self._taken

    def run(self, src: str, dst: str) -> int:
        """Write ``dst`` from ``src``; the number of aliases added (BTF FUNCs' names not counted)."""
        check_paths(dst, src, self.aliases, self.symbfreq,
                    self.vmlinux_btf.path if self.vmlinux_btf is not None else None)
        table = AliasTable.read(self.aliases, only_image=module_name(src))
        with ElfImage(src) as img:
            picks = picks_for_module(img, table, self.symbfreq, self.paths, self.policy, self.taken)
            new = new_symbols(img, picks)
            n_aliases = len(new)
            sections: dict[str, bytes] = {}
            got = module_copy_funcs(img, picks, self.vmlinux_btf, self.paths) if self.vmlinux_btf else None
            if got is not None:
                btf, funcs, problems = got
                for p in problems:  # clones, copies ftrace cannot patch: on every kernel, not warnings
                    log.info("%s", p)
                if funcs:
                    sections[".BTF"] = btf
                    new += new_symbols(img, funcs, swaps=False)
                    log.info("%s: %d BTF FUNCs added", dst, len(funcs))
            write_module(img, dst, new, self.objcopy, table.placement == ALIAS_FIRST, sections)
        return n_aliases


def aliases_for_module(img: ElfImage, table: AliasTable, symbfreq: StrPath | None,
                       paths: PathMapper | None, policy: Policy | None,
                       taken: Callable[[], frozenset[str]] | None = None) -> list[NewSymbol]:
    """The alias symbols of one module (picks_for_module, new_symbols)."""
    return new_symbols(img, picks_for_module(img, table, symbfreq, paths, policy, taken))


def picks_for_module(img: ElfImage, table: AliasTable, symbfreq: StrPath | None,
                     paths: PathMapper | None, policy: Policy | None,
                     taken: Callable[[], frozenset[str]] | None = None) -> list[tuple[Symbol, str]]:
    """The (symbol, alias) pairs of one module: from the analysis table if the module was
    analysed (in-tree), else computed against the shipped frequency table ``symbfreq``
    (built later, out of tree), taking none of ``taken()`` (default: the table's aliases)."""
    path = img.path
    if not img.is_relocatable:
        raise KasaliasError(f"{path}: not a relocatable ELF object: not a kernel module")
    name = module_name(path)
    if name in table.images:
        rows = table.for_image(name)
        if not rows:
            return []  # analysed, nothing to alias: its symbols need not be read
        picked: list[tuple[Symbol, str]] = []
        for r, sym in table.by_key(name, img.symbols, img.file_groups()):
            if sym is None:
                raise KasaliasError(f"{path}: symbol {r.symbol} ({r.file}) of the alias table is not in it; "
                                    "was the module rebuilt after the analysis?")
            picked.append((sym, r.alias))
    else:
        if symbfreq is None or paths is None or policy is None:
            raise KasaliasError(f"{path}: module {name} is not in the alias table; "
                                "give --symbfreq to alias a module built out of tree")
        # Only a module built out of tree needs the analysis (DWARF) code.
        import logging
        from pathlib import Path

        from kasalias.analysis import analyze, module_image
        from kasalias.symbfreq import lookup

        image = module_image(img, keep_symbols=True)
        own = lookup(Path(symbfreq), image.names)  # the kernel's counts of its names
        own.add(image.names)
        result = analyze([image], paths, policy, freq=own, taken=taken() if taken else table.aliases())
        for p in result.problems:
            logging.getLogger(__name__).warning("%s", p)
        picked = [(sym, r.alias) for r, sym in result.table.by_key(name, img.symbols, img.file_groups())
                  if sym is not None]
    return sorted(picked, key=lambda p: p[1])


def new_symbols(img: ElfImage, picks: list[tuple[Symbol, str]], swaps: bool = True) -> list[NewSymbol]:
    """A symbol named ``name`` beside each (symbol, name) of ``picks``, in that order."""
    sections = img.sections
    out = []
    for sym, alias in picks:
        if sym.shndx == 0 or sym.shndx >= len(sections):
            raise KasaliasError(f"{img.path}: {sym.name} is not in a section")
        out.append(NewSymbol(alias, sections[sym.shndx].name, sym.value, sym.size, sym.type,
                             sym.bind, sym.shndx, sym.name, sym.index, swaps))
    return out


def write_module(src: ElfImage, dst: StrPath, new: list[NewSymbol], objcopy: str | None = None,
                 alias_first: bool = False, sections: dict[str, bytes] | None = None) -> None:
    """Write ``dst`` from the module ``src`` with ``new`` symbols added and the sections
    named in ``sections`` holding new bytes, by kasalias' own writer or, if given, by
    ``objcopy``; ``src`` is never modified. The output is checked (check_output) before it
    is renamed into place. ``alias_first``: each alias takes its original's entry (see the
    module's docstring)."""
    dst = os.fspath(dst)
    sections = sections or {}
    if alias_first:  # the originals' entries in their old order; the BTF FUNCs' names after them
        new = sorted(new, key=lambda n: (not n.swaps, n.index))
    parent = os.path.dirname(dst) or "."
    if not os.path.isdir(parent):
        raise KasaliasError(f"{dst}: directory {parent} does not exist")
    try:
        fd, tmp = create_temp_beside(dst)
    except OSError as e:
        raise KasaliasError(f"{dst}: cannot write: {e.strerror}") from None
    try:
        if not new:
            try:
                copy_file(src.path, fd)  # nothing to add: the same bytes
            finally:
                os.close(fd)
        elif objcopy is None:
            with os.fdopen(fd, "wb") as f:
                for part in add_symbols(src, new, alias_first, _section_indices(src, sections)):
                    f.write(part)
            check_output(src, tmp, new, "kasalias", alias_first, sections)
        else:
            os.close(fd)
            _run_objcopy(objcopy, src, tmp, new, sections)
            _patch_symbols(tmp, new, alias_first)
            check_output(src, tmp, new, objcopy, alias_first, sections)
        os.chmod(tmp, 0o644)
        if not same_contents(tmp, dst):  # else the output keeps its time: ninja's restat skips what follows
            os.replace(tmp, dst)
    except OSError as e:
        raise KasaliasError(f"{dst}: cannot write: {e.strerror}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _section_indices(img: ElfImage, sections: dict[str, bytes]) -> dict[int, bytes]:
    """``sections`` by section index; each name must be one section's."""
    out = {}
    for name, data in sections.items():
        found = [s.index for s in img.sections if s.name == name]
        if len(found) != 1:
            raise KasaliasError(f"{img.path}: {len(found)} sections named {name}, expected one")
        out[found[0]] = data
    return out


def add_symbols(img: ElfImage, new: list[NewSymbol], alias_first: bool = False,
                replace: dict[int, bytes] | None = None) -> list[bytes | bytearray | memoryview]:
    """The bytes of ``img`` (a relocatable ELF file) with ``new`` symbols added, in parts
    (views of the input where it is unchanged: no copy of a module in memory), laid out as
    ``objcopy --add-symbol`` lays them out: new locals after the old locals, new globals
    after the old globals, symbol indices in relocations, groups and address-significance
    tables moved accordingly, and sizes set. Every other section keeps its bytes.
    ``alias_first``: each original's entry and its new entry swap names. ``replace``: new
    bytes of sections, by index.

    Written by hand rather than run through objcopy: objcopy's process, its full rewrite
    and the size patch afterwards cost more than the rest of the step, and objcopy cannot
    set sizes or keep .llvm_addrsig right (NOTES.md, "Module writer")."""
    if img.header[0x38:0x3A] != b"\0\0":  # e_phnum: relocatable objects have no segments
        raise KasaliasError(f"{img.path}: has program headers: not a relocatable object")
    sections = img.sections
    symtab = img.symtab
    strtab_sec = sections[symtab.link]
    old_symtab, old_strtab = img.section_view(symtab), img.section_view(strtab_sec)
    first_global = symtab.info
    nsyms = len(old_symtab) // 24
    if not 0 < first_global <= nsyms:
        raise KasaliasError(f"{img.path}: .symtab has a bad sh_info {first_global}")
    names = bytearray(old_strtab)
    local_entries: list[bytes] = []
    global_entries: list[bytes] = []
    xlocal: list[bytes] = []
    xglobal: list[bytes] = []
    renamed: dict[int, int] = {}  # alias-first: original's index -> the alias's st_name
    for n in sorted(new, key=lambda n: not n.local):  # stable: the locals, then the globals
        st_name = len(names)
        names += n.alias.encode("utf-8", "surrogateescape") + b"\0"
        if alias_first and n.swaps:
            if not 0 < n.index < nsyms:
                raise KasaliasError(f"{img.path}: {n.alias}: no original entry {n.index}")
            renamed[n.index] = st_name
            st_name = ELF64_SYM.unpack_from(old_symtab, n.index * 24)[0]
        shndx = n.shndx if n.shndx < SHN_LORESERVE else SHN_XINDEX
        entry = ELF64_SYM.pack(st_name, n.bind << 4 | n.type, 0, shndx, n.value, n.size)
        (local_entries if n.local else global_entries).append(entry)
        (xlocal if n.local else xglobal).append(struct.pack("<I", n.shndx if shndx == SHN_XINDEX else 0))
    shift = len(local_entries)
    shndx_sec = next((x for x in sections if x.type == SHT_SYMTAB_SHNDX and x.link == symtab.index), None)
    if shndx_sec is None and any(n.shndx >= SHN_LORESERVE for n in new):
        raise KasaliasError(f"{img.path}: section index beyond 0xff00 but no .symtab_shndx")
    split = first_global * 24
    if renamed:
        patched = bytearray(old_symtab)
        for index, st_name in renamed.items():
            struct.pack_into("<I", patched, index * 24, st_name)
        old_symtab = memoryview(patched)
    content: dict[int, bytes | bytearray | memoryview] = dict(replace or {})
    content[symtab.index] = b"".join([old_symtab[:split], *local_entries, old_symtab[split:], *global_entries])
    content[strtab_sec.index] = bytes(names)
    info = {symtab.index: first_global + shift}
    for sec in sections:
        if sec.index in content or sec.index == 0:
            continue
        if sec is shndx_sec:
            old = img.section_view(sec)
            content[sec.index] = b"".join([old[:first_global * 4], *xlocal, old[first_global * 4:], *xglobal])
        elif not shift:
            continue
        elif sec.type in (SHT_RELA, SHT_REL) and sec.link == symtab.index:
            try:
                content[sec.index] = _renumber_relocations(img.section_view(sec), 24 if sec.type == SHT_RELA
                                                           else 16, first_global, shift, nsyms)
            except KasaliasError as e:
                raise KasaliasError(f"{img.path}: {sec.name}: {e}") from None
        elif sec.type == SHT_GROUP and sec.link == symtab.index and sec.info >= first_global:
            info[sec.index] = sec.info + shift  # the group's signature symbol
        elif sec.type == SHT_LLVM_ADDRSIG:
            content[sec.index] = _renumber_addrsig(img.section_view(sec), first_global, shift)
    return layout(img, content, info)


def _renumber_relocations(data: bytes | memoryview, entsize: int, first_global: int,
                          shift: int, nsyms: int) -> bytes | bytearray | memoryview:
    """Relocations with the symbol indices of globals moved up by ``shift`` (r_info's upper
    half: the 4th 32-bit word of an Elf64_Rel or Elf64_Rela); each must name one of the
    ``nsyms`` symbols."""
    if len(data) % entsize:
        raise KasaliasError(f"malformed relocation section ({len(data)} bytes)")
    step = entsize // 4
    column = memoryview(data).cast("I")[3::step]
    if len(column) and max(column) >= nsyms:
        raise KasaliasError(f"a relocation names symbol {max(column)}; the symbol table has {nsyms}")
    hits = _global_entries(column, first_global)
    if not hits:
        return data
    out = bytearray(data)
    words = memoryview(out).cast("I")
    for i in hits:
        words[3 + i * step] += shift
    return out


_LANE_TABLES: dict[int, tuple[bytes, bytes]] = {}  # first_global -> (high-byte, low-byte) translations
_AT_LEAST_2 = bytes(x >= 2 for x in range(256))


def _global_entries(column: memoryview, first_global: int) -> list[int]:
    """The positions of the symbol indices >= ``first_global`` in ``column`` (uint32s).

    Most relocations name section symbols (locals): .rela.debug_info of 8021q.ko names a
    global 9 times in 47,228. A Python test of every entry would cost more than objcopy's
    whole rewrite, so for indices below 65536 the test runs at C speed on byte lanes:
    per entry, hi = 0/1/2 for a high byte below/equal/above first_global's and lo = 1 if
    the low byte is >= first_global's, both made by bytes.translate; the entry names a
    global iff hi + lo >= 2, and the per-byte sums come from one big-integer addition (no
    byte carries: each sum is at most 3)."""
    n = len(column)
    raw = column.tobytes()
    if n == 0 or raw[2::4].count(0) != n or raw[3::4].count(0) != n:  # an index >= 65536
        from itertools import compress

        return list(compress(range(n), map(first_global.__le__, column)))
    tables = _LANE_TABLES.get(first_global)
    if tables is None:
        lo_limit, hi_limit = first_global & 0xFF, first_global >> 8
        tables = _LANE_TABLES[first_global] = (
            bytes(0 if x < hi_limit else 1 if x == hi_limit else 2 for x in range(256)),
            bytes(x >= lo_limit for x in range(256)))
    hi = raw[1::4].translate(tables[0])
    lo = raw[0::4].translate(tables[1])
    total = (int.from_bytes(hi, "little") + int.from_bytes(lo, "little")).to_bytes(n, "little")
    flags = total.translate(_AT_LEAST_2)
    out, pos = [], flags.find(1)
    while pos >= 0:
        out.append(pos)
        pos = flags.find(1, pos + 1)
    return out


def _renumber_addrsig(data: bytes | memoryview, first_global: int, shift: int) -> bytes:
    """An LLVM address-significance table (ULEB128 symbol indices) with globals moved up."""
    from kasalias.dwarfscan import uleb  # clang's modules only

    out, pos = bytearray(), 0
    while pos < len(data):
        value, pos = uleb(data, pos)
        if value >= first_global:
            value += shift
        while True:
            b = value & 0x7F
            value >>= 7
            out.append(b | 0x80 if value else b)
            if not value:
                break
    return bytes(out)


def _run_objcopy(objcopy: str, img: ElfImage, dst: str, new: list[NewSymbol],
                 sections: dict[str, bytes] | None = None) -> None:
    src = img.path
    name_count: dict[str, int] = {}
    for sec in img.sections:
        name_count[sec.name] = name_count.get(sec.name, 0) + 1
    for name in [n.section for n in new] + list(sections or {}):
        if name_count.get(name) != 1:  # objcopy --add-symbol and --update-section name a section
            raise KasaliasError(f"{src}: section name {name!r} is not unique; objcopy cannot place a symbol in it "
                                "or replace it")
    lines = []
    for s in new:
        flags = ["local" if s.local else "weak" if s.bind == STB_WEAK else "global",
                 "function" if s.type == STT_FUNC else "object" if s.type == STT_OBJECT else "notype"]
        flags = [f for f in flags if f != "notype"]
        lines.append(f"--add-symbol={s.alias}={s.section}:0x{s.value:x},{','.join(flags)}\n")
    temps: list[str] = []
    try:
        for name, data in sorted((sections or {}).items()):
            fd, path = create_temp_beside(dst + ".sec")
            temps.append(path)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            lines.append(f"--update-section={name}={path}\n")
        fd, rsp = create_temp_beside(dst + ".rsp")
        temps.append(rsp)
        with os.fdopen(fd, "w") as f:
            f.writelines(lines)
        status, output = run_tool([objcopy, f"@{rsp}", src, dst])
    finally:
        for path in temps:
            os.unlink(path)
    if status != 0:
        msg = (output.strip().splitlines() or ["failed"])[-1]
        raise KasaliasError(f"{objcopy} failed on {src}: {msg}")


def run_tool(argv: list[str]) -> tuple[int, str]:
    """Run a tool, its stdout and stderr captured together: (exit status, output)."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise KasaliasError(f"cannot run {argv[0]!r}: {e.strerror}") from None
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _patch_symbols(path: str, new: list[NewSymbol], alias_first: bool) -> None:
    """What objcopy --add-symbol cannot do, done in its output: each alias gets its original's
    st_size; with ``alias_first``, the original's entry and the alias's swap names."""
    want = {s.alias: s for s in new}
    with ElfImage(path) as img:
        symtab = img.symtab
        strtab = img.section_data(img.sections[symtab.link])
        data = img.section_data(symtab)
    patches: list[tuple[int, bytes]] = []
    entries = list(ELF64_SYM.iter_unpack(data))
    first: dict[tuple[str, int, int], int] = {}  # (name, section, value) -> the lowest index there
    for i, (st_name, _info, _o, shndx, value, size) in enumerate(entries):
        name = strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape")
        first.setdefault((name, shndx, value), i)
        n = want.get(name)
        if n is None:
            continue
        if n.size and size == 0:
            patches.append((symtab.offset + i * 24 + 16, struct.pack("<Q", n.size)))
        if alias_first and n.swaps:
            j = first.get((n.name, shndx, value))
            if j is None or j >= i:
                raise KasaliasError(f"{path}: no entry of {n.name} before its alias {n.alias}")
            patches.append((symtab.offset + j * 24, struct.pack("<I", st_name)))
            patches.append((symtab.offset + i * 24, struct.pack("<I", entries[j][0])))
    with open(path, "r+b") as f:
        for off, raw in patches:
            f.seek(off)
            f.write(raw)


def check_output(a: ElfImage, out: str, new: list[NewSymbol], tool: str, alias_first: bool = False,
                 sections: dict[str, bytes] | None = None) -> None:
    """The checks every written module passes before it is renamed into place: the module
    ``a`` with ``new`` added and the sections named in ``sections`` holding those bytes, as
    ``tool`` wrote it to ``out`` (``alias_first``: each alias in its original's entry, the
    original in the new one)."""
    src = a.path
    with ElfImage(out) as b:
        _check_symtab_order(b, tool)
        if not _symtab_extends(a, b, new, tool, alias_first):
            _check_symbols(a, b, new, tool, alias_first)
        n_new_locals = sum(1 for n in new if n.local)
        # alias-first: a relocation against an original's entry now names its alias, the same symbol
        renamed = {n.alias: n.name for n in new if n.swaps} if alias_first else {}
        _check_sections(a, b, tool, src, n_new_locals, renamed, sections or {})


def _symtab_extends(a: ElfImage, b: ElfImage, new: list[NewSymbol], tool: str, alias_first: bool) -> bool:
    """The symbol check where ``b``'s symbol table is ``a``'s, byte for byte, with the new
    entries inserted (after the locals, and at the end) and ``b``'s string table begins with
    ``a``'s, as kasalias' own writer lays them out: then only the new entries need reading
    (and, ``alias_first``, the originals' entries, renamed). False (nothing checked) for any
    other layout, such as objcopy's rebuilt string table."""
    sa, sb = a.symtab, b.symtab
    old, first_global = a.section_view(sa), sa.info
    new_locals, new_globals = [n for n in new if n.local], [n for n in new if not n.local]
    original_names: dict[str, int] = {}  # alias-first: alias -> the original's st_name
    if alias_first:
        if len(old) != sa.size or any(not 0 < n.index < len(old) // 24 for n in new if n.swaps):
            return False
        entries_b = b.section_data(sb)
        renamed = bytearray(old)
        for n in (n for n in new if n.swaps):  # the entry the alias took (a global's moved past the new locals): checked below
            at = (n.index + (len(new_locals) if n.index >= first_global else 0)) * 24
            if at + 24 > len(entries_b):
                return False
            original_names[n.alias] = ELF64_SYM.unpack_from(old, n.index * 24)[0]
            renamed[n.index * 24:n.index * 24 + 4] = entries_b[at:at + 4]
        old = memoryview(renamed)
    split, end = first_global * 24, len(old) + 24 * len(new_locals)
    if len({n.alias for n in new}) != len(new):
        raise KasaliasError(f"{tool} output for {a.path}: an alias twice")
    if ([x.name for x in a.sections] != [x.name for x in b.sections]
            or sb.size != len(old) + 24 * len(new) or sb.info != first_global + len(new_locals)
            or not b.holds(sb.offset, old[:split]) or not b.holds(sb.offset + split + 24 * len(new_locals), old[split:])
            or not b.holds(b.sections[sb.link].offset, a.section_view(a.sections[sa.link]))):
        return False
    entries = b.section_data(sb)
    strtab = b.section_data(b.sections[sb.link])
    taken = {s.name for s in a.symbols}

    def name_at(st_name: int) -> str:
        return strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape")

    for wanted, raw in ((new_locals, entries[split:split + 24 * len(new_locals)]), (new_globals, entries[end:])):
        for n, (st_name, info, _other, shndx, value, size) in zip(wanted, ELF64_SYM.iter_unpack(raw)):
            if shndx == SHN_XINDEX:
                return False  # its section is in .symtab_shndx: the general check reads it
            if alias_first and n.swaps:  # the new entry is the original; its old entry, moved by no relocation, the alias
                moved = n.index + (len(new_locals) if n.index >= first_global else 0)
                alias = name_at(ELF64_SYM.unpack_from(entries, moved * 24)[0])
                ok = st_name == original_names[n.alias] and name_at(st_name) == n.name
            else:
                alias, ok = name_at(st_name), True
            if (not ok or alias != n.alias or alias in taken or shndx >= len(b.sections)
                    or b.sections[shndx].name != n.section
                    or (value, size, info & 0xF, info >> 4) != (n.value, n.size, n.type, n.bind)):
                raise KasaliasError(f"{tool} output for {a.path}: alias {n.alias} missing or wrong")
    return True


def _check_symbols(a: ElfImage, b: ElfImage, new: list[NewSymbol], tool: str, alias_first: bool) -> None:
    """The symbol check for any layout: every alias once, at its original's place (and,
    ``alias_first``, before every entry of the original's name there)."""
    src = a.path
    a_syms, b_syms = a.symbols, b.symbols
    b_by_name: dict[str, list[Symbol]] = {}
    for s in b_syms:
        b_by_name.setdefault(s.name, []).append(s)
    for n in new:
        got = b_by_name.get(n.alias, [])
        ok = [s for s in got if b.sections[s.shndx].name == n.section and s.value == n.value
              and s.size == n.size and s.type == n.type and s.bind == n.bind]
        if len(got) != 1 or not ok:
            raise KasaliasError(f"{tool} output for {src}: alias {n.alias} missing or wrong")
        if alias_first and n.swaps and not all(s.index > ok[0].index for s in b_by_name.get(n.name, [])
                                   if s.shndx == ok[0].shndx and s.value == n.value):
            raise KasaliasError(f"{tool} output for {src}: alias {n.alias} is not before {n.name}")
    if len(b_syms) != len(a_syms) + len(new):
        raise KasaliasError(f"{tool} output for {src}: {len(b_syms)} symbols, expected "
                            f"{len(a_syms)} + {len(new)}")


def _check_symtab_order(img: ElfImage, tool: str) -> None:
    symtab = img.symtab
    first_global = None
    for i, (_n, info, _o, _s, _v, _z) in enumerate(ELF64_SYM.iter_unpack(img.section_data(symtab))):
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
    for st_name, info, _o, shndx, _v, _s in ELF64_SYM.iter_unpack(img.section_data(img.symtab)):
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


def _same_bytes(a: bytes | bytearray | memoryview, b: ElfImage, sec: Section) -> bool:
    """Whether section ``sec`` of ``b`` holds exactly ``a`` (compared in place: memcmp)."""
    return sec.type != SHT_NOBITS and len(a) == sec.size and b.holds(sec.offset, a)


def _check_sections(a: ElfImage, b: ElfImage, tool: str, src: StrPath, n_new_locals: int,
                    renamed: dict[str, str], replaced: dict[str, bytes]) -> None:
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
        if s.name in _REWRITTEN or s.index == 0:  # section 0 has no bytes (its size may count sections)
            continue
        if s.name in replaced:
            if not _same_bytes(replaced[s.name], b, t) or (t.type, t.flags, t.align) != (s.type, s.flags, s.align):
                raise KasaliasError(f"{tool} output for {src}: section {s.name} is not what was written")
            continue
        if s.type in (SHT_RELA, SHT_REL):
            # objcopy appends the new locals after the old ones: relocations against locals keep
            # their symbol index, those against globals move by the number of new locals.
            entsize = 24 if s.type == SHT_RELA else 16
            view = a.section_view(s)
            try:
                renumbered = _renumber_relocations(view, entsize, a.symtab.info, n_new_locals, a.symtab.size // 24)
            except KasaliasError as e:
                raise KasaliasError(f"{src}: {s.name}: {e}") from None
            if _same_bytes(renumbered, b, t):
                continue
            if names is None:
                names = (_symbol_names(a), [renamed.get(x, x) for x in _symbol_names(b)])
            if _reloc_view(a, s, names[0]) != _reloc_view(b, t, names[1]):
                raise KasaliasError(f"{tool} output for {src}: relocations in {s.name} changed")
        elif s.type == SHT_NOBITS:
            if t.type != SHT_NOBITS or t.size != s.size:
                raise KasaliasError(f"{tool} output for {src}: section {s.name} changed")
        elif not _same_bytes(a.section_view(s), b, t):
            raise KasaliasError(f"{tool} output for {src}: bytes of section {s.name} changed")
