"""BTF FUNCs for aliased copies (kasalias.fentry, kasalias.signature) on real gcc + pahole output.

Three static functions named dup in three units of one relocatable object (as a module is
linked), with three signatures: two differ in types, two in parameter names only. pahole writes
the object's BTF; kasalias appends a FUNC per copy, named from its alias, whose FUNC_PROTO must
be that copy's signature, read back from the bytes written.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from kasalias.btf import FUNC_STATIC, KIND_FUNC, Btf, BtfAppender
from kasalias.fentry import copy_funcs
from kasalias.signature import BtfTypes
from kasalias.srcloc import DwarfSource, PathMapper
from kasalias.symbols import ElfImage

SOURCES = {
    "a.c": "struct foo { int x; };\n"
           "static int __attribute__((noinline, noipa)) dup(struct foo *f, int n) { return f->x + n; }\n"
           "int use_a(struct foo *f) { return dup(f, 1); }\n",
    "b.c": "static long __attribute__((noinline, noipa)) dup(const char *s, ...) { return s[0]; }\n"
           "long use_b(const char *s) { return dup(s, 1); }\n",
    "c.c": "struct foo { int x; };\n"
           "typedef unsigned long ulong_t;\n"
           "static int __attribute__((noinline, noipa)) dup(struct foo *g, int m) { return g->x - m; }\n"
           "static ulong_t __attribute__((noinline, noipa)) one(void) { return 1; }\n"
           "int use_c(struct foo *f) { return dup(f, 2) + one(); }\n",
    # a clone: gcc's IPA-SRA drops the unused argument and names the copy dup.isra.0
    "d.c": "struct foo { int x; };\n"
           "static int __attribute__((noinline)) dup(struct foo *f, int unused) { return f->x; }\n"
           "int use_d(struct foo *f) { return dup(f, 3); }\n",
}
EXPECTED = {  # alias -> (signature in signature.py's form, parameter names)
    "dup@a_c_2": ("F(I:int;P(S:foo),I:int)", ("f", "n")),
    "dup@b_c_1": ("F(I:long int;P(C(I:char)),...)", ("s", "")),
    "dup@c_c_3": ("F(I:int;P(S:foo),I:int)", ("g", "m")),
    "one@c_c_4": ("F(T:ulong_t;)", ()),
}


def _run(*cmd: object) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (shutil.which("gcc") and shutil.which("pahole")):
        pytest.skip("gcc or pahole not installed (tools/setup installs them)")
    d = tmp_path_factory.mktemp("fentry")
    for name, src in SOURCES.items():
        (d / name).write_text(src)
        _run("gcc", "-g", "-O2", "-c", d / name, "-o", d / name.replace(".c", ".o"))
    _run("ld", "-r", "-o", d / "mod.o", *(d / n.replace(".c", ".o") for n in SOURCES))
    _run("pahole", "-J", d / "mod.o")
    return d / "mod.o"


def _btf(path: Path) -> bytes:
    with path.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        assert sec is not None
        return bytes(sec.data())


def _picks(img: ElfImage) -> list:
    """Each dup and one with the alias naming would give it (file and line)."""
    by_file = {}
    for s in img.symbols:
        if s.name.split(".")[0] in ("dup", "one") and s.is_text:
            file = img.file_groups()[s.group]
            line = {"a.c": 2, "b.c": 1, "c.c": 3 if s.name == "dup" else 4, "d.c": 2}[file]
            by_file[(s.name, file)] = (s, f"{s.name.split('.')[0]}@{file.replace('.', '_')}_{line}")
    return list(by_file.values())


def _append(dwarf: DwarfSource, picks: list, obj: Path) -> tuple[bytes, list[str]]:
    btf = Btf(_btf(obj))
    app = BtfAppender(btf)
    _added, problems = copy_funcs(picks, app, str(obj), lambda: dwarf, lambda: BtfTypes(btf))
    return app.to_bytes(), problems


def test_each_copy_gets_a_func_with_its_own_signature(obj: Path) -> None:
    with ElfImage(obj) as img, DwarfSource(img, PathMapper(str(obj.parent), str(obj.parent))) as dwarf:
        picks = _picks(img)
        assert len(picks) == 5, [a for _s, a in picks]
        out, problems = _append(dwarf, picks, obj)
    new = Btf(out)  # parsed again: the kernel's checks of btf.py
    types = BtfTypes(new)
    for alias, (form, names) in EXPECTED.items():
        funcs = new.find_funcs(alias.replace("@", "."))
        assert len(funcs) == 1 and funcs[0].kind == KIND_FUNC and funcs[0].vlen == FUNC_STATIC, alias
        proto = new.proto(funcs[0].size_or_type)
        assert types.render(proto.id) == form, alias
        assert tuple(p.name for p in proto.params) == names, alias
    # the clone is named and reported, not given its declaration's proto
    assert not new.find_funcs("dup.d_c_2")
    assert [p for p in problems if "dup@d_c_2" in p and "clone" in p], problems
    assert len(problems) == 1, problems


def test_same_types_other_names_is_another_proto(obj: Path) -> None:
    """a.c's and c.c's dup have one type signature and other parameter names: fentry's args
    are by name, so each has its own proto."""
    with ElfImage(obj) as img, DwarfSource(img, PathMapper(str(obj.parent), str(obj.parent))) as dwarf:
        out, _problems = _append(dwarf, _picks(img), obj)
    new = Btf(out)
    a, c = (new.find_funcs(n)[0].size_or_type for n in ("dup.a_c_2", "dup.c_c_3"))
    assert a != c
    assert [p.type_id for p in new.proto(a).params] == [p.type_id for p in new.proto(c).params]


def test_appending_is_deterministic(obj: Path) -> None:
    with ElfImage(obj) as img, DwarfSource(img, PathMapper(str(obj.parent), str(obj.parent))) as dwarf:
        picks = _picks(img)
        first = _append(dwarf, picks, obj)
        second = _append(dwarf, list(reversed(picks)), obj)
    assert first == second


def test_bpftool_reads_the_funcs(obj: Path, tmp_path: Path) -> None:
    """libbpf's reader (bpftool, tools/setup installs it) takes the written BTF and lists each
    FUNC on the proto kasalias chose."""
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed (tools/setup installs it)")
    with ElfImage(obj) as img, DwarfSource(img, PathMapper(str(obj.parent), str(obj.parent))) as dwarf:
        out, _problems = _append(dwarf, _picks(img), obj)
    (tmp_path / "btf.bin").write_bytes(out)
    proc = subprocess.run(["bpftool", "btf", "dump", "file", str(tmp_path / "btf.bin"), "format", "raw"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    new = Btf(out)
    for alias in EXPECTED:
        name = alias.replace("@", ".")
        func = new.find_funcs(name)[0]
        assert f"[{func.id}] FUNC '{name}' type_id={func.size_or_type} linkage=static" in proc.stdout


@pytest.fixture(scope="module")
def linked(obj: Path) -> dict[str, Path]:
    """A vmlinux-like link of the four units, its BTF as link-vmlinux.sh makes it (6.x: an
    object file holding .BTF; 7.x: raw), and the analysis' alias table for it."""
    from conftest import run_kasalias

    d = obj.parent / "linked"
    d.mkdir()
    img = d / "vmlinux"
    _run("ld", "-o", img, "-e", "use_a", *(obj.parent / n.replace(".c", ".o") for n in SOURCES))
    _run("pahole", "-J", img)
    btf_o = d / "vmlinux.btf.o"
    _run("objcopy", "--only-section=.BTF", "--set-section-flags", ".BTF=alloc,readonly", "--strip-all", img, btf_o)
    with btf_o.open("r+b") as f:  # ET_REL, as gen_btf makes it
        f.seek(16)
        f.write(b"\1\0")
    raw = d / "vmlinux.BTF"
    raw.write_bytes(_btf(img))
    run_kasalias("analyze", "--vmlinux", img, "--srctree", obj.parent, "-o", d)
    return {"image": img, "object": btf_o, "raw": raw, "aliases": d / "modules.symalias"}


