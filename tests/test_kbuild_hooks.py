"""kasalias kbuild install/remove on the real Kbuild files of Linux 6.12 and 6.1."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_kasalias

FILES = ("Makefile", "scripts/link-vmlinux.sh", "scripts/Makefile.vmlinux", "scripts/Makefile.modfinal",
         "scripts/Makefile.modinst", "scripts/package/install-extmod-build", "scripts/package/builddeb")


@pytest.fixture(scope="module", params=["6.12", "6.1"])
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
    KAS_ALIAS=1, and starts with KAS_ALIAS=1 with it."""
    tree = copy_tree(pristine, tmp_path / "linux")
    original = (tree / "scripts/Makefile.vmlinux").read_text()
    run_kasalias("kbuild", "install", tree)
    hooked = (tree / "scripts/Makefile.vmlinux").read_text()

    def cmd(text: str, *args: str) -> str:
        start = text.index("# Final link of vmlinux")
        end = text.index("targets += vmlinux")
        return make_value(text[start:end], "cmd_link_vmlinux", *args)

    assert cmd(hooked) == cmd(original)
    assert cmd(hooked, "KAS_ALIAS=1") == "KAS_ALIAS=1 " + cmd(original)


def test_unknown_tree_is_refused_and_untouched(pristine: Path, tmp_path: Path) -> None:
    tree = copy_tree(pristine, tmp_path / "linux")
    text = (tree / "scripts/Makefile.modinst").read_text()
    (tree / "scripts/Makefile.modinst").write_text(text.replace("$(dst)/%.ko: $(extmod_prefix)%.ko FORCE",
                                                                "$(dst)/%.ko: %.ko FORCE"))
    before = snapshot(tree)
    proc = run_kasalias("kbuild", "install", tree, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("kasalias: error: scripts/Makefile.modinst")
    assert snapshot(tree) == before
    (tree / "Makefile").write_text((tree / "Makefile").read_text().replace("VERSION = 6", "VERSION = 5"))
    proc = run_kasalias("kbuild", "install", tree, check=False)
    assert proc.returncode == 1 and "not a version kasalias knows" in proc.stderr
    proc = run_kasalias("kbuild", "install", tmp_path / "nothing-here", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("kasalias: error:")


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
