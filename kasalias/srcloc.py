"""Source identity of symbols from DWARF: the file:line that declares a symbol and the
compilation unit (CU) that emitted the copy.

The CU of a function comes from ``.debug_aranges`` (or the CU's own address
ranges); the CU of a static variable from the STT_FILE group it sits in, whose
functions are in that same CU. Within the CU the declaration is found by name:
a C translation unit cannot hold two file-scope statics of one name, so the
name is exact for functions, their compiler clones (``foo.isra.0``) and
file-scope data; GCC's numbered function-local statics (``count.1``) are
matched by their ``DW_OP_addr`` location.

Relocatable inputs (vmlinux.o, module objects, .ko) carry unrelocated DWARF;
their relocations are applied here against the synthetic section addresses
of :meth:`ElfImage.section_bases`.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
import posixpath
import struct
from dataclasses import dataclass
from typing import Iterable

from elftools.common.exceptions import DWARFError, ELFError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

from kasalias.dwarfscan import CUScanner, Entry, read_cstring
from kasalias.errors import KasaliasError
from kasalias.symbols import ElfImage, Symbol

log = logging.getLogger(__name__)

SHF_COMPRESSED = 0x800
SHT_RELA = 4
_DEBUG_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_line_str",
                   ".debug_aranges", ".debug_addr", ".debug_str_offsets", ".debug_ranges", ".debug_rnglists")
# Absolute relocation types (x86-64, AArch64) and their widths; DWARF uses no others.
_ABS_RELOCS = {1: 8, 10: 4, 11: 4, 257: 8, 258: 4, 0: 0}


@dataclass(frozen=True, order=True)
class SourceLoc:
    """Where a symbol comes from: its declaration and the CU that emitted it."""

    decl_file: str
    decl_line: int
    cu: str


def base_name(name: str) -> str:
    """The C identifier a symbol was made from: C names have no dots, compiler
    suffixes (``.isra.0``, ``.constprop.1``, ``.part.0``, ``.cold``,
    ``.llvm.<hash>``) and GCC's local-static numbers (``count.2``) do."""
    return name.split(".", 1)[0]


class PathMapper:
    """Turns DWARF paths into paths relative to the source tree, however the tree was built."""

    def __init__(self, srctree: str | None = None, objtree: str | None = None) -> None:
        self.srctree = _norm(srctree) if srctree else None
        self.objtree = _norm(objtree) if objtree else None

    def relative(self, path: str, comp_dir: str) -> str:
        full = _norm(path if posixpath.isabs(path) else posixpath.join(comp_dir, path))
        for root in (self.srctree, self.objtree, _norm(comp_dir) if comp_dir else None):
            if root and full.startswith(root.rstrip("/") + "/"):
                return full[len(root.rstrip("/")) + 1:]
        if not posixpath.isabs(path):
            return _norm(path).lstrip("./")
        return full.lstrip("/")

    def infer_srctree(self, cu_paths: Iterable[tuple[str, str]]) -> None:
        """Without --srctree: the kernel's own init/main.c marks the top of the tree."""
        if self.srctree:
            return
        for name, comp_dir in cu_paths:
            full = _norm(name if posixpath.isabs(name) else posixpath.join(comp_dir, name))
            if full.endswith("/init/main.c"):
                self.srctree = full[: -len("/init/main.c")] or "/"
                log.debug("srctree inferred from DWARF: %s", self.srctree)
                return


def _norm(p: str) -> str:
    return posixpath.normpath(p) if p else p


@dataclass
class _CU:
    offset: int
    unit: CompileUnit
    name: str
    comp_dir: str
    str_offsets_base: int
    addr_base: int
    stmt_list: int | None
    ranges: list[tuple[int, int]]


