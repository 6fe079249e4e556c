"""The pahole of each userland kasalias' BTF FUNCs must work with: Debian 12's (1.24), 13's and
sid's (1.31+, whose consistent_func drops a name whose copies have other signatures). Each runs
from its suite's root file system (tests/e2e/fetch-rootfs, the tracer guest's, which has dwarves)
with the flags the kernel's scripts/Makefile.btf gives its version, on the objects of
tests/test_fentry.py: kasalias then adds a FUNC per aliased copy to the vmlinux BTF ('kasalias
btf') and to the module's split BTF ('kasalias module --btf-base'), each on that copy's own
signature, and what it wrote passes the kernel's BTF checks (kasalias.btf) and bpftool's reader."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_kasalias
from test_fentry import EXPECTED, MODULE_FUNCS, MODULE_SOURCES, SOURCES

from kasalias.btf import KIND_FUNC, Btf
from kasalias.signature import BtfTypes

pytestmark = pytest.mark.kernel
SUITES = ["bookworm", "trixie", "sid"]


def _run(*cmd: object) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def pahole_of(suite: str) -> list[str]:
    """The command that runs SUITE's pahole on this machine: its root's loader and libraries."""
    root = Path(_run(ROOT / "tests" / "e2e" / "fetch-rootfs", suite).strip().splitlines()[-1])
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    if not (root / "usr" / "bin" / "pahole").is_file():
        pytest.fail(f"{root}: no pahole (tests/e2e/tracers/rootfs-packages.txt lists dwarves)")
    return [str(libs / "ld-linux-x86-64.so.2"), "--library-path", f"{libs}:{root / 'lib' / 'x86_64-linux-gnu'}",
            str(root / "usr" / "bin" / "pahole")]


def kernel_flags(version: tuple[int, int]) -> list[str]:
    """PAHOLE_FLAGS of Linux 7.3's scripts/Makefile.btf for this pahole (no -j: one thread)."""
    if version <= (1, 25):
        return ["--btf_gen_floats", *(["--skip_encoding_btf_inconsistent_proto", "--btf_gen_optimized"]
                                      if version >= (1, 25) else [])]
    flags = ["--btf_features=encode_force,var,float,enum64,decl_tag,type_tag,optimized_func,consistent_func"]
    return flags + (["--btf_features=layout"] if version >= (1, 31) else [])


@pytest.fixture(scope="module", params=SUITES)
def pahole(request: pytest.FixtureRequest) -> tuple[str, list[str], tuple[int, int]]:
    argv = pahole_of(request.param)
    m = re.match(r"v(\d+)\.(\d+)", _run(*argv, "--version").strip())
    assert m, argv
    return request.param, argv, (int(m.group(1)), int(m.group(2)))


def test_each_userland_has_its_own_pahole(pahole: tuple[str, list[str], tuple[int, int]]) -> None:
    suite, _argv, version = pahole
    assert version == (1, 24) if suite == "bookworm" else version >= ((1, 31) if suite == "sid" else (1, 25)), version


def _section(path: Path, name: str = ".BTF") -> bytes:
    out = path.with_name(f"{path.name}{name}")
    _run("objcopy", "--dump-section", f"{name}={out}", path, path.with_name(f"{path.name}.dumped"))
    return out.read_bytes()


