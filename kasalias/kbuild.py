"""Hooking kasalias into a kernel tree: ``kasalias kbuild install|remove KSRC``.

Each hook is a marked block of lines placed before, after or instead of one
anchor line of a Kbuild file; ``remove`` takes the blocks out (restoring a
replaced line from its marker) and the tree is byte for byte what it was.
The hooks do nothing unless ``make KAS_ALIAS=1`` (each alias after its original)
or ``KAS_ALIAS=first`` (before it: the alias is the name ftrace and backtraces use;
the analysis writes the placement into the alias table, which every later step
reads): without it the hooked tree builds exactly what the unhooked tree builds
(every command line is the same). Any other value is refused.
Hook points, for Linux 6.1, 6.12, 7.2 and 7.3 (the anchor lines that differ between
series are in the series registry, kasalias/series.py; NOTES.md, "Kernel hooks"):

- scripts/link-vmlinux.sh: the analysis once, first thing, in the background
  beside the steps up to the first temporary link;
  in kallsyms(), a NEW ``.syms.aliased`` file for scripts/kallsyms (the
  ``.syms`` file and the System.map check stay as they are);
  with BTF, a NEW BTF object with a FUNC per aliased function copy, linked
  instead of pahole's (6.x; 7.x: scripts/gen-btf.sh, before resolve_btfids).
- scripts/Makefile.vmlinux: ``KAS_ALIAS=1`` (or ``first``) in the saved command
  of link_vmlinux, so that toggling it relinks vmlinux.
- Makefile: with KAS_ALIAS=1, modules after vmlinux (as for module BTF);
  the analysis outputs kept by ``make clean`` (external modules need them).
- scripts/Makefile.modfinal: each ``X.ko.aliased`` after its ``X.ko``.
- scripts/Makefile.modinst: ``X.ko.aliased`` installed as ``X.ko``, then
  stripped, signed and compressed as usual.
- scripts/package (6.12/7.x install-extmod-build, 6.1 builddeb): headers packages
  ship ``modules.symbfreq`` and ``modules.symalias`` when the build made them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kasalias.errors import KasaliasError
from kasalias.fsutil import create_temp_beside, read_input
from kasalias.series import SERIES, known, stand_in, tree_version

BEGIN = "# >>> kasalias"
END = "# <<< kasalias"
REPLACED = "# >>> kasalias (make KAS_ALIAS=1) replaces the line after this block: "
# Ends the marker, so that a replaced line ending in a backslash does not continue the comment.
REPLACED_END = " (kasalias)\n"
MAKEFILE_KASALIAS = "scripts/Makefile.kasalias"


@dataclass(frozen=True)
class Hook:
    """A block of lines before or after an anchor line; with ``replacement``, the block goes
    before the anchor and the anchor line itself is replaced (its marker keeps the original)."""

    file: str
    anchor: str  # the anchor line, compared with runs of white space folded
    where: str  # "before" or "after"
    text: str  # lines to place (no markers)
    replacement: str | None = None


_ANALYZE = """\
# The analysis runs beside the first steps and temporary link (a relink costs less); kallsyms()
# waits for it.
# KAS_ALIAS=1: each alias after its original; first: before it (the name ftrace and backtraces use).
kasalias_pid=
kasalias_on=
case "${KAS_ALIAS}" in 1|first) is_enabled CONFIG_KALLSYMS && kasalias_on=y ;; esac
if [ -n "${kasalias_on}" ]; then
	info KASALIAS modules.symalias
	${KASALIAS_PYTHON:-${PYTHON3}} -m kasalias analyze --vmlinux vmlinux.o --objtree . --srctree "${srctree}" \\
		$([ -f modules.order ] && echo --modules-order modules.order) \\
		$([ "${KAS_ALIAS}" = first ] && echo --alias-first) --cache .kasalias.cache -o . &
	kasalias_pid=$!
fi
kasalias_wait()
{
	if [ -n "${kasalias_pid}" ]; then
		wait "${kasalias_pid}" || return 1
		kasalias_pid=
	fi
}
# ${1}.aliased: the BTF object ${1} with a FUNC for each aliased copy of a function (fentry/fexit),
# its signature read from the DWARF of ${2}, the image pahole read
kasalias_btf()
{
	kasalias_wait || return 1
	info KASALIAS "${1}.aliased"
	${KASALIAS_PYTHON:-${PYTHON3}} -m kasalias btf --aliases modules.symalias --dwarf "${2}" \\
		--srctree "${srctree}" "${1}" "${1}.aliased"
}
"""
# with vmlinux's BTF, each copy with a FUNC also gets the FUNC's name (what fentry looks up)
_SYMS = """\
	if [ -n "${kasalias_on}" ] && [ -s "${1}" ]; then
		kasalias_wait || exit 1
		info KASALIAS "${1}.aliased"
		${KASALIAS_PYTHON:-${PYTHON3}} -m kasalias syms --aliases modules.symalias --image "${1%.syms}" \\
			$([ -z "${btf_vmlinux_bin_o}" ] || echo --btf "${btf_vmlinux_bin_o}") "${1}" "${1}.aliased"
		set -- "${1}.aliased" "${2}"
	fi
