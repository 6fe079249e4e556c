"""Symbols and type letters read by kasalias equal GNU nm's, on real gcc/ld output."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import Build
from elfread import nm_symbols
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
