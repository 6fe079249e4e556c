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
import json
import logging
import mmap
import os
import posixpath
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kasalias.dwarfscan import (F_LINE_STRP, F_STRP, F_STRX, F_STRX1, F_STRX2, F_STRX3, F_STRX4, F_GNU_STR_INDEX,
                                Abbrev, Entry, LineFiles, Unit, UnitReader, abbrev_table, cstring,
                                line_table_files, range_list, uint, uleb, units)
from kasalias.errors import KasaliasError
from kasalias.fsutil import close_mapping, read_input, write_text_atomic
from kasalias.series import PREFIX_TWINS
from kasalias.symbols import SHF_COMPRESSED, SHT_RELA, ElfImage, Section, Symbol, base_name

log = logging.getLogger(__name__)

_DEBUG_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_line_str",
                   ".debug_aranges", ".debug_addr", ".debug_str_offsets", ".debug_ranges", ".debug_rnglists")
_ENTRY_NOPS = (0, 8)  # bytes of patchable-function-entry NOPs before a function's DWARF range
_SEARCH_BETWEEN_UNITS = 512  # units between a global variable's neighbours searched for it
_STRX = {F_STRX, F_STRX1, F_STRX2, F_STRX3, F_STRX4, F_GNU_STR_INDEX}
# Absolute relocation types (x86-64, AArch64) and their widths; DWARF uses no others.
_ABS_RELOCS = {1: 8, 10: 4, 11: 4, 257: 8, 258: 4, 0: 0}


@dataclass(frozen=True, order=True)
class SourceLoc:
    """Where a symbol comes from: its declaration and the CU that emitted it."""

    decl_file: str
    decl_line: int
    cu: str


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


