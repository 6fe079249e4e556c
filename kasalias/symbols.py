"""Reading the symbols of an ELF image: linked (vmlinux) or relocatable (.o, .ko).

The ELF header, section headers and symbol table are unpacked with ``struct``:
pyelftools' per-symbol objects are about 30 times slower than ``nm`` on a
vmlinux, and setting up its ELFFile costs more than a whole ``kasalias module``
run (see NOTES.md). pyelftools stays for compressed sections.

Each symbol carries the type letter GNU ``nm`` prints (binutils' rules in
bfd/syms.c: ``bfd_decode_symclass``, ``coff_section_type`` and
``decode_section_type``) and the STT_FILE group it belongs to: the linker emits
an object's local symbols after that object's STT_FILE symbol, in link order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

from kasalias.errors import KasaliasError

STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFFF1, 0xFFF2, 0xFFFF
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_NOBITS = 8
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")

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


class Symbol(NamedTuple):
    """One .symtab entry; ``group`` is the index of its STT_FILE group (-1: none).

    A NamedTuple: a vmlinux has ~200,000 symbols, and a tuple is made three
    times faster than a frozen dataclass instance."""

    index: int  # type: ignore[assignment]  # the .symtab index (shadows tuple.index on purpose)
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


_BITCODE_MAGIC = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")


def is_llvm_bitcode(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in _BITCODE_MAGIC
    except OSError:
        return False


class ElfImage:
    """An ELF file opened for reading: header, sections, symbols, raw section bytes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")
        except OSError as e:
            raise KasaliasError(f"{path}: cannot open: {e.strerror}") from None
        try:
            self.sections, self.is_relocatable = self._read_headers()
        except KasaliasError:
            self._file.close()
            raise
        except (struct.error, UnicodeDecodeError, ValueError, OSError) as e:
            self._file.close()
            raise KasaliasError(f"{path}: not a readable ELF file ({e})") from None
        self._symbols: list[Symbol] | None = None
        self._bases: list[int] | None = None
        self._elf: object = None

    def _read_headers(self) -> tuple[list[Section], bool]:
        """ELF header and section headers. Read with struct rather than pyelftools:
        ``kasalias module`` runs once per module, and importing and setting up
        pyelftools' ELFFile cost more than the rest of its work (NOTES.md)."""
        f, path = self._file, self.path
        ident = f.read(64)
        if ident[:4] in _BITCODE_MAGIC:
            raise KasaliasError(f"{path}: LLVM bitcode (an LTO object), not ELF; use the linked .ko")
        if ident[:4] != b"\x7fELF":
            raise KasaliasError(f"{path}: not a readable ELF file (bad magic)")
        if len(ident) < 64:
            raise KasaliasError(f"{path}: not a readable ELF file (truncated header)")
        if ident[4] != 2 or ident[5] != 1:
            raise KasaliasError(f"{path}: only 64-bit little-endian ELF is supported")
        (e_type, _machine, _version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum,
         shentsize, shnum, shstrndx) = _EHDR.unpack_from(ident, 16)
        if shoff == 0:
            raise KasaliasError(f"{path}: no section headers")
        if shentsize != _SHDR.size:
            raise KasaliasError(f"{path}: not a readable ELF file (section header size {shentsize})")
        f.seek(shoff)
        first = f.read(_SHDR.size)
        if len(first) < _SHDR.size:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        h0 = _SHDR.unpack(first)
        if shnum == 0:
            shnum = h0[5]  # more than 0xff00 sections: the count is in section 0's sh_size
        if shstrndx == SHN_XINDEX:
            shstrndx = h0[6]
        table = first + f.read(_SHDR.size * (shnum - 1))
        if len(table) < _SHDR.size * shnum:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        raw = [_SHDR.unpack_from(table, i * _SHDR.size) for i in range(shnum)]
        if shstrndx >= shnum:
            raise KasaliasError(f"{path}: not a readable ELF file (bad section name table index)")
        _n, _t, _fl, _a, stroff, strsize, *_rest = raw[shstrndx]
        f.seek(stroff)
        names = f.read(strsize)
        if len(names) < strsize:
            raise KasaliasError(f"{path}: truncated file (section names)")
        sections = []
        for i, (name, stype, flags, addr, offset, size, link, info, _align, entsize) in enumerate(raw):
            end = names.find(b"\0", name)
            sections.append(Section(i, names[name:end].decode("utf-8", "surrogateescape"), stype, flags, addr,
                                    offset, size, entsize, link, info))
        return sections, e_type == 1

    @property
    def elf(self) -> object:
        """pyelftools' view of the file, only where kasalias needs it (compressed sections)."""
        if self._elf is None:
            from elftools.elf.elffile import ELFFile

            self._elf = ELFFile(self._file)
        return self._elf

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def use_symbols(self, symbols: list[Symbol]) -> None:
        """The symbols of this same file, read before (by another ElfImage of it)."""
        self._symbols = symbols

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
