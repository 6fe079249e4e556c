"""Which symbols the kernel keeps in kallsyms: vmlinux and modules, Linux 6.1 and 6.12.

vmlinux (build time).  ``scripts/link-vmlinux.sh`` runs ``nm -n`` on each
temporary vmlinux, filters the lines with ``scripts/mksysmap`` and feeds the
result to ``scripts/kallsyms``, which drops more symbols itself:

* ``scripts/mksysmap`` -- Linux 6.12: a sed script of ``/REGEX/d`` lines, run
  as ``nm -n FILE | sed -f scripts/mksysmap``.  Linux 6.1: a shell script
  running ``$NM -n $1 | grep -v -e RE1 -e RE2 ... > $2``.  Both drop whole
  ``nm`` lines (``ADDR LETTER NAME``) that match a POSIX basic regular
  expression.  The result is also System.map.
* ``scripts/kallsyms.c`` ``read_symbol()`` -- drops names of KSYM_NAME_LEN
  (512) bytes or more and whatever ``is_ignored_symbol()`` says.  In 6.1 that
  function holds lists of ignored names, prefixes, suffixes and substrings and
  drops the letters U/u, N/n and A/a (but for four useful absolute symbols);
  in 6.12 the lists moved to mksysmap and only u, n and A/a remain.
* ``scripts/kallsyms.c`` ``symbol_valid()`` -- without ``--all-symbols``
  (CONFIG_KALLSYMS_ALL=n) only symbols inside [_stext, _etext] or
  [_sinittext, _einittext] are kept, minus the ones at the address of
  _etext/_einittext; 6.12 also always keeps ``__start_*``/``__stop_*``.  With
  ``--all-symbols`` it keeps everything.  These rules need addresses: see
  :meth:`VmlinuxRules.select`.

:func:`builtin_rules` holds copies of these rules for 6.1 (Debian's 6.1.192)
and 6.12 (Debian's 6.12.117); :func:`rules_from_tree` reads them from a
kernel tree, translating the regular expressions to Python's :mod:`re`.

Modules (load time).  ``.ko`` files do not pass through ``scripts/kallsyms``:
the module loader copies symbols from the ``.symtab`` when the module is
loaded, see :func:`module_keeps`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from kasalias.errors import KasaliasError

__all__ = [
    "KSYM_NAME_LEN",
    "VmlinuxRules",
    "builtin_rules",
    "rules_from_tree",
    "bre_to_python",
    "module_keeps",
    "module_init_layout_section",
    "module_lookup_ignores",
    "parse_nm_line",
    "select_nm_lines",
    "SHN_UNDEF",
    "SHN_LORESERVE",
    "SHN_ABS",
    "SHN_COMMON",
    "SHN_XINDEX",
    "SHF_WRITE",
    "SHF_ALLOC",
    "SHF_EXECINSTR",
]

KSYM_NAME_LEN = 512

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

# What nm prints as the address column when the filter is asked about a name
# alone (keeps()): 16 hex digits, as for a 64-bit ELF file.
_DUMMY_ADDR = "0" * 16


# ---------------------------------------------------------------------------
# POSIX basic regular expressions (GNU sed/grep dialect) -> Python re

_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}

_GNU_ESCAPES = {
    "w": r"\w",
    "W": r"\W",
    "s": r"\s",
    "S": r"\S",
    "b": r"\b",
    "B": r"\B",
    "<": r"\b(?=\w)",
    ">": r"\b(?<=\w)",
    "`": r"\A",
    "'": r"\Z",
    "n": r"\n",
    "t": r"\t",
}


def _bracket_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _parse_bracket(bre: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at bre[i] == '['; return (re, next i)."""
    n = len(bre)
    j = i + 1
    out = ["["]
    if j < n and bre[j] == "^":
        out.append("^")
        j += 1
    first = True
    while True:
        if j >= n:
            raise KasaliasError(f"unterminated bracket expression in regex {bre!r}")
        c = bre[j]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        first = False
        if c == "[" and j + 1 < n and bre[j + 1] in ":=.":
            kind = bre[j + 1]
            end = bre.find(kind + "]", j + 2)
            if end < 0:
                raise KasaliasError(f"unterminated [{kind} in regex {bre!r}")
            inner = bre[j + 2 : end]
            if kind != ":" or inner not in _CLASSES:
                raise KasaliasError(f"unsupported bracket item [{kind}{inner}{kind}] in regex {bre!r}")
            out.append(_CLASSES[inner])
            j = end + 2
            continue
        if j + 2 < n and bre[j + 1] == "-" and bre[j + 2] != "]":
            lo, hi = c, bre[j + 2]
            if hi == "[":
                raise KasaliasError(f"unsupported range end in regex {bre!r}")
            if ord(lo) > ord(hi):
                raise KasaliasError(f"invalid range {lo}-{hi} in regex {bre!r}")
            out.append(f"{_bracket_char(lo)}-{_bracket_char(hi)}")
            j += 3
            continue
        out.append(_bracket_char(c))
        j += 1