class DwarfSource:
    """The DWARF of one image, opened for source-identity lookups."""

    def __init__(self, image: ElfImage, paths: PathMapper, cache: UnitCache | None = None) -> None:
        self.image = image
        self.paths = paths
        self.cache = cache
        self._info_relocs: Relocations | None = None
        self._mapped: mmap.mmap | None = None
        self._data = self._load_sections()
        self._strp = _StringTable(self._searchable(".debug_str"), str(image.path))
        info = self._data.get(".debug_info")
        if info is None or ".debug_abbrev" not in self._data:
            raise KasaliasError(f"{image.path}: no DWARF debug information (.debug_info); "
                                "build with CONFIG_DEBUG_INFO")
        self._info = info
        # As bytes (a few MB): abbreviation tables are matched with regular expressions.
        self._abbrev = bytes(self._data[".debug_abbrev"])
        try:
            if self._info_relocs is not None:
                for u in units(info):  # unit lengths are never relocated; abbreviation offsets are
                    self._info_relocs.apply(u.offset, u.die_offset)
            self.units = [u for u in units(info) if u.unit_type in (1, 3)]  # compile and partial units
        except (IndexError, struct.error) as e:
            raise KasaliasError(f"{image.path}: malformed DWARF ({e})") from None
        self._unit_offsets = [u.offset for u in self.units]
        self._tops: dict[int, Entry] = {}
        self._readers: dict[int, UnitReader] = {}
        self._files: dict[int, LineFiles] = {}
        self._aranges = self._read_aranges()
        self._group_text_units: dict[int, Unit] | None = None

    def close(self) -> None:
        """Drop the caches and unmap the file now: readers refer back to this object (a
        cycle), which would keep a module's DWARF mapped until the garbage collector ran."""
        self._readers.clear()
        self._strp = _StringTable(None, "")
        self._tops.clear()
        self._files.clear()
        self._data.clear()
        self._info = memoryview(b"")
        self._info_relocs = None
        close_mapping(self._mapped)
        self._mapped = None

    def __enter__(self) -> DwarfSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -------------------------------------------------------------------------

    def _load_sections(self) -> dict[str, memoryview]:
        """Debug sections as views of the mapped file; compressed ones decompressed.

        A relocatable file is mapped copy-on-write and relocated in place: only the pages
        that relocations write become the process' own memory. (Read and relocated in a
        copy, amdgpu.ko's 214 MB .debug_info, its 322 MB of relocations and its 170 MB
        .debug_str took 0.9 GB at once, most of 7.2's full analysis peak.)"""
        image = self.image
        out: dict[str, memoryview] = {}
        symvals: list[int] | None = None
        mapped = self._mapped = mmap.mmap(image.fileno(), 0, access=mmap.ACCESS_COPY if image.is_relocatable
                                          else mmap.ACCESS_READ)
        for sec in image.sections:
            if sec.name not in _DEBUG_SECTIONS or sec.type == 8:
                continue
            if sec.flags & SHF_COMPRESSED:
                data = memoryview(bytearray(image.elf.get_section(sec.index).data()))  # type: ignore[attr-defined]
            else:
                if sec.offset + sec.size > len(mapped):
                    raise KasaliasError(f"{image.path}: truncated file (section {sec.name})")
                data = memoryview(mapped)[sec.offset:sec.offset + sec.size]
            if image.is_relocatable:
                for rela in image.sections:
                    if rela.type == SHT_RELA and rela.info == sec.index:
                        if symvals is None:
                            symvals = image.raw_symbol_values()
                        relocs = Relocations(data, memoryview(mapped)[rela.offset:rela.offset + rela.size],
                                             symvals, f"{image.path}: {rela.name}", _offsets_in_order(image, rela))
                        if sec.name == ".debug_info" and relocs.offsets is not None:
                            self._info_relocs = relocs  # fields relocated as they are read
                        else:
                            relocs.apply()
            out[sec.name] = data
        return out

    def _searchable(self, name: str) -> tuple[bytes | mmap.mmap, int, int] | None:
        """A section as (buffer with find(), start, end): the mapped file itself where the
        section is a view of it (a memoryview has no find()), else its bytes."""
        data = self._data.get(name)
        if data is None:
            return None
        sec = self.image.section_by_name(name)
        if self._mapped is not None and data.obj is self._mapped and sec is not None:
            return self._mapped, sec.offset, sec.offset + sec.size
        return bytes(data), 0, len(data)

    # -- units ---------------------------------------------------------------------------

    def _string(self, value: int, form: int, unit: Unit) -> bytes:
        if form == F_STRP:
            return self._strp[value]
        if form == F_LINE_STRP:
            sec = ".debug_line_str"
        else:
            sec = ".debug_str"
            if form in _STRX:
                offs = self._data.get(".debug_str_offsets")
                top = self._tops.get(unit.offset)
                base = top.str_offsets_base if top is not None and top.str_offsets_base is not None else 8
                if offs is None:
                    raise KasaliasError(f"{self.image.path}: DW_FORM_strx without .debug_str_offsets")
                value = uint(offs, base + value * unit.offset_size, unit.offset_size)
        data = self._data.get(sec)
        if data is None or value >= len(data):
            raise KasaliasError(f"{self.image.path}: bad DWARF string offset {value:#x} in {sec}")
        return cstring(data, value)[0]

    def _address(self, index: int, unit: Unit) -> int:
        data = self._data.get(".debug_addr")
        top = self._tops.get(unit.offset)
        base = top.addr_base if top is not None and top.addr_base is not None else 8
        if data is None:
            raise KasaliasError(f"{self.image.path}: DW_FORM_addrx without .debug_addr")
        return uint(data, base + index * unit.addr_size, unit.addr_size)

    def _reader_for(self, unit: Unit, abbrevs: dict[int, Abbrev]) -> UnitReader:
        return UnitReader(unit, self._info, abbrevs, lambda v, f: self._string(v, f, unit),
                          lambda i: self._address(i, unit),
                          self._info_relocs.value_at if self._info_relocs is not None else None, self._strp)

    def top(self, unit: Unit) -> Entry:
        """The unit DIE (name, comp_dir, line table, bases)."""
        e = self._tops.get(unit.offset)
        if e is None:
            reader = self._readers.get(unit.offset)
            if reader is None:  # the abbreviations up to the unit DIE's are enough
                code = uleb(self._info, unit.die_offset)[0]
                reader = self._reader_for(unit, abbrev_table(self._abbrev, unit, upto=code))
            e = reader.unit_entry()
            self._tops[unit.offset] = e
            if e.str_offsets_base not in (None, 8) or e.addr_base not in (None, 8):
                e = self._tops[unit.offset] = reader.unit_entry()  # again, with the unit's own bases
        return e

    def reader(self, unit: Unit) -> UnitReader:
        r = self._readers.get(unit.offset)
        if r is None:
            r = self._readers[unit.offset] = self._reader_for(unit, abbrev_table(self._abbrev, unit))
            self.top(unit)
        return r

    def unit_name(self, unit: Unit) -> tuple[str, str]:
        """(DW_AT_name, DW_AT_comp_dir) of a unit."""
        t = self.top(unit)
        return (_text(t.name), _text(t.comp_dir))

    def unit_path(self, unit: Unit) -> str:
        name, comp_dir = self.unit_name(unit)
        return self.paths.relative(name, comp_dir)

    def _read_aranges(self) -> tuple[list[int], list[int], list[int]]:
        """(starts, ends, unit offsets), sorted by start: .debug_aranges, plus the unit DIE's own
        low/high pc for units it leaves out (clang writes no .debug_aranges)."""
        entries: list[tuple[int, int, int]] = []
        data = self._data.get(".debug_aranges")
        covered: set[int] = set()
        pos = 0
        while data is not None and pos + 12 <= len(data):
            (length,) = struct.unpack_from("<I", data, pos)
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from("<Q", data, pos + 4)
                hdr, end = pos + 12, pos + 12 + length
                (unit_off,) = struct.unpack_from("<Q", data, hdr + 2)
                hdr += 10
            else:
                hdr, end = pos + 4, pos + 4 + length
                (unit_off,) = struct.unpack_from("<I", data, hdr + 2)
                hdr += 6
            addr_size = data[hdr]
            if addr_size not in (4, 8):
                raise KasaliasError(f"{self.image.path}: malformed DWARF (.debug_aranges: address size {addr_size})")
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
                    entries.append((start, start + size, unit_off))
            covered.add(unit_off)
            pos = end
        for unit in self.units:
            if unit.offset not in covered:
                t = self.top(unit)
                if t.ranges is not None:
                    def address(i: int, u: Unit = unit) -> int:
                        return self._address(i, u)

                    entries.extend((lo, hi, unit.offset) for lo, hi in range_list(
                        unit, t, self._data.get(".debug_ranges"), self._data.get(".debug_rnglists"), address))
                elif t.low_pc is not None and t.high_pc is not None:
                    hi = t.low_pc + t.high_pc if t.high_pc_is_offset else t.high_pc
                    if hi > t.low_pc:
                        entries.append((t.low_pc, hi, unit.offset))
        entries.sort()
        return [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]

    def unit_at_address(self, addr: int) -> Unit | None:
        starts, ends, offs = self._aranges
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < ends[i]:
            return self._unit_containing(offs[i])
        return None

    def _unit_containing(self, offset: int) -> Unit | None:
        i = bisect.bisect_right(self._unit_offsets, offset) - 1
        return self.units[i] if i >= 0 and offset < self.units[i].end else None

    def _file_name(self, unit: Unit, index: int) -> str | None:
        """Line-table file ``index`` (as DW_AT_decl_file numbers it), srctree-relative."""
        table = self._files.get(unit.offset)
        if table is None:
            t = self.top(unit)
            _name, comp_dir = self.unit_name(unit)
            line = self._data.get(".debug_line")
            if t.stmt_list is not None and line is not None:
                table = line_table_files(line, t.stmt_list, lambda v, f: self._string(v, f, unit), comp_dir)
            else:
                table = LineFiles(5, [], [])
            self._files[unit.offset] = table
        if table.version < 5:
            index -= 1  # DWARF 2-4 number files from 1
        if not 0 <= index < len(table):
            return None
        fname, di = table.file(index)
        comp_dir = self.unit_name(unit)[1]
        d = table.directory(di) if di < table.directory_count() else comp_dir
        full = fname if posixpath.isabs(fname) else posixpath.join(d or comp_dir, fname)
        return self.paths.relative(full, comp_dir)

    def _follow(self, entry: Entry, unit: Unit) -> tuple[Entry, Unit] | None:
        """The DIE an entry's abstract origin or specification points at."""
        if entry.origin is None:
            return None
        target = self._unit_containing(entry.origin)
        if target is None:
            return None
        nxt = self.reader(target).entry_at(entry.origin)
        return (nxt, target) if nxt is not None else None

    def _declaration(self, entry: Entry, unit: Unit) -> tuple[str, int] | None:
        """decl_file:decl_line of an entry, following abstract origins and specifications."""
        for _ in range(8):
            if entry.decl_line is not None and entry.decl_file is not None:
                path = self._file_name(unit, entry.decl_file)
                return (path, entry.decl_line) if path is not None else None
            nxt = self._follow(entry, unit)
            if nxt is None:
                return None
            entry, unit = nxt
        return None

    def _entry_name(self, entry: Entry, unit: Unit) -> bytes | None:
        for _ in range(8):
            if entry.name is not None:
                return entry.name
            nxt = self._follow(entry, unit)
            if nxt is None:
                return None
            entry, unit = nxt
        return None

    # -- the job ---------------------------------------------------------------------------

    def infer_srctree(self) -> None:
        """Without --srctree: the unit of start_kernel() is init/main.c, at the top of the tree."""
        if self.paths.srctree:
            return
        for sym in self.image.symbols:
            if sym.name == "start_kernel" and sym.is_text:
                unit = self.unit_at_address(self.image.address(sym))
                if unit is not None:
                    self.paths.infer_srctree([self.unit_name(unit)])
                return

    def function_unit(self, addr: int) -> Unit | None:
        """The unit of a function at ``addr``. arm64 kernels are built with
        -fpatchable-function-entry=4,2: the symbol is at two NOPs placed before the code, and
        DWARF's ranges (low_pc, .debug_aranges) begin 8 bytes later."""
        for skip in _ENTRY_NOPS:
            unit = self.unit_at_address(addr + skip)
            if unit is not None:
                return unit
        return None

    def locate(self, targets: list[Symbol]) -> dict[int, SourceLoc]:
        """Source identity of each target symbol that can be found, by symbol index."""
        image = self.image
        self.infer_srctree()
        by_unit: dict[int, list[Symbol]] = {}
        unplaced: list[Symbol] = []
        group_unit = self._group_units(targets)
        for sym in targets:
            unit = self.function_unit(image.address(sym)) if sym.is_text else None
            if unit is None and sym.group in group_unit:
                unit = group_unit[sym.group]
            if unit is None and len(self.units) == 1:
                unit = self.units[0]
            if unit is None:
                unplaced.append(sym)
                continue
            by_unit.setdefault(unit.offset, []).append(sym)
        if unplaced:
            self._place_by_search(unplaced, by_unit)
        result: dict[int, SourceLoc] = {}
        try:
            for offset in sorted(by_unit):
                unit = self._unit_containing(offset)
                assert unit is not None
                result.update(self._locate_in_unit(unit, by_unit[offset]))
        except (IndexError, struct.error) as e:
            raise KasaliasError(f"{image.path}: malformed DWARF ({e})") from None
        return result

    def _group_units(self, targets: list[Symbol]) -> dict[int, Unit]:
        """The unit of each STT_FILE group that holds a data target.

        A group's local functions give it through the address ranges. A group
        whose functions are all global (globals are not grouped) sits, in link
        order, between two groups whose units are known: the unit between
        those that has the group's file name is its unit.
        """
        wanted = {s.group for s in targets if not s.is_text and s.group >= 0}
        found: dict[int, Unit] = {}
        if not wanted:
            return found
        known = self._text_group_units()
        order = sorted(known)
        names = self.image.file_groups()
        for g in sorted(wanted):
            if g in known:
                found[g] = known[g]
                continue
            i = bisect.bisect_left(order, g)
            lo = known[order[i - 1]].offset if i > 0 else -1
            hi = known[order[i]].offset if i < len(order) else 1 << 64
            basename = names[g] if g < len(names) else None
            between = [u for u in self.units[bisect.bisect_right(self._unit_offsets, lo):
                                            bisect.bisect_left(self._unit_offsets, hi)]
                       if posixpath.basename(self.unit_name(u)[0]) == basename]
            if len(between) != 1:  # e.g. a group whose functions are all global or __pfx_ twins
                between = [u for u in self.units if posixpath.basename(self.unit_name(u)[0]) == basename]
            if len(between) == 1:
                found[g] = between[0]
        return found

    def _text_group_units(self) -> dict[int, Unit]:
        """The unit of each STT_FILE group with a local function (by address). Prefix twins
        do not count: objtool appends them to the last group, whatever object they are from."""
        if self._group_text_units is None:
            known: dict[int, Unit] = {}
            for sym in self.image.symbols:
                if (sym.group >= 0 and sym.group not in known and sym.is_text
                        and not sym.name.startswith(PREFIX_TWINS)):
                    unit = self.unit_at_address(self.image.address(sym))
                    if unit is not None:
                        known[sym.group] = unit
            self._group_text_units = known
        return self._group_text_units

    def _place_by_search(self, syms: list[Symbol], by_unit: dict[int, list[Symbol]]) -> None:
        """Last resort, for global data (not in any STT_FILE group), each found by its name and
        address: in the units of its nearest local neighbours in its section, then in every
        unit between those (link order is the order of the units too), then in all units,
        in one walk for all the symbols still unplaced."""
        image = self.image
        locals_by_sec: dict[int, list[tuple[int, int]]] = {}
        for s in image.symbols:
            if s.group >= 0:
                locals_by_sec.setdefault(s.shndx, []).append((s.value, s.group))
        for v in locals_by_sec.values():
            v.sort()
        group_unit = self._text_group_units()
        first: list[tuple[Symbol, list[Unit]]] = []
        between: dict[int, list[Unit]] = {}
        for sym in syms:
            near = locals_by_sec.get(sym.shndx, [])
            i = bisect.bisect_right(near, (sym.value, 1 << 62))
            # The nearest local symbols before and after it, closest first.
            around = sorted(near[max(0, i - 8):i + 8], key=lambda vg: abs(vg[0] - sym.value))
            near_units = [u for u in (group_unit.get(g) for _v, g in around) if u is not None]
            first_tries = list({u.offset: u for u in near_units}.values())[:4]
            first.append((sym, first_tries))
            if near_units:
                lo = bisect.bisect_left(self._unit_offsets, min(u.offset for u in near_units))
                hi = bisect.bisect_right(self._unit_offsets, max(u.offset for u in near_units))
                others = [u for u in self.units[lo:hi] if u not in first_tries]
                if len(others) <= _SEARCH_BETWEEN_UNITS:
                    between[sym.index] = others
        left = self._find_each(first, by_unit)
        left = self._find_each([(s, between.get(s.index, [])) for s in left], by_unit)
        for sym in self._find_variables(left, self.units, by_unit) if left else ():
            log.debug("%s: no compilation unit found for %s", image.path, sym.name)

    def _find_each(self, plan: list[tuple[Symbol, list[Unit]]], by_unit: dict[int, list[Symbol]]) -> list[Symbol]:
        """Each symbol looked for in its own units, each unit walked once for all the symbols
        that look there (a module's global data would walk its units once a symbol); return
        those not found. A variable is defined in one unit: the order of the walks does not
        change where a symbol is found."""
        units: dict[int, Unit] = {}
        wanting: dict[int, list[Symbol]] = {}
        for sym, tries in plan:
            for u in tries:
                units[u.offset] = u
                wanting.setdefault(u.offset, []).append(sym)
        found: set[int] = set()
        for offset in sorted(wanting):
            todo = [s for s in wanting[offset] if s.index not in found]
            if todo:
                missing = {s.index for s in self._find_variables(todo, [units[offset]], by_unit)}
                found.update(s.index for s in todo if s.index not in missing)
        return [s for s, _tries in plan if s.index not in found]

    def _find_variables(self, syms: list[Symbol], units: list[Unit], by_unit: dict[int, list[Symbol]]) -> list[Symbol]:
        """Look for the variables ``syms`` (each by name and address) in ``units``, in one walk
        of each unit; return those not found."""
        wanted: dict[int, list[Symbol]] = {}
        for s in syms:
            wanted.setdefault(self.image.address(s), []).append(s)
        names = {base_name(s.name).encode() for s in syms}
        local_statics = any("." in s.name for s in syms)
        for unit in units:
            if not wanted:
                break
            for e in self.reader(unit).scan(names, set(wanted), local_statics):
                # A definition whose name is on its declaration (DW_AT_specification) has none.
                at = wanted.get(e.location) if e.location is not None else None
                if not at:
                    continue
                found = [s for s in at if e.name is None or base_name(s.name).encode() == e.name]
                if found:
                    by_unit.setdefault(unit.offset, []).extend(found)
                    at[:] = [s for s in at if s not in found]
            wanted = {a: left for a, left in wanted.items() if left}
        return [s for left in wanted.values() for s in left]

    def _cache_key(self, unit: Unit) -> str | None:
        """The object file a unit was compiled into, with its size and mtime: what a cached
        result is valid for (a relink after one object changed rescans that object alone)."""
        if self.cache is None or not self.paths.objtree:
            return None
        rel = self.unit_path(unit)
        stem, dot, ext = rel.rpartition(".")
        if not dot or posixpath.isabs(rel) or rel.startswith("../"):
            return None
        try:
            st = os.stat(posixpath.join(self.paths.objtree, stem + ".o"))
        except OSError:
            return None
        return f"{stem}.o:{st.st_size}:{st.st_mtime_ns}"

    def _locate_in_unit(self, unit: Unit, syms: list[Symbol]) -> dict[int, SourceLoc]:
        key = self._cache_key(unit)
        if key is not None:
            assert self.cache is not None
            cached = self.cache.lookup(key, [s.name for s in syms])
            if cached is not None:
                unit_path = self.unit_path(unit)
                return {s.index: SourceLoc(d[0], d[1], unit_path) for s, d in zip(syms, cached) if d is not None}
        out = self._scan_unit(unit, syms)
        if key is not None:
            assert self.cache is not None
            for s in syms:
                loc = out.get(s.index)
                self.cache.store(key, s.name, (loc.decl_file, loc.decl_line) if loc else None)
        return out

    def _scan_unit(self, unit: Unit, syms: list[Symbol]) -> dict[int, SourceLoc]:
        entries, picked = self._pick_entries(unit, syms)
        unit_path = self.unit_path(unit)
        out: dict[int, SourceLoc] = {}
        for sym in syms:
            entry = picked.get(sym.index)
            decl = self._declaration(entry, unit) if entry is not None else None
            if decl is None:
                log.debug("%s: no DWARF declaration for %s in %s", self.image.path, sym.name, unit_path)
                continue
            out[sym.index] = SourceLoc(decl[0], decl[1], unit_path)
        self._place_merged_statics([s for s in syms if s.index not in out], entries, unit, out)
        return out

    def _pick_entries(self, unit: Unit, syms: list[Symbol]) -> tuple[list[Entry], dict[int, Entry]]:
        """The unit's DIEs for ``syms`` (one walk): (all the entries the walk found, the one
        DIE of each symbol, by symbol index)."""
        names = {base_name(s.name).encode() for s in syms}
        addrs = {self.image.address(s) for s in syms}
        local_statics = any(not s.is_text and "." in s.name for s in syms)
        entries = self.reader(unit).scan(names, addrs, local_statics)
        by_pc: dict[int, Entry] = {}
        by_loc: dict[int, list[Entry]] = {}  # GCC may merge equal constant statics at one address
        by_name: dict[tuple[bytes, bool], list[Entry]] = {}
        for e in entries:
            if e.is_subprogram and e.low_pc is not None:
                by_pc.setdefault(e.low_pc, e)
            if not e.is_subprogram and e.location is not None:
                by_loc.setdefault(e.location, []).append(e)
            if e.name is not None and (e.is_subprogram or e.file_scope):
                by_name.setdefault((e.name, e.is_subprogram), []).append(e)
        picked: dict[int, Entry] = {}
        for sym in syms:
            base = base_name(sym.name).encode()
            addr = self.image.address(sym)
            if sym.is_text:
                at = [by_pc[addr]] if addr in by_pc else []
            else:
                at = by_loc.get(addr, [])
            entry = next((e for e in at if self._entry_name(e, unit) == base), None)
            if entry is None and (sym.is_text or "." not in sym.name):
                # One C unit has one file-scope function or variable of a name: a definition
                # is preferred over a declaration.
                candidates = sorted(by_name.get((base, sym.is_text), []),
                                    key=lambda e: (e.declaration, e.decl_line is None))
                entry = candidates[0] if candidates else None
            if entry is not None:
                picked[sym.index] = entry
        return entries, picked

    def functions(self, syms: list[Symbol]) -> dict[int, Entry]:
        """The DW_TAG_subprogram DIE of each function symbol found (as locate() finds it), by
        symbol index: where its signature is read (signature.py)."""
        by_unit: dict[int, list[Symbol]] = {}
        units: dict[int, Unit] = {}
        for sym in syms:
            unit = self.function_unit(self.image.address(sym)) if sym.is_text else None
            if unit is not None:
                units[unit.offset] = unit
                by_unit.setdefault(unit.offset, []).append(sym)
        found: dict[int, Entry] = {}
        try:
            for offset in sorted(by_unit):
                found.update(self._pick_entries(units[offset], by_unit[offset])[1])
        except (IndexError, struct.error) as e:
            raise KasaliasError(f"{self.image.path}: malformed DWARF ({e})") from None
        return found

    def die(self, offset: int) -> Entry | None:
        """The DIE at .debug_info ``offset``, whatever its tag."""
        unit = self._unit_containing(offset)
        got = self.reader(unit).die_at(offset) if unit is not None else None
        return got[0] if got is not None else None

    def children(self, offset: int, tags: tuple[int, ...]) -> list[Entry]:
        """The leading children of the DIE at ``offset`` with a tag in ``tags`` (UnitReader.children)."""
        unit = self._unit_containing(offset)
        return self.reader(unit).children(offset, tags) if unit is not None else []

    def _place_merged_statics(self, syms: list[Symbol], entries: list[Entry], unit: Unit,
                              out: dict[int, SourceLoc]) -> None:
        """GCC merges equal constant function-local statics (i915's ofs_und6.5, ofs_und8.2, ...
        at one address) and gives all but one of their DIEs no location: a numbered static
        left unplaced takes the one DIE of its name without a location, if there is exactly
        one such DIE and one such symbol."""
        pending: dict[bytes, list[Symbol]] = {}
        for s in syms:
            if not s.is_text and "." in s.name:
                pending.setdefault(base_name(s.name).encode(), []).append(s)
        for base, left in pending.items():
            unlocated = [e for e in entries if not e.is_subprogram and e.name == base and e.location is None
                         and not e.declaration and not e.file_scope]
            decl = self._declaration(unlocated[0], unit) if len(left) == 1 and len(unlocated) == 1 else None
            if decl is not None:
                out[left[0].index] = SourceLoc(decl[0], decl[1], self.unit_path(unit))


