"""End to end: a real Linux tree hooked with 'kasalias kbuild install', built with
'make KAS_ALIAS=1', booted in QEMU; assertions on what the guest prints.

Downloads (Debian's linux-source-X) and builds are cached in
${KASALIAS_CACHE:-/var/cache/kasalias}; a repeat run rebuilds incrementally.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, run_kasalias
from elfread import elf_symbols
from kasalias.policy import is_generated

CACHE = Path(os.environ.get("KASALIAS_CACHE", "/var/cache/kasalias"))
E2E = ROOT / "tests" / "e2e"
pytestmark = pytest.mark.e2e


@dataclass
class Line:
    addr: int
    type: str
    name: str
    module: str  # "" for vmlinux

    @property
    def base(self) -> str:
        return self.name.split("@", 1)[0]


@dataclass
class Guest:
    obj: Path
    log: str
    variant: Variant

    def kallsyms(self, label: str) -> list[Line]:
        m = re.search(rf"E2E-KALLSYMS-BEGIN {label}\n(.*?)E2E-KALLSYMS-END {label}", self.log, re.S)
        assert m, f"no kallsyms dump '{label}' in the boot log {self.obj / 'boot.log'}"
        out = []
        for raw in m.group(1).splitlines():
            f = raw.split()
            if f and f[0] == "E2E-K":
                out.append(Line(int(f[1], 16), f[2], f[3], f[4].strip("[]") if len(f) > 4 else ""))
        return out

    def lines(self, prefix: str) -> list[str]:
        return [l[len(prefix) + 1:] for l in self.log.splitlines() if l.startswith(prefix + " ")]


def sh(*argv: object, **kw: object) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


@dataclass(frozen=True)
class Variant:
    """One booted end-to-end kernel: a series, an architecture, a toolchain, and the config
    fragments (tests/e2e/kernel-NAME.config) merged over kernel.config (and over
    kernel-llvm.config for LLVM=1). toolchain: a Debian suite whose root file system
    (tests/e2e/toolchain-root) runs every make (build-kernel's TOOLCHAIN_SUITE), for a
    newer clang than the machine's; "" the machine's own."""

    series: str
    arch: str = "x86_64"
    llvm: bool = False
    fragments: tuple[str, ...] = ()
    toolchain: str = ""
    kas_alias: str = "1"  # make KAS_ALIAS=: 1 (each alias after its original) or first (before it)

    @property
    def alias_arg(self) -> str:
        return f"KAS_ALIAS={self.kas_alias}"

    @property
    def alias_first(self) -> bool:
        return self.kas_alias == "first"

    @property
    def id(self) -> str:
        return "-".join([self.series, *([self.arch] if self.arch != "x86_64" else []), *(["llvm"] if self.llvm else [])])

    @property
    def image(self) -> str:  # what QEMU boots, relative to the build directory
        return "arch/arm64/boot/Image" if self.arch == "arm64" else "arch/x86/boot/bzImage"

    @property
    def obj(self) -> Path:
        return CACHE / "build" / f"e2e-{self.id}-kasalias"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, JOBS=os.environ.get("JOBS", "2"), ARCH=self.arch)
        if self.toolchain:
            env["TOOLCHAIN_SUITE"] = self.toolchain
        overs = [*(["llvm"] if self.llvm else []), *self.fragments]
        if overs:  # kernel.config with each fragment's options over it, as one fragment
            frag = CACHE / "build" / f"e2e-{self.id}.config"
            frag.parent.mkdir(parents=True, exist_ok=True)
            text = (E2E / "kernel.config").read_text()
            symbol = re.compile(r"^(?:# )?(CONFIG_\w+)[= ]")
            for name in overs:
                over = (E2E / f"kernel-{name}.config").read_text()
                ours = {m.group(1) for m in map(symbol.match, over.splitlines()) if m}
                text = "".join(line + "\n" for line in text.splitlines()
                               if not ((m := symbol.match(line)) and m.group(1) in ours)) + over
            if not frag.is_file() or frag.read_text() != text:
                frag.write_text(text)
            env["KERNEL_CONFIG_FRAGMENT"] = str(frag)
        return env

    def make_args(self) -> list[str]:
        return [f"PYTHON3={sys.executable}", *(["LLVM=1"] if self.llvm else [])]


# What CI boots (tests/e2e/README.md); KASALIAS_E2E=6.12,7.3 picks some by id. The 6.12 x86_64
# GCC kernel also carries what the tracers need (kernel-trace.config): tests/test_tracers.py
# boots it again with a Debian userspace.
TRACE = Variant("6.12", fragments=("trace",), kas_alias="first")
# 7.3 has vmlinux and module BTF too (kernel-btf.config): 7.x's BTF hook in scripts/gen-btf.sh
VARIANTS = [TRACE, Variant("6.1"), Variant("7.3", fragments=("btf",)), Variant("6.12", "arm64"),
            Variant("6.12", llvm=True)]
# What CI's time cannot hold, run only when KASALIAS_E2E names them (tests/e2e/outside-ci runs
# them all): 7.3 with LLVM needs clang 17 or newer, Debian 12 has 14, so it is built with Debian
# 13's clang 19 in a trixie root, with the mitigations Debian's kernels have (kernel-clang19.config).
OUTSIDE_CI = [Variant("7.3", llvm=True, fragments=("clang19",), toolchain="trixie")]


def selected_variants() -> list[Variant]:
    wanted = os.environ.get("KASALIAS_E2E")
    if not wanted:
        return VARIANTS
    return [v for v in VARIANTS + OUTSIDE_CI if v.id in wanted.split(",")]


def built_modules(obj: Path) -> list[Path]:
    """The .ko files of a build directory, in modules.order order (unaliased: X.ko, not X.ko.aliased)."""
    return [obj / line.replace(".o", ".ko") for line in (obj / "modules.order").read_text().split()]


def hooked_tree(version: str) -> Path:
    """The cached tree with the hooks installed (tools/hooked-linux-source)."""
    return Path(sh(ROOT / "tools" / "hooked-linux-source", version).strip().splitlines()[-1])


def boot_hooked(variant: Variant) -> Guest:
    src = hooked_tree(variant.series)
    obj = variant.obj
    args = [variant.alias_arg, *variant.make_args()]
    env = variant.env()
    build = E2E / "build-kernel"
    sh(build, src, obj, *args, env=env)
    shutil.rmtree(obj / "staging", ignore_errors=True)
    sh(build, src, obj, "modules_install", f"INSTALL_MOD_PATH={obj / 'staging'}", *args, env=env)
    ext = obj / "extmod"
    shutil.rmtree(ext, ignore_errors=True)
    shutil.copytree(E2E / "extmod", ext)
    sh(build, src, obj, f"M={ext}", "modules", *args, env=env)
    sh(build, src, obj, f"M={ext}", "modules_install", f"INSTALL_MOD_PATH={obj / 'staging'}", *args, env=env)
    initrd = obj / "e2e-initrd.cpio"
    sh(E2E / "mkinitramfs", "-b", obj, "-t", E2E / "kasalias-test.sh", "-m", obj / "staging", initrd, env=env)
    log = obj / "boot.log"
    subprocess.run([str(E2E / "boot"), "-t", "600", "-o", str(log), str(obj / variant.image), str(initrd)],
                   capture_output=True, text=True, env=env)
    return Guest(obj, log.read_text(errors="replace"), variant)


@pytest.fixture(scope="module", params=selected_variants(), ids=lambda v: v.id)
def guest(request: pytest.FixtureRequest) -> Guest:
    return boot_hooked(request.param)


def check_aliases(lines: list[Line], alias_first: bool) -> None:
    """No alias repeats; each sits at the address of a same-named original; the first name at
    that address is the original (KAS_ALIAS=1) or the alias (KAS_ALIAS=first)."""
    names = Counter((l.name, l.module) for l in lines if "@" in l.name)
    assert names and max(names.values()) == 1, [n for n, c in names.items() if c > 1][:10]
    alias_names = Counter(l.name for l in lines if "@" in l.name)
    assert max(alias_names.values()) == 1  # unique across vmlinux and all modules too
    first_at: dict[tuple[int, str], Line] = {}
    originals: dict[tuple[int, str], set[str]] = defaultdict(set)
    for l in lines:
        first_at.setdefault((l.addr, l.module), l)
        if "@" not in l.name:
            originals[(l.addr, l.module)].add(l.name.split(".llvm.")[0])
    for l in lines:
        if "@" in l.name:
            assert l.base in originals[(l.addr, l.module)], f"{l.name}: no original {l.base} at {l.addr:x}"
            first = first_at[(l.addr, l.module)].name
            if alias_first:  # an alias; not always this one: GCC's ICF folds functions of two
                # duplicated names into one address (pagetable_pte_dtor, pagetable_pmd_dtor)
                assert "@" in first, f"{l.name}: the original {first} is the first name at {l.addr:x}"
            else:
                assert "@" not in first, f"{l.name} is the first name at {l.addr:x}"


def uncovered(lines: list[Line], allowed: set[str], functions: set[str]) -> list[str]:
    """Copies of duplicated function names the policy covers that have no alias (functions:
    the names of STT_FUNC symbols; a 't' in kallsyms can be an object in an executable .data)."""
    copies = Counter(l.name for l in lines if "@" not in l.name)
    aliased = {(l.addr, l.module, l.base) for l in lines if "@" in l.name}
    missing = []
    for l in lines:
        if "@" in l.name or l.type not in "tT" or l.name not in functions or copies[l.name] < 2 \
                or is_generated(l.name):
            continue
        if (l.addr, l.module, l.name) not in aliased and l.name not in allowed:
            missing.append(f"{l.name} {l.addr:x} [{l.module}]")
    return missing


def test_vmlinux_kallsyms_has_aliases(guest: Guest) -> None:
    lines = guest.kallsyms("vmlinux")
    check_aliases(lines, guest.variant.alias_first)
    functions = {s["name"] for s in elf_symbols(guest.obj / "vmlinux") if s["type"] == "STT_FUNC"}
    missing = uncovered(lines, no_dwarf_names(guest), functions)
    assert not missing, missing[:20]
    assert any(l.name.startswith("type_show@") for l in lines)


def test_vmlinux_btf_has_a_func_per_copy_named_in_kallsyms(guest: Guest) -> None:
    """With vmlinux BTF (the 6.12 TRACE and ThinLTO variants: 6.x's hook in gen_btf; 7.3:
    7.x's in gen-btf.sh), the BTF linked into vmlinux holds a FUNC per aliased function copy
    that has one, named as its alias with '.' for '@', and kallsyms lists each at its copy's
    address; the kernel's BTF checks (kasalias.btf's are the same) pass and the kernel took it."""
    if "CONFIG_DEBUG_INFO_BTF=y" not in (guest.obj / ".config").read_text().splitlines():
        pytest.skip("a variant without vmlinux BTF")
    from elftools.elf.elffile import ELFFile

    from kasalias.btf import KIND_FUNC, Btf

    with (guest.obj / "vmlinux").open("rb") as f:
        btf = ELFFile(f).get_section_by_name(".BTF").data()
    funcs = {t.name for t in Btf(btf, what="vmlinux").types if t.kind == KIND_FUNC}
    aliases = {l.name for l in guest.kallsyms("vmlinux") if "@" in l.name and l.type in "tT"}
    added = {a.replace("@", ".") for a in aliases} & funcs
    named = {line.split()[1] for line in guest.lines("E2E-FUNCNAME")}
    assert len(added) >= 5, sorted(added)
    assert added == named, (sorted(added - named)[:5], sorted(named - added)[:5])
    assert guest.lines("E2E-BTF-SYSFS") == [str(len(btf))]
    assert not [l for l in guest.lines("E2E-DMESG-BTF") if re.search(r"invalid|malformed|fail|error", l, re.I)], \
        guest.lines("E2E-DMESG-BTF")


def test_module_btf_has_a_func_per_copy_named_in_kallsyms(guest: Guest) -> None:
    """With module BTF (the TRACE and 7.3 variants), each X.ko.aliased's split BTF holds a FUNC per
    aliased function copy that can have one, the module loaded (a BTF the kernel refuses
    refuses the module), sysfs serves that BTF, and the module's kallsyms lists each FUNC's
    name at its copy's address."""
    if "CONFIG_DEBUG_INFO_BTF_MODULES=y" not in (guest.obj / ".config").read_text().splitlines():
        pytest.skip("a variant without module BTF")
    from elftools.elf.elffile import ELFFile

    from kasalias.btf import KIND_FUNC, Btf

    def section(path: Path, name: str = ".BTF") -> bytes | None:
        with path.open("rb") as f:
            sec = ELFFile(f).get_section_by_name(name)
            return sec.data() if sec is not None else None

    base = Btf(section(guest.obj / "vmlinux") or b"", what="vmlinux")
    served = dict(line.split() for line in guest.lines("E2E-BTF-MODULE"))
    named = {tuple(line.split()[1:]) for line in guest.lines("E2E-MODFUNCNAME")}
    added: set[tuple[str, str]] = set()
    for ko in [*built_modules(guest.obj), guest.obj / "extmod" / "hello.ko"]:  # hello: built out of tree (M=)
        name = ko.name.removesuffix(".ko").replace("-", "_")
        if name not in served:
            continue  # not loaded in the guest
        btf = section(Path(f"{ko}.aliased"))
        assert btf is not None and served[name] == str(len(btf)), name  # the kernel took the BTF written
        distilled = section(Path(f"{ko}.aliased"), ".BTF.base")  # 7.x, out of tree: a base of its own
        on = Btf(distilled, what=f"{name}: .BTF.base") if distilled is not None else base
        funcs = {t.name for t in Btf(btf, on, what=name).types if t.kind == KIND_FUNC and "." in t.name}
        added |= {(f, f"[{name}]") for f in funcs}
    # two copies in one module (their protos from DWARF), a name's one copy in a module (pahole's
    # proto), a module built out of tree
    assert sum(f.startswith("get_block.") for f, m in added if m == "[minix]") == 2, sorted(added)
    assert any(m == "[hello]" for _f, m in added), sorted(added)
    assert sum(f.startswith("foo_show.") for f, m in added if m == "[kobject_example]") == 1, sorted(added)
    assert added == named, (sorted(added - named)[:5], sorted(named - added)[:5])


def no_dwarf_names(guest: Guest) -> set[str]:
    """Names kasalias reports it cannot place (assembly without DWARF): allowed to lack an alias."""
    obj = guest.obj
    table = (obj / "modules.symalias").read_text()
    assert table.startswith("# kasalias alias table")
    report = run_kasalias("report", "--vmlinux", obj / "vmlinux", "--kernel-version", guest.variant.series, "--json")
    import json

    return {p.split(": ")[1] for p in json.loads(report.stdout)["problems"] if "no source location" in p}


def test_modules_load_and_show_aliases(guest: Guest) -> None:
    assert all(l.startswith("ok") for l in guest.lines("E2E-MODPROBE")), guest.lines("E2E-MODPROBE")
    assert not guest.lines("E2E-SIGNATURE")
    lines = guest.kallsyms("modules")
    check_aliases(lines, guest.variant.alias_first)
    minix = [l for l in lines if l.module == "minix" and "@" in l.name]
    for fn in ("get_block", "get_branch", "free_branches"):
        copies = [l for l in lines if l.module == "minix" and "@" not in l.name and l.name.split(".llvm.")[0] == fn]
        if fn != "get_block" and not copies:
            continue  # inlined everywhere (Clang ThinLTO inlines get_branch)
        got = [l for l in minix if l.base == fn]
        assert len(got) == 2 and len({l.addr for l in got}) == 2, (fn, got)
    for module in ("kobject_example", "kset_example", "hello"):
        assert any(l.module == module and l.base == "b_show" for l in lines if "@" in l.name), module
    # the out-of-tree module, aliased against the kernel's modules.symbfreq
    assert any(l.module == "hello" and l.base == "type_show" for l in lines if "@" in l.name)
    assert not any(l.module == "hello" and l.base == "kasalias_hello_unique" for l in lines)


def test_kprobe_on_alias(guest: Guest) -> None:
    probes = guest.lines("E2E-KPROBE")
    assert any(p.startswith("rejected type_show") for p in probes), probes
    accepted = [p.split()[1] for p in probes if p.startswith("accepted")]
    assert len(accepted) == 2 and all("@" in a for a in accepted), probes
    events = re.search(r"E2E-KPROBE-EVENTS-BEGIN\n(.*?)E2E-KPROBE-EVENTS-END", guest.log, re.S)
    assert events and all(a in events.group(1) for a in accepted), events


def test_installed_modules_are_the_aliased_ones(guest: Guest) -> None:
    kos = list((guest.obj / "staging").rglob("minix.ko*"))
    assert len(kos) == 1
    data = kos[0].read_bytes()
    if kos[0].suffix == ".xz":
        data = lzma.decompress(data)
    assert data.endswith(b"~Module signature appended~\n")  # signed after aliasing
    # modules built later find the statistics through /lib/modules/<release>/build
    (build,) = (guest.obj / "staging" / "lib" / "modules").glob("*/build")
    assert (build / "modules.symbfreq").is_file() and (build / "modules.symalias").is_file()
    plain = guest.obj / "minix.installed.ko"
    plain.write_bytes(data)
    names = {s["name"] for s in elf_symbols(plain)}
    assert sum(n.startswith("get_block@") for n in names) == 2


def test_toggling_kas_alias_relinks_only_vmlinux(guest: Guest) -> None:
    """Without KAS_ALIAS=1 the hooked tree runs no kasalias step; toggling it relinks vmlinux
    (its saved command changes) and compiles no module; a repeat build does nothing. With module
    BTF (this kernel's), Kbuild relinks every module after vmlinux (its BTF is made on vmlinux's)
    and the module steps run again: a module whose bytes are the same keeps its output (restat),
    another gets what kasalias makes of it."""
    if guest.variant != TRACE:
        pytest.skip("one kernel is enough for this (6.12 x86_64)")
    src = hooked_tree("6.12")
    build = E2E / "build-kernel"
    env = guest.variant.env()
    # Settle first: a kasalias newer than this build directory's last vmlinux link writes a
    # new table there (a format change, say), and its module steps rightly run once.
    sh(build, src, guest.obj, f"PYTHON3={sys.executable}", env=env)
    sh(build, src, guest.obj, guest.variant.alias_arg, f"PYTHON3={sys.executable}", env=env)
    ko = guest.obj / "fs/minix/minix.ko"
    aliased = Path(f"{ko}.aliased")
    before = (aliased.read_bytes(), aliased.stat().st_mtime_ns)
    ko_before = ko.read_bytes()
    plain = sh(build, src, guest.obj, f"PYTHON3={sys.executable}", env=env)
    assert re.search(r"^\s+LD\s+vmlinux$", plain, re.M) and "KASALIAS" not in plain
    assert not re.search(r"^\s+CC \[M\]", plain, re.M), plain  # (init/version-timestamp.o is every link's)
    again = sh(build, src, guest.obj, guest.variant.alias_arg, f"PYTHON3={sys.executable}", env=env)
    assert re.search(r"^\s+LD\s+vmlinux$", again, re.M) and not re.search(r"^\s+CC \[M\]", again, re.M), again
    steps = re.findall(r"^\s+KASALIAS\s+(\S+)$", again, re.M)
    assert "modules.symalias" in steps and any(s.endswith(".syms.aliased") for s in steps)
    if ko.read_bytes() == ko_before:
        assert (aliased.read_bytes(), aliased.stat().st_mtime_ns) == before  # the same bytes: not rewritten
    else:  # pahole -j orders vmlinux's types as its threads finish (scripts/Makefile.btf): new module BTF
        run_kasalias("module", "--aliases", guest.obj / "modules.symalias", "--btf-base", guest.obj / "vmlinux", ko,
                     guest.obj / "minix.by-hand.ko")
        assert (guest.obj / "minix.by-hand.ko").read_bytes() == aliased.read_bytes()
    noop = sh(build, src, guest.obj, guest.variant.alias_arg, f"PYTHON3={sys.executable}", env=env)
    assert "KASALIAS" not in noop and not re.search(r"^\s+LD\s+vmlinux$", noop, re.M)


def test_another_kasalias_relinks_and_reruns_every_step(guest: Guest, tmp_path: Path) -> None:
    """After a change to kasalias' code, 'make KAS_ALIAS=1' (or first) relinks vmlinux and runs every
    module step again, its outputs are what the changed kasalias makes of the same inputs, and
    the next build does nothing (then the build directory goes back to this kasalias)."""
    if guest.variant != TRACE:
        pytest.skip("one kernel is enough for this (6.12 x86_64)")
    src, build, env, obj = hooked_tree("6.12"), E2E / "build-kernel", guest.variant.env(), guest.obj
    kas = tmp_path / "kas"
    for d in ("kasalias", "templates", "kbuild"):
        shutil.copytree(ROOT / d, kas / d, ignore=shutil.ignore_patterns("__pycache__"))
    (kas / "kasalias" / "naming.py").write_text((kas / "kasalias" / "naming.py").read_text() + "\n# changed\n")
    python = kas / "python3"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={kas} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    try:
        sh(build, src, obj, guest.variant.alias_arg, f"PYTHON3={sys.executable}", env=env)  # settled
        out = sh(build, src, obj, guest.variant.alias_arg, f"PYTHON3={python}", env=env)
        assert re.search(r"^\s+LD\s+vmlinux$", out, re.M), out
        steps = set(re.findall(r"^\s+KASALIAS\s+(\S+)$", out, re.M))
        modules = [str(m.relative_to(obj)) for m in built_modules(obj)]
        assert {"modules.symalias", *(f"{m}.aliased" for m in modules)} <= steps, steps
        # what the changed kasalias makes of the same inputs, run by hand
        config = (obj / ".config").read_text()
        sh(python, "-m", "kasalias", "analyze", "--vmlinux", obj / "vmlinux.o", "--objtree", obj, "--srctree", src,
           "--modules-order", obj / "modules.order", *(["--alias-first"] if guest.variant.alias_first else []),
           "-o", tmp_path)
        for name in ("modules.symalias", "modules.symbfreq"):
            assert (tmp_path / name).read_bytes() == (obj / name).read_bytes(), name
        for m in modules:
            sh(python, "-m", "kasalias", "module", "--aliases", obj / "modules.symalias",
               *(["--btf-base", obj / "vmlinux"] if "CONFIG_DEBUG_INFO_BTF_MODULES=y" in config else []),
               obj / m, tmp_path / "x.ko")
            assert (tmp_path / "x.ko").read_bytes() == (obj / f"{m}.aliased").read_bytes(), m
        again = sh(build, src, obj, guest.variant.alias_arg, f"PYTHON3={python}", env=env)
        assert "KASALIAS" not in again and not re.search(r"^\s+LD\s+vmlinux$", again, re.M), again
    finally:
        sh(build, src, obj, guest.variant.alias_arg, f"PYTHON3={sys.executable}", env=env)


def test_build_without_kasalias_stops_at_once(guest: Guest, tmp_path: Path) -> None:
    """A KAS_ALIAS=1 build whose Python cannot run kasalias stops while make reads the
    Makefile, with one line saying so, before anything is compiled or linked."""
    if guest.variant != TRACE:
        pytest.skip("one kernel is enough for this (6.12 x86_64)")
    bare = tmp_path / "python3"  # Debian's Python, isolated from this checkout and its venv
    bare.write_text('#!/bin/sh\nexec /usr/bin/python3 -I "$@"\n')
    bare.chmod(0o755)
    vmlinux = guest.obj / "vmlinux"
    mtime = vmlinux.stat().st_mtime_ns
    proc = subprocess.run(["make", "-s", "-C", str(hooked_tree("6.12")), f"O={guest.obj}", "ARCH=x86_64",
                           guest.variant.alias_arg, f"KASALIAS_PYTHON={bare}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"kasalias: '{bare} -m kasalias' does not run: give KASALIAS_PYTHON=" in proc.stderr, proc.stderr
    assert vmlinux.stat().st_mtime_ns == mtime


def test_index_of_the_unaliased_build_resolves_to_the_same_aliases(guest: Guest, tmp_path: Path) -> None:
    """'kasalias index' over the build's vmlinux and (unaliased) modules, resolved with
    'kasalias lookup' on the booted guest's /proc/kallsyms: every alias lands where the hooked
    kernel has that same alias, after the same-named original (a distribution kernel gets the
    aliases a KAS_ALIAS=1 build gives, without the rebuild)."""
    obj = guest.obj
    modules = built_modules(obj)
    index = tmp_path / "kernel.index"
    run_kasalias("index", "--vmlinux", obj / "vmlinux", *[a for m in modules for a in ("--module", m)],
                 "--kernel-version", guest.variant.series, "-o", index)
    lines = guest.kallsyms("modules")
    dump = tmp_path / "kallsyms"
    dump.write_text("".join(f"{l.addr:016x} {l.type} {l.name}" + (f"\t[{l.module}]" if l.module else "") + "\n"
                            for l in lines))
    from kasalias.index import Index

    entries = Index.read(index).entries
    assert len(entries) > 100 and {e.image for e in entries} >= {"vmlinux", "minix"}
    out = run_kasalias("lookup", "--index", index, "--kallsyms", dump, *(e.alias for e in entries)).stdout
    in_guest = {(l.name, l.module): l.addr for l in lines if "@" in l.name}
    resolved = [line.split() for line in out.splitlines()]
    assert len(resolved) == len(entries)
    for address, alias, image, symbol, sympos, _decl in resolved:
        module = image.strip("[]").replace("vmlinux", "")
        assert in_guest[(alias, module)] == int(address, 16), (alias, address)
    # a saved kallsyms of another kernel (another build ID) is refused
    bad = run_kasalias("lookup", "--index", index, "--kallsyms", dump, "--build-id", "00" * 20, entries[0].alias,
                       check=False)
    assert bad.returncode == 1 and "a debug package of another kernel" in bad.stderr
