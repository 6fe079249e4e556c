"""kasalias: unique, source-derived kallsyms aliases for duplicated kernel symbol names."""

__version__ = "0.1.0"