@pytest.mark.parametrize("form", ["object", "raw"])
def test_btf_verb_adds_a_func_per_copy(linked: dict[str, Path], form: str, tmp_path: Path) -> None:
    """'kasalias btf' as the link hooks run it: the BTF pahole wrote for the image (6.x's
    object file, 7.x's raw file) -> raw BTF with each aliased copy's FUNC; the input stays."""
    from conftest import run_kasalias

    src, out = linked[form], tmp_path / "btf.aliased"
    before = src.read_bytes()
    proc = run_kasalias("-v", "btf", "--aliases", linked["aliases"], "--dwarf", linked["image"], "--srctree",
                        linked["image"].parent.parent, src, out)
    assert src.read_bytes() == before
    assert "3 BTF FUNCs added" in proc.stderr, proc.stderr
    if form == "object":
        # objcopy cut the object out of an executable, program headers and all (6.x's gen_btf):
        # the output is a plain ET_REL that binutils and bpftool read, its .BTF the new BTF
        assert ELFFile(src.open("rb")).num_segments() > 0
        with out.open("rb") as f:
            elf = ELFFile(f)
            assert elf["e_type"] == "ET_REL" and elf.num_segments() == 0
            data = elf.get_section_by_name(".BTF").data()
        _run("objcopy", out, tmp_path / "copy.o")
        listing = subprocess.run(["bpftool", "btf", "dump", "file", out], capture_output=True, text=True)
        assert listing.returncode == 0 and "FUNC 'dup.a_c_2'" in listing.stdout, listing.stderr
        out = tmp_path / "btf.raw"
        out.write_bytes(data)
    new = Btf(out.read_bytes())
    types = BtfTypes(new)
    for alias in ("dup@a_c_2", "dup@b_c_1", "dup@c_c_3"):
        (func,) = new.find_funcs(alias.replace("@", "."))
        assert types.render(new.proto(func.size_or_type).id) == EXPECTED[alias][0], alias
    assert out.read_bytes().startswith(_btf(linked["image"])[:4])


