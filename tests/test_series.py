"""The series registry (kasalias/series.py): every entry has what the build needs, one rule
for a series that is not registered, one parser of a tree's version, and a new series is one
entry (no download: small stand-in trees)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from conftest import ROOT, fake_kernel_tree, run_kasalias, snapshot
from kasalias import kbuild, series
from kasalias.bre import bre_to_python
from kasalias.errors import KasaliasError
from kasalias.kallsyms_rules import builtin_rules
from kasalias.series import SERIES, Kallsyms, parse_series, stand_in, tree_version


@pytest.mark.parametrize("version", sorted(SERIES), ids=lambda v: f"{v[0]}.{v[1]}")
def test_every_series_has_what_the_build_needs(version: tuple[int, int], tmp_path: Path) -> None:
    s = SERIES[version]
    assert s.version == version and stand_in(version) is s
    for f in fields(s):
        assert getattr(s, f.name) or f.name == "stands_for", f.name
    # each entry says which upstream changes made it differ (a release, and what changed)
    assert all(re.match(r"(Linux \d+\.\d+\b|between \d+\.\d+ and \d+\.\d+)", why) for why in s.why), s.why
    # kbuild: anchors for every hook, and a block for its headers script
    assert s.headers_script in kbuild._PACKAGE_BLOCKS
    assert "%.ko FORCE" in s.modinst_anchor and s.modfinal_anchor.startswith("__modfinal:")
    hooks = kbuild.hooks_for(version)
    assert all(h.anchor.strip() and h.text for h in hooks)
    # the readers of modules.order take what the series lists
    assert series.order_stem(f"fs/minix/minix{s.modules_order_suffix}") == "fs/minix/minix"
    # the analysis: built-in kallsyms rules (every expression translates), loader and policy facts
    assert s.kallsyms.mksysmap and all(bre_to_python(bre) for bre in s.kallsyms.mksysmap)
    rules = builtin_rules(version)
    assert rules.version == version and rules.origin == f"builtin {s.name}"
    assert all(getattr(rules, f.name) == getattr(s.kallsyms, f.name) for f in fields(Kallsyms))
    assert {".modinfo", "__versions"} <= set(s.loader_unallocated) <= series.loader_unallocated()
    assert s.mapping_symbols in ("arm", "generic")
    assert re.compile(s.device_table) and s.device_table in series.device_table_names()
    # and a tree of it is hooked and given back
    tree = fake_kernel_tree(tmp_path / "linux", version)
    assert kbuild.kernel_version(tree) == version
    before = snapshot(tree)
    run_kasalias("kbuild", "install", tree)
    assert snapshot(tree) != before
    run_kasalias("kbuild", "remove", tree)
    assert snapshot(tree) == before


def test_stand_in_is_the_one_rule_for_other_versions() -> None:
    """An unregistered version gets the newest entry of its rules' epoch (stands_for)."""
    expected = {(5, 15): (6, 1), (6, 3): (6, 1), (6, 4): (6, 12), (6, 13): (6, 12), (6, 19): (6, 12),
                (7, 0): (7, 3), (7, 1): (7, 3), (7, 4): (7, 3), (8, 1): (7, 3)}
    for version, entry in expected.items():
        assert version not in SERIES
        assert stand_in(version).version == entry
        assert builtin_rules(version).version == entry  # the analysis without a tree
    assert series.DEFAULT_SERIES in SERIES


def test_register_refuses_a_second_or_an_empty_entry() -> None:
    with pytest.raises(KasaliasError, match="registered already"):
        series.register(SERIES[(7, 3)])
    with pytest.raises(KasaliasError, match="why"):
        series.register(replace(SERIES[(7, 3)], version=(9, 9), why=()))
    with pytest.raises(KasaliasError, match="mapping_symbols"):
        series.register(replace(SERIES[(7, 3)], version=(9, 9), mapping_symbols="mips"))
    assert (9, 9) not in SERIES