def bre_to_python(bre: str) -> str:
    """Translate a POSIX basic regular expression (GNU sed/grep) to Python :mod:`re`.

    Character classes are the ASCII ones (kernel symbol names are ASCII; use
    the result with :data:`re.ASCII`).  Supports ``\\( \\) \\{m,n\\} \\| \\+ \\?``
    and GNU's ``\\w \\s \\b \\< \\> \\n \\t``; back-references, equivalence
    classes and collating symbols raise :class:`KasaliasError`.
    """
    out: list[str] = []
    i, n = 0, len(bre)
    # True where a '*' would be literal: at the start, after \( or \| or an anchor ^
    at_start = True
    last_quant = False
    depth = 0
    while i < n:
        c = bre[i]
        if c == "\\":
            if i + 1 >= n:
                raise KasaliasError(f"trailing backslash in regex {bre!r}")
            d = bre[i + 1]
            i += 2
            if d == "(":
                out.append("(?:")
                depth += 1
                at_start, last_quant = True, False
                continue
            if d == ")":
                if depth == 0:
                    raise KasaliasError(f"unmatched \\) in regex {bre!r}")
                depth -= 1
                out.append(")")
            elif d == "|":
                out.append("|")
                at_start, last_quant = True, False
                continue
            elif d == "{":
                end = bre.find("\\}", i)
                if end < 0 or at_start:
                    raise KasaliasError(f"bad interval in regex {bre!r}")
                body = bre[i:end]
                if not re.fullmatch(r"\d*(?:,\d*)?", body) or body in ("", ","):
                    raise KasaliasError(f"bad interval \\{{{body}\\}} in regex {bre!r}")
                out.append("{" + (("0" + body) if body.startswith(",") else body) + "}")
                i = end + 2
                at_start, last_quant = False, True
                continue
            elif d in "+?":
                if at_start or last_quant:
                    out.append("\\" + d)
                else:
                    out.append(d)
                    at_start, last_quant = False, True
                    continue
            elif d.isdigit():
                raise KasaliasError(f"back-reference \\{d} not supported in regex {bre!r}")
            elif d in _GNU_ESCAPES:
                out.append(_GNU_ESCAPES[d])
            elif d in ".[]*^$\\/":
                out.append(re.escape(d))
            else:
                raise KasaliasError(f"unsupported escape \\{d} in regex {bre!r}")
            at_start, last_quant = False, False
            continue
        if c == "[":
            piece, i = _parse_bracket(bre, i)
            out.append(piece)
            at_start, last_quant = False, False
            continue
        if c == "*":
            if at_start:
                out.append(r"\*")
                at_start, last_quant = False, False
            elif not last_quant:
                out.append("*")
                last_quant = True
            # a second '*' right after a quantifier changes nothing (GNU)
            i += 1
            continue
        if c == "^":
            if at_start:
                out.append("^")
                # '*' after a leading '^' is literal; at_start stays True
                last_quant = False
                i += 1
                continue
            out.append(r"\^")
        elif c == "$":
            rest = bre[i + 1 :]
            if rest == "" or rest.startswith("\\)") or rest.startswith("\\|"):
                out.append("$")
            else:
                out.append(r"\$")
        elif c == ".":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
        at_start, last_quant = False, False
    if depth:
        raise KasaliasError(f"unmatched \\( in regex {bre!r}")
    result = "".join(out)
    try:
        re.compile(result, re.ASCII)
    except re.error as exc:
        raise KasaliasError(f"cannot translate regex {bre!r}: {exc}") from exc
    return result


def _combined_pattern(bres: Sequence[str]) -> str:
    """One Python pattern that matches a line wherever one of the BREs does.

    Alternatives that begin with the same literal character (most of mksysmap's
    begin with a space) are factored as ``c(?:rest1|rest2|...)``: ``re`` then
    tries them only where ``c`` occurs, not each one at every position of the
    line. The callers only ask whether there is a match, which neither the
    factoring nor the order of the alternatives changes.
    """
    factored: dict[str, list[str]] = {}
    others: list[str] = []
    for bre in bres:
        py = bre_to_python(bre)
        lead = re.escape(bre[:1])
        # A plain first character that no quantifier follows, in a BRE without \| (whose
        # alternatives would not all begin with it): bre_to_python() wrote it as ``lead``.
        if (len(bre) > 1 and bre[0] not in "\\[.*^$" and bre[1] != "*" and bre[1:3] not in ("\\{", "\\+", "\\?")
                and "\\|" not in bre and py.startswith(lead)):
            factored.setdefault(lead, []).append(py[len(lead):])
        else:
            others.append(py)
    parts = [lead + "(?:" + "|".join(f"(?:{rest})" for rest in rests) + ")" for lead, rests in factored.items()]
    return "|".join(parts + [f"(?:{py})" for py in others])


# ---------------------------------------------------------------------------
# The rules