def test_syms_names_each_copy_that_has_a_func(linked: dict[str, Path], tmp_path: Path) -> None:
    """'kasalias syms --btf': the copies with a FUNC get its name in kallsyms too, at the
    copy's address, right after the alias; the .syms file is not modified."""
    from conftest import run_kasalias

    btf = tmp_path / "btf.aliased"
    run_kasalias("btf", "--aliases", linked["aliases"], "--dwarf", linked["image"], linked["raw"], btf)
    nm = subprocess.run(["nm", "-n", linked["image"]], capture_output=True, text=True, check=True).stdout
    syms = tmp_path / "vmlinux.syms"
    syms.write_text("".join(l + "\n" for l in nm.splitlines() if l.split()[1] in "tT"))
    out = tmp_path / "vmlinux.syms.aliased"
    run_kasalias("syms", "--aliases", linked["aliases"], "--image", linked["image"], "--btf", btf, syms, out)
    lines = out.read_text().splitlines()
    addr = {l.split()[2]: l.split()[0] for l in lines}
    for alias in ("dup@a_c_2", "dup@b_c_1", "dup@c_c_3"):
        dotted = alias.replace("@", ".")
        assert addr[dotted] == addr[alias], alias
        assert lines[lines.index(f"{addr[alias]} t {alias}") + 1] == f"{addr[alias]} t {dotted}"
    assert len(lines) == len(syms.read_text().splitlines()) + 6


