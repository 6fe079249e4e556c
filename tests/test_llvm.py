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


def test_thinlto_modules_get_aliases_with_gnu_objcopy(tmp_path: Path) -> None:
    proc = make(tmp_path, "KASALIAS_OBJCOPY=objcopy")
    assert proc.returncode == 0, proc.stderr
    names = [s["name"] for s in elf_symbols(tmp_path / "fs/minix/minix.ko.aliased")]
    assert sum(n.startswith("get_block@fs_minix_itree_common_c_55@") for n in names) == 2
    assert not any(".llvm." in n for n in names if "@" in n)
    syms = (tmp_path / "vmlinux.syms.aliased").read_text()
    assert "show_state@kernel_sched_core_c_" in syms and "show_state@drivers_base_core_c_" in syms


def test_llvm_objcopy_output_is_refused_by_name(tmp_path: Path) -> None:
    proc = make(tmp_path)  # OBJCOPY=llvm-objcopy: locals after globals
    assert proc.returncode != 0
    assert "llvm-objcopy wrote an invalid symbol table" in proc.stdout + proc.stderr  # ninja relays it
    assert not (tmp_path / "fs/minix/minix.ko.aliased").exists()  # refused: nothing written
    assert not list(tmp_path.rglob(".*.tmp"))  # and no temp file left behind
    assert (tmp_path / "lib/crc7.ko.aliased").read_bytes() == (tmp_path / "lib/crc7.ko").read_bytes()
