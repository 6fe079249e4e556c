"""An object with more than 0xffff sections, as ld -r makes vmlinux.o of a 7.3 LLVM=1 ThinLTO
kernel (79,232 sections: -ffunction-sections, and one .text.NAME for all static functions
of a NAME): symbols and DWARF addresses in sections beyond 0xff00 go through .symtab_shndx."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kasalias.srcloc import DwarfSource, PathMapper
from kasalias.symbols import SHN_ABS, ElfImage


def many_sections_object(tmp_path: Path) -> Path:
    """a.o (0xffec empty code sections, then a.c's) and b.o linked with ld -r: both static
    dup() in one .text.dup beyond 0xff00, use_b() in section 0xfff1, SHN_ABS's number."""
    flags = ["-g", "-O1", "-ffunction-sections", "-fno-asynchronous-unwind-tables"]
    (tmp_path / "a.c").write_text("static int __attribute__((noinline)) dup(int x) { return x * 3 + 1; }\n"
                                  "int use_a(int x) { return dup(x) + 1; }\n")
    (tmp_path / "b.c").write_text("static int __attribute__((noinline)) dup(int x) { return x * 5 + 2; }\n"
                                  "int use_b(int x) { return dup(x) + 2; }\n")
    subprocess.run(["gcc", *flags, "-S", "-o", "a.s", "a.c"], cwd=tmp_path, check=True)
    pad = "".join(f'.section .p{i},"ax"\n' for i in range(SHN_ABS - 5))
    (tmp_path / "a2.s").write_text("\t.text\n" + pad + (tmp_path / "a.s").read_text())
    subprocess.run(["as", "-o", "a.o", "a2.s"], cwd=tmp_path, check=True)
    subprocess.run(["gcc", *flags, "-c", "-o", "b.o", "b.c"], cwd=tmp_path, check=True)
    subprocess.run(["ld", "-r", "-o", "both.o", "a.o", "b.o"], cwd=tmp_path, check=True)
    return tmp_path / "both.o"


def test_symbols_beyond_0xff00(tmp_path: Path) -> None:
    """A section numbered 0xfff1 holds code, not absolute symbols: letters as nm prints them."""
    obj = many_sections_object(tmp_path)
    nm = {(f[2], int(f[0], 16)): f[1] for f in (line.split() for line in
          subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout.splitlines())
          if len(f) == 3}
    with ElfImage(obj) as img:
        assert len(img.sections) > 0xFFFF
        syms = {s.name: s for s in img.symbols if s.name in ("use_a", "use_b")}
        assert syms["use_b"].shndx == SHN_ABS, "the layout of ld -r changed: use_b() is not in section 0xfff1"
        got = {(s.name, s.value): s.letter for s in img.symbols if (s.name, s.value) in nm}
    assert got == {k: v for k, v in nm.items() if k in got} and len(got) >= 4
    assert got[("use_b", 0)] == "T"


def test_dwarf_addresses_relocated_against_sections_beyond_0xff00(tmp_path: Path) -> None:
    """Both static dup() copies, in one .text.dup numbered beyond 0xff00, are found in their
    own units: DWARF addresses relocated against that section's symbol (SHN_XINDEX)."""
    obj = many_sections_object(tmp_path)
    with ElfImage(obj) as img:
        dups = [s for s in img.symbols if s.name == "dup"]
        assert len(dups) == 2 and len({s.shndx for s in dups}) == 1 and dups[0].shndx > 0xFF00
        with DwarfSource(img, PathMapper(str(tmp_path), str(tmp_path))) as dwarf:
            locs = dwarf.locate(dups)
    assert sorted((loc.decl_file, loc.decl_line, loc.cu) for loc in locs.values()) == [
        ("a.c", 1, "a.c"), ("b.c", 1, "b.c")]
