"""The one exception kasalias raises for bad input; the CLI turns it into one error line."""

from __future__ import annotations


class KasaliasError(Exception):
    """Bad input or a failed external tool: reported as ``kasalias: error: <message>``."""