@dataclass(frozen=True)
class VmlinuxRules:
    """The kallsyms selection rules of one kernel version.

    ``mksysmap`` holds the POSIX basic regular expressions of
    ``scripts/mksysmap`` as written there (sed addresses without the slashes,
    grep ``-e`` arguments without the quotes); an ``nm -n`` line matching any
    of them is dropped.  The other fields mirror ``scripts/kallsyms.c``.
    """

    version: tuple[int, int]
    mksysmap: tuple[str, ...]
    # scripts/kallsyms.c is_ignored_symbol(): name lists (6.1; empty in 6.12)
    ignored_names: frozenset[str] = frozenset()
    ignored_prefixes: tuple[str, ...] = ()
    ignored_suffixes: tuple[str, ...] = ()
    ignored_substrings: tuple[str, ...] = ()
    # is_ignored_symbol(): letters always dropped
    ignored_types: frozenset[str] = frozenset()
    # is_ignored_symbol(): A/a dropped unless the name is one of these
    absolute_kept: frozenset[str] = frozenset()
    # symbol_valid() without --all-symbols: prefixes kept whatever the address
    always_valid_prefixes: tuple[str, ...] = ()
    # read_symbol(): names of this many bytes or more are dropped
    ksym_name_len: int = KSYM_NAME_LEN
    # where the rules came from ("builtin 6.12" or a path); not compared
    origin: str = field(default="", compare=False)
    _drop: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mksysmap:
            object.__setattr__(self, "_drop", re.compile(_combined_pattern(self.mksysmap), re.ASCII))

    # -- mksysmap ---------------------------------------------------------

    def mksysmap_keeps_line(self, line: str) -> bool:
        """True if ``scripts/mksysmap`` keeps this ``nm -n`` line (no newline)."""
        return self._drop is None or self._drop.search(line) is None

    def filter_nm_lines(self, lines: Iterable[str]) -> Iterator[str]:
        """The lines of ``nm -n`` output that ``scripts/mksysmap`` keeps (System.map).

        Lines may end in a newline; they are yielded as given.
        """
        drop = self._drop
        for line in lines:
            if drop is None or drop.search(line.rstrip("\n")) is None:
                yield line

    def mksysmap_keeps(self, name: str, letter: str) -> bool:
        """``scripts/mksysmap`` on the nm line ``<16 hex digits> LETTER NAME``."""
        return self.mksysmap_keeps_line(f"{_DUMMY_ADDR} {letter} {name}")

    # -- scripts/kallsyms.c -----------------------------------------------

    def kallsyms_ignores(self, name: str, letter: str) -> bool:
        """True if ``scripts/kallsyms.c`` ``read_symbol()`` drops the symbol.

        Mirrors the KSYM_NAME_LEN check and ``is_ignored_symbol()``.
        """
        # An encoded name has at least as many bytes as characters, and as many if ASCII.
        if len(name) >= self.ksym_name_len or (
            not name.isascii() and len(name.encode("utf-8", "surrogateescape")) >= self.ksym_name_len
        ):
            return True
        if name in self.ignored_names:
            return True
        if self.ignored_prefixes and name.startswith(self.ignored_prefixes):
            return True
        if self.ignored_suffixes and name.endswith(self.ignored_suffixes):
            return True
        for sub in self.ignored_substrings:
            if sub in name:
                return True
        if letter in self.ignored_types:
            return True
        if letter in ("A", "a") and name not in self.absolute_kept:
            return True
        return False

    def keeps(self, name: str, letter: str) -> bool:
        """mksysmap plus ``read_symbol()``/``is_ignored_symbol()``: the name rules.

        This is the whole decision with ``--all-symbols`` (CONFIG_KALLSYMS_ALL);
        without it, ``symbol_valid()`` also needs addresses: use :meth:`select`.
        """
        # mksysmap_keeps() inlined: this runs for each of a vmlinux's ~190,000 symbols.
        drop = self._drop
        if drop is not None and drop.search(f"{_DUMMY_ADDR} {letter} {name}") is not None:
            return False
        return not self.kallsyms_ignores(name, letter)

    def select(
        self,
        symbols: Iterable[tuple[int, str, str]],
        all_symbols: bool = True,
        addr_width: int = 16,
    ) -> list[tuple[int, str, str]]:
        """The symbols that end up in the kallsyms table, in input order.

        ``symbols`` are ``(address, letter, name)`` in ``nm -n`` order.  Runs
        mksysmap (on lines formatted as nm does, ``addr_width`` hex digits),
        ``read_symbol()`` and ``symbol_valid()`` (the text ranges are taken
        from _stext/_etext/_sinittext/_einittext among the symbols that
        passed ``read_symbol()``; a missing one counts as address 0, as in
        scripts/kallsyms.c).
        """
        width = addr_width
        return self.kallsyms_select(
            (
                sym
                for sym in symbols
                if self.mksysmap_keeps_line(f"{sym[0]:0{width}x} {sym[1]} {sym[2]}")
            ),
            all_symbols=all_symbols,
        )

    def kallsyms_select(
        self, symbols: Iterable[tuple[int, str, str]], all_symbols: bool = True
    ) -> list[tuple[int, str, str]]:
        """``scripts/kallsyms`` alone on mksysmap's output (``read_symbol()``,
        ``symbol_valid()``); ``symbols`` are ``(address, letter, name)``."""
        kept: list[tuple[int, str, str]] = []
        bounds: dict[str, int] = {}
        for addr, letter, name in symbols:
            if self.kallsyms_ignores(name, letter):
                continue
            if name in _RANGE_SYMBOLS:
                bounds[name] = addr
            kept.append((addr, letter, name))
        if all_symbols:
            return kept
        stext, etext = bounds.get("_stext", 0), bounds.get("_etext", 0)
        sinit, einit = bounds.get("_sinittext", 0), bounds.get("_einittext", 0)
        out: list[tuple[int, str, str]] = []
        for sym in kept:
            addr, _letter, name = sym
            if self.always_valid_prefixes and name.startswith(self.always_valid_prefixes):
                out.append(sym)
                continue
            if not (stext <= addr <= etext or sinit <= addr <= einit):
                continue
            if (addr == etext and name != "_etext") or (addr == einit and name != "_einittext"):
                continue
            out.append(sym)
        return out


