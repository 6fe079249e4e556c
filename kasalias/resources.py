"""Where kasalias' own files are, and which version it is.

Two layouts: a source checkout (or a copy of one on PYTHONPATH), where templates/, kbuild/
and sample-tree/ sit beside the package; an installed wheel or sdist, where pyproject.toml
maps templates/ and kbuild/ into the package (kasalias/templates, kasalias/kbuild) and there
is no sample-tree. Every lookup of a data file goes through ``data_dir``.

importlib.resources and importlib.metadata are imported inside the functions that need them:
most commands need neither.
"""

from __future__ import annotations

from pathlib import Path

from kasalias import __version__
from kasalias.errors import KasaliasError

# Each data directory and the files kasalias reads from it: the templates gen renders, the Kbuild
# fragment 'kbuild install' copies. The build ID hashes exactly these (with the modules).
DATA: dict[str, tuple[str, ...]] = {
    "templates": ("kasalias.ninja.j2", "kasalias.mk.j2"),
    "kbuild": ("Makefile.kasalias",),
}


def package_dir() -> Path:
    """The directory of the kasalias package that runs."""
    from importlib.resources import files

    root = files("kasalias")
    # Paths go into ninja files and Jinja's loader: a zip import has none to give.
    if not isinstance(root, Path):
        raise KasaliasError(f"kasalias runs from {root}, not from a directory: install it as files "
                            "(pip install), not as a zip")
    return root.resolve()


def data_dir(name: str) -> Path:
    """Data directory ``name`` (a key of DATA): inside the package as a wheel installs it,
    else beside the package, as in the source checkout."""
    pkg = package_dir()
    for d in (pkg / name, pkg.parent / name):
        if all((d / f).is_file() for f in DATA[name]):
            return d
    raise KasaliasError(f"kasalias' {name}/ ({', '.join(DATA[name])}) is neither in {pkg} nor beside it: "
                        "a broken installation (reinstall kasalias)")


def data_file(name: str, file: str) -> Path:
    """One file of data directory ``name``."""
    if file not in DATA[name]:
        raise ValueError(f"{name}/{file} is not one of kasalias' data files")
    return data_dir(name) / file


def checkout_dir(name: str, marker: str) -> Path | None:
    """Directory ``name`` of the source checkout kasalias runs from (one holding ``marker``),
    None when kasalias is installed (a wheel has no such directory)."""
    d = package_dir().parent / name
    return d if (d / marker).is_file() else None


def own_files() -> list[Path]:
    """What this kasalias runs: the package's modules (by name), the templates and the Kbuild
    fragment. The same names and bytes in a checkout and in a wheel built from it."""
    pkg = package_dir()
    files = sorted((p for p in pkg.iterdir() if p.suffix == ".py" and p.is_file()), key=lambda p: p.name)
    for name, names in DATA.items():
        d = data_dir(name)
        files.extend(d / n for n in names)
    return files


def version() -> str:
    """An installed kasalias (the data files inside the package): the version of the
    distribution that holds this very package (its metadata). Run from a source checkout
    (PYTHONPATH, an editable install: metadata there may be stale, or another kasalias'): the
    package's ``__version__`` and where the sources are."""
    pkg = package_dir()
    if not (pkg / "templates").is_dir():
        return f"{__version__} (source: {pkg.parent})"
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("kasalias")
    except PackageNotFoundError:
        return __version__
    for f in dist.files or ():
        if f.as_posix() == "kasalias/__init__.py" and Path(str(dist.locate_file(f))).resolve() == pkg / "__init__.py":
            return dist.version
    return __version__  # the installed files without their metadata (a copy)