"""
# vmlinux's BTF (series.BtfHook): the object file btf_vmlinux_bin_o names, in gen_btf() (6.x), whose
# ${1} is the image pahole read
_BTF_OBJECT = """\
	if [ -n "${kasalias_on}" ]; then
		kasalias_btf "${btf_vmlinux_bin_o}" "${1}" || return 1
		btf_vmlinux_bin_o=${btf_vmlinux_bin_o}.aliased
	fi
"""
# 7.x: scripts/gen-btf.sh is a process of its own: link-vmlinux.sh waits for the analysis first
_BTF_WAIT = """\
if [ -n "${kasalias_on}" ]; then
	kasalias_wait || exit 1
fi
export KASALIAS_BTF="${kasalias_on}"
"""
# ... and gen-btf.sh adds the FUNCs to vmlinux's raw BTF before resolve_btfids sorts it (modules: none)
_BTF_RAW = """\
	if [ -z "${BTF_BASE}" ] && [ -n "${KASALIAS_BTF:-}" ]; then
		printf "  %-7s %s\\n" KASALIAS "${btf1}.aliased"
		${KASALIAS_PYTHON:-${PYTHON3}} -m kasalias btf --aliases modules.symalias --dwarf "${ELF_FILE}" \\
			--srctree "${srctree}" "${btf1}" "${btf1}.aliased"
		btf1=${btf1}.aliased
	fi
"""
_BTF_BLOCKS = {"object": _BTF_OBJECT, "wait": _BTF_WAIT, "raw": _BTF_RAW}
# The build stops at once (not at the vmlinux link) when the config lacks what the analysis reads.
_TOP = """\
ifneq ($(filter-out 0 1 first,$(KAS_ALIAS)),)
$(error kasalias: KAS_ALIAS=$(KAS_ALIAS): 1 puts each alias after its original, first before it)
endif
ifneq ($(filter 1 first,$(KAS_ALIAS)),)
KBUILD_BUILTIN := y
modules: vmlinux
ifndef CONFIG_KALLSYMS
$(error kasalias: KAS_ALIAS=1 needs CONFIG_KALLSYMS=y)
endif
ifndef CONFIG_DEBUG_INFO
$(error kasalias: KAS_ALIAS=1 needs DWARF: CONFIG_DEBUG_INFO_DWARF5=y (or _DWARF4, _DWARF_TOOLCHAIN_DEFAULT))
endif
endif
"""
# KASALIAS_PYTHON: the Python that ran 'kasalias kbuild install', unless PYTHON3 is given; set beside
# PYTHON3, which every build reads (the kernel's and M='s). The build stops at once when it cannot
# run kasalias.
_PYTHON = """\
KASALIAS_PYTHON ?= $(if $(filter command line environment,$(origin PYTHON3)),$(PYTHON3),{python})
export KASALIAS_PYTHON
ifneq ($(filter 1 first,$(KAS_ALIAS)),)
ifeq ($(shell $(KASALIAS_PYTHON) -m kasalias --build-id 2>/dev/null),)
$(error kasalias: '$(KASALIAS_PYTHON) -m kasalias' does not run: give KASALIAS_PYTHON=<a Python with kasalias>)
endif
endif
"""
_MRPROPER = "MRPROPER_FILES += modules.symbfreq modules.symalias\n"
_CLEAN = "CLEAN_FILES += kasalias.ninja kasalias.mk .kasalias.mk.cmd .kasalias .kasalias.cache\n"
_MODFINAL = """\
ifneq ($(filter 1 first,$(KAS_ALIAS)),)
PHONY += __kasalias
__modfinal: __kasalias
__kasalias: {kos}
	$(Q)$(MAKE) -f $(srctree)/scripts/Makefile.kasalias
