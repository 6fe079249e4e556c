"""Which symbols of vmlinux the kernel keeps in kallsyms (Linux 6.1, 6.12, 7.2, 7.3).

``scripts/link-vmlinux.sh`` runs ``nm -n`` on each temporary vmlinux, filters the lines with
``scripts/mksysmap`` and feeds the result to ``scripts/kallsyms``, which drops more symbols
itself:

* ``scripts/mksysmap`` -- Linux 6.4 on (6.12, 7.x): a sed script of ``/REGEX/d`` lines, run
  as ``nm -n FILE | sed -f scripts/mksysmap``.  Before (6.1): a shell script running
  ``$NM -n $1 | grep -v -e RE1 -e RE2 ... > $2``.  Both drop whole ``nm`` lines
  (``ADDR LETTER NAME``) that match a POSIX basic regular expression (:mod:`kasalias.bre`).
  The result is also System.map.
* ``scripts/kallsyms.c`` ``read_symbol()`` -- drops names of KSYM_NAME_LEN (512) bytes or
  more and whatever ``is_ignored_symbol()`` says.  In 6.1 that function holds lists of
  ignored names, prefixes, suffixes and substrings and drops the letters U/u, N/n and A/a
  (but for four useful absolute symbols); from 6.4 on the lists are in mksysmap and only u,
  n and A/a remain.
* ``scripts/kallsyms.c`` ``symbol_valid()`` -- without ``--all-symbols``
  (CONFIG_KALLSYMS_ALL=n) only symbols inside [_stext, _etext] or [_sinittext, _einittext]
  are kept, minus the ones at the address of _etext/_einittext; 6.12 and 7.x also always
  keep ``__start_*``/``__stop_*``.  With ``--all-symbols`` it keeps everything.  These rules
  need addresses: see :meth:`VmlinuxRules.select`.

:func:`builtin_rules` makes these rules from the copies kept in the series registry
(:mod:`kasalias.series`: Debian's 6.1.192, 6.12.117, 7.2.13 and 7.3.4);
:func:`kasalias.kallsyms_tree.rules_from_tree` reads them from a kernel tree.  Modules do
not pass through ``scripts/kallsyms``: :mod:`kasalias.loader_rules` has the loader's rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Iterable, Iterator, Sequence

from kasalias.bre import combined_pattern
from kasalias.series import KSYM_NAME_LEN, Kallsyms, Version, stand_in

__all__ = [
    "VmlinuxRules",
    "builtin_rules",
    "parse_nm_line",
    "select_nm_lines",
]

# What nm prints as the address column when the filter is asked about a name
# alone (keeps()): 16 hex digits, as for a 64-bit ELF file.
_DUMMY_ADDR = "0" * 16


@dataclass(frozen=True, kw_only=True)
class VmlinuxRules(Kallsyms):
    """The kallsyms selection rules of one kernel version.

    ``mksysmap`` holds the POSIX basic regular expressions of
    ``scripts/mksysmap`` as written there (sed addresses without the slashes,
    grep ``-e`` arguments without the quotes); an ``nm -n`` line matching any
    of them is dropped.  The other fields mirror ``scripts/kallsyms.c``: they are
    :class:`kasalias.series.Kallsyms`' (each one's meaning there), plus the version and
    where the rules came from.
    """

    version: tuple[int, int]
    # where the rules came from ("builtin 6.12" or a path); not compared
    origin: str = field(default="", compare=False)
    _drop: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mksysmap:
            object.__setattr__(self, "_drop", re.compile(combined_pattern(self.mksysmap), re.ASCII))

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


# Built once per series: compiling mksysmap's expressions takes a few milliseconds.
_BUILT: dict[Version, VmlinuxRules] = {}


def builtin_rules(version: Version) -> VmlinuxRules:
    """The built-in rules of ``version``'s series, or of its stand-in when the registry does
    not know it (:func:`kasalias.series.stand_in`: 6.1's before 6.4, 6.12's from 6.4 to 6.19,
    7.3's from 7.0 on); ``version`` of the result says which.  The lists changed a little
    between releases: for a version not registered prefer
    :func:`kasalias.kallsyms_tree.rules_from_tree`."""
    series = stand_in(version)
    rules = _BUILT.get(series.version)
    if rules is None:
        facts = {f.name: getattr(series.kallsyms, f.name) for f in fields(Kallsyms)}
        rules = _BUILT[series.version] = VmlinuxRules(version=series.version, origin=f"builtin {series.name}",
                                                      **facts)  # the registry's record, with where it came from
    return rules


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
