"""Symbols and type letters read by kasalias equal GNU nm's, on real gcc/ld output."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import Build
from elfread import nm_symbols
from kasalias.aliastable import symbol_keys, symbol_ordinals
from kasalias.errors import KasaliasError
from kasalias.symbols import ElfImage


def kasalias_symbols(path: Path) -> Counter[tuple[int, str, str]]:
    with ElfImage(path) as img:
        return Counter((s.value, s.letter, s.name) for s in img.symbols if s.name)


def artifacts(build: Build) -> list[Path]:
    paths = [build.vmlinux, build.vmlinux_o]
    for m in build.modules:
        paths += [m, m.with_suffix(".ko")]
    return paths


@pytest.mark.parametrize("which", ["build5", "build4"])
def test_symbols_and_letters_equal_nm(which: str, request: pytest.FixtureRequest) -> None:
    build: Build = request.getfixturevalue(which)
    for path in artifacts(build):
        assert kasalias_symbols(path) == Counter(nm_symbols(path)), path


def test_llvm_symbols_equal_nm(build_lto: Build) -> None:
    # ThinLTO module objects are LLVM bitcode; their .ko is ELF.
    for path in [p for p in artifacts(build_lto) if p.read_bytes()[:4] == b"\x7fELF"]:
        assert kasalias_symbols(path) == Counter(nm_symbols(path)), path


def test_file_groups_match_between_vmlinux_o_and_vmlinux(build5: Build) -> None:
    """The identity key (STT_FILE group, name, ordinal) relies on this."""
    with ElfImage(build5.vmlinux_o) as a, ElfImage(build5.vmlinux) as b:
        ga, gb = a.file_groups(), b.file_groups()
        assert len(ga) > 5 and gb[: len(ga)] == ga
        local_a = [(s.group, s.name) for s in a.symbols if s.is_local]
        local_b = {(s.group, s.name) for s in b.symbols if s.is_local}
        assert set(local_a) <= local_b


def test_not_elf_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "x.ko"
    p.write_text("hello\n")
    with pytest.raises(KasaliasError, match="not a readable ELF"):
        ElfImage(p)


@pytest.mark.parametrize("which", ["build5", "build4"])
def test_symbols_at_equal_symbols(which: str, request: pytest.FixtureRequest) -> None:
    """What the analysis reads again for duplicated names, decoded alone, is what reading all
    symbols makes (groups, letters, values): for every symbol and for every third one."""
    build: Build = request.getfixturevalue(which)
    for path in artifacts(build):
        with ElfImage(path) as img:
            every = img.symbols
        for wanted in (every, every[::3]):
            with ElfImage(path) as img:
                assert img.symbols_at(reversed([s.index for s in wanted])) == wanted, path


def test_symbol_keys_from_ordinals(build5: Build) -> None:
    """A module keeps only its keys' ordinals that are not 0; the keys of any of its symbols made
    from them are the keys made from all symbols of their names."""
    for path in [build5.vmlinux_o, *build5.modules]:
        with ElfImage(path) as img:
            symbols, files = img.symbols, img.file_groups()
        full = symbol_keys(symbols, files)
        ordinals = symbol_ordinals(symbols)
        assert ordinals == {i: k[3] for i, k in full.items() if k[3]}
        some = symbols[1::4]
        assert symbol_keys(some, files, ordinals) == {s.index: full[s.index] for s in some}, path


def test_symbol_keys_from_ordinals_of_a_name_defined_twice_in_a_group() -> None:
    """objtool's __pfx_ twins: a name twice in one STT_FILE group (intel-uncore.ko), once more
    in another group and once global."""
    from kasalias.symbols import Symbol

    def sym(index: int, name: str, group: int) -> Symbol:
        return Symbol(index, name, 16 * index, 8, 2, 0 if group >= 0 else 1, 1, "t" if group >= 0 else "T", group)

    symbols = [sym(1, "f", 0), sym(2, "g", 0), sym(3, "f", 0), sym(5, "f", 1), sym(6, "f", 1), sym(7, "f", 1),
               sym(9, "f", -1)]
    files = ["a.c", "b.c"]
    full = symbol_keys(symbols, files)
    assert [full[i][3] for i in (1, 3, 5, 6, 7, 9)] == [0, 1, 0, 1, 2, 0]
    ordinals = symbol_ordinals(symbols)
    assert ordinals == {3: 1, 6: 1, 7: 2}
    for some in (symbols[2::2], symbols[::3], [symbols[-2]]):
        assert symbol_keys(some, files, ordinals) == {s.index: full[s.index] for s in some}
