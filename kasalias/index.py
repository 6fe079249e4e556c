"""Aliases for kernels nobody rebuilds: the index of a distribution kernel's debug package,
resolved on the running system.

``kasalias index`` runs the analysis over a debug vmlinux and its modules and writes one
file: for each image its build ID (``.note.gnu.build-id``), for each alias its image, the
symbol it names, livepatch's ``sympos`` for it, its link address (vmlinux) and its source.
``kasalias lookup`` and ``kasalias kallsyms`` read that file and a /proc/kallsyms (the
running kernel's, or a saved copy with its build ID): vmlinux addresses move by the KASLR
offset (``_text`` there against ``_text`` at link time); a module symbol is found by its
name and ``sympos`` among its module's lines, in the order the kernel lists them.

``sympos`` is the position livepatch counts (kernel/livepatch/core.c,
klp_find_object_symbol): among the same-named kallsyms entries of the object, in address
order for vmlinux (kallsyms is sorted by address), in symbol-table order for a module.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kasalias.aliastable import VMLINUX
from kasalias.errors import KasaliasError
from kasalias.fsutil import read_input, write_atomic
from kasalias.symbols import ElfImage

if TYPE_CHECKING:  # the analysis is imported where an index is made, not where one is read
    from kasalias.analysis import Analysis, LoadedImage, Occurrence

HEADER = "# kasalias index 1: image alias symbol sympos link-address decl cu\n"
NT_GNU_BUILD_ID = 3
SHT_NOTE = 7


@dataclass(frozen=True, order=True)
class Entry:
    image: str
    alias: str
    symbol: str
    sympos: int
    address: int  # the link address (vmlinux); a module's symbols are found by name and sympos
    decl: str
    cu: str


@dataclass
class Index:
    build_ids: dict[str, str]  # image -> build ID (hex)
    text: int  # vmlinux's _text at link time
    entries: list[Entry]

    def render(self) -> bytes:
        out = [HEADER, f"# text: {self.text:016x}\n"]
        out += [f"# image: {i} {b}\n" for i, b in sorted(self.build_ids.items())]
        out += ["\t".join((e.image, e.alias, e.symbol, str(e.sympos), f"{e.address:016x}", e.decl, e.cu)) + "\n"
                for e in sorted(self.entries)]
        return "".join(out).encode("utf-8", "surrogateescape")

    @classmethod
    def read(cls, path: Path) -> Index:
        data = read_input(path)
        if not data.startswith(HEADER.encode()):
            raise KasaliasError(f"{path}: not a kasalias index")
        build_ids: dict[str, str] = {}
        entries = []
        text = None
        # split(b"\n"): bytes.splitlines() would also end a line at "\r", which the field check refuses
        lines = data.split(b"\n")
        if not lines[-1]:
            lines.pop()  # after the last newline
        for lineno, raw in enumerate(lines[1:], 2):
            # What render() writes and nothing else: int() would also take " 1", "1_0", "0x1f"
            # and Unicode digits ("٣"), and a field that is not UTF-8 or holds a control byte
            # would reach the terminal or the kallsyms text that 'kallsyms' prints.
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise KasaliasError(f"{path}:{lineno}: malformed index line (not UTF-8)") from None
            if not all(field.isprintable() for field in ([line] if line.startswith("#") else line.split("\t"))):
                raise KasaliasError(f"{path}:{lineno}: malformed index line (a control byte)")
            if line.startswith("# text: "):
                if not _is_hex(line[8:], 16):
                    raise KasaliasError(f"{path}:{lineno}: malformed index line")
                text = int(line[8:], 16)
            elif line.startswith("# image: "):
                fields = line[9:].split(" ")
                if len(fields) != 2 or not fields[0] or not (fields[1] == "" or _is_hex(fields[1], len(fields[1]))):
                    raise KasaliasError(f"{path}:{lineno}: malformed index line")
                build_ids[fields[0]] = fields[1]
            else:
                v = line.split("\t")
                if len(v) != 7 or not all(v[:3]) or not (v[3].isascii() and v[3].isdigit() and len(v[3]) <= 18) \
                        or int(v[3]) < 1 or not _is_hex(v[4], 16):
                    raise KasaliasError(f"{path}:{lineno}: malformed index line")
                entries.append(Entry(v[0], v[1], v[2], int(v[3]), int(v[4], 16), v[5], v[6]))
        if text is None:
            raise KasaliasError(f"{path}: no '# text:' line")
        return cls(build_ids, text, entries)

    def write(self, path: Path) -> None:
        write_atomic(path, self.render(), only_if_changed=True)


def _is_hex(text: str, width: int) -> bool:
    """``width`` lowercase hex digits (what render() writes), ASCII only."""
    return len(text) == width and width > 0 and all(c in "0123456789abcdef" for c in text)


def build_id(path: Path | str) -> str:
    """The GNU build ID of an ELF file, hex ("" if it has none), from any note section: a
    module's .note.gnu.build-id, vmlinux's .notes (its linker script gathers every note)."""
    with ElfImage(path) as img:
        for sec in img.sections:
            if sec.type == SHT_NOTE:
                found = notes_build_id(img.section_data(sec))
                if found:
                    return found
    return ""


def notes_build_id(notes: bytes) -> str:
    """The GNU build ID among ELF notes (a note section, /sys/kernel/notes), hex."""
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name_end = pos + 12 + namesz
        desc = (name_end + 3) & ~3
        if ntype == NT_GNU_BUILD_ID and notes[pos + 12:name_end].rstrip(b"\0") == b"GNU":
            return notes[desc:desc + descsz].hex()
        pos = (desc + descsz + 3) & ~3
    return ""


def make_index(analysis: Analysis, vmlinux: LoadedImage, modules: list[Path]) -> Index:
    """The index of an analysis (``collect=True``) over ``vmlinux`` (loaded, its symbols
    kept) and ``modules``."""
    from kasalias.aliastable import module_name

    texts = [s.value for s in vmlinux.symbols or () if s.name == "_text"]
    if len(texts) != 1:
        raise KasaliasError(f"{vmlinux.path}: no single _text symbol: not a vmlinux")
    build_ids = {VMLINUX: build_id(vmlinux.path), **{module_name(m): build_id(m) for m in modules}}
    # livepatch's order among an object's same-named symbols: kallsyms' (by address) for
    # vmlinux, the symbol table's for a module
    copies: dict[tuple[str, str], list[Occurrence]] = {}
    for occurrences in analysis.occurrences.values():
        for o in occurrences:
            copies.setdefault((o.image, o.symbol.name), []).append(o)
    entries = []
    for (image, _name), same in copies.items():
        same.sort(key=(lambda x: (x.symbol.value, x.symbol.index)) if image == VMLINUX else (lambda x: x.symbol.index))
        for sympos, o in enumerate(same, 1):
            if o.alias is not None and o.loc is not None:
                entries.append(Entry(image, o.alias, o.symbol.name, sympos, o.symbol.value if image == VMLINUX else 0,
                                     f"{o.loc.decl_file}:{o.loc.decl_line}", o.loc.cu))
    return Index(build_ids, texts[0], entries)


def kernel_version(vmlinux: Path) -> tuple[int, int] | None:
    """MAJOR.MINOR of a vmlinux from its linux_banner ("Linux version 6.1.0-28-amd64 (...") in
    .rodata: the kallsyms rules of that version. None where the file does not hold it."""
    with ElfImage(vmlinux) as img:
        sec = img.section_by_name(".rodata")
        if sec is None:
            return None
        view = img.section_view(sec)  # empty for SHT_NOBITS (a debug file made by --only-keep-debug)
        try:
            m = _BANNER.search(view)
            return (int(m.group(1)), int(m.group(2))) if m else None
        finally:
            view.release()  # before the image is closed


_BANNER = re.compile(rb"Linux version (\d{1,3})\.(\d{1,3})[^\s\x00]*\s")


def index_of_files(vmlinux: Path, modules: dict[str, Path]) -> tuple[Index, list[str]]:
    """The index of a debug vmlinux and of module debug files by module name (the
    analysis's problems with it): what ``kasalias index`` makes of the same files named
    NAME.ko, for files that are named otherwise (debuginfod's are ``BUILD-ID/debuginfo``).
    The kallsyms rules are those of the kernel's version (its linux_banner; where it has none,
    those of series.DEFAULT_SERIES, as ``kasalias index``), the policy is the default one."""
    import tempfile

    from kasalias.analysis import analyze, load_images
    from kasalias.kallsyms_rules import builtin_rules
    from kasalias.policy import Policy
    from kasalias.series import DEFAULT_SERIES
    from kasalias.srcloc import PathMapper

    rules = builtin_rules(kernel_version(vmlinux) or DEFAULT_SERIES)
    # The analysis names a module by its file (aliastable.module_name): a link NAME.ko to each file
    with tempfile.TemporaryDirectory(prefix="kasalias-index-") as tmp:
        links = []
        for name, path in sorted(modules.items()):
            links.append(Path(tmp) / f"{name}.ko")
            links[-1].symlink_to(os.path.abspath(path))
        try:
            images = load_images(vmlinux, links, rules)
            result = analyze(images, PathMapper(), Policy(), collect=True)
            return make_index(result, images[0], links), result.problems
        except KasaliasError as e:  # name the file, not the link that is about to go
            message = str(e)
            for link, (name, path) in zip(links, sorted(modules.items())):
                message = message.replace(str(link), f"{path} (module {name})")
            raise KasaliasError(message) from None


# ---------------------------------------------------------------------------
# The running kernel, or a saved copy of its /proc/kallsyms


@dataclass(frozen=True)
class KallsymsLine:
    address: int
    type: str
    name: str
    module: str  # "" for vmlinux


def parse_kallsyms(data: bytes, where: str) -> list[KallsymsLine]:
    out = []
    for lineno, raw in enumerate(data.splitlines(), 1):
        f = raw.decode("utf-8", "surrogateescape").split()
        if len(f) not in (3, 4) or (len(f) == 4 and not (f[3].startswith("[") and f[3].endswith("]"))):
            raise KasaliasError(f"{where}:{lineno}: not an 'ADDRESS TYPE NAME [MODULE]' line")
        # ASCII hex of at most 64 bits: int(x, 16) would also take "0x", "_" and Unicode digits
        if not 0 < len(f[0]) <= 16 or f[0].strip("0123456789abcdefABCDEF"):
            raise KasaliasError(f"{where}:{lineno}: not an 'ADDRESS TYPE NAME [MODULE]' line")
        out.append(KallsymsLine(int(f[0], 16), f[1], f[2], f[3][1:-1] if len(f) == 4 else ""))
    return out


@dataclass(frozen=True)
class Resolved:
    entry: Entry
    address: int | None  # None: not found (the reason in ``missing``)
    missing: str = ""


class Kernel:
    """A running kernel's symbols: /proc/kallsyms and build IDs, or saved copies."""

    def __init__(self, kallsyms: Path | None = None, build_id: str | None = None,
                 module_build_ids: dict[str, str] | None = None) -> None:
        path = kallsyms or Path("/proc/kallsyms")
        self.where = str(path)
        self.lines = parse_kallsyms(read_input(path) if kallsyms else _read_proc(path), self.where)
        if self.lines and all(l.address == 0 for l in self.lines):
            raise KasaliasError(f"{self.where}: every address reads as 0: kallsyms hides them from this user "
                                "(kernel.kptr_restrict); run as root, or with kptr_restrict=0")
        self._build_id = build_id
        self.module_build_ids = module_build_ids or {}
        self.live = kallsyms is None

    @property
    def build_id(self) -> str | None:
        """vmlinux's build ID: given, or the running kernel's (read when first needed), or
        None for a saved kallsyms without one."""
        if self._build_id is None and self.live:
            self._build_id = notes_build_id(_read_proc(Path("/sys/kernel/notes")))
        return self._build_id

    def module_build_id(self, module: str) -> str | None:
        if module in self.module_build_ids:
            return self.module_build_ids[module]
        if not self.live:
            return None
        try:
            return notes_build_id(_read_proc(Path(f"/sys/module/{module}/notes/.note.gnu.build-id")))
        except KasaliasError:
            return None

    def resolve(self, index: Index, entries: list[Entry]) -> list[Resolved]:
        if self.build_id is not None and index.build_ids.get(VMLINUX) and self.build_id != index.build_ids[VMLINUX]:
            raise KasaliasError(f"the index is of vmlinux build ID {index.build_ids[VMLINUX]}, the kernel of "
                                f"{self.where} is {self.build_id}: a debug package of another kernel")
        texts = [l.address for l in self.lines if l.name == "_text" and not l.module]
        if len(texts) != 1:
            raise KasaliasError(f"{self.where}: no single _text line: not a kernel's kallsyms")
        slide = texts[0] - index.text
        by_name: dict[tuple[str, str], list[KallsymsLine]] = {}
        for l in self.lines:
            by_name.setdefault((l.module, l.name), []).append(l)
        loaded = {l.module for l in self.lines}
        checked: dict[str, str | None] = {}
        out = []
        for e in entries:
            module = "" if e.image == VMLINUX else e.image
            if module and module not in loaded:
                out.append(Resolved(e, None, f"module {module} is not loaded"))
                continue
            if module and module not in checked:
                got, want = self.module_build_id(module), index.build_ids.get(module)
                checked[module] = None if got is None or not want or got == want else \
                    f"module {module} has build ID {got}, the index {want}: another build of it"
            if module and checked[module]:
                raise KasaliasError(checked[module])  # type: ignore[arg-type]
            same = by_name.get((module, e.symbol), [])
            if not module:
                address = e.address + slide
                if not any(l.address == address for l in same):
                    raise KasaliasError(f"{self.where}: no {e.symbol} at {address:016x} (its link address moved "
                                        f"by _text): the index is of another kernel")
            elif e.sympos > len(same):
                out.append(Resolved(e, None, f"{module} lists {len(same)} {e.symbol}, the index wants number "
                                    f"{e.sympos}"))
                continue
            else:
                address = same[e.sympos - 1].address
            out.append(Resolved(e, address))
        return out


def _read_proc(path: Path) -> bytes:
    """A file of /proc or /sys (a size of 0 that reads as more)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None


def with_aliases(kernel: Kernel, resolved: list[Resolved]) -> str:
    """/proc/kallsyms with each resolved alias on a line after its original's."""
    after: dict[tuple[int, str, str], list[str]] = {}
    for r in resolved:
        if r.address is not None:
            module = "" if r.entry.image == VMLINUX else r.entry.image
            after.setdefault((r.address, module, r.entry.symbol), []).append(r.entry.alias)
    out = []
    for l in kernel.lines:
        suffix = f"\t[{l.module}]" if l.module else ""
        out.append(f"{l.address:016x} {l.type} {l.name}{suffix}")
        for alias in sorted(after.pop((l.address, l.module, l.name), [])):
            out.append(f"{l.address:016x} {l.type} {alias}{suffix}")
    return "\n".join(out) + "\n"


def entries_for(index: Index, aliases: list[str]) -> list[Entry]:
    by_alias = {e.alias: e for e in index.entries}
    missing = [a for a in aliases if a not in by_alias]
    if missing:
        raise KasaliasError(f"not in the index: {', '.join(missing)}")
    return [by_alias[a] for a in aliases]

