"""kasalias kbuild install/remove on the real Kbuild files of Linux 6.1, 6.12, 7.2 and 7.3 (the
kernel tier: Debian's linux-source packages are fetched), and on small stand-in trees (fast)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, fake_kernel_tree, run_kasalias
from conftest import snapshot as tree_snapshot

FILES = ("Makefile", "scripts/link-vmlinux.sh", "scripts/gen-btf.sh", "scripts/Makefile.vmlinux", "scripts/Makefile.modfinal",
         "scripts/Makefile.modinst", "scripts/package/install-extmod-build", "scripts/package/builddeb")


# The kernel tier: every test that takes a real tree (a linux-source package, downloaded once).
@pytest.fixture(scope="module", params=[pytest.param(v, marks=pytest.mark.kernel) for v in ("6.12", "6.1", "7.2", "7.3")])
def pristine(request: pytest.FixtureRequest) -> Path:
    out = subprocess.run([str(ROOT / "tools" / "fetch-linux-source"), request.param], check=True,
                         capture_output=True, text=True).stdout
    return Path(out.split()[-1])


def copy_tree(src: Path, dst: Path) -> Path:
    for f in FILES:
        if (src / f).exists():  # the headers packaging differs between versions
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / f, dst / f)
    return dst


def snapshot(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def test_install_is_idempotent_and_remove_restores(pristine: Path, tmp_path: Path) -> None:
    tree = copy_tree(pristine, tmp_path / "linux")
    before = snapshot(tree)
    run_kasalias("kbuild", "install", tree)
    hooked = snapshot(tree)
    assert set(hooked) == set(before) | {"scripts/Makefile.kasalias"}
    from kasalias.kbuild import hooks_for, kernel_version

    hooked_files = {h.file for h in hooks_for(kernel_version(tree))}
    assert hooked_files <= set(FILES)
    for f in hooked_files:
        assert b"# >>> kasalias" in hooked[f], f
    run_kasalias("kbuild", "install", tree)
    assert snapshot(tree) == hooked
    run_kasalias("kbuild", "remove", tree)
    assert snapshot(tree) == before
    run_kasalias("kbuild", "remove", tree)
    assert snapshot(tree) == before


def make_value(makefile_text: str, variable: str, *args: str) -> str:
    """Expand a variable of Makefile text (with $< and $@ set) by running make."""
    proc = subprocess.run(["make", "-s", "-f", "-", *args, "print"], input=makefile_text + f"""