_RANGE_SYMBOLS = frozenset({"_stext", "_etext", "_sinittext", "_einittext"})

# ---------------------------------------------------------------------------
# Built-in copies

# scripts/mksysmap of Linux 6.12 (Debian 6.12.117): the sed addresses, in order.
_MKSYSMAP_6_12: tuple[str, ...] = (
    r" [aNUw] ",
    r" \$",
    r" \.L",
    r" __efistub_",
    r" __pi_\$",
    r" __pi_\.L",
    r" __kvm_nvhe_\$",
    r" __kvm_nvhe_\.L",
    r" __[[:alnum:]]*Thunk_",
    r" __kcfi_typeid_",
    r" __kvm_nvhe___kcfi_typeid_",
    r" __pi___kcfi_typeid_",
    r" __crc_",
    r" __kstrtab_",
    r" __kstrtabns_",
    r"_from_arm$",
    r"_from_thumb$",
    r"_veneer$",
    r" L0$",
    r" _SDA_BASE_$",
    r" _SDA2_BASE_$",
    r"\.long_branch\.",
    r"\.plt_branch\.",
)

# scripts/mksysmap of Linux 7.2 and 7.3 (Debian 7.2.13, 7.3.4): 6.12's and two more, in order.
_MKSYSMAP_7: tuple[str, ...] = (
    *_MKSYSMAP_6_12[:_MKSYSMAP_6_12.index(r" __kstrtabns_") + 1],
    r" __mod_device_table__",
    *_MKSYSMAP_6_12[_MKSYSMAP_6_12.index(r" __kstrtabns_") + 1:_MKSYSMAP_6_12.index(r"\.long_branch\.")],
    r" __UNIQUE_ID_modinfo_[0-9]*$",
    *_MKSYSMAP_6_12[_MKSYSMAP_6_12.index(r"\.long_branch\."):],
)

# scripts/mksysmap of Linux 6.1 (Debian 6.1.192): the grep -v -e arguments.
_MKSYSMAP_6_1: tuple[str, ...] = (
    r" [aNUw] ",
    r" \$",
    r" \.L",
    r" __crc_",
    r" __kstrtab_",
    r" __kstrtabns_",
    r" L0$",
)

_ABSOLUTE_KEPT = frozenset(
    {"__kernel_syscall_via_break", "__kernel_syscall_via_epc", "__kernel_sigtramp", "__gp"}
)

_BUILTIN: dict[tuple[int, int], VmlinuxRules] = {
    (6, 1): VmlinuxRules(
        version=(6, 1),
        mksysmap=_MKSYSMAP_6_1,
        ignored_names=frozenset(
            {
                "kallsyms_addresses",
                "kallsyms_offsets",
                "kallsyms_relative_base",
                "kallsyms_num_syms",
                "kallsyms_names",
                "kallsyms_markers",
                "kallsyms_token_table",
                "kallsyms_token_index",
                "kallsyms_seqs_of_names",
                "_SDA_BASE_",
                "_SDA2_BASE_",
            }
        ),
        ignored_prefixes=(
            "__efistub_",
            "__kvm_nvhe_$",
            "__kvm_nvhe_.L",
            "__AArch64ADRPThunk_",
            "__ARMV5PILongThunk_",
            "__ARMV7PILongThunk_",
            "__ThumbV7PILongThunk_",
            "__LA25Thunk_",
            "__microLA25Thunk_",
            "__kcfi_typeid_",
        ),
        ignored_suffixes=("_from_arm", "_from_thumb", "_veneer"),
        ignored_substrings=(".long_branch.", ".plt_branch."),
        ignored_types=frozenset({"U", "u", "N", "n"}),
        absolute_kept=_ABSOLUTE_KEPT,
        always_valid_prefixes=(),
        origin="builtin 6.1",
    ),
    (6, 12): VmlinuxRules(
        version=(6, 12),
        mksysmap=_MKSYSMAP_6_12,
        ignored_types=frozenset({"u", "n"}),
        absolute_kept=_ABSOLUTE_KEPT,
        always_valid_prefixes=("__start_", "__stop_"),
        origin="builtin 6.12",
    ),
    **{v: VmlinuxRules(
        version=v,
        mksysmap=_MKSYSMAP_7,
        ignored_types=frozenset({"u", "n"}),
        absolute_kept=_ABSOLUTE_KEPT,
        always_valid_prefixes=("__start_", "__stop_"),
        origin=f"builtin {v[0]}.{v[1]}",
    ) for v in ((7, 2), (7, 3))},
}

