"""Griffe extension: turn the reST roles our docstrings use into mkdocstrings cross-references.

``:class:`~pkg.mod.Name``` becomes ``[Name][pkg.mod.Name]``; an unqualified name is resolved from
the documented object's scope. A target that is private, or that cannot be resolved, becomes plain
code, so the strict build never trips over an object the reference deliberately leaves out.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`")


def convert(text: str, resolve: Any) -> str:
    """Rewrite every role in ``text``; ``resolve(name)`` returns a full path or raises."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        try:
            path = resolve(target)
        except Exception:  # griffe raises NameResolutionError or KeyError for unknown names
            return f"`{shown}`"
        if any(part.startswith("_") for part in path.split(".")):
            return f"`{shown}`"
        return f"[`{shown}`][{path}]"

    return ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Apply :func:`convert` to every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None or obj.is_alias:
            return
        scope = obj if obj.is_class or obj.is_module else obj.parent

        def resolve(name: str) -> str:
            if "." in name and name.split(".", 1)[0] == "debitura_provider":
                return name
            return scope.resolve(name) if scope is not None else name

        obj.docstring.value = convert(obj.docstring.value, resolve)