def test_a_copy_ftrace_cannot_patch_gets_no_func(tmp_path: Path) -> None:
    """fentry attaches only where ftrace can (the image's mcount table, as pahole also goes by):
    of two copies built with -pg -mfentry -mrecord-mcount, the notrace one gets no FUNC and is
    reported."""
    from conftest import run_kasalias

    (tmp_path / "m1.c").write_text("static int __attribute__((noinline, noipa)) dup(int n) { return n + 1; }\n"
                                   "int use_a(int n) { return dup(n); }\n")
    (tmp_path / "m2.c").write_text("static int __attribute__((noinline, noipa, no_instrument_function)) dup(int n)"
                                   " { return n + 2; }\nint use_b(int n) { return dup(n); }\n")
    (tmp_path / "fentry.c").write_text("void __fentry__(void) {}\n")
    for name in ("m1", "m2"):
        _run("gcc", "-g", "-O2", "-pg", "-mfentry", "-mrecord-mcount", "-c", tmp_path / f"{name}.c", "-o",
             tmp_path / f"{name}.o")
    _run("gcc", "-O2", "-c", tmp_path / "fentry.c", "-o", tmp_path / "fentry.o")
    img = tmp_path / "vmlinux"
    _run("ld", "-o", img, "-e", "use_a", tmp_path / "m1.o", tmp_path / "m2.o", tmp_path / "fentry.o")
    _run("pahole", "-J", img)
    raw = tmp_path / "vmlinux.BTF"
    raw.write_bytes(_btf(img))
    run_kasalias("analyze", "--vmlinux", img, "--srctree", tmp_path, "-o", tmp_path)
    out = tmp_path / "out.BTF"
    proc = run_kasalias("-v", "btf", "--aliases", tmp_path / "modules.symalias", "--dwarf", img, "--srctree", tmp_path,
                        raw, out)
    new = Btf(out.read_bytes())
    assert new.find_funcs("dup.m1_c_1") and not new.find_funcs("dup.m2_c_1")
    assert "dup@m2_c_1: no ftrace location" in proc.stderr and "1 BTF FUNCs added" in proc.stderr, proc.stderr


# -- modules: the module step on a module's split BTF ---------------------------------------

