"""kasalias index / lookup / kallsyms on sample-tree's vmlinux and modules, resolved against a
kallsyms made from the same files as a booted kernel would list them (KASLR slide, module load
addresses); read back with nm and pyelftools, independently of kasalias."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Build, run_kasalias
from elfread import elf_symbols, nm_symbols
from kasalias.index import Index

SLIDE = 0x1c00000  # a KASLR offset
MODULE_BASE = {"minix": 0xffffffffc0200000, "kobject_example": 0xffffffffc0300000}


def fake_kallsyms(build: Build, path: Path, modules: list[str]) -> dict[str, list[tuple[str, int]]]:
    """A /proc/kallsyms: vmlinux's text/data symbols moved by SLIDE, then each module's
    symbols in symbol-table order at MODULE_BASE + value (one section per module here: a
    stand-in for the loader's layout that keeps every same-named copy apart)."""
    lines = [f"{a + SLIDE:016x} {t} {n}" for a, t, n in nm_symbols(build.vmlinux) if t in "tTdDbBrR" and n]
    by_module: dict[str, list[tuple[str, int]]] = {}
    for m in modules:
        ko = build.ko(m)
        secs: dict[str, int] = {}
        for s in elf_symbols(ko):
            if s["name"] and s["type"] in ("STT_FUNC", "STT_OBJECT") and s["section"] not in ("SHN_UNDEF", "SHN_ABS"):
                base = MODULE_BASE[m] + 0x10000 * secs.setdefault(s["section"], len(secs))
                lines.append(f"{base + s['value']:016x} t {s['name']}\t[{m}]")
                by_module.setdefault(m, []).append((s["name"], base + s["value"]))
    path.write_text("\n".join(lines) + "\n")
    return by_module


@pytest.fixture(scope="module")
def index(build5: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "kernel.index"
    run_kasalias("index", "--vmlinux", build5.vmlinux, *[a for m in build5.modules
                                                       for a in ("--module", m.with_suffix(".ko"))],
                 "--srctree", build5.srctree, "--kernel-version", "6.12", "-o", out)
    return out


def test_lookup_vmlinux_and_module_aliases(build5: Build, index: Path, tmp_path: Path) -> None:
    dump = tmp_path / "kallsyms"
    module_syms = fake_kallsyms(build5, dump, ["minix", "kobject_example"])
    entries = [e for e in Index.read(index).entries if e.image in ("vmlinux", "minix", "kobject_example")]
    assert {e.image for e in entries} == {"vmlinux", "minix", "kobject_example"}
    out = run_kasalias("lookup", "--index", index, "--kallsyms", dump, *(e.alias for e in entries)).stdout
    link = {n: [a for a, _t, name in nm_symbols(build5.vmlinux) if name == n] for n in {e.symbol for e in entries}}
    for line, e in zip(out.splitlines(), entries):
        address, alias, image, symbol, sympos = line.split()[:5]
        assert (alias, symbol, sympos) == (e.alias, e.symbol, f"sympos={e.sympos}")
        if e.image == "vmlinux":
            # the sympos-th copy by address, moved by the slide
            assert int(address, 16) == sorted(link[e.symbol])[e.sympos - 1] + SLIDE == e.address + SLIDE
        else:
            copies = [a for n, a in module_syms[e.image] if n == e.symbol]  # symbol-table order
            assert int(address, 16) == copies[e.sympos - 1], line
    minix = [e for e in entries if e.image == "minix" and e.symbol == "get_block"]
    assert sorted(e.sympos for e in minix) == [1, 2]  # two copies from one included .c file


def test_kallsyms_with_aliases(build5: Build, index: Path, tmp_path: Path) -> None:
    dump = tmp_path / "kallsyms"
    fake_kallsyms(build5, dump, ["minix", "kobject_example"])
    text = run_kasalias("kallsyms", "--index", index, "--kallsyms", dump).stdout.splitlines()
    plain = dump.read_text().splitlines()
    assert [l for l in text if "@" not in l.split()[2]] == plain  # the original lines, as they were
    for i, line in enumerate(text):
        if "@" in line.split()[2]:
            prev = text[i - 1].split()
            alias = line.split()
            assert prev[0] == alias[0] and alias[2].startswith(prev[2].split("@")[0] + "@")
            assert prev[3:] == alias[3:]  # the same module


def test_lookup_errors(build5: Build, index: Path, tmp_path: Path) -> None:
    dump = tmp_path / "kallsyms"
    fake_kallsyms(build5, dump, ["kobject_example"])  # minix not loaded
    minix = next(e.alias for e in Index.read(index).entries if e.image == "minix")
    proc = run_kasalias("lookup", "--index", index, "--kallsyms", dump, minix, check=False)
    assert proc.returncode == 1 and "module minix is not loaded" in proc.stdout + proc.stderr
    assert proc.stderr.startswith("kasalias: error: 1 of 1 aliases not resolved")
    some = Index.read(index).entries[0].alias
    proc = run_kasalias("lookup", "--index", index, "--kallsyms", dump, "--build-id", "ab" * 20, some, check=False)
    assert proc.returncode == 1 and "a debug package of another kernel" in proc.stderr
    zero = tmp_path / "hidden"
    zero.write_text("".join("0000000000000000 " + l.split(" ", 1)[1] + "\n" for l in dump.read_text().splitlines()))
    proc = run_kasalias("lookup", "--index", index, "--kallsyms", zero, some, check=False)
    assert proc.returncode == 1 and "kptr_restrict" in proc.stderr
    proc = run_kasalias("lookup", "--index", index, "--kallsyms", dump, "no_such@alias_c_1", check=False)
    assert proc.returncode == 1 and "not in the index: no_such@alias_c_1" in proc.stderr


def test_index_is_deterministic(build5: Build, build5b: Build, index: Path, tmp_path: Path) -> None:
    """The same index from the same files, and from the same tree built in another directory
    (but for the build IDs, which hash the build directory's paths in DWARF)."""
    again = tmp_path / "again.index"
    run_kasalias("index", "--vmlinux", build5.vmlinux, *[a for m in build5.modules
                                                       for a in ("--module", m.with_suffix(".ko"))],
                 "--srctree", build5.srctree, "--kernel-version", "6.12", "-o", again)
    assert again.read_bytes() == index.read_bytes()
    other = tmp_path / "other.index"
    run_kasalias("index", "--vmlinux", build5b.vmlinux, *[a for m in build5b.modules
                                                        for a in ("--module", m.with_suffix(".ko"))],
                 "--srctree", build5b.srctree, "--kernel-version", "6.12", "-o", other)
    strip = lambda p: [l for l in p.read_text().splitlines() if not l.startswith("# image: ")]  # noqa: E731
    assert strip(other) == strip(index)


def test_probe_by_address_on_a_kernel_without_aliases(build5: Build, index: Path, tmp_path: Path) -> None:
    """'probe --index': the copies the index names, at the addresses 'lookup' resolves, in the
    address forms of kprobe_events, bpftrace and perf probe (vmlinux only)."""
    dump = tmp_path / "kallsyms"
    fake_kallsyms(build5, dump, ["minix", "kobject_example"])
    entries = Index.read(index).entries
    vm = next(e for e in entries if e.image == "vmlinux" and e.symbol == "name_show")
    mx = next(e for e in entries if e.image == "minix" and e.symbol == "get_block")
    where = {line.split()[1]: int(line.split()[0], 16) for line in run_kasalias(
        "lookup", "--index", index, "--kallsyms", dump, vm.alias, mx.alias).stdout.splitlines()}
    probe = ["probe", "--index", index, "--kallsyms", dump]
    out = run_kasalias(*probe, "--for", "kprobe", vm.alias, mx.alias).stdout.splitlines()
    assert [line.split()[1] for line in out] == [f"0x{where[vm.alias]:x}", f"0x{where[mx.alias]:x}"]
    assert run_kasalias(*probe, "--for", "bpftrace", "--return", vm.alias).stdout == f"kretprobe:0x{where[vm.alias]:x}\n"
    assert run_kasalias(*probe, "--for", "perf", vm.alias).stdout.endswith(f"=0x{where[vm.alias]:x}\n")
    bad = run_kasalias(*probe, "--for", "perf", mx.alias, check=False)
    assert bad.returncode == 1 and "perf probe takes no address in a module" in bad.stderr
    both = run_kasalias(*probe, "--for", "bpftrace", "get_block@*").stdout.splitlines()
    assert len(both) >= 2 and all(line.startswith("kprobe:0x") for line in both)
    missing = run_kasalias(*probe, "--for", "bpftrace", "nothing@*", check=False)
    assert missing.returncode == 1 and "matches no alias in the index" in missing.stderr
