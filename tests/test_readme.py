"""The README's kernel-tree lines, run as written in a fresh shell (HOME a new directory):
they build a hooked kernel, install its modules into a staging directory and alias an
external module. Slow (a kernel build): marked e2e."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, readme_block
from elfread import elf_symbols

# A whole kernel build of its own; KASALIAS_E2E without "readme" (a run of some variants) leaves it out.
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    bool(os.environ.get("KASALIAS_E2E")) and "readme" not in os.environ["KASALIAS_E2E"].split(","),
    reason="KASALIAS_E2E names other variants")]


def kernel_tree_lines() -> str:
    return readme_block("## In a kernel tree")


def test_kernel_tree_section_runs_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", **{k: v for k, v in os.environ.items() if k == "KASALIAS_CACHE"}}
    proc = subprocess.run(["bash", "-e", "-x", "-c", kernel_tree_lines()], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    # installed modules are the aliased ones (signed, compressed: kernel.config asks for xz)
    (minix,) = (home / "staging" / "lib" / "modules").glob("*/kernel/fs/minix/minix.ko*")
    plain = tmp_path / "minix.ko"
    subprocess.run(["sh", "-c", f"xz -dc '{minix}' > '{plain}'" if minix.suffix == ".xz" else f"cp '{minix}' '{plain}'"],
                   check=True)
    assert sum(s["name"].startswith("get_block@") for s in elf_symbols(plain)) == 2
    # the external module, aliased against the kernel's modules.symbfreq
    hello = home / "mymod" / "hello.ko.aliased"
    names = {s["name"] for s in elf_symbols(hello)}
    assert any(n.startswith("type_show@") for n in names) and any(n.startswith("b_show@") for n in names)