class _StringTable(dict[int, bytes]):
    """The strings of .debug_str by offset, each read once: one merged section, many units
    naming the same strings. A dict, so that the DIE walk looks names up without a call.
    Searched in place, in the mapped file or the decompressed bytes: a module's .debug_str
    can be 170 MB (amdgpu.ko), of which the walk reads a small part."""

    def __init__(self, section: tuple[bytes | mmap.mmap, int, int] | None, where: str) -> None:
        super().__init__()
        self._buf, self._start, self._end = section if section is not None else (b"", 0, 0)
        self._where = where

    def __missing__(self, offset: int) -> bytes:
        start = self._start + offset
        end = self._buf.find(b"\0", start, self._end) if 0 <= offset and start < self._end else -1
        if end < 0:
            raise KasaliasError(f"{self._where}: bad DWARF string offset {offset:#x} in .debug_str")
        s = self[offset] = self._buf[start:end]
        return s


class UnitCache:
    """Declarations found in each object file's unit, kept between runs of the analysis
    (``--cache FILE``): a relink after one object changed rescans that object alone. A
    result is reused only for the object's same size and mtime, and only for names it was
    asked for; the outputs are the same with or without the cache."""

    def __init__(self, path: Path, srctree: str | None) -> None:
        from kasalias.buildid import build_id

        self.path = path
        self.srctree = srctree or ""  # paths in the cache are relative to it
        self.build = build_id()  # what another kasalias found is not reused
        self.old: dict[str, dict[str, list[object] | None]] = {}
        self.new: dict[str, dict[str, list[object] | None]] = {}
        try:
            raw = read_input(path)
        except KasaliasError:
            return  # no cache yet (or not a file: check_output refuses to write one there)
        # A cache only saves time: one of another shape is dropped with a warning and every
        # unit scanned again (the outputs are the same), never a failed build. RecursionError:
        # json refuses a 10^5-deep nesting that way, not with a ValueError.
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:
            log.warning("%s: not an analysis cache (%s); every unit is scanned again", path, type(e).__name__)
            return
        if isinstance(data, dict) and (data.get("build") != self.build or data.get("srctree") != self.srctree):
            return  # another kasalias's or another tree's: its results are not reused, silently
        units = data.get("units") if isinstance(data, dict) else None
        if not _cache_shape(units):
            log.warning("%s: not an analysis cache of this kasalias' shape; every unit is scanned again", path)
            return
        self.old = units  # type: ignore[assignment]  # _cache_shape checked it

    def lookup(self, key: str, names: list[str]) -> list[tuple[str, int] | None] | None:
        entry = self.old.get(key)
        if entry is None or any(n not in entry for n in names):
            return None
        out: list[tuple[str, int] | None] = []
        for n in names:
            v = entry[n]
            out.append((str(v[0]), int(v[1])) if isinstance(v, list) else None)  # type: ignore[call-overload]
            self.new.setdefault(key, {})[n] = v
        return out

    def store(self, key: str, name: str, decl: tuple[str, int] | None) -> None:
        self.new.setdefault(key, {})[name] = list(decl) if decl else None

    def save(self) -> None:
        """Written after the outputs; a cache that cannot be written is a warning (the next
        run scans again), not a failed build."""
        text = json.dumps({"build": self.build, "srctree": self.srctree, "units": self.new}, sort_keys=True,
                          separators=(",", ":"))
        try:
            write_text_atomic(self.path, text + "\n", only_if_changed=True)
        except KasaliasError as e:
            log.warning("%s; the next analysis scans every unit", e)