# Upstream moved the name lists from scripts/kallsyms.c into a sed-script
# mksysmap during the 6.4 merge window; versions before that follow 6.1.
_SED_FORM_SINCE = (6, 4)


def builtin_rules(version: tuple[int, int]) -> VmlinuxRules:
    """Built-in rules for ``(major, minor)``.

    Exact for (6, 1), (6, 12), (7, 2) and (7, 3) (copied from Debian's
    linux-source 6.1.192, 6.12.117, 7.2.13 and 7.3.4).  Any other version gets
    the nearest known rules: 6.1's for versions before 6.4 (where the name
    lists still lived in scripts/kallsyms.c), 6.12's from 6.4 on, 7.3's from 7.0.  The lists changed a little
    between releases; for other versions prefer :func:`rules_from_tree`.
    """
    major, minor = version
    if (major, minor) in _BUILTIN:
        return _BUILTIN[(major, minor)]
    if (major, minor) < _SED_FORM_SINCE:
        return _BUILTIN[(6, 1)]
    return _BUILTIN[(6, 12)] if major < 7 else _BUILTIN[(7, 3)]


# ---------------------------------------------------------------------------
# Reading a kernel tree


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise KasaliasError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _kernel_version(makefile: Path) -> tuple[int, int]:
    text = _read_text(makefile)
    ver = re.search(r"^VERSION\s*=\s*(\d+)\s*$", text, re.M)
    patch = re.search(r"^PATCHLEVEL\s*=\s*(\d+)\s*$", text, re.M)
    if not ver or not patch:
        raise KasaliasError(f"{makefile}: no VERSION/PATCHLEVEL lines: not a kernel top Makefile")
    return int(ver.group(1)), int(patch.group(1))


def _sed_addresses(path: Path, text: str) -> tuple[str, ...]:
    """The regexes of a sed script made only of ``/RE/d`` commands and comments."""
    lines = text.splitlines()
    if lines and lines[0].rstrip() == "#n":
        raise KasaliasError(f"{path}: '#n' first line (sed -n) is not supported")
    out: list[str] = []
    for lineno, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if not s.startswith("/"):
            raise KasaliasError(f"{path}:{lineno}: cannot translate sed command {s!r} (only /REGEX/d)")
        # the closing delimiter: the next '/' not escaped by a backslash (as GNU sed)
        j, buf = 1, []
        while j < len(s) and s[j] != "/":
            if s[j] == "\\" and j + 1 < len(s):
                buf.append(s[j + 1] if s[j + 1] == "/" else s[j : j + 2])
                j += 2
            else:
                buf.append(s[j])
                j += 1
        if j >= len(s):
            raise KasaliasError(f"{path}:{lineno}: unterminated address in {s!r}")
        if not re.fullmatch(r"\s*d\s*;?\s*(?:#.*)?", s[j + 1 :]):
            raise KasaliasError(f"{path}:{lineno}: cannot translate sed command {s!r} (only /REGEX/d)")
        bre = "".join(buf)
        if not bre:
            raise KasaliasError(f"{path}:{lineno}: empty regex (reuse of the last one) not supported")
        bre_to_python(bre)  # raises on what cannot be translated
        out.append(bre)
    if not out:
        raise KasaliasError(f"{path}: no /REGEX/d lines found")
    return tuple(out)


def _shell_words(path: Path, args: str) -> list[str]:
    """Split grep's arguments: bare words and single-quoted strings only."""
    words: list[str] = []
    i, n = 0, len(args)
    while i < n:
        if args[i].isspace():
            i += 1
            continue
        word: list[str] = []
        while i < n and not args[i].isspace():
            if args[i] == "'":
                end = args.find("'", i + 1)
                if end < 0:
                    raise KasaliasError(f"{path}: unterminated quote in grep arguments")
                word.append(args[i + 1 : end])
                i = end + 1
            elif re.match(r"[-A-Za-z0-9_]", args[i]):
                word.append(args[i])
                i += 1
            else:
                raise KasaliasError(
                    f"{path}: cannot translate grep argument near {args[i:i + 20]!r} "
                    "(only bare words and single-quoted patterns)"
                )
        words.append("".join(word))
    return words


