"""``kasalias repro-check``: build a tree twice and compare every kasalias output.

The two builds run ``make KAS_ALIAS=1``, one with -j1, one with -j2 in a
longer directory. Their data outputs (modules.symbfreq, modules.symalias,
vmlinux.syms.aliased and every X.ko.aliased) must be the same: byte for byte,
except an X.ko.aliased whose input X.ko already differs between the builds
(its DWARF holds the build directory), of which the symbol tables must be the
same: names, values, sizes, types, bindings and section names, in order.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from kasalias.errors import KasaliasError

DATA_FILES = ("modules.symbfreq", "modules.symalias", "vmlinux.syms.aliased")
BUILDS = (("a", 1), ("b/a-longer-build-directory/for-the-second-build", 2))  # (directory, make -j)


@dataclass(frozen=True)
class Finding:
    """One output compared: ``how`` says how it was compared, or what differs."""

    path: str
    same: bool
    how: str


def default_srctree() -> Path | None:
    """sample-tree/ of the source checkout kasalias runs from, if there is one (an installed
    kasalias has none)."""
    from kasalias.resources import checkout_dir

    return checkout_dir("sample-tree", "Makefile")


def build(srctree: Path, objtree: Path, jobs: int) -> None:
    """``make KAS_ALIAS=1`` of ``srctree`` in ``objtree``, kasalias run by this Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    cmd = ["make", "-C", str(srctree), f"O={objtree}", f"-j{jobs}", "KAS_ALIAS=1", f"PYTHON3={sys.executable}"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except OSError as e:
        raise KasaliasError(f"cannot run make: {e.strerror}") from None
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise KasaliasError(f"{' '.join(cmd)} failed (exit {proc.returncode})")


def outputs(objtree: Path) -> set[str]:
    """The kasalias data outputs of a build, relative to it."""
    found = {name for name in DATA_FILES if (objtree / name).is_file()}
    found.update(p.relative_to(objtree).as_posix() for p in objtree.rglob("*.ko.aliased") if p.is_file())
    return found


def symbol_table(path: Path) -> list[tuple[str, int, int, str, str, str]]:
    """(name, value, size, type, binding, section name) of every symbol, in order."""
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            sections = [s.name for s in elf.iter_sections()]
            table = []
            for sec in elf.iter_sections():
                if sec["sh_type"] != "SHT_SYMTAB":
                    continue
                for sym in sec.iter_symbols():  # type: ignore[attr-defined]
                    ndx = sym["st_shndx"]
                    where = sections[ndx] if isinstance(ndx, int) and ndx < len(sections) else str(ndx)
                    table.append((sym.name, sym["st_value"], sym["st_size"], sym["st_info"]["type"],
                                  sym["st_info"]["bind"], where))
            return table
    except (OSError, ELFError) as e:
        raise KasaliasError(f"{path}: cannot read the symbol table: {e}") from None


def _bytes_differ(rel: str, a: bytes, b: bytes) -> str:
    if rel in DATA_FILES:  # text: show the lines
        diff = list(difflib.unified_diff(a.decode(errors="replace").splitlines(),
                                         b.decode(errors="replace").splitlines(), "build 1", "build 2",
                                         lineterm="", n=0))
        shown = "\n    ".join(diff[2:12]) + ("\n    ..." if len(diff) > 12 else "")
        return f"the bytes differ:\n    {shown}"
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"the bytes differ ({len(a)} and {len(b)} bytes, first at offset {at:#x})"


def _symbols_differ(a: list[tuple], b: list[tuple]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"the symbol tables differ at symbol {i}:\n    build 1: {x}\n    build 2: {y}"
    return f"the symbol tables differ: {len(a)} and {len(b)} symbols"


def _differ(a: Path, b: Path) -> bool:
    """Whether two files exist and differ (a missing one: compare the outputs' bytes)."""
    return a.is_file() and b.is_file() and a.read_bytes() != b.read_bytes()


def compare(a: Path, b: Path) -> list[Finding]:
    """Compare the kasalias outputs of two builds of one tree."""
    in_a, in_b = outputs(a), outputs(b)
    findings = []
    for rel in sorted(in_a | in_b | set(DATA_FILES), key=lambda r: (r not in DATA_FILES, r)):
        if rel not in in_a or rel not in in_b:
            where = "either build" if rel not in in_a and rel not in in_b else \
                "build 1" if rel not in in_a else "build 2"
            findings.append(Finding(rel, False, f"missing in {where}"))
            continue
        da, db = (a / rel).read_bytes(), (b / rel).read_bytes()
        ko = rel.removesuffix(".aliased")
        if rel in DATA_FILES or not _differ(a / ko, b / ko):
            findings.append(Finding(rel, da == db, "same bytes" if da == db else _bytes_differ(rel, da, db)))
            continue
        sa, sb = symbol_table(a / rel), symbol_table(b / rel)
        findings.append(Finding(rel, sa == sb, "same symbol table (the input .ko differ)" if sa == sb
                                else _symbols_differ(sa, sb)))
    return findings


def report(findings: list[Finding], out: TextIO) -> int:
    """Print one line per output; return the exit status (1 if anything differs)."""
    for f in findings:
        out.write(f"{'ok' if f.same else 'DIFFERS':8} {f.path}: {f.how}\n")
    bad = sum(not f.same for f in findings)
    out.write(f"{len(findings)} outputs compared, {bad} differ{'s' if bad == 1 else ''}\n")
    return 1 if bad else 0


def repro_check(srctree: Path | None, *, keep: bool = False, out: TextIO = sys.stdout) -> int:
    if srctree is None:
        srctree = default_srctree()
        if srctree is None:
            raise KasaliasError("no tree to build: this kasalias is installed, not run from a source checkout "
                                "with sample-tree/; give --tree DIR (e.g. the sample-tree/ of kasalias' sources)")
    if not (srctree / "Makefile").is_file():
        raise KasaliasError(f"{srctree}: no Makefile (--tree takes a tree that 'make KAS_ALIAS=1' builds, "
                            "such as sample-tree/)")
    srctree = srctree.resolve()
    work = Path(tempfile.mkdtemp(prefix="kasalias-repro-"))
    try:
        dirs = []
        for n, (rel, jobs) in enumerate(BUILDS, 1):
            objtree = work / rel
            out.write(f"build {n}: make -j{jobs} KAS_ALIAS=1 in {objtree}\n")
            out.flush()
            build(srctree, objtree, jobs)
            dirs.append(objtree)
        return report(compare(*dirs), out)
    finally:
        if keep:
            out.write(f"kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
