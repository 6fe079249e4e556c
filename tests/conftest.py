"""Shared fixtures: real builds of sample-tree/ (gcc, DWARF 4 and 5, two build directories);
the test tiers (the kernel marker)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample-tree"
KERNEL_TIER = ("e2e", "realkernel")  # markers whose tests are in the kernel tier too


@pytest.hookimpl(tryfirst=True)  # before -m deselects (the mark plugin's hook of the same name)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every e2e or realkernel test is in the kernel tier (pytest -m kernel), which the default
    run leaves out (addopts in pyproject.toml); other kernel-tier tests carry the mark itself."""
    for item in items:
        if any(item.get_closest_marker(m) for m in KERNEL_TIER) and not item.get_closest_marker("kernel"):
            item.add_marker(pytest.mark.kernel)


@dataclass(frozen=True)
class Build:
    """One build of sample-tree in its own O= directory."""

    objtree: Path
    srctree: Path
    dwarf: int
    llvm: bool

    @property
    def vmlinux(self) -> Path:
        return self.objtree / "vmlinux"

    @property
    def vmlinux_o(self) -> Path:
        return self.objtree / "vmlinux.o"

    @property
    def modules(self) -> list[Path]:
        """Module objects (X.o) in modules.order order."""
        return [self.objtree / line for line in (self.objtree / "modules.order").read_text().split()]

    def ko(self, name: str) -> Path:
        for m in self.modules:
            if m.stem.replace("-", "_") == name:
                return m.with_suffix(".ko")
        raise KeyError(name)


def run_kasalias(*args: object, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess, as make would run it."""
    proc = subprocess.run([sys.executable, "-m", "kasalias", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"kasalias {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def build_sample(objtree: Path, dwarf: int = 5, llvm: bool = False, extra: tuple[str, ...] = ()) -> Build:
    cmd = ["make", "-s", "-C", str(SAMPLE), f"O={objtree}", f"DWARF={dwarf}", "-j2", *extra]
    if llvm:
        cmd.append("LLVM=1")
    subprocess.run(cmd, check=True, capture_output=True)
    return Build(objtree, SAMPLE, dwarf, llvm)


def analyze(build: Build, outdir: Path, *extra: object) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    run_kasalias("analyze", "--vmlinux", build.vmlinux_o, "--modules-order", build.objtree / "modules.order",
                 "--objtree", build.objtree, "--srctree", build.srctree, "-o", outdir, *extra)
    return outdir


@pytest.fixture(scope="session")
def build5(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sample(tmp_path_factory.mktemp("o5") / "build", 5)


@pytest.fixture(scope="session")
def build5b(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The same tree built again in a different (longer) directory."""
    return build_sample(tmp_path_factory.mktemp("another-build-directory") / "o" / "b", 5)


@pytest.fixture(scope="session")
def build4(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sample(tmp_path_factory.mktemp("o4") / "build", 4)


@pytest.fixture(scope="session")
def build_lto(tmp_path_factory: pytest.TempPathFactory) -> Build:
    if not (shutil.which("clang") and shutil.which("ld.lld")):
        pytest.skip("clang/lld not installed (tools/setup installs them)")
    return build_sample(tmp_path_factory.mktemp("olto") / "build", 5, llvm=True)


@pytest.fixture(scope="session")
def analysis5(build5: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyze(build5, tmp_path_factory.mktemp("kas5"))


@pytest.fixture(scope="session")
def analysis4(build4: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyze(build4, tmp_path_factory.mktemp("kas4"))


def fake_kernel_tree(tree: Path, series: tuple[int, int] = (6, 12)) -> Path:
    """The smallest tree 'kasalias kbuild install' takes as Linux ``series``: VERSION and
    PATCHLEVEL, and each hooked file with nothing but its anchor lines (no download)."""
    from kasalias.kbuild import hooks_for

    files: dict[str, list[str]] = {"Makefile": [f"VERSION = {series[0]}", f"PATCHLEVEL = {series[1]}"]}
    for h in hooks_for(series):
        files.setdefault(h.file, ["# a stand-in for the kernel's file"]).append(h.anchor.rstrip("\n"))
    for name, lines in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("".join(line + "\n" for line in dict.fromkeys(lines)))
    return tree


def snapshot(tree: Path) -> dict[str, bytes | str]:
    """Every file's bytes, every directory, symbolic link and special file (not opened), by
    path relative to ``tree``."""
    out: dict[str, bytes | str] = {}
    for p in sorted(tree.rglob("*")):
        rel = str(p.relative_to(tree))
        if p.is_symlink():
            out[rel] = f"link to {os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "directory"
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = f"special file {stat.S_IFMT(p.stat().st_mode):o}"
    return out


def readme_block(heading: str) -> str:
    """The first ```sh block of the README section that starts with ``heading``."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