print: scripts/link-vmlinux.sh
\t@printf '%s\\n' '$(strip $({variable}))'
scripts/link-vmlinux.sh:
""", capture_output=True, text=True, check=True)
    return proc.stdout


def test_link_command_changes_only_with_kas_alias(pristine: Path, tmp_path: Path) -> None:
    """The saved command of link_vmlinux (what decides a relink) is the unhooked one without
    KAS_ALIAS=1, and starts with KAS_ALIAS=1 and the kasalias build id with it."""
    tree = copy_tree(pristine, tmp_path / "linux")
    original = (tree / "scripts/Makefile.vmlinux").read_text()
    run_kasalias("kbuild", "install", tree)
    hooked = (tree / "scripts/Makefile.vmlinux").read_text()

    def cmd(text: str, *args: str) -> str:
        start = text.index("# Final link of vmlinux")
        end = text.index("targets += vmlinux")
        return make_value(text[start:end], "cmd_link_vmlinux", *args)

    from kasalias.buildid import build_id

    assert cmd(hooked) == cmd(original)
    # with it, the command names the kasalias build: another kasalias relinks vmlinux too
    assert cmd(hooked, "KAS_ALIAS=1", f"PYTHON3={sys.executable}") == \
        f"KAS_ALIAS=1 KASALIAS_BUILD={build_id()} " + cmd(original)


def test_unknown_tree_is_refused_and_untouched(pristine: Path, tmp_path: Path) -> None:
    tree = copy_tree(pristine, tmp_path / "linux")
    from kasalias.kbuild import kernel_version
    from kasalias.series import SERIES

    anchor = SERIES[kernel_version(tree)].modinst_anchor
    text = (tree / "scripts/Makefile.modinst").read_text()
    assert anchor in text
    (tree / "scripts/Makefile.modinst").write_text(text.replace(anchor, anchor.replace("%.ko FORCE", "%.ko.x FORCE")))
    before = snapshot(tree)
    proc = run_kasalias("kbuild", "install", tree, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("kasalias: error: scripts/Makefile.modinst")
    assert snapshot(tree) == before
    proc = run_kasalias("kbuild", "install", tmp_path / "nothing-here", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("kasalias: error:")


def test_unknown_series_is_refused_and_untouched(pristine: Path, tmp_path: Path) -> None:
    """A series kasalias has not been taught (a copy of the tree with VERSION raised by 10): one
    error line naming where the hooks of the nearest known series (7.3) stop, or saying that
    they all fit (then --series installs them); the tree is byte for byte as before."""
    from kasalias.kbuild import kernel_version

    version = kernel_version(pristine)
    tree = copy_tree(pristine, tmp_path / "linux")
    makefile = tree / "Makefile"
    makefile.write_text(makefile.read_text().replace(f"\nVERSION = {version[0]}\n", f"\nVERSION = {version[0] + 10}\n"))
    before = snapshot(tree)
    proc = run_kasalias("kbuild", "install", tree, check=False)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"kasalias: error: Linux {version[0] + 10}.{version[1]} is not a series kasalias "
                               "knows how to hook (known: 6.1, 6.12, 7.2, 7.3); with the hooks of 7.3") or \
        f"hooks of 7.3 all find their places: 'kasalias kbuild install --series 7.3 {tree}'" in lines[0], lines
    if version[0] == 7:
        assert "all find their places" in lines[0]
    else:  # the first hook point the 7.3 hooks miss in a 6.x tree
        assert ": line '" in lines[0] and "not found" in lines[0]
    assert snapshot(tree) == before
    # --series takes the hooks of a known series; remove restores the tree whatever its series
    run_kasalias("kbuild", "install", "--series", f"{version[0]}.{version[1]}", tree)
    assert snapshot(tree) != before
    run_kasalias("kbuild", "remove", tree)
    assert snapshot(tree) == before


def test_headers_package_ships_the_statistics(pristine: Path, tmp_path: Path) -> None:
    """The hooked packaging line lists modules.symbfreq and modules.symalias when they exist."""
    tree = copy_tree(pristine, tmp_path / "linux")
    run_kasalias("kbuild", "install", tree)
    script = tree / "scripts/package/install-extmod-build"
    if script.exists():  # 6.12: run the hooked list block in a build directory
        text = script.read_text()
        start = text.index("# >>> kasalias")
        block = text[start:text.index("# <<< kasalias", start)]
    else:  # 6.1: the find line of builddeb
        text = (tree / "scripts/package/builddeb").read_text()
        block = next(l for l in text.splitlines() if "modules.symbfreq" in l and l.lstrip().startswith("find"))
        block = block.replace("find arch/$SRCARCH/include Module.symvers", "echo").replace(
            "include scripts -type f", "")
    obj = tmp_path / "obj"
    obj.mkdir()
    (obj / "modules.symbfreq").write_text("x:1\n")
    (obj / "modules.symalias").write_text("")
    out = subprocess.run(["sh", "-c", block], cwd=obj, capture_output=True, text=True, check=True).stdout
    assert "modules.symbfreq" in out and "modules.symalias" in out


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.3"])
def test_stand_in_tree_install_and_remove(series: str, tmp_path: Path) -> None:
    """Without a download: install hooks every file and adds scripts/Makefile.kasalias (the
    bytes of kbuild/), remove gives the tree back byte for byte."""
    tree = fake_kernel_tree(tmp_path / "linux", tuple(int(x) for x in series.split(".")))  # type: ignore[arg-type]
    before = tree_snapshot(tree)
    run_kasalias("kbuild", "install", tree)
    hooked = tree_snapshot(tree)
    assert hooked["scripts/Makefile.kasalias"] == (ROOT / "kbuild" / "Makefile.kasalias").read_bytes()
    assert all(b"# >>> kasalias" in data for name, data in hooked.items()
               if isinstance(data, bytes) and name != "scripts/Makefile.kasalias")
    run_kasalias("kbuild", "remove", tree)
    assert tree_snapshot(tree) == before


@pytest.mark.parametrize("action", ["install", "remove"])
@pytest.mark.parametrize("kind", ["directory", "dangling link", "fifo"])
def test_makefile_kasalias_not_a_file_is_refused(action: str, kind: str, tmp_path: Path) -> None:
    """Something else where scripts/Makefile.kasalias goes: one error line, the tree unchanged
    (install used to hook the Kbuild files, then fail to rename onto a directory)."""
    tree = fake_kernel_tree(tmp_path / "linux")
    if action == "remove":
        run_kasalias("kbuild", "install", tree)
        (tree / "scripts/Makefile.kasalias").unlink()
    target = tree / "scripts/Makefile.kasalias"
    if kind == "directory":
        target.mkdir()
        (target / "a-file").write_text("not kasalias'\n")
    elif kind == "dangling link":
        target.symlink_to("nowhere")
    else:
        os.mkfifo(target)
    before = tree_snapshot(tree)
    proc = run_kasalias("kbuild", action, tree, check=False)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0] == f"kasalias: error: {target}: exists and is not a regular file (kasalias' " \
        "scripts/Makefile.kasalias goes there); the tree is unchanged"
    assert tree_snapshot(tree) == before  # no temporary file left either
