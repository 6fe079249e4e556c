"""The analysis: one pass over vmlinux and every module, giving the symbol frequency and
the alias of every duplicated symbol the policy covers."""

from __future__ import annotations

import gc
import struct
import time
import logging
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, cast

from kasalias.aliastable import VMLINUX, AliasRow, AliasTable, SymbolKey, module_name, symbol_keys, symbol_ordinals
from kasalias.aliastable import is_alias  # the reader's own test: what is written reads back
from kasalias.errors import KasaliasError
from kasalias.fsutil import read_text_input
from kasalias.kallsyms_rules import VmlinuxRules
from kasalias.loader_rules import module_keeps
from kasalias.naming import Copy, assign
from kasalias.policy import Policy
from kasalias.series import order_stem
from kasalias.srcloc import DwarfSource, PathMapper, SourceLoc, UnitCache
from kasalias.symbfreq import SymbolFrequency, name_key
from kasalias.symbols import ElfImage, Symbol, is_llvm_bitcode

log = logging.getLogger(__name__)

_PATH_MAX = 4096  # Linux's, with the NUL: a longer modules.order line names no file


@dataclass
class LoadedImage:
    """An image's kallsyms-visible symbols as names and .symtab indices (the file itself is
    closed again): until all names are counted nothing tells which symbols the analysis
    needs, and in a distribution kernel those of duplicated names are a fifth. The analysis
    reads those again from the file (ElfImage.symbols_at). Debian's 7.2 kernel and its 4,216
    modules have 1.05 million visible symbols: as Symbol tuples with their keys, they took
    400 MB, held through all the DWARF work."""

    name: str
    path: Path
    names: list[str]  # the visible symbols' names ...
    indices: array[int]  # ... and their .symtab indices, in symbol table order
    files: list[str]  # the STT_FILE names (Symbol.group)
    # A module's key ordinals that are not 0 (aliastable.symbol_ordinals): its symbol table
    # is not kept. vmlinux's keys are made from ``symbols``, for the names asked for.
    ordinals: dict[int, int] = field(default_factory=dict)
    # vmlinux's, kept to be read once; a module's only for the step of one built out of tree
    symbols: list[Symbol] | None = None

    def duplicated(self, freq: SymbolFrequency) -> list[int]:
        """The indices of the visible symbols whose names ``freq`` counts more than once."""
        count = freq.counts.get  # freq[name] without a method call for each symbol
        return [i for n, i in zip(self.names, self.indices) if count(name_key(n), 0) > 1]

    def keys_of(self, syms: list[Symbol]) -> dict[int, SymbolKey]:
        """The keys of ``syms`` (visible symbols of this image), by symbol index."""
        if self.symbols is None:
            return symbol_keys(syms, self.files, self.ordinals)
        return _keys_of_names(self.symbols, {s.name for s in syms}, self.files)


def _keys_of_names(symbols: list[Symbol], names: set[str], files: list[str]) -> dict[int, SymbolKey]:
    """The keys of the symbols named in ``names``. A key's ordinal counts the earlier symbols
    of its name in its group, so all symbols of those names are keyed, and no others: keying
    all of a vmlinux's ~190,000 symbols would cost more than the rest of their reading."""
    return symbol_keys([s for s in symbols if s.name in names], files)


def _loaded(name: str, path: Path, visible: list[Symbol], files: list[str], ordinals: dict[int, int],
            symbols: list[Symbol] | None = None) -> LoadedImage:
    return LoadedImage(name, path, [s.name for s in visible], array("I", [s.index for s in visible]), files,
                       ordinals, symbols)


def _usable(name: str) -> bool:
    """Whether kasalias can count and alias a name: kallsyms, modules.symbfreq and the alias
    table carry no control bytes (GNU as makes arm64 local labels like '.L14472\\x021') and no
    bytes that are not UTF-8 (a corrupted string table); such names are left out. The same
    rule for every text field of a table row (aliastable._field): STT_FILE names, paths."""
    return name.isprintable()


def load_vmlinux(path: Path, rules: VmlinuxRules) -> LoadedImage:
    with ElfImage(path) as img:
        keeps = rules.keeps
        visible = [s for s in img.symbols if s.name and keeps(s.name, s.letter) and _usable(s.name)]
        return _loaded(VMLINUX, path, visible, img.file_groups(), {}, img.symbols)


def load_module(path: Path, kallsyms_all: bool = True) -> LoadedImage:
    with ElfImage(path) as img:
        return module_image(img, kallsyms_all)


