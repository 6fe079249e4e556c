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

import bisect
import os
import struct
from collections import namedtuple
from typing import TYPE_CHECKING

from kasalias.errors import KasaliasError
from kasalias.fsutil import close_mapping, open_input

if TYPE_CHECKING:
    import mmap
    from typing import BinaryIO, Iterable, Iterator, NamedTuple

    class _SymbolFields(NamedTuple):
        index: int  # type: ignore[assignment]  # the .symtab index (shadows tuple.index on purpose)
        name: str
        value: int
        size: int
        type: int
        bind: int
        shndx: int
        letter: str
        group: int
else:  # 'index' shadows tuple.index on purpose: the .symtab index
    _SymbolFields = namedtuple("_SymbolFields", "index name value size type bind shndx letter group")

# kasalias' ELF constants: the other modules import them from here.
STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STV_HIDDEN = 2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE, STT_COMMON, STT_TLS = 0, 1, 2, 3, 4, 5, 6
STT_GNU_IFUNC = 10
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFF2, 0xFFFF
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHF_COMPRESSED = 0x800
SHT_RELA, SHT_NOTE, SHT_NOBITS, SHT_REL = 4, 7, 8, 9
SHT_GROUP, SHT_SYMTAB_SHNDX, SHT_LLVM_ADDRSIG = 17, 18, 0x6FFF4C03
ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
NT_GNU_BUILD_ID = 3
EM_X86_64, EM_AARCH64 = 62, 183  # e_machine
MACHINES = {EM_X86_64: "x86_64", EM_AARCH64: "arm64"}
_MAX_ALIGN = 1 << 32  # far above any kernel section's (a page, 2 MiB for some data)
_MAX_NOBITS = 1 << 40  # a .bss larger than this is a corrupted header, not a kernel
# arm64 links some objects with every symbol renamed (objcopy --prefix-symbols): the KVM
# hypervisor (__kvm_nvhe_) and early boot code (__pi_, also riscv); their DWARF keeps the C name.
RENAMED_OBJECT_PREFIXES = ("__kvm_nvhe_", "__pi_")
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_SHDR = ELF64_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
ELF64_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size

# binutils' (2.3x and later) table of section-name prefixes with a fixed letter
# (bfd/syms.c stt[]); every other section gets its letter from its flags.
_COFF_SECTION_TYPES = ((".drectve", "i"), (".edata", "e"), (".idata", "i"), (".pdata", "p"))
_DEBUG_PREFIXES = (".debug", ".gnu.debuglto_.debug_", ".gnu.linkonce.wi.", ".zdebug", ".line", ".stab")