endif
"""
_MODINST = "kasalias-suffix := $(if $(filter 1 first,$(KAS_ALIAS)),.aliased)\n"
# With KAS_ALIAS=1 or first the saved link command names it and the kasalias build: toggling it,
# or another kasalias, relinks vmlinux.
_LINK_ENV = "kasalias-link-env := $(if $(filter 1 first,$(KAS_ALIAS)),KAS_ALIAS=$(KAS_ALIAS) KASALIAS_BUILD=$(shell " \
    "$(or $(KASALIAS_PYTHON),$(PYTHON3)) -m kasalias --build-id) )\n"


_HEADERS_EXTMOD_BUILD = """\
	# kasalias' statistics and alias table, for modules built later against these headers
	[ ! -f modules.symbfreq ] || printf '%s\\n' modules.symbfreq modules.symalias
"""
_HEADERS_BUILDDEB = "# kasalias' statistics and alias table, for modules built later against these headers\n"
_HEADERS_BUILDDEB_LINE = "\t\tfind arch/$SRCARCH/include Module.symvers $(ls modules.symbfreq modules.symalias " \
    "2>/dev/null) include scripts -type f\n"


# The headers package's blocks, by the script that lists its files (series.Series.headers_script).
_PACKAGE_BLOCKS: dict[str, tuple[str, str, str | None]] = {
    "scripts/package/builddeb": ("before", _HEADERS_BUILDDEB, _HEADERS_BUILDDEB_LINE),
    "scripts/package/install-extmod-build": ("after", _HEADERS_EXTMOD_BUILD, None),
}


def _modinst_replacement(modinst_anchor: str) -> str:
    return modinst_anchor.replace("%.ko FORCE", "%.ko$(kasalias-suffix) FORCE") + "\n"


def hooks_for(version: tuple[int, int], as_series: tuple[int, int] | None = None) -> list[Hook]:
    """The hooks of a kernel series (``as_series``: those of another known series)."""
    series = SERIES.get(as_series or version)
    if series is None:
        name = as_series or version
        raise KasaliasError(f"Linux {name[0]}.{name[1]} is not a series kasalias knows how to hook "
                            f"(known: {known()})")
    where, headers_text, headers_line = _PACKAGE_BLOCKS[series.headers_script]
    return [
        Hook("scripts/link-vmlinux.sh", '${MAKE} -f "${srctree}/scripts/Makefile.build" obj=init '
             'init/version-timestamp.o', "before", _ANALYZE),
        Hook("scripts/link-vmlinux.sh", "local kallsymopt;", "after", _SYMS),
        Hook("scripts/Makefile.vmlinux", "cmd_link_vmlinux = \\", "before", _LINK_ENV,
             "cmd_link_vmlinux = $(kasalias-link-env)\t\t\t\t\t\t\\\n"),
        Hook("Makefile", "ifdef CONFIG_DEBUG_INFO_BTF_MODULES", "before", _TOP),
        Hook("Makefile", "PYTHON3 = python3", "after", _PYTHON.format(python=sys.executable)),
        Hook("Makefile", "MRPROPER_FILES += include/config include/generated          \\", "before", _MRPROPER),
        Hook("Makefile", "MRPROPER_FILES += include/config include/generated          \\", "before", _CLEAN),
        Hook("scripts/Makefile.modfinal", series.modfinal_anchor, "before",
             _MODFINAL.format(kos=series.modfinal_kos)),
        Hook("scripts/Makefile.modinst", series.modinst_anchor, "before", _MODINST,
             _modinst_replacement(series.modinst_anchor)),
        Hook(series.headers_script, series.headers_anchor, where, headers_text, headers_line),
        *(Hook(h.file, h.anchor, h.where, _BTF_BLOCKS[h.block]) for h in series.btf_hooks),
    ]


def kernel_version(ksrc: Path) -> tuple[int, int]:
    """The series of the kernel tree ``ksrc`` (series.tree_version), which must have the
    link script the hooks go into."""
    version = tree_version(ksrc)
    if not (ksrc / "scripts" / "link-vmlinux.sh").is_file():
        raise KasaliasError(f"{ksrc}: not a Linux kernel tree (no scripts/link-vmlinux.sh)")
    return version


def _fold(line: str) -> str:
    return " ".join(line.split())


def _read(path: Path) -> str:
    """A Kbuild file, its bytes kept as they are (written back the same way)."""
    return read_input(path).decode("utf-8", "surrogateescape")


def remove_blocks(text: str) -> str:
    """``text`` without kasalias blocks; a replaced anchor line comes back."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(BEGIN):
            j = i
            while j < len(lines) and not lines[j].startswith(END):
                j += 1
            if j == len(lines):
                raise KasaliasError("a kasalias block has no end marker")
            i = j + 1
            if line.startswith(REPLACED):
                rest = line[len(REPLACED):]
                out.append(rest[:-len(REPLACED_END)] + "\n" if rest.endswith(REPLACED_END) else rest)
                i += 1  # the replacement line
            continue
        out.append(line)
        i += 1
    return "".join(out)