class DwarfSource:
    """The DWARF of one image, opened for source-identity lookups."""

    def __init__(self, image: ElfImage, paths: PathMapper) -> None:
        self.image = image
        self.paths = paths
        self._data = self._load_sections()
        if ".debug_info" not in self._data or ".debug_abbrev" not in self._data:
            raise KasaliasError(f"{image.path}: no DWARF debug information (.debug_info); "
                                "build with CONFIG_DEBUG_INFO")
        try:
            self.dwarf = self._dwarfinfo()
            self.cus = self._read_cus()
        except (DWARFError, ELFError, struct.error, IndexError, KeyError, ValueError) as e:
            raise KasaliasError(f"{image.path}: malformed DWARF ({e})") from None
        self._cu_offsets = [c.offset for c in self.cus]
        self._aranges = self._read_aranges()
        self._scanners: dict[int, CUScanner] = {}
        self._files: dict[int, list[str]] = {}

    # -- loading -------------------------------------------------------------------------

    def _load_sections(self) -> dict[str, bytes]:
        image = self.image
        out: dict[str, bytes] = {}
        symvals: list[int] | None = None
        for sec in image.sections:
            if sec.name not in _DEBUG_SECTIONS:
                continue
            if sec.flags & SHF_COMPRESSED:
                data = bytes(image.elf.get_section(sec.index).data())
            else:
                data = image.section_data(sec)
            if image.is_relocatable:
                for rela in image.sections:
                    if rela.type == SHT_RELA and rela.info == sec.index:
                        if symvals is None:
                            symvals = image.raw_symbol_values()
                        data = _relocate(data, image.section_data(rela), symvals, image, sec.name)
            out[sec.name] = data
        return out

    def _dwarfinfo(self) -> DWARFInfo:
        def desc(name: str) -> DebugSectionDescriptor | None:
            data = self._data.get(name)
            if data is None:
                return None
            return DebugSectionDescriptor(io.BytesIO(data), name, 0, len(data), 0)

        config = DwarfConfig(little_endian=True, machine_arch=self.image.elf.get_machine_arch(),
                             default_address_size=8)
        return DWARFInfo(config, desc(".debug_info"), None, desc(".debug_abbrev"), None, None,
                         desc(".debug_str"), None, desc(".debug_ranges"), desc(".debug_line"), None, None,
                         desc(".debug_addr"), desc(".debug_str_offsets"), desc(".debug_line_str"), None,
                         desc(".debug_rnglists"), None, None, None)

    def _read_cus(self) -> list[_CU]:
        cus = []
        for cu in self.dwarf.iter_CUs():
            top = cu.get_top_DIE()
            a = top.attributes

            def text(key: str) -> str:
                v = a[key].value if key in a else b""
                return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)

            ranges: list[tuple[int, int]] = []
            if "DW_AT_low_pc" in a and "DW_AT_high_pc" in a:
                lo, hi = a["DW_AT_low_pc"].value, a["DW_AT_high_pc"]
                ranges.append((lo, hi.value if hi.form == "DW_FORM_addr" else lo + hi.value))
            cus.append(_CU(cu.cu_offset, cu, text("DW_AT_name"), text("DW_AT_comp_dir"),
                           a["DW_AT_str_offsets_base"].value if "DW_AT_str_offsets_base" in a else 8,
                           a["DW_AT_addr_base"].value if "DW_AT_addr_base" in a else 8,
                           a["DW_AT_stmt_list"].value if "DW_AT_stmt_list" in a else None, ranges))
        return cus

    def _read_aranges(self) -> tuple[list[int], list[int], list[int]]:
        """(starts, ends, cu offsets), sorted by start. .debug_aranges parsed with struct:
        pyelftools builds a construct object per entry, far slower on a vmlinux."""
        entries: list[tuple[int, int, int]] = []
        data = self._data.get(".debug_aranges")
        covered: set[int] = set()
        pos = 0
        while data is not None and pos + 12 <= len(data):
            (length,) = struct.unpack_from("<I", data, pos)
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from("<Q", data, pos + 4)
                hdr, end = pos + 12, pos + 12 + length
                (cu_off,) = struct.unpack_from("<Q", data, hdr + 2)
                hdr += 10
            else:
                hdr, end = pos + 4, pos + 4 + length
                (cu_off,) = struct.unpack_from("<I", data, hdr + 2)
                hdr += 6
            addr_size, _seg = data[hdr], data[hdr + 1]
            hdr += 2
            tup = 2 * addr_size
            p = pos + ((hdr - pos + tup - 1) // tup) * tup
            fmt = "<QQ" if addr_size == 8 else "<II"
            while p + tup <= end:
                start, size = struct.unpack_from(fmt, data, p)
                p += tup
                if start == 0 and size == 0:
                    break
                if size:
                    entries.append((start, start + size, cu_off))
            covered.add(cu_off)
            pos = end
        for cu in self.cus:  # CUs that .debug_aranges leaves out (clang emits none)
            if cu.offset not in covered:
                entries.extend((lo, hi, cu.offset) for lo, hi in cu.ranges if hi > lo)
        entries.sort()
        return [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]

    # -- lookups -------------------------------------------------------------------------

    def cu_at_address(self, addr: int) -> _CU | None:
        starts, ends, offs = self._aranges
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < ends[i]:
            return self._cu_by_offset(offs[i])
        return None

    def _cu_by_offset(self, offset: int) -> _CU | None:
        i = bisect.bisect_right(self._cu_offsets, offset) - 1
        return self.cus[i] if i >= 0 else None

    def _scanner(self, cu: _CU) -> CUScanner:
        sc = self._scanners.get(cu.offset)
        if sc is None:
            info = self._data[".debug_info"]
            sc = CUScanner(cu.unit, info, lambda v, form, cu=cu: self._string(v, form, cu),
                           lambda idx, cu=cu: self._address(idx, cu))
            self._scanners[cu.offset] = sc
        return sc

    def _string(self, value: int, form: str, cu: _CU) -> bytes:
        if form == "DW_FORM_line_strp":
            return read_cstring(self._data.get(".debug_line_str", b""), value)
        if form.startswith("DW_FORM_strx") or form == "DW_FORM_GNU_str_index":
            offs = self._data.get(".debug_str_offsets", b"")
            size = 8 if cu.unit.dwarf_format() == 64 else 4
            value = int.from_bytes(offs[cu.str_offsets_base + value * size:][:size], "little")
        return read_cstring(self._data.get(".debug_str", b""), value)

    def _address(self, index: int, cu: _CU) -> int:
        data = self._data.get(".debug_addr", b"")
        size = cu.unit["address_size"]
        return int.from_bytes(data[cu.addr_base + index * size:][:size], "little")

    def cu_path(self, cu: _CU) -> str:
        return self.paths.relative(cu.name, cu.comp_dir)

    def _file_names(self, cu: _CU) -> list[str]:
        """The CU's line-table file names, indexed the DWARF 5 way (0-based)."""
        names = self._files.get(cu.offset)
        if names is None:
            names = []
            lp = self.dwarf.line_program_for_CU(cu.unit) if cu.stmt_list is not None else None
            if lp is not None:
                v5 = lp["version"] >= 5
                dirs = [d.decode("utf-8", "surrogateescape") if isinstance(d, bytes) else str(d)
                        for d in lp["include_directory"]]
                for fe in lp["file_entry"]:
                    name = fe.name.decode("utf-8", "surrogateescape")
                    di = fe.dir_index
                    if v5:
                        d = dirs[di] if di < len(dirs) else cu.comp_dir
                    else:
                        d = cu.comp_dir if di == 0 else dirs[di - 1] if di - 1 < len(dirs) else ""
                    full = name if posixpath.isabs(name) else posixpath.join(d or cu.comp_dir, name)
                    names.append(self.paths.relative(full, cu.comp_dir))
                if not v5:
                    names.insert(0, "")  # DWARF 4 numbers files from 1
            self._files[cu.offset] = names
        return names

    def _declaration(self, entry: Entry, cu: _CU) -> tuple[str, int] | None:
        """decl_file:decl_line of an entry, following abstract origins and specifications."""
        for _ in range(8):
            if entry.decl_line is not None and entry.decl_file is not None:
                files = self._file_names(cu)
                if entry.decl_file < len(files):
                    return files[entry.decl_file], entry.decl_line
                return None
            if entry.origin is None:
                return None
            target_cu = self._cu_by_offset(entry.origin)
            if target_cu is None:
                return None
            nxt = self._scanner(target_cu).entry_at(entry.origin)
            if nxt is None:
                return None
            entry, cu = nxt, target_cu
        return None

    def _entry_name(self, entry: Entry, cu: _CU) -> bytes | None:
        for _ in range(8):
            if entry.name is not None or entry.origin is None:
                return entry.name
            target_cu = self._cu_by_offset(entry.origin)
            nxt = self._scanner(target_cu).entry_at(entry.origin) if target_cu else None
            if nxt is None:
                return None
            entry, cu = nxt, target_cu
        return None

    # -- the job ---------------------------------------------------------------------------

    def locate(self, targets: list[Symbol]) -> dict[int, SourceLoc]:
        """Source identity of each target symbol that can be found, by symbol index."""
        image = self.image
        self.paths.infer_srctree((c.name, c.comp_dir) for c in self.cus)
        by_cu: dict[int, list[Symbol]] = {}
        unplaced: list[Symbol] = []
        group_cu = self._group_cus(targets)
        for sym in targets:
            cu = self.cu_at_address(image.address(sym)) if sym.is_text else None
            if cu is None and sym.group in group_cu:
                cu = group_cu[sym.group]
            if cu is None and len(self.cus) == 1:
                cu = self.cus[0]
            if cu is None:
                unplaced.append(sym)
                continue
            by_cu.setdefault(cu.offset, []).append(sym)
        if unplaced:
            self._place_by_search(unplaced, by_cu)
        result: dict[int, SourceLoc] = {}
        for cu_offset in sorted(by_cu):
            cu = self._cu_by_offset(cu_offset)
            assert cu is not None
            result.update(self._locate_in_cu(cu, by_cu[cu_offset]))
        return result

    def _group_cus(self, targets: list[Symbol]) -> dict[int, _CU]:
        """The CU of each STT_FILE group holding a data target: that of a function in the group."""
        wanted = {s.group for s in targets if not s.is_text and s.group >= 0}
        found: dict[int, _CU] = {}
        if not wanted:
            return found
        for sym in self.image.symbols:
            if sym.group in wanted and sym.group not in found and sym.is_text:
                cu = self.cu_at_address(self.image.address(sym))
                if cu is not None:
                    found[sym.group] = cu
        return found

    def _place_by_search(self, syms: list[Symbol], by_cu: dict[int, list[Symbol]]) -> None:
        """Last resort for data in groups without functions: CUs whose name matches the
        STT_FILE basename, checked by finding the variable's address in them."""
        groups = self.image.file_groups()
        for sym in syms:
            basename = groups[sym.group] if 0 <= sym.group < len(groups) else None
            addr = self.image.address(sym)
            for cu in self.cus:
                if basename is not None and posixpath.basename(cu.name) != basename:
                    continue
                entries = self._scanner(cu).scan({base_name(sym.name).encode()}, "." in sym.name)
                if any(e.location == addr for e in entries):
                    by_cu.setdefault(cu.offset, []).append(sym)
                    break
            else:
                log.debug("%s: no compilation unit found for %s", self.image.path, sym.name)

    def _locate_in_cu(self, cu: _CU, syms: list[Symbol]) -> dict[int, SourceLoc]:
        names = {base_name(s.name).encode() for s in syms}
        local_statics = any(not s.is_text and "." in s.name for s in syms)
        entries = self._scanner(cu).scan(names, local_statics)
        by_pc: dict[int, Entry] = {}
        by_loc: dict[int, Entry] = {}
        by_name: dict[tuple[bytes, bool], list[Entry]] = {}
        for e in entries:
            if e.is_subprogram and e.low_pc is not None:
                by_pc.setdefault(e.low_pc, e)
            if not e.is_subprogram and e.location is not None:
                by_loc.setdefault(e.location, e)
            if e.name is not None and (e.is_subprogram or e.file_scope):
                by_name.setdefault((e.name, e.is_subprogram), []).append(e)
        cu_path = self.cu_path(cu)
        out: dict[int, SourceLoc] = {}
        for sym in syms:
            base = base_name(sym.name).encode()
            addr = self.image.address(sym)
            entry = (by_pc if sym.is_text else by_loc).get(addr)
            if entry is not None and self._entry_name(entry, cu) != base:
                entry = None
            if entry is None and (sym.is_text or "." not in sym.name):
                candidates = by_name.get((base, sym.is_text), [])
                # A definition over a declaration; all candidates share the name in one CU.
                candidates = sorted(candidates, key=lambda e: (e.declaration, e.decl_line is None))
                entry = candidates[0] if candidates else None
            decl = self._declaration(entry, cu) if entry is not None else None
            if decl is None:
                log.debug("%s: no DWARF declaration for %s in %s", self.image.path, sym.name, cu_path)
                continue
            out[sym.index] = SourceLoc(decl[0], decl[1], cu_path)
        return out


def _relocate(data: bytes, rela: bytes, symvals: list[int], image: ElfImage, name: str) -> bytes:
    """Apply a .rela section's absolute relocations to a copy of a debug section."""
    if len(rela) % 24:
        raise KasaliasError(f"{image.path}: malformed .rela{name}")
    buf = bytearray(data)
    pack64, pack32 = struct.Struct("<Q").pack_into, struct.Struct("<I").pack_into
    nsym = len(symvals)
    try:
        for off, info, addend in struct.iter_unpack("<QQq", rela):
            rtype, sym = info & 0xFFFFFFFF, info >> 32
            width = _ABS_RELOCS.get(rtype)
            if width == 8:
                pack64(buf, off, (symvals[sym] + addend) & 0xFFFFFFFFFFFFFFFF)
            elif width == 4:
                pack32(buf, off, (symvals[sym] + addend) & 0xFFFFFFFF)
            elif width is None:
                raise KasaliasError(f"{image.path}: unsupported relocation type {rtype} in .rela{name}")
    except (IndexError, struct.error):
        raise KasaliasError(f"{image.path}: malformed .rela{name} (symbol or offset out of range,"
                            f" {nsym} symbols)") from None
    return bytes(buf)


def srctree_of(path: str | os.PathLike[str] | None) -> str | None:
    return os.path.abspath(path) if path else None