def test_vmlinux_and_module_btf_of_each_pahole(pahole: tuple[str, list[str], tuple[int, int]],
                                              tmp_path: Path) -> None:
    suite, argv, version = pahole
    flags = kernel_flags(version)
    # vmlinux: the units of tests/test_fentry.py, linked; its BTF detached (as 7.x's gen-btf.sh)
    # and also put into the image (the modules' base)
    for name, src in SOURCES.items():
        (tmp_path / name).write_text(src)
        _run("gcc", "-g", "-O2", "-c", tmp_path / name, "-o", tmp_path / f"{name[:-2]}.o")
    vmlinux = tmp_path / "vmlinux"
    _run("ld", "-o", vmlinux, "-e", "use_a", *(tmp_path / f"{n[:-2]}.o" for n in SOURCES))
    _run(*argv, "-J", *flags, f"--btf_encode_detached={tmp_path / 'vmlinux.BTF'}", vmlinux)
    run_kasalias("analyze", "--vmlinux", vmlinux, "--srctree", tmp_path, "-o", tmp_path / "vm")
    out = tmp_path / "vmlinux.BTF.aliased"
    run_kasalias("btf", "--aliases", tmp_path / "vm" / "modules.symalias", "--dwarf", vmlinux, "--srctree", tmp_path,
                 tmp_path / "vmlinux.BTF", out)
    base = Btf(out.read_bytes(), what=f"{suite}: vmlinux")  # the kernel's checks
    types = BtfTypes(base)
    bare = [t for t in base.types if t.kind == KIND_FUNC and t.name == "dup"]
    for alias, (form, names) in EXPECTED.items():
        if not alias.startswith("dup@"):
            continue  # 'one' is one function here: no alias
        (func,) = base.find_funcs(alias.replace("@", "."))
        proto = base.proto(func.size_or_type)
        assert types.render(proto.id) == form and tuple(p.name for p in proto.params) == names, (suite, alias)
    _run("objcopy", "--add-section", f".BTF={out}", vmlinux)

    # a module on that vmlinux: its split BTF made by the same pahole (Makefile.modfinal's step)
    mod = tmp_path / "mod"
    mod.mkdir()
    for name, src in MODULE_SOURCES.items():
        (mod / name).write_text(src)
        _run("gcc", "-g", "-O2", "-pg", "-mfentry", "-mrecord-mcount", "-fpatchable-function-entry=16,16", "-c",
             mod / name, "-o", mod / f"{name[:-2]}.o")
    ko = mod / "mod.ko"
    _run("ld", "-r", "-o", ko, *(mod / f"{n[:-2]}.o" for n in MODULE_SOURCES))
    _run(*argv, "-J", *flags, "--btf_base", vmlinux, f"--btf_encode_detached={mod / 'mod.BTF'}", ko)
    _run("objcopy", "--add-section", f".BTF={mod / 'mod.BTF'}", ko)
    run_kasalias("analyze", "--vmlinux", vmlinux, "--module", ko, "--srctree", mod, "-o", mod / "an")
    aliased = mod / "mod.ko.aliased"
    run_kasalias("module", "--aliases", mod / "an" / "modules.symalias", "--btf-base", vmlinux, ko, aliased)
    split = Btf(_section(aliased), Btf(_section(vmlinux)), what=f"{suite}: mod.ko.aliased")
    split_types = BtfTypes(split, BtfTypes(split.base))  # type: ignore[arg-type]
    for name, (form, names) in MODULE_FUNCS.items():
        (func,) = split.find_funcs(name)
        proto = split.proto(func.size_or_type)
        assert split_types.render(proto.id) == form and tuple(p.name for p in proto.params) == names, (suite, name)
    if shutil.which("bpftool"):
        listing = _run("bpftool", "-B", vmlinux, "btf", "dump", "file", aliased)
        assert all(f"FUNC '{n}'" in listing for n in MODULE_FUNCS), listing
    # 1.24 kept one copy's FUNC under the bare name; consistent_func (1.26+) drops a name whose
    # copies' signatures differ: fentry had no way to any copy before these FUNCs
    assert len(bare) == (1 if version < (1, 26) else 0), (suite, version, bare)


def test_module_with_a_distilled_base(pahole: tuple[str, list[str], tuple[int, int]], tmp_path: Path) -> None:
    """A module built out of tree with pahole 1.26+ carries a distilled base (.BTF.base, 6.12's
    MODULE_PAHOLE_FLAGS) that the kernel relocates onto its own BTF at load: kasalias appends the
    FUNCs on that base, not on vmlinux's."""
    suite, argv, version = pahole
    if version < (1, 26):
        pytest.skip(f"pahole {version[0]}.{version[1]} makes no distilled base")
    (tmp_path / "k.c").write_text("struct foo { int x; };\nint use_k(struct foo *f) { return f->x; }\n")
    _run("gcc", "-g", "-O2", "-c", tmp_path / "k.c", "-o", tmp_path / "k.o")
    vmlinux = tmp_path / "vmlinux"
    _run("ld", "-o", vmlinux, "-e", "use_k", tmp_path / "k.o")
    _run(*argv, "-J", f"--btf_encode_detached={tmp_path / 'vmlinux.BTF'}", vmlinux)
    _run("objcopy", "--add-section", f".BTF={tmp_path / 'vmlinux.BTF'}", vmlinux)
    for name, src in MODULE_SOURCES.items():
        (tmp_path / name).write_text(src)
        _run("gcc", "-g", "-O2", "-pg", "-mfentry", "-mrecord-mcount", "-c", tmp_path / name, "-o",
             tmp_path / f"{name[:-2]}.o")
    ko = tmp_path / "mod.ko"
    _run("ld", "-r", "-o", ko, *(tmp_path / f"{n[:-2]}.o" for n in MODULE_SOURCES))
    proc = subprocess.run([*argv, "-J", *kernel_flags(version), "--btf_features=distilled_base", "--btf_base",
                           str(vmlinux), str(ko)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LLVM_OBJCOPY": "objcopy"})  # pahole adds the sections
    assert proc.returncode == 0, proc.stderr
    run_kasalias("analyze", "--vmlinux", vmlinux, "--module", ko, "--srctree", tmp_path, "-o", tmp_path / "an")
    aliased = tmp_path / "mod.ko.aliased"
    run_kasalias("module", "--aliases", tmp_path / "an" / "modules.symalias", "--btf-base", vmlinux, ko, aliased)
    distilled = Btf(_section(aliased, ".BTF.base"), what="distilled base")
    assert _section(aliased, ".BTF.base") == _section(ko, ".BTF.base")
    split = Btf(_section(aliased), distilled, what=f"{suite}: mod.ko.aliased")
    types = BtfTypes(split, BtfTypes(distilled))
    for name, (form, names) in MODULE_FUNCS.items():
        if not name.startswith("dup."):
            continue  # 'one' is not in this vmlinux: no alias
        (func,) = split.find_funcs(name)
        proto = split.proto(func.size_or_type)
        assert types.render(proto.id) == form and tuple(p.name for p in proto.params) == names, (suite, name)
