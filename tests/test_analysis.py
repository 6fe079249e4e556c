"""The analysis on real sample-tree builds: every case gets a correct, unique alias."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import SAMPLE, Build, analyze, run_kasalias
from kasalias.aliastable import AliasTable
from kasalias.naming import mangle
from kasalias.symbfreq import SymbolFrequency


def expected_rows(kind: str | None = None) -> list[dict[str, str]]:
    lines = [l for l in (SAMPLE / "expected.tsv").read_text().splitlines() if not l.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    for r in rows:
        r["image"] = r["image"].replace("-", "_")
    return [r for r in rows if kind is None or r["kind"] == kind]


def table_of(outdir: Path) -> AliasTable:
    return AliasTable.read(outdir / "modules.symalias")


def identities(table: AliasTable) -> set[tuple[str, str, str, str]]:
    return {(r.image, r.symbol, r.decl, r.cu) for r in table.rows}


def test_every_text_case_gets_its_alias(analysis5: Path) -> None:
    table = table_of(analysis5)
    want = {(r["image"], r["symbol"], f"{r['decl_file']}:{r['decl_line']}", r["cu"]) for r in expected_rows("text")}
    assert identities(table) == want


@pytest.fixture(scope="session")
def analysis5_data(build5: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyze(build5, tmp_path_factory.mktemp("kas5data"), "--data")


def test_data_aliases_on_request(analysis5_data: Path) -> None:
    want = {(r["image"], r["symbol"], f"{r['decl_file']}:{r['decl_line']}", r["cu"]) for r in expected_rows()}
    assert identities(table_of(analysis5_data)) == want


def test_alias_format(analysis5_data: Path) -> None:
    table = table_of(analysis5_data)
    by_level: dict[int, int] = {}
    for r in table.rows:
        file, line = r.decl.rsplit(":", 1)
        level1 = f"{r.symbol}@{mangle(file)}_{line}"
        assert r.alias in (level1, f"{level1}@{mangle(r.cu)}", f"{level1}@{mangle(r.cu)}@{r.image}"), r
        assert not any(c.isspace() for c in r.alias) and len(r.alias.encode()) < 512
        by_level[r.alias.count("@")] = by_level.get(r.alias.count("@"), 0) + 1
    aliases = [r.alias for r in table.rows]
    assert len(aliases) == len(set(aliases))
    assert set(by_level) == {1, 2}  # plain file:line, and CU-qualified where file:line repeats
    # the seed's example shape
    assert "name_show@drivers_base_power_wakeup_stats_c_33" in aliases


def test_include_c_and_header_inline_are_told_apart_by_cu(analysis5: Path) -> None:
    aliases = {r.alias for r in table_of(analysis5).rows}
    assert {"get_block@fs_minix_itree_common_c_55@fs_minix_itree_v1_c",
            "get_block@fs_minix_itree_common_c_55@fs_minix_itree_v2_c",
            "load_elf_binary@fs_binfmt_elf_c_39@fs_binfmt_elf_c",
            "load_elf_binary@fs_binfmt_elf_c_39@fs_compat_binfmt_elf_c",
            "jhash@include_linux_jhash_h_51@kernel_irq_irqdesc_c",
            "jhash@include_linux_jhash_h_51@drivers_rpmsg_rpmsg_char_c"} <= aliases


def test_generated_names_are_never_aliased(analysis5_data: Path) -> None:
    symbols = {r.symbol for r in table_of(analysis5_data).rows}
    for s in symbols:
        assert not s.startswith(("__key.", "__func__.", "CSWTCH.", "__compound_literal.", "__UNIQUE_ID_"))
    freq = SymbolFrequency.read(analysis5_data / "modules.symbfreq")
    assert freq["__func__.0"] > 1 and freq["__key.0"] >= 1  # they are duplicated, just not aliased


def test_dwarf4_and_dwarf5_give_the_same_aliases(build4: Build, analysis5_data: Path, tmp_path: Path) -> None:
    out4 = analyze(build4, tmp_path / "kas4", "--data")
    assert (out4 / "modules.symalias").read_bytes() == (analysis5_data / "modules.symalias").read_bytes()
    assert (out4 / "modules.symbfreq").read_bytes() == (analysis5_data / "modules.symbfreq").read_bytes()


def test_two_build_directories_give_identical_bytes(build5: Build, build5b: Build, tmp_path: Path) -> None:
    a = analyze(build5, tmp_path / "a", "--data")
    b = analyze(build5b, tmp_path / "b", "--data")
    for name in ("modules.symbfreq", "modules.symalias"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    syms = []
    for build, out in ((build5, a), (build5b, b)):
        nm = out / "vmlinux.syms"
        nm.write_text(run_kasalias_nm(build.vmlinux))
        run_kasalias("syms", "--aliases", out / "modules.symalias", "--image", build.vmlinux, nm, out / "k.syms")
        syms.append((out / "k.syms").read_bytes())
    assert syms[0] == syms[1]
    assert b"@" in syms[0]


def run_kasalias_nm(path: Path) -> str:
    import subprocess

    return subprocess.run(["nm", "-n", str(path)], check=True, capture_output=True, text=True).stdout


def test_symbfreq_counts_names_like_nm(build5: Build, analysis5: Path) -> None:
    """modules.symbfreq is sorted name:count lines; counts of a few names read from nm."""
    data = (analysis5 / "modules.symbfreq").read_text()
    lines = data.splitlines()
    assert lines == sorted(lines, key=lambda l: l.rsplit(":", 1)[0].encode())
    counts = dict(l.rsplit(":", 1) for l in lines)
    assert counts["name_show"] == "5" and counts["jhash"] == "4" and counts["get_block"] == "2"
    assert counts["b_show"] == "2" and counts["load_elf_binary"] == "2"


def test_llvm_thinlto_promoted_statics(build_lto: Build, tmp_path: Path) -> None:
    """ThinLTO promotes statics to name.llvm.<hash>: counted and aliased without the hash."""
    mods = [m.with_suffix(".ko") for m in build_lto.modules]
    args: list[object] = ["analyze", "--vmlinux", build_lto.vmlinux_o, "--srctree", build_lto.srctree,
                          "-o", tmp_path]
    for m in mods:
        args += ["--module", m]
    run_kasalias(*args)
    table = table_of(tmp_path)
    by_symbol = {}
    for r in table.rows:
        by_symbol.setdefault(r.symbol.split(".llvm.")[0], []).append(r)
    show_state = by_symbol["show_state"]
    assert {r.cu for r in show_state} == {"drivers/base/core.c", "kernel/sched/core.c"}
    assert all(".llvm." not in r.alias and r.alias.startswith("show_state@") for r in show_state)
    assert any(".llvm." in r.symbol for r in show_state)
    assert len({r.alias for r in table.rows}) == len(table.rows)
    freq = SymbolFrequency.read(tmp_path / "modules.symbfreq")
    assert freq["show_state"] == 2 and not any(".llvm." in n for n in freq.counts)


def test_cache_reuses_unchanged_objects_only(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """--cache: the same table; a cached result is used while its object is unchanged, and
    recomputed once the object changes (a relink after one file changed)."""
    import json
    import os

    cache = tmp_path / "cache.json"
    out = analyze(build5, tmp_path / "a", "--cache", cache)
    assert (out / "modules.symalias").read_bytes() == (analysis5 / "modules.symalias").read_bytes()
    data = json.loads(cache.read_text())
    key = next(k for k in data["units"] if k.startswith("hello/hello.o:"))
    data["units"][key]["name_show"] = ["hello/hello.c", 9999]  # a wrong entry, to see it used
    cache.write_text(json.dumps(data))
    out = analyze(build5, tmp_path / "b", "--cache", cache)
    assert "name_show@hello_hello_c_9999" in (out / "modules.symalias").read_text()
    obj = build5.objtree / "hello/hello.o"
    st = obj.stat()
    try:
        os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # the object "changed"
        out = analyze(build5, tmp_path / "c", "--cache", cache)
    finally:
        os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (out / "modules.symalias").read_bytes() == (analysis5 / "modules.symalias").read_bytes()