def module_image(img: ElfImage, kallsyms_all: bool = True, keep_symbols: bool = False) -> LoadedImage:
    """The LoadedImage of a module open as ``img``. ``keep_symbols``: for a caller that goes
    on with the same file (the step of a module built out of tree), so that its symbols are
    read once; the analysis of a whole kernel keeps none (memory)."""
    path = Path(img.path)
    if not img.is_relocatable:
        raise KasaliasError(f"{path}: not a relocatable object (ET_REL): not a kernel module")
    secs, n = img.sections, len(img.sections)
    visible = [s for s in img.symbols
               if s.shndx < n and module_keeps(s.name, s.type, s.shndx, secs[s.shndx].name,
                                               secs[s.shndx].flags, n, kallsyms_all) and _usable(s.name)]
    names = {s.name for s in visible}
    ordinals = symbol_ordinals(s for s in img.symbols if s.name in names)
    name = module_name(path)
    # The table's and the index's image lines are space-separated; kallsyms shows [name].
    if not _usable(name) or " " in name or not name:
        raise KasaliasError(f"{path}: the module name {name!r} has a space or a control byte; "
                            "Kbuild names modules like C identifiers")
    return _loaded(name, path, visible, img.file_groups(), ordinals, img.symbols if keep_symbols else None)


def modules_from_order(order: Path, objtree: Path) -> list[Path]:
    """The module files to analyse for Kbuild's modules.order (one path per line: X.o, or X.ko
    in 6.1; series.order_stem). At vmlinux link time only the module objects exist, so X.o is read.
    With LTO an X.o is LLVM bitcode: then its X.ko if it exists, else it is left out (its
    per-module step aliases it against modules.symbfreq, like a module built later)."""
    mods: list[Path] = []
    # split("\n"), not splitlines(): that also splits at \x1c, \x85, \u2028, ..., which
    # would hide such bytes in a line instead of refusing them
    for lineno, raw in enumerate(read_text_input(order).split("\n"), 1):
        line = raw.strip(" \t\r")
        if not line:
            continue
        # Each line is checked before it becomes a path: "/" has no name to give a suffix
        # (Path.with_suffix raised), a NUL cannot be in a path, and a message must not
        # carry control bytes to the terminal.
        if not line.isprintable():
            raise KasaliasError(f"{order}:{lineno}: a control byte in {line!r}")
        if len(line.encode()) >= _PATH_MAX:
            raise KasaliasError(f"{order}:{lineno}: a path of {len(line.encode())} bytes (the limit is {_PATH_MAX})")
        stem = order_stem(line)
        if not stem or stem.endswith("/"):  # the rule of buildgen.module_objects, and "/.o" names no module
            raise KasaliasError(f"{order}:{lineno}: {line!r} is not a module object (X.o or X.ko)")
        p = objtree / line
        obj, ko = objtree / (stem + ".o"), objtree / (stem + ".ko")
        if obj.is_file() and not is_llvm_bitcode(obj):
            mods.append(obj)
        elif ko.is_file():
            mods.append(ko)
        elif obj.is_file():
            log.warning("%s: LLVM bitcode and no .ko yet: left out of the analysis", obj)
        else:
            mods.append(p)  # reported as missing by the caller
    return mods