def base_name(name: str) -> str:
    """The C identifier a symbol was made from: C names have no dots, compiler
    suffixes (``.isra.0``, ``.constprop.1``, ``.part.0``, ``.cold``,
    ``.llvm.<hash>``) and GCC's local-static numbers (``count.2``) do; the
    prefix of a renamed object (``__kvm_nvhe_``, ``__pi_``) is not in DWARF."""
    name = name.split(".", 1)[0]
    for prefix in RENAMED_OBJECT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class Section:
    """One section header (read-only by convention)."""

    __slots__ = ("index", "name", "type", "flags", "addr", "offset", "size", "entsize", "link", "info", "align",
                 "name_offset")

    def __init__(self, index: int, name: str, type: int, flags: int, addr: int, offset: int, size: int,
                 entsize: int, link: int, info: int, align: int = 1, name_offset: int = 0) -> None:
        self.index, self.name, self.type, self.flags, self.addr = index, name, type, flags, addr
        self.offset, self.size, self.entsize, self.link, self.info = offset, size, entsize, link, info
        self.align, self.name_offset = align, name_offset  # sh_addralign, sh_name

    def __repr__(self) -> str:
        return f"Section({self.index}, {self.name!r})"

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def is_text(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


class Symbol(_SymbolFields):
    """One .symtab entry; ``group`` is the index of its STT_FILE group (-1: none).

    A named tuple: a vmlinux has ~200,000 symbols, and a tuple is made three
    times faster than a frozen dataclass instance."""

    __slots__ = ()

    @property
    def is_local(self) -> bool:
        return self.bind == STB_LOCAL

    @property
    def is_text(self) -> bool:
        """A function, by its ELF type: the nm letter says only whether its section is
        executable, and Linux 7.2's x86 .data is (every object in it prints 't')."""
        return self.type == STT_FUNC or self.type == STT_GNU_IFUNC


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


def is_llvm_bitcode(path: str | os.PathLike[str]) -> bool:
    try:
        with open_input(path) as f:
            return f.read(4) in _BITCODE_MAGIC
    except (OSError, KasaliasError):
        return False


class ElfImage:
    """An ELF file opened for reading: header, sections, symbols, raw section bytes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: BinaryIO = open_input(self.path)
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
        self._mapped: mmap.mmap | None = None  # the whole file (_map)

    def _read_headers(self) -> tuple[list[Section], bool]:
        """ELF header and section headers. Read with struct rather than pyelftools: importing
        pyelftools and setting up its ELFFile cost more than a module step's work on a
        module (NOTES.md, "Module writer")."""
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
        (e_type, machine, _version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum,
         shentsize, shnum, shstrndx) = _EHDR.unpack_from(ident, 16)
        if machine not in MACHINES:
            raise KasaliasError(f"{path}: ELF machine {machine} is not one kasalias knows "
                                f"({', '.join(MACHINES.values())})")
        if e_type not in (ET_REL, ET_EXEC, ET_DYN):  # arm64 links vmlinux as a PIE (ET_DYN)
            raise KasaliasError(f"{path}: ELF type {e_type} is neither a relocatable object nor an executable")
        if shoff == 0:
            raise KasaliasError(f"{path}: no section headers")
        if shentsize != _SHDR.size:
            raise KasaliasError(f"{path}: not a readable ELF file (section header size {shentsize})")
        file_size = os.fstat(f.fileno()).st_size
        if shoff + _SHDR.size > file_size:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        f.seek(shoff)
        first = f.read(_SHDR.size)
        if len(first) < _SHDR.size:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        h0 = _SHDR.unpack(first)
        if shnum == 0:
            shnum = h0[5]  # more than 0xff00 sections: the count is in section 0's sh_size
        if shstrndx == SHN_XINDEX:
            shstrndx = h0[6]
        if shoff + _SHDR.size * shnum > file_size:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        table = first + f.read(_SHDR.size * (shnum - 1))
        if len(table) < _SHDR.size * shnum:
            raise KasaliasError(f"{path}: truncated file (section headers)")
        raw = [_SHDR.unpack_from(table, i * _SHDR.size) for i in range(shnum)]
        for i, (_n, stype, _fl, _a, offset, size, _l, _i, align, _e) in enumerate(raw):
            # Every offset and size checked once here: what reads a section can trust them.
            if i and stype != SHT_NOBITS and offset + size > file_size:
                raise KasaliasError(f"{path}: section {i} lies outside the file (truncated or corrupted)")
            if align & (align - 1) or align > _MAX_ALIGN or (stype == SHT_NOBITS and size > _MAX_NOBITS):
                raise KasaliasError(f"{path}: section {i} has a corrupted header (alignment {align}, size {size})")
        if shstrndx >= shnum:
            raise KasaliasError(f"{path}: not a readable ELF file (bad section name table index)")
        _n, _t, _fl, _a, stroff, strsize, *_rest = raw[shstrndx]
        f.seek(stroff)
        names = f.read(strsize)
        if len(names) < strsize:
            raise KasaliasError(f"{path}: truncated file (section names)")
        sections = []
        for i, (name, stype, flags, addr, offset, size, link, info, align, entsize) in enumerate(raw):
            end = names.find(b"\0", name)
            if end < 0:
                raise KasaliasError(f"{path}: section {i} has no name in the section name table")
            sections.append(Section(i, names[name:end].decode("utf-8", "surrogateescape"), stype, flags, addr,
                                    offset, size, entsize, link, info, align, name))
        self.header = ident
        return sections, e_type == ET_REL

    @property
    def elf(self) -> object:
        """pyelftools' view of the file, only where kasalias needs it (compressed sections)."""
        if self._elf is None:
            from elftools.elf.elffile import ELFFile

            self._elf = ELFFile(self._file)
        return self._elf

    def close(self) -> None:
        close_mapping(self._mapped)
        self._mapped = None
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
        """Every .symtab entry's address (section symbols included), for applying relocations.
        st_shndx from SHN_LORESERVE up is never a section: SHN_XINDEX takes the index from
        .symtab_shndx (a ThinLTO vmlinux.o of 7.3 has 79,232 sections: its DWARF addresses
        are relocated against section symbols beyond 0xff00), SHN_ABS is the value itself."""
        bases, nsec = self.section_bases, len(self.sections)
        xindex = self._extended_indices(self.symtab)
        out = []
        for i, (_n, _i, _o, shndx, value, _s) in enumerate(ELF64_SYM.iter_unpack(self.section_data(self.symtab))):
            if shndx >= SHN_LORESERVE:
                shndx = xindex[i] if shndx == SHN_XINDEX and xindex is not None else nsec
            out.append(bases[shndx] + value if shndx < nsec else value)
        return out

    @property
    def machine(self) -> int:
        """e_machine (one of MACHINES: the header was checked)."""
        return int.from_bytes(self.header[18:20], "little")

    def section_by_name(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def fileno(self) -> int:
        return self._file.fileno()

    def _map(self) -> mmap.mmap | bytes:
        """The whole file, mapped (read-only): a module writer and its check read all of it,
        and copying it first would cost more than the rest of their work."""
        if self._mapped is None:
            size = os.fstat(self.fileno()).st_size
            if not size:
                return b""  # an empty file cannot be mapped
            import mmap  # a module step that writes nothing new never maps a file

            self._mapped = mmap.mmap(self.fileno(), size, access=mmap.ACCESS_READ)
        return self._mapped

    def section_view(self, sec: Section) -> memoryview:
        """A section's bytes as a view of the mapped file, not a copy (empty for SHT_NOBITS).
        Views must be dropped before close()."""
        if sec.type == SHT_NOBITS:
            return memoryview(b"")
        data = self._map()
        if sec.offset + sec.size > len(data):
            raise KasaliasError(f"{self.path}: truncated file (section {sec.name})")
        return memoryview(data)[sec.offset:sec.offset + sec.size]

    def section_data(self, sec: Section) -> bytes:
        if sec.type == SHT_NOBITS:
            return b""
        data = os.pread(self._file.fileno(), sec.size, sec.offset)  # one system call, no buffering
        if len(data) != sec.size:
            raise KasaliasError(f"{self.path}: truncated file (section {sec.name})")
        return data

    def holds(self, offset: int, data: bytes | bytearray | memoryview) -> bool:
        """Whether the file holds exactly ``data`` at ``offset`` (compared in place)."""
        mapped = self._map()
        if offset + len(data) > len(mapped):
            return False
        # find() over a window of the needle's own length: one comparison, at memcmp speed.
        return not data or mapped.find(data, offset, offset + len(data)) == offset

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
        # Decoded once as Latin-1 (one character per byte: offsets stay valid), names are slices
        # of one str instead of one decode per symbol; a kernel's names are ASCII, where that is
        # the UTF-8 decoding already.
        strings = strtab.decode("latin-1")
        ascii = strtab.isascii()
        find = strings.find
        # The letter depends on st_info and the section alone: a few dozen combinations.
        letter_of: dict[int, str] = {}
        new = tuple.__new__  # what Symbol(...) calls, without its Python-level __new__
        out: list[Symbol] = []
        append = out.append
        group = -1
        entries = ELF64_SYM.iter_unpack(memoryview(data)[24:])  # entry 0 is the null symbol
        for index, (st_name, st_info, _other, shndx, value, size) in enumerate(entries, 1):
            stype = st_info & 0xF
            if stype == STT_FILE:
                group += 1
                continue
            if stype == STT_SECTION:
                continue
            key = st_info | shndx << 8
            if shndx == SHN_XINDEX and xindex is not None:
                shndx = xindex[index]
                key = st_info | shndx << 8 | 1 << 40  # a section, even at 0xfff1 (SHN_ABS)
            end = find("\0", st_name)
            if end < 0:
                raise KasaliasError(f"{self.path}: malformed .symtab string table")
            name = strings[st_name:end]
            if not ascii:
                name = name.encode("latin-1").decode("utf-8", "surrogateescape")
            bind = st_info >> 4
            letter = letter_of.get(key)
            if letter is None:
                letter = letter_of[key] = _letter(stype, bind, shndx, letters, nsec, key >> 40)
            append(new(Symbol, (index, name, value, size, stype, bind, shndx, letter,
                                group if bind == STB_LOCAL else -1)))
        return iter(out)

    def symbols_at(self, indices: Iterable[int]) -> list[Symbol]:
        """The symbols at these .symtab indices (in index order), each as ``symbols`` makes it:
        taken from ``symbols`` if they were read, else decoded alone. After the analysis has
        counted names, it needs the symbols of a module's duplicated names, a fifth of its
        kallsyms-visible ones."""
        wanted = sorted(set(indices))
        if self._symbols is not None:
            keep = set(wanted)
            return [s for s in self._symbols if s.index in keep]
        symtab = self.symtab
        if symtab.link >= len(self.sections):
            raise KasaliasError(f"{self.path}: .symtab has a bad string table link")
        strtab = self.section_data(self.sections[symtab.link])
        data = self.section_data(symtab)
        if symtab.entsize != 24 or len(data) % 24 or (wanted and not 0 < wanted[0] <= wanted[-1] < len(data) // 24):
            raise KasaliasError(f"{self.path}: malformed .symtab")
        nsec = len(self.sections)
        xindex = self._extended_indices(symtab)
        files = _file_symbol_indices(data)
        entries = []
        for index in wanted:
            st_name, st_info, _other, shndx, value, size = ELF64_SYM.unpack_from(data, 24 * index)
            if st_info & 0xF in (STT_FILE, STT_SECTION):
                raise KasaliasError(f"{self.path}: symbol {index} is a file or section symbol")
            extended = shndx == SHN_XINDEX and xindex is not None
            if extended:
                shndx = xindex[index]  # type: ignore[index]
            entries.append((index, st_name, st_info, shndx, extended, value, size))
        # The letters of the sections these symbols are in alone: a module has dozens of
        # sections and a few symbols of duplicated names (letters of all: half the time here).
        used = {e[3] for e in entries}
        letters = [section_letter(s) if s.index in used else "?" for s in self.sections]
        out: list[Symbol] = []
        for index, st_name, st_info, shndx, extended, value, size in entries:
            stype, bind = st_info & 0xF, st_info >> 4
            end = strtab.find(b"\0", st_name)
            if end < 0:
                raise KasaliasError(f"{self.path}: malformed .symtab string table")
            name = strtab[st_name:end].decode("utf-8", "surrogateescape")
            group = bisect.bisect_left(files, index) - 1 if bind == STB_LOCAL else -1
            out.append(Symbol(index, name, value, size, stype, bind, shndx,
                              _letter(stype, bind, shndx, letters, nsec, extended), group))
        return out

    def _extended_indices(self, symtab: Section) -> tuple[int, ...] | None:
        """SHT_SYMTAB_SHNDX: section indices beyond 0xff00 (vmlinux.o with many sections)."""
        for s in self.sections:
            if s.type == 18 and s.link == symtab.index:
                return tuple(v for (v,) in struct.iter_unpack("<I", self.section_data(s)))
        return None

    def hidden_symbols(self) -> frozenset[int]:
        """The indices of the STV_HIDDEN symbols (st_other's low bits 2): in an executable the
        linker has made them local, ThinLTO's promoted globals among them."""
        others = self.section_data(self.symtab)[5::24]
        return frozenset(i for i, v in enumerate(others) if v & 3 == STV_HIDDEN)

    def file_groups(self) -> list[str]:
        """Basenames of the STT_FILE symbols, in symtab order (index = Symbol.group)."""
        symtab = self.symtab
        strtab = self.section_data(self.sections[symtab.link])
        data = self.section_data(symtab)
        names = []
        for i in _file_symbol_indices(data):
            (st_name,) = _ST_NAME.unpack_from(data, 24 * i)
            names.append(strtab[st_name:strtab.find(b"\0", st_name)].decode("utf-8", "surrogateescape"))
        return names


def _file_symbol_indices(symtab: bytes) -> list[int]:
    """The .symtab indices of the STT_FILE symbols, in order. Every symbol's st_info byte is
    marked 1 where it is an STT_FILE: the few thousand file symbols are then found by
    bytes.find, not by unpacking all symbols."""
    marks = symtab[4::24].translate(_FILE_MARKS)
    out = []
    i = marks.find(1)
    while i >= 0:
        out.append(i)
        i = marks.find(1, i + 1)
    return out


def _letter(stype: int, bind: int, shndx: int, letters: list[str], nsec: int, extended: int = 0) -> str:
    """nm's letter. ``extended``: ``shndx`` came from .symtab_shndx, so it is a section even
    where it equals a reserved value (section 0xfff1 of a file with more sections is no SHN_ABS)."""
    reserved = shndx >= SHN_LORESERVE and not extended
    if reserved and shndx == SHN_COMMON:
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
    if reserved and shndx == SHN_ABS:
        c = "a"
    elif not reserved and shndx < nsec:
        c = letters[shndx]
    else:
        c = "?"
    return c.upper() if bind == STB_GLOBAL else c


# file_groups(): st_info byte -> 1 for STT_FILE, else 0 (a bytes.translate table).
_FILE_MARKS = bytes(1 if info & 0xF == STT_FILE else 0 for info in range(256))
_ST_NAME = struct.Struct("<I")
