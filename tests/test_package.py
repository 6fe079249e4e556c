"""The wheel and the sdist hold everything each verb needs: built from a copy of this checkout,
installed into a new venv outside it (its dependencies copied from this venv: no network), run
from a directory outside the checkout, so that nothing is imported from here.

The fast tier builds, installs, runs every verb's --help, kbuild install/remove on a stand-in
kernel tree and 'make KAS_ALIAS=1' of sample-tree; the kernel tier hooks and unhooks Debian's
linux-source-6.12 with the installed kasalias."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import pytest

from conftest import ROOT, Build, analyze, fake_kernel_tree, snapshot
from kasalias import __version__

DATA_FILES = {"templates/kasalias.ninja.j2", "templates/kasalias.mk.j2", "kbuild/Makefile.kasalias"}
# What make and Python must not take from the test's own environment.
_DROP = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


@dataclass(frozen=True)
class Installed:
    """A venv with the wheel installed, and what it was built from."""

    venv: Path
    src: Path  # the copy of the checkout the wheel and sdist were built from
    wheel: Path
    sdist: Path
    work: Path  # an empty directory outside the checkout, the commands' working directory

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The installed 'kasalias' script, outside the checkout, without PYTHONPATH."""
        proc = subprocess.run([str(self.venv / "bin" / "kasalias"), *map(str, args)], capture_output=True,
                              text=True, cwd=self.work, env=clean_env())
        if check and proc.returncode != 0:
            raise AssertionError(f"installed kasalias {' '.join(map(str, args))} failed:\n{proc.stderr}")
        return proc


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _DROP}


def copy_checkout(dst: Path) -> Path:
    """The files a clone of this checkout has (tracked, and new files not ignored), as they are
    now; symbolic links stay links (sample-tree's Makefile.kasalias)."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                 capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: what .gitignore leaves
        shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "__pycache__", "*.egg-info", ".pytest_cache"))
        return dst
    for rel in filter(None, listing.split("\0")):
        src = ROOT / rel
        if not (src.exists() or src.is_symlink()):
            continue  # deleted in the working tree, not yet in the index
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            (dst / rel).symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst / rel)
    return dst


def copy_dependencies(site: Path) -> list[str]:
    """Install kasalias' runtime dependencies (and theirs) into ``site`` by copying the files
    this venv's installer recorded for them (RECORD: the packages, their metadata, the ninja
    program in bin/): pip then finds them satisfied and needs no index."""
    from packaging.requirements import Requirement

    names: list[str] = []
    todo = ["kasalias"]
    while todo:
        for spec in distribution(todo.pop()).requires or ():
            req = Requirement(spec)
            if (req.marker is None or req.marker.evaluate({"extra": ""})) and req.name.lower() not in names:
                names.append(req.name.lower())
                todo.append(req.name)
    for name in names:
        dist = distribution(name)
        for f in dist.files or ():
            dst = Path(os.path.normpath(site / f))
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(str(dist.locate_file(f)), dst)
    return names


def _run(*cmd: object, cwd: Path) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=clean_env())
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    top = tmp_path_factory.mktemp("package")
    src = copy_checkout(top / "src")
    # Offline, with this venv's setuptools, wheel and build (the test extra): the wheel that
    # 'pip install .' builds and installs, then the sdist and a wheel built from it, as
    # 'python -m build' makes a release.
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", top / "pip-wheel", src, cwd=top)
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", top / "dist", src, cwd=top)
    (wheel,) = (top / "pip-wheel").glob("kasalias-*.whl")
    (sdist,) = (top / "dist").glob("kasalias-*.tar.gz")
    venv = top / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=top)
    (site,) = venv.glob("lib/python3*/site-packages")
    copy_dependencies(site)
    # This venv's pip installs into the new one; --no-index: the dependencies must be there.
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-index",
         "--no-cache-dir", wheel, cwd=top)
    work = top / "work"
    work.mkdir()
    return Installed(venv, src, wheel, sdist, work)


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n) for n in z.namelist() if ".dist-info/" not in n}


def test_wheel_and_sdist_hold_every_file(installed: Installed) -> None:
    """The wheel: the package's modules and py.typed, the templates and Makefile.kasalias inside
    the package, nothing else; the wheel built from the sdist is the same; the sdist has the
    top-level layout of the repository."""
    want = {f"kasalias/{p.name}": p.read_bytes() for p in (installed.src / "kasalias").glob("*.py")}
    want["kasalias/py.typed"] = b""
    want.update({f"kasalias/{rel}": (installed.src / rel).read_bytes() for rel in DATA_FILES})
    assert wheel_files(installed.wheel) == want
    (from_sdist,) = installed.sdist.parent.glob("kasalias-*.whl")
    assert wheel_files(from_sdist) == want
    with tarfile.open(installed.sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {rel for rel in want if rel.endswith(".py")} | DATA_FILES | {"pyproject.toml", "README.md"} <= names
    with zipfile.ZipFile(installed.wheel) as z:
        entry_points = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "kasalias = kasalias.cli:main" in entry_points


def test_installed_kasalias_runs_from_the_venv(installed: Installed) -> None:
    """The package imported is the venv's; --version reads the wheel's metadata; the build ID is
    the checkout's (the same files by name and bytes); every verb has its --help."""
    where = subprocess.run([str(installed.python), "-c", "import kasalias; print(kasalias.__file__)"],
                           capture_output=True, text=True, check=True, cwd=installed.work, env=clean_env())
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)
    assert installed.run("--version").stdout == f"kasalias {__version__}\n"
    # The checkout the wheel was built from (the copy: this one may change while the tests run).
    def from_checkout(option: str) -> str:
        return subprocess.run([sys.executable, "-m", "kasalias", option], capture_output=True, text=True, check=True,
                              cwd=installed.work, env={**clean_env(), "PYTHONPATH": str(installed.src)}).stdout

    assert from_checkout("--version") == f"kasalias {__version__} (source: {installed.src})\n"
    assert installed.run("--build-id").stdout == from_checkout("--build-id")
    from kasalias.cli import build_parser

    (verbs,) = [a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"analyze", "module", "gen", "kbuild", "repro-check"} <= set(verbs)
    for verb in verbs:
        proc = installed.run(verb, "--help")
        assert proc.stdout.startswith(f"usage: kasalias {verb} ") and proc.stderr == "", verb


