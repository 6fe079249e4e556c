"""Generating build fragments: a ninja file and a Make fragment, rendered from templates/.

The graph: one analysis edge (vmlinux.o + every module object ->
modules.symbfreq, modules.symalias; outputs rewritten only when their bytes
change, ``restat = 1``), one edge per module (X.ko + the alias table ->
X.ko.aliased), optionally the vmlinux kallsyms list, and a ``generator = 1``
edge that re-renders the ninja file when modules.order, the templates or
kasalias itself change. Small value objects hold the graph; a registry refuses
two producers of one output; one function quotes ninja text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from kasalias.errors import KasaliasError
from kasalias.fsutil import write_text_atomic

NINJA_TEMPLATE = "kasalias.ninja.j2"
_NINJA_VAR = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")
MAKE_TEMPLATE = "kasalias.mk.j2"


def ninja_escape(text: str, *, path: bool = True) -> str:
    """Quote ``text`` for a ninja file: ``$`` always; space and ``:`` too in paths
    (build lines), where they would end a path. A newline cannot be quoted."""
    if "\n" in text or "\r" in text:
        raise KasaliasError(f"{text!r}: a path or command with a newline cannot be written to a ninja file")
    text = text.replace("$", "$$")
    if path:
        text = text.replace(" ", "$ ").replace(":", "$:")
    return text


def shell_command(argv: list[str]) -> str:
    """A command line for a ninja rule: each word quoted for the shell, then for ninja;
    ``$name`` words stay ninja variable references."""
    return " ".join(a if _NINJA_VAR.fullmatch(a) else ninja_escape(shlex.quote(a), path=False) for a in argv)


@dataclass(frozen=True)
class Rule:
    name: str
    command: str  # already ninja-quoted
    description: str
    restat: bool = False
    generator: bool = False


@dataclass(frozen=True)
class Edge:
    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()

    def quoted(self) -> dict[str, list[str]]:
        return {"outputs": [ninja_escape(p) for p in self.outputs],
                "inputs": [ninja_escape(p) for p in self.inputs],
                "implicit": [ninja_escape(p) for p in self.implicit]}


@dataclass
class Graph:
    """Rules and edges; refuses a second producer of any output."""

    rules: dict[str, Rule] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    _producers: dict[str, Edge] = field(default_factory=dict)

    def rule(self, rule: Rule) -> None:
        if rule.name in self.rules:
            raise KasaliasError(f"ninja rule {rule.name} defined twice")
        self.rules[rule.name] = rule

    def build(self, edge: Edge) -> None:
        if edge.rule not in self.rules:
            raise KasaliasError(f"ninja edge uses unknown rule {edge.rule}")
        for out in edge.outputs:
            if out in self._producers:
                raise KasaliasError(f"two build steps produce {out}")
        for out in edge.outputs:
            self._producers[out] = edge
        self.edges.append(edge)


@dataclass(frozen=True)
class GenConfig:
    """What ``kasalias gen`` was given (paths as Make passes them)."""

    objtree: Path
    srctree: Path
    modules_order: str  # relative to objtree
    vmlinux: str  # vmlinux.o or vmlinux, relative to objtree
    ninja_file: str
    make_file: str | None
    python: str
    objcopy: str
    nm: str
    syms: str | None = None  # vmlinux kallsyms list to write (sample-tree: vmlinux.syms.aliased)
    extra: tuple[str, ...] = ()  # more analyze options (--data, --kernel-version X)

    def kasalias(self) -> list[str]:
        return [self.python, "-m", "kasalias"]


def templates_dir() -> Path:
    """templates/ of a source checkout, or the copy a wheel ships inside the package."""
    here = Path(__file__).resolve().parent
    for d in (here.parent / "templates", here / "templates"):
        if (d / NINJA_TEMPLATE).is_file():
            return d
    raise KasaliasError(f"kasalias templates not found beside {here}")


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def dependency_files() -> list[Path]:
    """kasalias' own files: the generator edge re-renders when one changes."""
    pkg = Path(__file__).resolve().parent
    return sorted(pkg.glob("*.py")) + [templates_dir() / n for n in (NINJA_TEMPLATE, MAKE_TEMPLATE)]


def module_objects(cfg: GenConfig) -> list[str]:
    path = cfg.objtree / cfg.modules_order
    try:
        lines = path.read_text().split()
    except OSError as e:
        raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
    mods = []
    for line in lines:
        mods.append(line[:-3] + ".o" if line.endswith(".ko") else line)
    return mods


