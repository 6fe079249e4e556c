"""Reading the symbols of an ELF image: linked (vmlinux) or relocatable (.o, .ko).

pyelftools gives the ELF structure (header, sections); the symbol table itself
is unpacked with ``struct.iter_unpack``, because pyelftools' per-symbol objects
are about 30 times slower than ``nm`` on a vmlinux (see NOTES.md).

Each symbol carries the type letter GNU ``nm`` prints (binutils' rules in
bfd/syms.c: ``bfd_decode_symclass``, ``coff_section_type`` and
``decode_section_type``) and the STT_FILE group it belongs to: the linker emits
an object's local symbols after that object's STT_FILE symbol, in link order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from kasalias.errors import KasaliasError

STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFFF1, 0xFFF2, 0xFFFF
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_NOBITS = 8

# binutils' (2.3x and later) table of section-name prefixes with a fixed letter
# (bfd/syms.c stt[]); every other section gets its letter from its flags.
_COFF_SECTION_TYPES = ((".drectve", "i"), (".edata", "e"), (".idata", "i"), (".pdata", "p"))
_DEBUG_PREFIXES = (".debug", ".gnu.debuglto_.debug_", ".gnu.linkonce.wi.", ".zdebug", ".line", ".stab")


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    entsize: int
    link: int
    info: int

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def is_text(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One .symtab entry; ``group`` is the index of its STT_FILE group (-1: none)."""

    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int
    letter: str
    group: int

    @property
    def is_local(self) -> bool:
        return self.bind == STB_LOCAL

    @property
    def is_text(self) -> bool:
        """Code, as kallsyms users see it: nm letters t/T, and weak functions."""
        return self.letter in "tT" or (self.letter == "W" and self.type == STT_FUNC)


def _coff_section_type(name: str) -> str:
    for prefix, letter in _COFF_SECTION_TYPES:
        if name.startswith(prefix):
            rest = name[len(prefix):len(prefix) + 1]
            if rest == "" or rest in ".$0123456789":
                return letter
    return "?"


def section_letter(sec: Section) -> str:
    """The lower-case nm letter of a symbol defined in ``sec``."""
    letter = _coff_section_type(sec.name)
    if letter != "?":
        return letter
    has_contents = sec.type != SHT_NOBITS
    load = sec.is_alloc and has_contents
    readonly = not sec.flags & SHF_WRITE
    if sec.flags & SHF_EXECINSTR:
        return "t"
    if load:
        return "r" if readonly else "d"
    if not has_contents:
        return "b"
    if not sec.is_alloc and sec.name.startswith(_DEBUG_PREFIXES):
        return "N"
    if readonly:
        return "n"
    return "?"