def add_blocks(text: str, hooks: list[Hook], name: str) -> str:
    lines = text.splitlines(keepends=True)
    for h in hooks:
        idx = [i for i, line in enumerate(lines) if _fold(line) == _fold(h.anchor)]
        if not idx:
            raise KasaliasError(f"{name}: line {h.anchor.strip()!r} not found; this tree is not one kasalias "
                                "knows how to hook")
        i = idx[0]
        body = h.text if h.text.endswith("\n") else h.text + "\n"
        if h.replacement is not None:
            block = REPLACED + lines[i].rstrip("\n") + REPLACED_END + body + END + "\n" + h.replacement
            lines[i:i + 1] = [block]
        else:
            block = BEGIN + " (make KAS_ALIAS=1)\n" + body + END + "\n"
            at = i if h.where == "before" else i + 1
            lines[at:at] = [block]
    return "".join(lines)


def _makefile_kasalias() -> bytes:
    """kbuild/Makefile.kasalias of this kasalias (the checkout's, or the wheel's package data)."""
    from kasalias.resources import data_file

    return read_input(data_file("kbuild", "Makefile.kasalias"))


def plan(ksrc: Path, install: bool, as_series: tuple[int, int] | None = None) -> dict[Path, bytes | None]:
    """New contents of every file (None: delete), computed before anything is written."""
    version = kernel_version(ksrc)
    extra = ksrc / MAKEFILE_KASALIAS
    # kasalias' own file goes there by rename, or is deleted: anything else in its place (a
    # directory, a FIFO, a dangling link) is refused now, before any file is written.
    if (extra.exists() or extra.is_symlink()) and not extra.is_file():
        raise KasaliasError(f"{extra}: exists and is not a regular file (kasalias' {MAKEFILE_KASALIAS} goes "
                            "there); the tree is unchanged")
    if not install:  # whatever the series: every file any series hooks, blocks taken out
        hooks = [h for v in sorted(SERIES) for h in hooks_for(v)]
    elif as_series is None and version not in SERIES:
        raise KasaliasError(_unknown_series(ksrc, version))
    else:
        hooks = hooks_for(version, as_series)
    out: dict[Path, bytes | None] = {}
    for name in sorted({h.file for h in hooks}):
        path = ksrc / name
        if not install and not path.is_file():
            continue
        text = _read(path)
        clean = remove_blocks(text)
        new = add_blocks(clean, [h for h in hooks if h.file == name], name) if install else clean
        if new != text:
            out[path] = new.encode("utf-8", "surrogateescape")
    if install:
        data = _makefile_kasalias()
        if not extra.is_file() or read_input(extra) != data:
            out[extra] = data
    elif extra.exists():
        out[extra] = None
    return out


def _unknown_series(ksrc: Path, version: tuple[int, int]) -> str:
    """Why a tree of a series kasalias has not been taught is refused: where the hooks of
    its stand-in (series.stand_in) stop, or that they all find their places (--series)."""
    nearest = stand_in(version).version
    msg = f"Linux {version[0]}.{version[1]} is not a series kasalias knows how to hook (known: {known()})"
    try:
        hooks = hooks_for(nearest)
        for name in sorted({h.file for h in hooks}):
            add_blocks(remove_blocks(_read(ksrc / name)), [h for h in hooks if h.file == name], name)
    except KasaliasError as e:
        return f"{msg}; with the hooks of {nearest[0]}.{nearest[1]}: {e}"
    except OSError as e:
        return f"{msg}; with the hooks of {nearest[0]}.{nearest[1]}: {e.filename}: {e.strerror}"
    return (f"{msg}; the hooks of {nearest[0]}.{nearest[1]} all find their places: "
            f"'kasalias kbuild install --series {nearest[0]}.{nearest[1]} {ksrc}' installs them")


def apply(ksrc: Path, install: bool, as_series: tuple[int, int] | None = None) -> list[str]:
    """Install or remove the hooks; return the files changed (none when already done)."""
    changes = plan(ksrc, install, as_series)
    # All or nothing: every new file is written beside its target first; only when all are
    # written do the renames run (a read-only directory fails before any file changed).
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in sorted(changes.items()):
            if data is not None:
                fd, tmp = create_temp_beside(path)
                staged.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    except BaseException as e:
        for tmp, _path in staged:
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise KasaliasError(f"{ksrc}: cannot write: {e.strerror}; the tree is unchanged") from None
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for path, data in changes.items():
        if data is None:
            path.unlink()
    return [str(p.relative_to(ksrc)) for p in sorted(changes)]
