"""Shared fixtures: real builds of sample-tree/ (gcc, DWARF 4 and 5, two build directories)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample-tree"


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


def readme_block(heading: str) -> str:
    """The first ```sh block of the README section that starts with ``heading``."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
