"""``kasalias report``: every duplicated name of a built kernel, its copies, their source
and their aliases, as a table or as JSON."""

from __future__ import annotations

import itertools
import json
from typing import Any

from kasalias.analysis import Analysis
from kasalias.policy import Policy


def as_dict(analysis: Analysis, policy: Policy) -> dict[str, Any]:
    names = []
    for name in sorted(analysis.occurrences):
        occ = analysis.occurrences[name]
        copies = []
        for o in sorted(occ, key=lambda o: (o.image, o.symbol.value, o.symbol.name)):
            copies.append({
                "image": o.image,
                "symbol": o.symbol.name,
                "type": o.symbol.letter,
                "address": f"{o.symbol.value:016x}",
                "decl_file": o.loc.decl_file if o.loc else None,
                "decl_line": o.loc.decl_line if o.loc else None,
                "cu": o.loc.cu if o.loc else None,
                "covered": o.covered,
                "alias": o.alias,
            })
        names.append({"name": name, "count": analysis.freq[name], "copies": copies})
    return {"policy": policy.describe(), "duplicated_names": len(names),
            "aliases": len(analysis.table.rows), "names": names, "problems": analysis.problems}


def render_json(analysis: Analysis, policy: Policy) -> str:
    """``json.dumps(..., indent=1, sort_keys=True)``, joined a batch of pieces at a time:
    json.dumps joins one list of every piece, which for Debian's 7.2 kernel (a 48 MB report)
    held 320 MB of small strings at once."""
    pieces = json.JSONEncoder(indent=1, sort_keys=True).iterencode(as_dict(analysis, policy))
    parts = []
    while batch := list(itertools.islice(pieces, 1 << 16)):
        parts.append("".join(batch))
    parts.append("\n")
    return "".join(parts)


def render_text(analysis: Analysis, policy: Policy, show_all: bool = False) -> str:
    """The table a person reads: the summary and the problems first, then each name with a
    copy the policy covers and that copy's alias; the other copies and names with ``show_all``."""
    d = as_dict(analysis, policy)
    covered_names = [n for n in d["names"] if any(c["covered"] for c in n["copies"])]
    out = [f"# kasalias report: {d['duplicated_names']} duplicated names, {len(covered_names)} of them covered by "
           f"the policy ({d['policy']}), {d['aliases']} aliases, {len(d['problems'])} problems",
           "# columns: image, address, kallsyms type, declaration [compilation unit], alias"]
    if d["problems"]:
        out.append(f"# problems ({len(d['problems'])}):")
        out.extend(f"#   {p}" for p in d["problems"])
    if not show_all:
        out.append("# names and copies not covered by the policy are left out (--all shows them)")
    for n in d["names"] if show_all else covered_names:
        copies = [c for c in n["copies"] if show_all or c["covered"]]
        left = len(n["copies"]) - len(copies)
        out.append(f"{n['name']}  ({n['count']} copies{f', {left} not covered' if left else ''})")
        for c in copies:
            src = f"{c['decl_file']}:{c['decl_line']} [{c['cu']}]" if c["decl_file"] else "-"
            alias = c["alias"] or ("-" if c["covered"] else "(not covered by policy)")
            out.append(f"  {c['image']:<16} {c['address']} {c['type']}  {src}  {alias}")
    return "\n".join(out) + "\n"