MODULE_SOURCES = {
    # two copies of dup in one module: pahole wrote one FUNC 'dup' (which copy's is not known):
    # each gets its proto from DWARF; 'one' is once here and once in vmlinux: pahole's FUNC of
    # the module's name is this copy's; 'quiet' is notrace in both copies
    "m1.c": "struct foo { int x; };\n"
            "static int __attribute__((noinline, noipa)) dup(int n) { return n + 1; }\n"
            "static int __attribute__((noinline, noipa)) one(struct foo *g, int k) { return g->x + k; }\n"
            "int use_a(struct foo *f, int n) { return dup(n) + one(f, n); }\n",
    "m2.c": "static long __attribute__((noinline, noipa)) dup(const char *s) { return s[0]; }\n"
            "static int __attribute__((noinline, noipa, no_instrument_function)) quiet(int n) { return n + 2; }\n"
            "long use_b(const char *s) { return dup(s) + quiet(1); }\n",
    "m3.c": "static int __attribute__((noinline, noipa, no_instrument_function)) quiet(int n) { return n + 3; }\n"
            "int use_c(int n) { return quiet(n); }\n",
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A vmlinux with BTF and a module built as x86 Kbuild builds one (-pg -mfentry -mrecord-mcount
    -fpatchable-function-entry=16,16, ld -r) whose split BTF pahole made on it, and the analysis of
    both, in both placements."""
    from conftest import run_kasalias

    if not (shutil.which("gcc") and shutil.which("pahole")):
        pytest.skip("gcc or pahole not installed (tools/setup installs them)")
    d = tmp_path_factory.mktemp("modbtf")
    (d / "k.c").write_text("struct foo { int x; };\n"
                           "static int __attribute__((noinline, noipa)) one(struct foo *f) { return f->x; }\n"
                           "int use_k(struct foo *f) { return one(f); }\n")
    _run("gcc", "-g", "-O2", "-c", d / "k.c", "-o", d / "k.o")
    _run("ld", "-o", d / "vmlinux", "-e", "use_k", d / "k.o")
    _run("pahole", "-J", d / "vmlinux")
    for name, src in MODULE_SOURCES.items():
        (d / name).write_text(src)
        # x86 Kbuild's flags: ftrace's (-mrecord-mcount: __mcount_loc) and the call padding's
        # (CONFIG_CALL_PADDING: nops before each function, listed in __patchable_function_entries)
        _run("gcc", "-g", "-O2", "-pg", "-mfentry", "-mrecord-mcount", "-fpatchable-function-entry=16,16", "-c",
             d / name, "-o", d / f"{name[:-2]}.o")
    _run("ld", "-r", "-o", d / "mod.ko", *(d / f"{n[:-2]}.o" for n in MODULE_SOURCES))
    _run("pahole", "-J", "--btf_base", d / "vmlinux", d / "mod.ko")
    out = {"dir": d, "vmlinux": d / "vmlinux", "ko": d / "mod.ko"}
    for placement, flags in (("after", []), ("first", ["--alias-first"])):
        run_kasalias("analyze", *flags, "--vmlinux", d / "vmlinux", "--module", d / "mod.ko", "--srctree", d,
                     "-o", d / placement)
        out[placement] = d / placement / "modules.symalias"
    return out


def _section(path: Path, name: str) -> bytes:
    with path.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        assert sec is not None, name
        return bytes(sec.data())


MODULE_FUNCS = {  # FUNC name -> (signature form, parameter names)
    "dup.m1_c_2": ("F(I:int;I:int)", ("n",)),
    "dup.m2_c_1": ("F(I:long int;P(C(I:char)))", ("s",)),
    "one.m1_c_3": ("F(I:int;P(S:foo),I:int)", ("g", "k")),
}


@pytest.mark.parametrize("placement", ["after", "first"])
@pytest.mark.parametrize("writer", ["kasalias", "objcopy"])
def test_module_step_adds_a_func_per_copy_to_the_split_btf(module: dict[str, Path], placement: str, writer: str,
                                                           tmp_path: Path) -> None:
    """'kasalias module --btf-base vmlinux': X.ko.aliased's .BTF is the module's split BTF with
    a FUNC per traceable copy on that copy's proto (two copies in one module: from DWARF; the
    name's one copy: pahole's), every old type and string where it was; a symbol of each FUNC's
    name at its copy, after the alias; notrace copies reported; the input unchanged."""
    from conftest import run_kasalias

    ko, out = module["ko"], tmp_path / "mod.ko.aliased"
    before = ko.read_bytes()
    proc = run_kasalias("-v", "module", "--aliases", module[placement], "--btf-base", module["vmlinux"],
                        *(["--objcopy", "objcopy"] if writer == "objcopy" else []), ko, out)
    assert ko.read_bytes() == before
    assert "quiet@m2_c_2: no ftrace location" in proc.stderr and "quiet@m3_c_1: no ftrace location" in proc.stderr
    assert "3 BTF FUNCs added" in proc.stderr and "5 aliases" in proc.stderr, proc.stderr
    base = Btf(_btf(module["vmlinux"]))
    old, new = _section(ko, ".BTF"), _section(out, ".BTF")
    split = Btf(new, base)  # the kernel's checks (btf.py)
    plain = Btf(old, base)
    assert split.types[:len(plain.types)] == plain.types
    types = BtfTypes(split, BtfTypes(base))
    for name, (form, names) in MODULE_FUNCS.items():
        (func,) = split.find_funcs(name)
        proto = split.proto(func.size_or_type)
        assert func.vlen == FUNC_STATIC and types.render(proto.id) == form, name
        assert tuple(p.name for p in proto.params) == names, name
    assert not split.find_funcs("quiet.m2_c_2") and not split.find_funcs("quiet.m3_c_1")
    syms = {}
    with out.open("rb") as f:
        for i, s in enumerate(ELFFile(f).get_section_by_name(".symtab").iter_symbols()):
            syms.setdefault(s.name, []).append((i, s["st_value"], s["st_info"]["type"], s["st_info"]["bind"]))
    for name in MODULE_FUNCS:
        alias = name.replace(".", "@", 1)
        ((i_dot, at, kind, bind),) = syms[name]
        ((i_alias, at_alias, _k, _b),) = syms[alias]
        assert (at, kind, bind) == (at_alias, "STT_FUNC", "STB_LOCAL") and i_alias < i_dot, name
        # the kernel names an address by its first symbol: the alias (first) or the original, never the FUNC's
        first = min(i for entries in syms.values() for i, v, _k, _b in entries if v == at and _k == "STT_FUNC")
        assert first < i_dot
    if shutil.which("bpftool"):
        listing = subprocess.run(["bpftool", "-B", module["vmlinux"], "btf", "dump", "file", out],
                                 capture_output=True, text=True)
        assert listing.returncode == 0 and "FUNC 'dup.m2_c_1'" in listing.stdout, listing.stderr


def test_module_step_without_btf_base_leaves_the_btf(module: dict[str, Path], tmp_path: Path) -> None:
    from conftest import run_kasalias

    out = tmp_path / "mod.ko.aliased"
    run_kasalias("module", "--aliases", module["after"], module["ko"], out)
    assert _section(out, ".BTF") == _section(module["ko"], ".BTF")


def test_module_step_on_the_wrong_base_fails_cleanly(module: dict[str, Path], tmp_path: Path) -> None:
    """A --btf-base that is not BTF at all: one error line, no output."""
    from conftest import run_kasalias

    out = tmp_path / "mod.ko.aliased"
    proc = run_kasalias("module", "--aliases", module["after"], "--btf-base", module["dir"] / "m1.c", module["ko"],
                        out, check=False)
    assert proc.returncode != 0 and proc.stderr.startswith("kasalias: error: "), proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("name, clone", [("dup", False), ("dup.isra.0", True), ("dup.constprop.0", True),
                                         ("dup.part.0", True), ("dup.cold", True), ("get_block.llvm.1278283747", False),
                                         ("dup.lto_priv.0", False), ("dup.isra.0.llvm.5", True)])
def test_a_static_lto_promoted_is_not_a_clone(name: str, clone: bool) -> None:
    """ThinLTO renames a static it makes global (minix's get_block.llvm.<hash> in the Clang
    kernel): the same function and arguments, so it gets its FUNC; a clone does not."""
    from kasalias.fentry import is_clone

    assert is_clone(name) == clone


def test_module_of_a_kernel_without_function_tracer(module: dict[str, Path], tmp_path: Path) -> None:
    """x86 with call padding and no function tracer (the e2e 7.3 kernel): the module has
    __patchable_function_entries, which is the padding's, not ftrace's, and no __mcount_loc:
    nothing says where ftrace patches, so every copy gets its FUNC, as pahole gives one."""
    from conftest import run_kasalias

    for name, src in MODULE_SOURCES.items():
        (tmp_path / name).write_text(src)
        _run("gcc", "-g", "-O2", "-fpatchable-function-entry=16,16", "-c", tmp_path / name, "-o",
             tmp_path / f"{name[:-2]}.o")
    ko = tmp_path / "mod.ko"
    _run("ld", "-r", "-o", ko, *(tmp_path / f"{n[:-2]}.o" for n in MODULE_SOURCES))
    _run("pahole", "-J", "--btf_base", module["vmlinux"], ko)
    run_kasalias("analyze", "--vmlinux", module["vmlinux"], "--module", ko, "--srctree", tmp_path, "-o", tmp_path)
    out = tmp_path / "mod.ko.aliased"
    run_kasalias("module", "--aliases", tmp_path / "modules.symalias", "--btf-base", module["vmlinux"], ko, out)
    split = Btf(_section(out, ".BTF"), Btf(_btf(module["vmlinux"])))
    names = {t.name for t in split.types if t.kind == KIND_FUNC and "." in t.name}
    assert names == {*MODULE_FUNCS, "quiet.m2_c_2", "quiet.m3_c_1"}, names