def _cache_shape(units: object) -> bool:
    """Whether ``units`` is what UnitCache.save writes: {object: {name: [path, line] | null}}
    (lookup() would fail on anything else: a number for a dict, a list of one item)."""
    if not isinstance(units, dict):
        return False
    for names in units.values():
        if not isinstance(names, dict):
            return False
        for v in names.values():
            if v is not None and not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                                      and type(v[1]) is int and v[1] >= 0):
                return False
    return True


def _text(b: bytes | None) -> str:
    return b.decode("utf-8", "surrogateescape") if b else ""


class Relocations:
    """A .rela section of a debug section: applied to the section all at once, or
    (.debug_info) only to unit headers, the other fields being relocated as they are read,
    so that the cost follows what is read: vmlinux.o of a small kernel has 2.4 million
    .debug_info relocations, of which kasalias reads a few percent."""

    offsets: memoryview | None

    def __init__(self, buf: memoryview, rela: memoryview, symvals: list[int], where: str,
                 in_order: bool) -> None:
        """``buf``: the section, relocated in place; ``rela``: its relocation entries;
        ``in_order``: whether their offsets never decrease (_offsets_in_order)."""
        if len(rela) % 24:
            raise KasaliasError(f"{where}: malformed")
        self.buf = buf
        self.rela = rela
        self.symvals = symvals
        self.where = where
        # r_offset of each entry, without a copy: a distro vmlinux.o has tens of millions.
        # Assemblers and ld -r write them in offset order; bisecting needs that.
        self.offsets = (rela.cast("Q")[::3] if rela else memoryview(b"").cast("Q")) if in_order else None

    def value_at(self, pos: int, stored: int) -> int:
        """The value of the field at ``pos`` after relocation (``stored`` if none applies)."""
        offsets = self.offsets
        assert offsets is not None
        i = bisect.bisect_left(offsets, pos)
        if i == len(offsets) or offsets[i] != pos:
            return stored
        _off, info, addend = _RELA.unpack_from(self.rela, i * 24)
        rtype, sym = info & 0xFFFFFFFF, info >> 32
        width = _ABS_RELOCS.get(rtype)
        if width is None:
            raise KasaliasError(f"{self.where}: unsupported relocation type {rtype}")
        try:
            return (self.symvals[sym] + addend) & ((1 << (8 * width)) - 1)
        except IndexError:
            raise KasaliasError(f"{self.where}: malformed (symbol out of range)") from None

    def apply(self, lo: int = 0, hi: int | None = None) -> None:
        """Apply the relocations of bytes [lo, hi) (all of them without a range)."""
        if hi is None or self.offsets is None:
            i, j = 0, len(self.rela) // 24
        else:
            i, j = bisect.bisect_left(self.offsets, lo), bisect.bisect_left(self.offsets, hi)
        buf, symvals = self.buf, self.symvals
        pack64, pack32 = _U64_PACK, _U32_PACK
        try:
            for off, info, addend in struct.iter_unpack("<QQq", self.rela[i * 24:j * 24]):
                rtype, sym = info & 0xFFFFFFFF, info >> 32
                width = _ABS_RELOCS.get(rtype)
                if width == 8:
                    pack64(buf, off, (symvals[sym] + addend) & 0xFFFFFFFFFFFFFFFF)
                elif width == 4:
                    pack32(buf, off, (symvals[sym] + addend) & 0xFFFFFFFF)
                elif width is None:
                    raise KasaliasError(f"{self.where}: unsupported relocation type {rtype}")
        except (IndexError, struct.error):
            raise KasaliasError(f"{self.where}: malformed (symbol or offset out of range)") from None


def _offsets_in_order(image: ElfImage, rela: Section, chunk: int = 1 << 20) -> bool:
    """Whether the r_offset column of ``rela`` never decreases, checked ``chunk`` entries at a
    time, read from the file: through the mapping, every page of the table (322 MB for
    amdgpu.ko) would stay in the process' memory until the file is unmapped."""
    prev, step = -1, 24 * chunk
    for start in range(0, rela.size - rela.size % 24, step):
        data = os.pread(image.fileno(), min(step, rela.size - rela.size % 24 - start), rela.offset + start)
        part = memoryview(data).cast("Q")[::3].tolist()
        if part[0] < prev or part != sorted(part):
            return False
        prev = part[-1]
    return True


_U64_PACK, _U32_PACK = struct.Struct("<Q").pack_into, struct.Struct("<I").pack_into
_RELA = struct.Struct("<QQq")