class Progress:
    """``[k/n] what`` on stderr, only when stderr is a terminal (never under make or in a pipe)."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.n = total, what, 0
        self.on = sys.stderr.isatty() and total > 20

    def step(self, item: str = "") -> None:
        self.n += 1
        if self.on:
            sys.stderr.write(f"\r\x1b[K{self.what} [{self.n}/{self.total}] {item[-60:]}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


@dataclass(slots=True)
class Occurrence:
    """One kallsyms entry of a duplicated name, for reports."""

    image: str
    symbol: Symbol
    loc: SourceLoc | None
    alias: str | None
    covered: bool


@dataclass
class Analysis:
    freq: SymbolFrequency
    table: AliasTable
    problems: list[str] = field(default_factory=list)
    occurrences: dict[str, list[Occurrence]] = field(default_factory=dict)
    located: int = 0  # symbols whose source identity was looked up in DWARF
    identity_seconds: float = 0.0  # CPU time of those lookups (bench/analyze compares it)


def load_images(vmlinux: Path | None, modules: Iterable[Path], rules: VmlinuxRules,
                kallsyms_all: bool = True) -> list[LoadedImage]:
    modules = list(modules)
    # Reading makes a few hundred thousand symbols (named tuples, which the cycle collector
    # never untracks) and no reference cycles; vmlinux's live as long as the analysis. Collections
    # would only walk them again and again, while reading and then in the DWARF work (0.15 s
    # of 1.8 s on a vmlinux): no collection while reading, and the result is moved out of the
    # collector's generations (gc.freeze(); reference counting still frees it).
    collecting = gc.isenabled()
    gc.disable()
    try:
        images = [load_vmlinux(vmlinux, rules)] if vmlinux is not None else []
        progress = Progress(len(modules), "reading modules")
        for m in modules:
            progress.step(str(m))
            images.append(load_module(m, kallsyms_all))
        progress.done()
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    names = [i.name for i in images]
    dup = sorted({n for n in names if names.count(n) > 1}) if len(names) != len(set(names)) else []
    if dup:
        raise KasaliasError(f"two modules with the same name: {', '.join(dup)}")
    return images


def malformed_dwarf_errors() -> tuple[type[BaseException], ...]:
    """What decoding corrupted DWARF raises below kasalias' own checks (offsets and sizes
    out of range, division by a zero size, runaway form chains, pyelftools' refusals):
    turned into one error for the image, at this one place."""
    from elftools.common.exceptions import ELFError

    return (struct.error, IndexError, KeyError, ValueError, ZeroDivisionError, OverflowError, RecursionError,
            MemoryError, ELFError)


def analyze(images: list[LoadedImage], paths: PathMapper, policy: Policy,
            freq: SymbolFrequency | None = None, taken: frozenset[str] = frozenset(),
            collect: bool = False, keep: Callable[[LoadedImage], bool] = lambda i: True,
            cache: UnitCache | None = None) -> Analysis:
    """Alias the duplicated names of ``images`` (all of them, or those ``keep`` selects).

    ``freq`` defaults to the frequency over ``images``; a module built later
    passes the shipped one (plus its own names) instead.
    """
    if freq is None:
        freq = SymbolFrequency()
        for img in images:
            freq.add(img.names)
    copies: list[Copy] = []
    problems: list[str] = []
    occurrences: dict[str, list[Occurrence]] = {}
    occurrence_keys: list[tuple[Occurrence, SymbolKey]] = []  # with collect: each one's key, for its alias
    work = [img for img in images if keep(img)]
    located, identity_seconds = 0, 0.0
    progress = Progress(len(work), "reading DWARF")
    for img in work:
        progress.step(str(img.path))
        wanted = img.duplicated(freq)
        if not wanted:
            continue
        with ElfImage(img.path) as elf:
            if img.symbols is not None:
                elf.use_symbols(img.symbols)
            dups = elf.symbols_at(wanted)
            keys = img.keys_of(dups)
            targets = [s for s in dups if policy.covers(s)]
            locs: dict[int, SourceLoc] = {}
            if targets:
                started = time.process_time()
                try:
                    with DwarfSource(elf, paths, cache) as dwarf:
                        locs = dwarf.locate(targets)
                except malformed_dwarf_errors() as e:
                    raise KasaliasError(f"{img.path}: malformed DWARF ({type(e).__name__}: {e})") from None
                except KasaliasError as e:  # dwarfscan's checks do not know the file: say which
                    if str(e).startswith(f"{img.path}: "):
                        raise
                    raise KasaliasError(f"{img.path}: {e}") from None
                identity_seconds += time.process_time() - started
                located += len(targets)
        for s in targets:
            loc = locs.get(s.index)
            if loc is None:
                problems.append(f"{img.name}: {s.name}: no source location in DWARF; no alias")
                continue
            if not (loc.decl_file.isprintable() and loc.cu.isprintable()):
                problems.append(f"{img.name}: {s.name}: a source path in DWARF holds a control byte; no alias")
                continue
            if not _usable(keys[s.index][0]):  # the row's file field (a corrupted .strtab)
                problems.append(f"{img.name}: {s.name}: the STT_FILE name of its object holds a control byte "
                                "or is not UTF-8; no alias")
                continue
            copies.append(Copy(img.name, (img.name, keys[s.index]), s.name, loc))
        if collect:
            covered = {s.index for s in targets}
            for s in dups:
                o = Occurrence(img.name, s, locs.get(s.index), None, s.index in covered)
                occurrences.setdefault(name_key(s.name), []).append(o)
                occurrence_keys.append((o, keys[s.index]))
    progress.done()
    aliases, naming_problems = assign(copies, taken)
    problems.extend(naming_problems)
    rows = []
    for c, alias in aliases.items():
        image, key = cast("tuple[str, SymbolKey]", c.key)
        file, occurrence, symbol, ordinal = key
        if not is_alias(alias, symbol):  # the table's reader would refuse the row ("x.llvm.y")
            problems.append(f"{image}: {symbol}: {alias} does not read back as its alias; no alias")
            continue
        rows.append(AliasRow(image, file, occurrence, symbol, ordinal, alias,
                             f"{c.loc.decl_file}:{c.loc.decl_line}", c.loc.cu))
    if collect:
        by_key = {(r.image, r.key): r.alias for r in rows}
        for o, key in occurrence_keys:
            o.alias = by_key.get((o.image, key))
    return Analysis(freq, AliasTable(rows, (i.name for i in work)), problems, occurrences, located,
                    identity_seconds)