def test_installed_kbuild_install_and_remove(installed: Installed, tmp_path: Path) -> None:
    """kbuild install from the wheel writes the packaged Makefile.kasalias and hooks the tree for
    the venv's Python; remove gives the tree back byte for byte."""
    tree = fake_kernel_tree(tmp_path / "linux")
    before = snapshot(tree)
    installed.run("kbuild", "install", tree)
    assert (tree / "scripts/Makefile.kasalias").read_bytes() == (ROOT / "kbuild/Makefile.kasalias").read_bytes()
    assert str(installed.python) in (tree / "Makefile").read_text()
    installed.run("kbuild", "remove", tree)
    assert snapshot(tree) == before


def test_installed_make_kas_alias(installed: Installed, tmp_path: Path) -> None:
    """'make KAS_ALIAS=1' of sample-tree with the venv's Python: every output written, by the
    installed kasalias (its files are what the ninja file depends on), the same alias table as
    this checkout's kasalias computes from the same objects."""
    sample, obj = installed.src / "sample-tree", tmp_path / "o"
    proc = subprocess.run(["make", "-s", "-C", str(sample), f"O={obj}", "-j2", "KAS_ALIAS=1",
                           f"PYTHON3={installed.python}"], capture_output=True, text=True, cwd=installed.work,
                          env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    modules = (obj / "modules.order").read_text().split()
    for out in ["vmlinux.syms.aliased", "modules.symalias", "modules.symbfreq",
                *(m.removesuffix(".o") + ".ko.aliased" for m in modules)]:
        assert (obj / out).is_file() and (obj / out).stat().st_size > 0, out
    ninja = (obj / "kasalias.ninja").read_text()
    site = str(next(installed.venv.glob("lib/python3*/site-packages")))
    for rel in DATA_FILES:
        assert f"{site}/kasalias/{rel}" in ninja, rel
    assert str(ROOT) not in ninja
    mine = analyze(Build(obj, sample, 5, False), tmp_path / "checkout")
    for name in ("modules.symalias", "modules.symbfreq"):
        assert (obj / name).read_bytes() == (mine / name).read_bytes(), name


def test_installed_repro_check(installed: Installed) -> None:
    """An installed kasalias has no sample-tree: one error line naming --tree; --tree builds the
    given tree twice and compares."""
    proc = installed.run("repro-check", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("kasalias: error: no tree to build: ") and "give --tree DIR" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    proc = installed.run("repro-check", "--tree", installed.src / "sample-tree")
    assert proc.stdout.splitlines()[-1] == "9 outputs compared, 0 differ"


def _tree_differences(a: Path, b: Path) -> list[str]:
    """Paths whose type, mode or bytes differ between two trees (a hard link to the same inode
    is the same file without reading it), and paths only one of them has."""
    def entries(top: Path) -> dict[str, os.stat_result]:
        out = {}
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                p = os.path.join(root, name)
                out[os.path.relpath(p, top)] = os.lstat(p)
        return out

    ea, eb = entries(a), entries(b)
    diff = sorted(set(ea) ^ set(eb))
    for rel in sorted(set(ea) & set(eb)):
        sa, sb = ea[rel], eb[rel]
        if sa.st_mode != sb.st_mode:
            diff.append(rel)
        elif os.path.islink(a / rel):
            if os.readlink(a / rel) != os.readlink(b / rel):
                diff.append(rel)
        elif (a / rel).is_file() and (sa.st_dev, sa.st_ino) != (sb.st_dev, sb.st_ino):
            if (a / rel).read_bytes() != (b / rel).read_bytes():
                diff.append(rel)
    return diff


@pytest.mark.kernel
def test_installed_kbuild_on_linux_source(installed: Installed, tmp_path: Path) -> None:
    """The installed kasalias hooks a copy of Debian's linux-source-6.12 (hard links: kbuild
    writes by rename) and takes the hooks out: the tree is byte for byte the package's."""
    out = subprocess.run([str(ROOT / "tools" / "fetch-linux-source"), "6.12"], check=True, capture_output=True,
                         text=True).stdout
    pristine = Path(out.split()[-1])
    tree = tmp_path / "linux"
    if subprocess.run(["cp", "-al", str(pristine), str(tree)], capture_output=True).returncode != 0:
        shutil.rmtree(tree, ignore_errors=True)  # another file system: a real copy
        shutil.copytree(pristine, tree, symlinks=True)
    installed.run("kbuild", "install", tree)
    assert (tree / "scripts/Makefile.kasalias").read_bytes() == (ROOT / "kbuild/Makefile.kasalias").read_bytes()
    hooked = _tree_differences(pristine, tree)
    assert "scripts/Makefile.kasalias" in hooked and "Makefile" in hooked and "scripts/link-vmlinux.sh" in hooked
    installed.run("kbuild", "remove", tree)
    assert _tree_differences(pristine, tree) == []
