"""Alias names: ``name@<path>_<line>``, made unique from source identity alone.

Level 1 is the format of the original kas_alias proposal: the declaring file
and line, relative to the source tree, every non-alphanumeric character of
``path:line`` turned into ``_``. Where several copies share it (a header
inline emitted by many CUs, a ``.c`` file included by two others), all of
them move to level 2, which appends ``@<CU path>``: the compilation unit
that emitted the copy. Where even that is shared (one source file built into
two modules), level 3 appends ``@<image>`` (``vmlinux`` or the module name).
What level 3 cannot separate is reported and gets no alias: never a serial
number, an address or a link-order index, which would change between builds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable

from kasalias.aliastable import one_word
from kasalias.series import KSYM_NAME_LEN  # scripts/kallsyms drops names this long or longer
from kasalias.srcloc import SourceLoc
from kasalias.symbfreq import name_key

_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def mangle(text: str) -> str:
    return _NON_ALNUM.sub("_", text)


@dataclass(frozen=True)
class Copy:
    """One copy of a duplicated name: where it lives, and where it comes from."""

    image: str
    key: Hashable
    name: str
    loc: SourceLoc


def candidate(c: Copy, level: int) -> str:
    alias = f"{name_key(c.name)}@{mangle(f'{c.loc.decl_file}:{c.loc.decl_line}')}"
    if level >= 2:
        alias += "@" + mangle(c.loc.cu)
    if level >= 3:
        alias += "@" + mangle(c.image)
    return alias


def assign(copies: Iterable[Copy], taken: frozenset[str] = frozenset()) -> tuple[dict[Copy, str], list[str]]:
    """Alias every copy; return (aliases, problems). ``taken`` holds names already in use
    (a shipped kernel's aliases, when aliasing a module built later)."""
    aliases: dict[Copy, str] = {}
    problems: list[str] = []
    pending = list(copies)
    for level in (1, 2, 3):
        groups: dict[str, list[Copy]] = defaultdict(list)
        for c in pending:
            groups[candidate(c, level)].append(c)
        pending = []
        for alias, members in groups.items():
            if len(members) == 1 and alias not in taken:
                aliases[members[0]] = alias
            else:
                pending.extend(members)
    for c in sorted(pending, key=lambda c: (c.image, c.name, c.loc)):
        problems.append(f"{c.image}: {c.name} ({c.loc.decl_file}:{c.loc.decl_line}, {c.loc.cu}): "
                        "cannot be told apart from another copy; no alias")
    for c, alias in list(aliases.items()):
        bad = None
        if len(alias.encode()) >= KSYM_NAME_LEN:
            bad = f"alias is {len(alias.encode())} bytes, kallsyms keeps fewer than {KSYM_NAME_LEN}"
        elif not one_word(alias):
            bad = "symbol name contains white space"
        if bad:
            del aliases[c]
            problems.append(f"{c.image}: {c.name}: {bad}; no alias")
    return aliases, problems