def build_graph(cfg: GenConfig, argv: list[str]) -> Graph:
    g = Graph()
    k = cfg.kasalias()
    g.rule(Rule("kasalias_gen", shell_command(k + argv), "GEN     $out", restat=True, generator=True))
    g.rule(Rule("kasalias_analyze", shell_command(
        k + ["analyze", "--vmlinux", "$vmlinux", "--modules-order", "$order", "--objtree", "$objtree",
             "--srctree", "$srctree", "-o", "$outdir", *cfg.extra]), "KASALIAS modules.symalias", restat=True))
    g.rule(Rule("kasalias_module", shell_command(k + ["module", "--aliases", "$aliases", "--objcopy", "$objcopy",
                                                      "$in", "$out"]), "KASALIAS $out"))
    mods = module_objects(cfg)
    g.build(Edge("kasalias_gen", (cfg.ninja_file,) + ((cfg.make_file,) if cfg.make_file else ()),
                 implicit=(cfg.modules_order, *(str(p) for p in dependency_files()))))
    g.build(Edge("kasalias_analyze", ("modules.symbfreq", "modules.symalias"),
                 (cfg.vmlinux,), (cfg.modules_order, *mods)))
    for m in mods:
        ko = m[:-2] + ".ko"
        g.build(Edge("kasalias_module", (ko + ".aliased",), (ko,), ("modules.symalias",)))
    if cfg.syms:
        g.rule(Rule("kasalias_mksysmap", shell_command([cfg.nm, "-n", "$in"]) + " > $out.tmp && mv $out.tmp $out",
                    "NM      $out"))
        g.rule(Rule("kasalias_syms", shell_command(k + ["syms", "--aliases", "modules.symalias", "--image", "$image",
                                                        "$in", "$out"]), "KASALIAS $out"))
        plain = cfg.syms.removesuffix(".aliased")
        g.build(Edge("kasalias_mksysmap", (plain,), ("vmlinux",)))
        g.build(Edge("kasalias_syms", (cfg.syms,), (plain,), ("modules.symalias", "vmlinux")))
    return g


def render(cfg: GenConfig, argv: list[str]) -> dict[str, str]:
    """The files to write, by path relative to objtree."""
    for p in (str(cfg.objtree), str(cfg.srctree)):
        if any(c.isspace() for c in p):
            raise KasaliasError(f"{p!r}: Kbuild does not support white space in build paths")
    graph = build_graph(cfg, argv)
    env = template_env()
    variables = {"vmlinux": cfg.vmlinux, "order": cfg.modules_order, "objtree": ".",
                 "srctree": str(cfg.srctree), "outdir": ".", "aliases": "modules.symalias",
                 "objcopy": cfg.objcopy, "image": "vmlinux"}
    ctx = {
        "template": NINJA_TEMPLATE,
        "variables": [(k, ninja_escape(shlex.quote(v), path=False)) for k, v in sorted(variables.items())],
        "rules": list(graph.rules.values()),
        "edges": [e.quoted() | {"rule": e.rule} for e in graph.edges],
        "defaults": [ninja_escape(o) for e in graph.edges if e.rule != "kasalias_gen" for o in e.outputs],
    }
    out = {cfg.ninja_file: env.get_template(NINJA_TEMPLATE).render(ctx)}
    if cfg.make_file:
        out[cfg.make_file] = env.get_template(MAKE_TEMPLATE).render(
            template=MAKE_TEMPLATE, ninja_file=cfg.ninja_file, ninja=ninja_binary(),
            outputs=[o for e in graph.edges if e.rule != "kasalias_gen" for o in e.outputs],
            gen=shlex.join(cfg.kasalias() + argv))
    return out


def ninja_binary() -> str:
    """The ninja of the PyPI package (it joins make's jobserver)."""
    try:
        import ninja
    except ImportError:
        raise KasaliasError("the Python package 'ninja' is not installed") from None
    return str(Path(ninja.BIN_DIR) / "ninja")


def generate(cfg: GenConfig, argv: list[str]) -> list[str]:
    """Write the fragments (atomically, only when their text changes); return what changed."""
    changed = []
    for rel, text in render(cfg, argv).items():
        if write_text_atomic(cfg.objtree / rel, text, only_if_changed=True):
            changed.append(rel)
    return changed
