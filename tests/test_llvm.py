"""make KAS_ALIAS=1 on a ThinLTO (LLVM=1) sample-tree build: bitcode module objects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE
from elfread import elf_symbols

pytestmark = pytest.mark.skipif(not (shutil.which("clang") and shutil.which("ld.lld")),
                                reason="clang/lld not installed (tools/setup installs them)")


def make(obj: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-C", str(SAMPLE), f"O={obj}", "LLVM=1", "KAS_ALIAS=1",
                           f"PYTHON3={sys.executable}", "-j2", *extra], capture_output=True, text=True)


def addrsig_names(path: Path) -> list[str]:
    """The symbols named by the .llvm_addrsig table (ULEB128 symbol indices)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        data, out, pos = elf.get_section_by_name(".llvm_addrsig").data(), [], 0
        while pos < len(data):
            value = shift = 0
            while True:
                b = data[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            out.append(symtab.get_symbol(value).name)
    return out


@pytest.mark.parametrize("writer", ["kasalias", "objcopy"])
def test_thinlto_modules_get_aliases(tmp_path: Path, writer: str) -> None:
    proc = make(tmp_path, *(["KASALIAS_OBJCOPY=objcopy"] if writer == "objcopy" else []))
    assert proc.returncode == 0, proc.stderr
    ko = tmp_path / "fs/minix/minix.ko"
    names = [s["name"] for s in elf_symbols(Path(f"{ko}.aliased"))]
    assert sum(n.startswith("get_block@fs_minix_itree_common_c_55@") for n in names) == 2
    assert not any(".llvm." in n for n in names if "@" in n)
    syms = (tmp_path / "vmlinux.syms.aliased").read_text()
    assert "show_state@kernel_sched_core_c_" in syms and "show_state@drivers_base_core_c_" in syms
    if writer == "kasalias":
        # clang's address-significance table holds symbol indices: kasalias' writer moves
        # them with the globals (GNU objcopy leaves the section as it is).
        assert addrsig_names(Path(f"{ko}.aliased")) == addrsig_names(ko)


def test_llvm_objcopy_output_is_refused_by_name(tmp_path: Path) -> None:
    proc = make(tmp_path, "KASALIAS_OBJCOPY=llvm-objcopy")  # locals after globals
    assert proc.returncode != 0
    assert "llvm-objcopy wrote an invalid symbol table" in proc.stdout + proc.stderr  # ninja relays it
    assert not (tmp_path / "fs/minix/minix.ko.aliased").exists()  # refused: nothing written
    assert not list(tmp_path.rglob(".*.tmp"))  # and no temp file left behind
    # crc7 has nothing to alias: a copy, if its group's step came to it before the refusal
    crc7 = tmp_path / "lib/crc7.ko.aliased"
    assert not crc7.exists() or crc7.read_bytes() == (tmp_path / "lib/crc7.ko").read_bytes()