def test_version_text() -> None:
    assert parse_series("6.12") == (6, 12) and parse_series("7.3") == (7, 3)
    for bad in ("6", "6.", ".12", "6.12.3", "6.12-rc1", "v6.12", " 6.12", "6.12\n", "\u0666.12", "6.\u0661\u0662"):
        assert parse_series(bad) is None, bad
    assert parse_series("6.12.117", release=True) == (6, 12)
    assert parse_series("6.12.117+deb12-cloud-amd64", release=True) == (6, 12)
    assert parse_series("6.12-rc1", release=True) is None
    # the command line's two readers: a series (kbuild --series), a version (--kernel-version)
    proc = run_kasalias("kbuild", "install", "--series", "7.3.4", ROOT, check=False)
    assert proc.returncode == 2 and proc.stderr == ("kasalias: error: argument --series: not a series X.Y: "
                                                    "'7.3.4' (see 'kasalias kbuild --help')\n")
    proc = run_kasalias("report", "--vmlinux", ROOT / "none", "--kernel-version", "7.3-rc1", check=False)
    assert proc.returncode == 1 and "--kernel-version '7.3-rc1': expected MAJOR.MINOR" in proc.stderr


def test_tree_version(tmp_path: Path) -> None:
    with pytest.raises(KasaliasError, match="no Makefile"):
        tree_version(tmp_path)
    (tmp_path / "Makefile").write_text("# SPDX\nVERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n")
    assert tree_version(tmp_path) == (7, 3)
    (tmp_path / "Makefile").write_text("VERSION = 7\nall:\n")
    with pytest.raises(KasaliasError, match="VERSION/PATCHLEVEL"):
        tree_version(tmp_path)


def test_one_parser_of_a_trees_version() -> None:
    """grep -rnw "VERSION\\s*=" kasalias/ finds one line: the registry's parser (BTF_VERSION is another name)."""
    hits = [f"{p.name}:{n}" for p in sorted((ROOT / "kasalias").glob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bVERSION\s*=", line)]
    assert len(hits) == 1 and hits[0].startswith("series.py:"), hits


# Registers one entry, 7.4, with 7.3's facts, then runs the command line given.
_WITH_7_4 = """\
import sys
from dataclasses import replace
from kasalias.series import SERIES, register
register(replace(SERIES[(7, 3)], version=(7, 4), why=("Linux 7.4: as 7.3 at every point kasalias reads",)))
from kasalias.cli import main
from kasalias.kallsyms_rules import builtin_rules
status = main(sys.argv[1:])
print("rules:", builtin_rules((7, 4)).origin)
sys.exit(status)
"""


def test_a_new_series_is_one_entry(tmp_path: Path) -> None:
    """A 7.3 tree relabelled 7.4 is refused; with one registry entry more (in the process
    that runs kasalias), it is hooked, and the analysis takes 7.4's built-in rules."""
    tree = fake_kernel_tree(tmp_path / "linux", (7, 3))
    makefile = tree / "Makefile"
    makefile.write_text(makefile.read_text().replace("PATCHLEVEL = 3\n", "PATCHLEVEL = 4\n"))
    assert tree_version(tree) == (7, 4)
    before = snapshot(tree)
    proc = run_kasalias("kbuild", "install", tree, check=False)
    assert proc.returncode == 1 and proc.stderr == (
        "kasalias: error: Linux 7.4 is not a series kasalias knows how to hook (known: 6.1, 6.12, 7.2, 7.3); "
        f"the hooks of 7.3 all find their places: 'kasalias kbuild install --series 7.3 {tree}' installs them\n")
    assert snapshot(tree) == before
    assert builtin_rules((7, 4)).origin == "builtin 7.3"  # the stand-in, without the entry

    def with_7_4(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _WITH_7_4, *map(str, args)], capture_output=True, text=True,
                              cwd=ROOT)

    proc = with_7_4("kbuild", "install", tree)
    assert proc.returncode == 0 and proc.stdout == "rules: builtin 7.4\n", proc.stderr
    hooked = snapshot(tree)
    assert hooked != before and hooked["scripts/Makefile.kasalias"] == (ROOT / "kbuild" / "Makefile.kasalias").read_bytes()
    # the same blocks as --series 7.3 writes
    other = Path(shutil.copytree(tree, tmp_path / "other"))
    run_kasalias("kbuild", "remove", other)
    assert snapshot(other) == before
    run_kasalias("kbuild", "install", "--series", "7.3", other)
    assert snapshot(other) == hooked
    assert with_7_4("kbuild", "remove", tree).returncode == 0 and snapshot(tree) == before
