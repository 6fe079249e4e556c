"""Reading ELF files back in tests, independently of kasalias: GNU nm and pyelftools."""

from __future__ import annotations

import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile


def nm_symbols(path: Path) -> list[tuple[int, str, str]]:
    """(value, letter, name) of every symbol GNU nm prints."""
    out = subprocess.run(["nm", "-n", str(path)], check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        addr, letter, name = line[:16], line[17:18], line[19:]
        syms.append((int(addr, 16) if addr.strip() else 0, letter, name))
    return syms


def elf_symbols(path: Path) -> list[dict[str, object]]:
    """Every .symtab entry as pyelftools reads it (name, value, size, type, bind, section name)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        out = []
        for i, s in enumerate(symtab.iter_symbols()):
            shndx = s["st_shndx"]
            sec = elf.get_section(shndx).name if isinstance(shndx, int) and shndx else str(shndx)
            out.append({"index": i, "name": s.name, "value": s["st_value"], "size": s["st_size"],
                        "type": s["st_info"]["type"], "bind": s["st_info"]["bind"], "section": sec})
        return out