def _grep_patterns(path: Path, text: str) -> tuple[str, ...]:
    """The patterns of the ``$NM -n $1 | grep -v -e ... > $2`` pipeline (Linux <= 6.3)."""
    joined = re.sub(r"\\\n", " ", text)
    commands = [
        ln for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    hits = [ln for ln in commands if re.search(r"\$\{?NM\}?\b", ln)]
    if len(hits) != 1:
        raise KasaliasError(f"{path}: expected one '$NM -n' command, found {len(hits)}")
    m = re.fullmatch(
        r'\s*\$\{?NM\}?\s+-n\s+"?\$\{?1\}?"?\s*\|\s*grep\s+(.*?)\s*>\s*"?\$\{?2\}?"?\s*', hits[0]
    )
    if not m:
        raise KasaliasError(f"{path}: cannot translate {hits[0].strip()!r} (expected '$NM -n $1 | grep -v ... > $2')")
    words = _shell_words(path, m.group(1))
    if not words or words[0] != "-v":
        raise KasaliasError(f"{path}: grep without -v first is not supported")
    pats: list[str] = []
    rest = words[1:]
    if rest and rest[0] != "-e":
        if len(rest) != 1:
            raise KasaliasError(f"{path}: unsupported grep arguments {rest!r}")
        pats.append(rest[0])
    else:
        k = 0
        while k < len(rest):
            if rest[k] != "-e" or k + 1 >= len(rest):
                raise KasaliasError(f"{path}: unsupported grep argument {rest[k]!r}")
            pats.append(rest[k + 1])
            k += 2
    out: list[str] = []
    for p in pats:
        for piece in p.split("\n"):  # grep: a newline separates patterns
            bre_to_python(piece)
            out.append(piece)
    if not out:
        raise KasaliasError(f"{path}: grep has no patterns")
    return tuple(out)


def _mksysmap_patterns(path: Path) -> tuple[str, ...]:
    text = _read_text(path)
    first = text.split("\n", 1)[0]
    if first.startswith("#!") and re.search(r"\bsed\b", first):
        return _sed_addresses(path, text)
    if first.startswith("#!") and re.search(r"\b(?:ba)?sh\b", first):
        return _grep_patterns(path, text)
    raise KasaliasError(f"{path}: neither a sed script nor a shell script (first line {first!r})")


_C_TOKENS = re.compile(
    r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S
)


def _strip_c_comments(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        return " " if s.startswith("/") else s

    return _C_TOKENS.sub(repl, text)


def _c_function_body(path: Path, text: str, name: str) -> str:
    m = re.search(r"\b" + re.escape(name) + r"\s*\([^;{)]*\)\s*\{", text)
    if not m:
        raise KasaliasError(f"{path}: function {name}() not found")
    depth, i = 1, m.end()
    while i < len(text) and depth:
        lit = _C_TOKENS.match(text, i)
        if lit:
            i = lit.end()
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
        i += 1
    if depth:
        raise KasaliasError(f"{path}: unbalanced braces in {name}()")
    return text[m.end() : i - 1]


def _c_string(lit: str) -> str:
    body = lit[1:-1]
    if "\\" in body:
        try:
            return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError as exc:
            raise KasaliasError(f"cannot decode C string {lit}") from exc
    return body


_ARRAY_ROLES = {
    "ignored_symbols": "names",
    "ignored_prefixes": "prefixes",
    "ignored_suffixes": "suffixes",
    "ignored_matches": "substrings",
}

# The loops of 6.1's is_ignored_symbol(), whitespace removed.
_KNOWN_LOOPS = (
    "for(p=ignored_symbols;*p;p++)if(!strcmp(name,*p))returntrue;",
    "for(p=ignored_prefixes;*p;p++)if(!strncmp(name,*p,strlen(*p)))returntrue;",
    "for(p=ignored_suffixes;*p;p++){intl=strlen(name)-strlen(*p);if(l>=0&&!strcmp(name+l,*p))returntrue;}",
    "for(p=ignored_matches;*p;p++){if(strstr(name,*p))returntrue;}",
    "for(p=ignored_matches;*p;p++)if(strstr(name,*p))returntrue;",
    "constchar*const*p;",
)


class _IgnoredRules(NamedTuple):
    names: frozenset[str]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    substrings: tuple[str, ...]
    types: frozenset[str]
    absolute_kept: frozenset[str]


def _is_ignored_symbol_rules(path: Path, code: str) -> _IgnoredRules:
    body = _c_function_body(path, code, "is_ignored_symbol")
    lists: dict[str, list[str]] = {"names": [], "prefixes": [], "suffixes": [], "substrings": []}
    types: set[str] = set()
    absolute: set[str] = set()
    saw_absolute = False

    def take_array(m: re.Match[str]) -> str:
        role = _ARRAY_ROLES.get(m.group(1))
        if role is None:
            raise KasaliasError(f"{path}: unknown list {m.group(1)} in is_ignored_symbol()")
        items = [x.strip() for x in m.group(2).split(",") if x.strip()]
        for item in items:
            if item == "NULL":
                continue
            if not re.fullmatch(r'"(?:\\.|[^"\\])*"', item):
                raise KasaliasError(f"{path}: cannot read list item {item!r} of {m.group(1)}")
            lists[role].append(_c_string(item))
        return " "

    body = re.sub(
        r"static\s+const\s+char\s*\*\s*const\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;",
        take_array,
        body,
        flags=re.S,
    )

    def take_absolute(m: re.Match[str]) -> str:
        nonlocal saw_absolute
        saw_absolute = True
        cond = m.group(1)
        parts = [x.strip() for x in cond.split("&&")]
        for part in parts:
            pm = re.fullmatch(r'strcmp\s*\(\s*name\s*,\s*("(?:\\.|[^"\\])*")\s*\)', part)
            if not pm:
                raise KasaliasError(f"{path}: cannot translate absolute-symbol test {part!r}")
            absolute.add(_c_string(pm.group(1)))
        return " "

    body = re.sub(
        r"if\s*\(\s*toupper\s*\(\s*type\s*\)\s*==\s*'A'\s*\)\s*\{\s*if\s*\((.*?)\)\s*return\s+true\s*;\s*\}",
        take_absolute,
        body,
        flags=re.S,
    )

    def take_types(m: re.Match[str]) -> str:
        types.update(re.findall(r"type\s*==\s*'(.)'", m.group(1)))
        return " "

    body = re.sub(
        r"if\s*\(\s*(type\s*==\s*'.'(?:\s*\|\|\s*type\s*==\s*'.')*)\s*\)\s*return\s+true\s*;",
        take_types,
        body,
    )
    rest = re.sub(r"\s+", "", body)
    looped: set[str] = set()
    for loop in _KNOWN_LOOPS:
        if loop in rest:
            rest = rest.replace(loop, "")
            looped.add(loop[len("for(p=") :].split(";", 1)[0])
    if rest.endswith("returnfalse;"):
        rest = rest[: -len("returnfalse;")]
    if rest:
        raise KasaliasError(f"{path}: cannot translate part of is_ignored_symbol(): {rest[:120]!r}")
    for array, role in _ARRAY_ROLES.items():
        if lists[role] and array not in looped:
            raise KasaliasError(f"{path}: list {array} in is_ignored_symbol() is never tested")
    if not saw_absolute:
        raise KasaliasError(f"{path}: is_ignored_symbol() has no absolute-symbol rule")
    return _IgnoredRules(
        names=frozenset(lists["names"]),
        prefixes=tuple(lists["prefixes"]),
        suffixes=tuple(lists["suffixes"]),
        substrings=tuple(lists["substrings"]),
        types=frozenset(types),
        absolute_kept=frozenset(absolute),
    )


def _symbol_valid_prefixes(path: Path, code: str) -> tuple[str, ...]:
    body = _c_function_body(path, code, "symbol_valid")
    if "all_symbols" not in body or "symbol_in_range" not in body:
        raise KasaliasError(f"{path}: symbol_valid() has an unknown form")
    prefixes: list[str] = []

    def take(m: re.Match[str]) -> str:
        prefixes.append(_c_string(m.group(1)))
        return " "

    rest = re.sub(
        r'string_starts_with\s*\(\s*name\s*,\s*("(?:\\.|[^"\\])*")\s*\)', take, body
    )
    stray = re.search(r'"(?:\\.|[^"\\])*"', rest)
    if stray:
        raise KasaliasError(f"{path}: cannot translate rule with {stray.group(0)} in symbol_valid()")
    return tuple(prefixes)


def _ksym_name_len(path: Path, code: str) -> int:
    m = re.search(r"^#define\s+KSYM_NAME_LEN\s+(\d+)\s*$", code, re.M)
    if not m:
        raise KasaliasError(f"{path}: no '#define KSYM_NAME_LEN'")
    return int(m.group(1))


def rules_from_tree(srctree: Path) -> VmlinuxRules:
    """Read the rules of the kernel tree ``srctree``.

    Reads the version from the top Makefile, the regexes of
    ``scripts/mksysmap`` (sed form or ``grep -v`` form) and the rules of
    ``scripts/kallsyms.c`` (``is_ignored_symbol()``, ``symbol_valid()``,
    KSYM_NAME_LEN).  Raises :class:`KasaliasError` when a file is missing or
    has a form that cannot be translated.
    """
    srctree = Path(srctree)
    version = _kernel_version(srctree / "Makefile")
    patterns = _mksysmap_patterns(srctree / "scripts" / "mksysmap")
    kpath = srctree / "scripts" / "kallsyms.c"
    code = _strip_c_comments(_read_text(kpath))
    ignored = _is_ignored_symbol_rules(kpath, code)
    return VmlinuxRules(
        version=version,
        mksysmap=patterns,
        ignored_names=ignored.names,
        ignored_prefixes=ignored.prefixes,
        ignored_suffixes=ignored.suffixes,
        ignored_substrings=ignored.substrings,
        ignored_types=ignored.types,
        absolute_kept=ignored.absolute_kept,
        always_valid_prefixes=_symbol_valid_prefixes(kpath, code),
        ksym_name_len=_ksym_name_len(kpath, code),
        origin=str(srctree),
    )


# ---------------------------------------------------------------------------
# Modules


def module_init_layout_section(section_name: str, module_unload: bool = True, arch: str = "x86") -> bool:
    """kernel/module/main.c ``module_init_layout_section()`` (6.1 and 6.12).

    ``.init*`` sections, and ``.exit*`` ones when CONFIG_MODULE_UNLOAD is off,
    go to the module's init area, freed after init.  ``module_init_section()``
    and ``module_exit_section()`` are ``__weak``; only 32-bit ARM overrides
    them (``.ARM.extab.init``/``.ARM.exidx.init`` and the ``exit`` pair).
    """
    init_prefixes: tuple[str, ...] = (".init",)
    exit_prefixes: tuple[str, ...] = (".exit",)
    if arch == "arm":
        init_prefixes += (".ARM.extab.init", ".ARM.exidx.init")
        exit_prefixes += (".ARM.extab.exit", ".ARM.exidx.exit")
    if not module_unload and section_name.startswith(exit_prefixes):
        return True
    return section_name.startswith(init_prefixes)


# Sections whose SHF_ALLOC the module loader clears (kernel/module/main.c
# rewrite_section_headers()); the extended modversions ones exist from 6.13 on.
_LOADER_UNALLOCATED = (".modinfo", "__versions", "__version_ext_crcs", "__version_ext_names")


def module_keeps(
    name: str,
    st_type: int,
    st_shndx: int,
    section_name: str,
    section_flags: int,
    shnum: int,
    kallsyms_all: bool = True,
    *,
    smp: bool = True,
    module_unload: bool = True,
    livepatch: bool = False,
    arch: str = "x86",
) -> bool:
    """True if a loaded module's symbol is listed in /proc/kallsyms (after init).

    ``section_name``/``section_flags`` describe section ``st_shndx`` as in the
    ``.ko`` file (pass ``""``/0 for reserved indices); ``shnum`` is the ELF
    header's e_shnum.  The rules are the same in 6.1, 6.12, 7.2 and 7.3:

    * kernel/kallsyms.c ``s_show()``: an empty name is never shown (so
      st_name == 0, e.g. STT_SECTION symbols, never appears).
    * kernel/module/kallsyms.c ``layout_symtab()``/``add_kallsyms()``: a
      livepatch module keeps its whole symbol table (even undefined symbols);
      others keep what ``is_core_symbol()`` accepts:
    * ``is_core_symbol()``: not SHN_UNDEF, not st_shndx >= e_shnum (so never
      SHN_ABS -- STT_FILE symbols --, SHN_COMMON or SHN_XINDEX);
    * ``is_core_symbol()`` with CONFIG_KALLSYMS_ALL: any symbol of the percpu
      section (kernel/module/main.c ``find_pcpusec()``: the SHF_ALLOC section
      named ``.data..percpu``; none on !SMP kernels);
    * ``is_core_symbol()``: the section must be SHF_ALLOC once the loader has
      cleared that flag on ``.modinfo``, ``__versions`` (and 7.x's
      ``__version_ext_crcs``/``__version_ext_names``)
      (``rewrite_section_headers()``) and the percpu section
      (``layout_and_allocate()``);
    * ``is_core_symbol()`` without CONFIG_KALLSYMS_ALL: the section must also
      be SHF_EXECINSTR;
    * ``is_core_symbol()``: not in an init section (6.1: INIT_OFFSET_MASK in
      sh_entsize, 6.12: ``mod_mem_type_is_init()``, both set by
      ``layout_sections()`` from :func:`module_init_layout_section`).

    ``st_type`` plays no part in these rules (it only picks the letter in
    ``elf_type()``).  Names of KSYM_NAME_LEN bytes or more are listed, cut to
    511 bytes.  Before the module's init has finished, /proc/kallsyms shows
    the full symbol table instead.
    """
    del st_type  # not used by the kernel's selection
    if not name:
        return False
    if livepatch:
        return True
    if st_shndx == SHN_UNDEF or st_shndx >= shnum:
        return False
    is_pcpu = smp and section_name == ".data..percpu" and bool(section_flags & SHF_ALLOC)
    if kallsyms_all and is_pcpu:
        return True
    flags = section_flags
    if is_pcpu or section_name in _LOADER_UNALLOCATED:
        flags &= ~SHF_ALLOC
    if not flags & SHF_ALLOC:
        return False
    if not kallsyms_all and not flags & SHF_EXECINSTR:
        return False
    if module_init_layout_section(section_name, module_unload=module_unload, arch=arch):
        return False
    return True


def module_lookup_ignores(name: str, version: tuple[int, int] = (6, 12)) -> bool:
    """True for names that address lookups in modules skip (they still are listed).

    kernel/module/kallsyms.c ``find_kallsyms_symbol()`` (backtraces, %pS)
    skips empty names and mapping symbols: 6.12 ``is_mapping_symbol()``
    (include/linux/module_symbol.h: ``.L*``, ``L0*``, ``$*``); 6.1
    ``is_arm_mapping_symbol()`` (``.L*`` and ``$a``/``$x``/``$t``/``$d``
    alone or followed by ``.``).
    """
    if not name:
        return True
    if version >= (6, 2):
        return name.startswith((".L", "L0", "$"))
    if name.startswith(".L"):
        return True
    return len(name) >= 2 and name[0] == "$" and name[1] in "axtd" and (len(name) == 2 or name[2] == ".")


def parse_nm_line(line: str) -> tuple[int, str, str] | None:
    """``ADDR LETTER NAME`` as printed by ``nm -n``; None for lines without an address."""
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) != 3 or not parts[0] or len(parts[1]) != 1:
        return None
    try:
        return int(parts[0], 16), parts[1], parts[2]
    except ValueError:
        return None


def select_nm_lines(
    rules: VmlinuxRules, lines: Sequence[str], all_symbols: bool = True
) -> list[tuple[int, str, str]]:
    """:meth:`VmlinuxRules.select` on raw ``nm -n`` lines (lines without address are dropped
    by mksysmap's ``[aNUw]`` rule or cannot be read by scripts/kallsyms anyway)."""
    parsed = (p for p in map(parse_nm_line, rules.filter_nm_lines(lines)) if p is not None)
    return rules.kallsyms_select(parsed, all_symbols=all_symbols)
