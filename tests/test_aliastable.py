"""The alias table's per-image lookup (what a module step reads) on tables of distribution size."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasalias.aliastable import AliasRow, AliasTable
from kasalias.errors import KasaliasError


def _names(n: int) -> list[str]:
    """Module names like a distribution's, many of them prefixes of others (max1111, max11100)."""
    out = []
    for i in range(n):
        out.append(f"max{i}")
        if i % 3 == 0:
            out.append(f"max{i}0_spi")
    return out


def _table(images: list[str]) -> AliasTable:
    rows = []
    for k, image in enumerate(images):
        for j in range(k % 4):  # some images with nothing to alias, some with several rows
            rows.append(AliasRow(image, "core.c", j, f"fn{j}", 0, f"fn{j}@drivers_{image}_c_{j + 1}",
                                 f"drivers/{image}.c:{j + 1}", f"drivers/{image}.c"))
    return AliasTable(rows, images)


def _straddling(data: bytes) -> list[str]:
    """The images whose index lines cross a 64 KiB boundary of the file."""
    index_end = int(data.split(b"\n")[1].split(b" ")[3])  # the first image's rows begin there
    out = []
    pos = 0
    for line in data[:index_end].splitlines(keepends=True):
        if pos // (1 << 16) != (pos + len(line) - 1) // (1 << 16):
            out.append(line.split(b" ")[2].decode())
        pos += len(line)
    return out


def test_every_image_of_a_large_table(tmp_path: Path) -> None:
    images = _names(5000)
    table = _table(images)
    path = tmp_path / "modules.symalias"
    table.write(path)
    data = path.read_bytes()
    # The index is several read buffers long, and index lines straddle every buffer boundary.
    assert int(data.split(b"\n")[1].split(b" ")[3]) > 3 * (1 << 16)
    straddling = _straddling(data)
    assert len(straddling) >= 3
    full = AliasTable.read(path)
    for image in images:
        one = AliasTable.read(path, only_image=image)
        assert one.images == {image}, image
        assert one.rows == full.for_image(image), image
    for image in straddling:  # named explicitly: the lines the old 64 KiB head cut in two
        assert AliasTable.read(path, only_image=image).images == {image}
    assert AliasTable.read(path, only_image="max").images == frozenset()  # a prefix of every name


@pytest.mark.parametrize("shift", range(0, 36, 5))
def test_boundary_at_every_place_of_a_line(tmp_path: Path, shift: int) -> None:
    """A first image name of another length moves the 64 KiB boundary through every part of
    an index line (name, offset, length, newline)."""
    images = ["a" * (shift + 1), *_names(2000)]
    path = tmp_path / "modules.symalias"
    _table(images).write(path)
    full = AliasTable.read(path)
    for image in _straddling(path.read_bytes()):
        one = AliasTable.read(path, only_image=image)
        assert one.images == {image} and one.rows == full.for_image(image), image


def test_truncated_index_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "modules.symalias"
    _table(_names(5000)).write(path)
    path.write_bytes(path.read_bytes()[: 100_000])
    with pytest.raises(KasaliasError, match="truncated alias table"):
        AliasTable.read(path, only_image="max4999")
