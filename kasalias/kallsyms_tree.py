"""Reading the kallsyms rules of a kernel tree: ``scripts/mksysmap`` and ``scripts/kallsyms.c``.

:func:`rules_from_tree` reads the regular expressions of mksysmap (the sed form of Linux 6.4
on, the ``grep -v`` form before) and the tests of kallsyms.c (``is_ignored_symbol()``,
``symbol_valid()``, KSYM_NAME_LEN), and refuses any form it cannot translate exactly: the
analysis of a hooked kernel takes its rules from its own tree, the built-in copies
(:func:`kasalias.kallsyms_rules.builtin_rules`) serve kernels without one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from kasalias.bre import bre_to_python
from kasalias.errors import KasaliasError
from kasalias.kallsyms_rules import VmlinuxRules
from kasalias.series import tree_version

__all__ = ["rules_from_tree"]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise KasaliasError(f"cannot read {path}: {exc.strerror or exc}") from exc



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
    version = tree_version(srctree)
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
