"""POSIX basic regular expressions (the GNU sed and grep dialect) in Python's :mod:`re`.

scripts/mksysmap drops ``nm -n`` lines with ``sed '/RE/d'`` (Linux 6.4 on) or ``grep -v -e RE``
(before): :func:`bre_to_python` translates those expressions, :func:`combined_pattern` makes one
pattern of a list of them (kallsyms_rules.VmlinuxRules matches every line of a vmlinux's nm
output against it).
"""

from __future__ import annotations

import re
from typing import Sequence

from kasalias.errors import KasaliasError

__all__ = ["bre_to_python", "combined_pattern"]

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


def combined_pattern(bres: Sequence[str]) -> str:
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