class ElfImage:
    """An ELF file opened for reading: header, sections, symbols, raw section bytes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")
        except OSError as e:
            raise KasaliasError(f"{path}: cannot open: {e.strerror}") from None
        magic = self._file.read(4)
        self._file.seek(0)
        if magic in (b"BC\xc0\xde", b"\xde\xc0\x17\x0b"):
            self._file.close()
            raise KasaliasError(f"{path}: LLVM bitcode (an LTO object), not ELF; use the linked .ko")
        try:
            self.elf = ELFFile(self._file)
            self.sections = [self._section(i, s) for i, s in enumerate(self.elf.iter_sections())]
        except (ELFError, struct.error, ValueError, OSError) as e:
            self._file.close()
            raise KasaliasError(f"{path}: not a readable ELF file ({e})") from None
        except Exception as e:  # construct raises its own error types on truncated headers
            self._file.close()
            raise KasaliasError(f"{path}: not a readable ELF file ({type(e).__name__})") from None
        if self.elf.elfclass != 64 or not self.elf.little_endian:
            self._file.close()
            raise KasaliasError(f"{path}: only 64-bit little-endian ELF is supported")
        self.is_relocatable = self.elf["e_type"] == "ET_REL"
        self._symbols: list[Symbol] | None = None
        self._bases: list[int] | None = None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _section(index: int, s: object) -> Section:
        h = s.header  # type: ignore[attr-defined]
        return Section(index, s.name, _sh_type(h["sh_type"]), h["sh_flags"], h["sh_addr"],  # type: ignore[attr-defined]
                       h["sh_offset"], h["sh_size"], h["sh_entsize"], h["sh_link"], h["sh_info"])

    @property
    def section_bases(self) -> list[int]:
        """Where each section sits in the image's address space.

        A relocatable file's sections all start at 0; kasalias lays its
        allocated sections out at distinct synthetic addresses, as a linker
        would, so that symbols and (relocated) DWARF addresses compare the same
        way in a .o/.ko as in vmlinux.
        """
        if self._bases is None:
            if not self.is_relocatable:
                self._bases = [0] * len(self.sections)
            else:
                bases, cur = [], 0x1000
                for s in self.sections:
                    if s.is_alloc:
                        cur = (cur + 63) & ~63
                        bases.append(cur)
                        cur += max(s.size, 1)
                    else:
                        bases.append(0)
                self._bases = bases
        return self._bases

    def address(self, sym: Symbol) -> int:
        if sym.shndx < len(self.sections):
            return self.section_bases[sym.shndx] + sym.value
        return sym.value

    def raw_symbol_values(self) -> list[int]:
        """Every .symtab entry's address (section symbols included), for applying relocations."""
        bases, nsec = self.section_bases, len(self.sections)
        out = []
        for _n, _i, _o, shndx, value, _s in struct.iter_unpack("<IBBHQQ", self.section_data(self.symtab)):
            out.append(bases[shndx] + value if shndx < nsec else value)
        return out

    def section_by_name(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def fileno(self) -> int:
        return self._file.fileno()

    def section_data(self, sec: Section) -> bytes:
        if sec.type == SHT_NOBITS:
            return b""
        self._file.seek(sec.offset)
        data = self._file.read(sec.size)
        if len(data) != sec.size:
            raise KasaliasError(f"{self.path}: truncated file (section {sec.name})")
        return data

    @property
    def symtab(self) -> Section:
        sec = self.section_by_name(".symtab")
        if sec is None or sec.type != 2:
            raise KasaliasError(f"{self.path}: no symbol table (.symtab); is it stripped?")
        return sec

    @property
    def symbols(self) -> list[Symbol]:
        if self._symbols is None:
            self._symbols = list(self._read_symbols())
        return self._symbols

    def _read_symbols(self) -> Iterator[Symbol]:
        symtab = self.symtab
        if symtab.link >= len(self.sections):
            raise KasaliasError(f"{self.path}: .symtab has a bad string table link")
        strtab = self.section_data(self.sections[symtab.link])
        data = self.section_data(symtab)
        if symtab.entsize != 24 or len(data) % 24:
            raise KasaliasError(f"{self.path}: malformed .symtab")
        letters = [section_letter(s) for s in self.sections]
        nsec = len(self.sections)
        xindex = self._extended_indices(symtab)
        group = -1
        for index, (st_name, st_info, _other, shndx, value, size) in enumerate(struct.iter_unpack("<IBBHQQ", data)):
            if index == 0:
                continue
            if shndx == SHN_XINDEX and xindex is not None:
                shndx = xindex[index]
            stype, bind = st_info & 0xF, st_info >> 4
            if stype == STT_FILE:
                group += 1
                continue
            if stype == STT_SECTION:
                continue
            end = strtab.find(b"\0", st_name)
            if end < 0:
                raise KasaliasError(f"{self.path}: malformed .symtab string table")
            name = strtab[st_name:end].decode("utf-8", "surrogateescape")
            letter = _letter(stype, bind, shndx, letters, nsec)
            yield Symbol(index, name, value, size, stype, bind, shndx, letter,
                         group if bind == STB_LOCAL else -1)

    def _extended_indices(self, symtab: Section) -> tuple[int, ...] | None:
        """SHT_SYMTAB_SHNDX: section indices beyond 0xff00 (vmlinux.o with many sections)."""
        for s in self.sections:
            if s.type == 18 and s.link == symtab.index:
                return tuple(v for (v,) in struct.iter_unpack("<I", self.section_data(s)))
        return None

    def file_groups(self) -> list[str]:
        """Basenames of the STT_FILE symbols, in symtab order (index = Symbol.group)."""
        symtab = self.symtab
        strtab = self.section_data(self.sections[symtab.link])
        names = []
        for st_name, st_info, _o, _s, _v, _z in struct.iter_unpack("<IBBHQQ", self.section_data(symtab)):
            if st_info & 0xF == STT_FILE:
                names.append(strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape"))
        return names


def _letter(stype: int, bind: int, shndx: int, letters: list[str], nsec: int) -> str:
    if shndx == SHN_COMMON or stype == STT_COMMON and shndx == SHN_COMMON:
        return "C"
    if shndx == SHN_UNDEF:
        if bind == STB_WEAK:
            return "v" if stype == STT_OBJECT else "w"
        return "U"
    if stype == STT_GNU_IFUNC:
        return "i"
    if bind == STB_WEAK:
        return "V" if stype == STT_OBJECT else "W"
    if bind == STB_GNU_UNIQUE:
        return "u"
    if shndx == SHN_ABS:
        c = "a"
    elif shndx < nsec:
        c = letters[shndx]
    else:
        c = "?"
    return c.upper() if bind == STB_GLOBAL else c


def _sh_type(t: object) -> int:
    if isinstance(t, int):
        return t
    from elftools.elf.enums import ENUM_SH_TYPE_BASE

    return int(ENUM_SH_TYPE_BASE.get(str(t), -1))
