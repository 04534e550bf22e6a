"""MkDocs hook: replace ``<!-- generated: NAME -->`` in a page with a table built from the code.

Tables that restate code (lifecycle labels, close codes, connection fields, client operations,
sandbox flags) are generated at build time so they cannot drift from it. An unknown NAME, or an
enum member without a description here, fails the build.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sphinx_roles import convert  # mkdocs puts this folder on sys.path while it loads the hook

GENERATED = re.compile(r"<!--\s*generated:\s*(?P<name>[\w-]+)\s*-->")

LIFECYCLE_MEANING = {
    "PENDING_CONTRACT_SIGNING": "The creditor's contract is not signed yet (internal; hidden from `/cases`).",
    "PENDING_VERIFICATION_INTERNAL": "Debitura checks the case. Every new case starts here (hidden from `/cases`).",
    "PENDING_VERIFICATION": "Assigned; the collection partner reviews it and accepts, asks for details or quotes.",
    "NEEDS_ADDITIONAL_DETAILS": "The collection partner asked your client for more information.",
    "LEADS": "A custom quote or legal escalation is being priced.",
    "LEADS_QUOTE_GIVEN": "A quote was given and waits for the client's choice.",
    "ACTIVE": "Collection is in progress.",
    "PAUSED": "Collection is suspended for now.",
    "CLOSED": "Finished; the close code says how.",
    "MERGED": "Folded into another case.",
}

CLOSE_CODE_RULE = {
    "PAID": "Needs at least one payment, and payments covering the outstanding amount.",
    "PARTIALLY_PAID": "Needs at least one payment, and payments below the outstanding amount.",
    "OTHER": "Give a comment saying why.",
}


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; pipes inside cells are escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _described(members: Iterable[Any], meanings: dict[str, str], what: str) -> None:
    missing = [m.name for m in members if m.name not in meanings]
    if missing:
        raise ValueError(f"docs/_ext/generated.py has no {what} description for {', '.join(missing)}")


def lifecycle_table() -> str:
    from debitura_provider.api.models.enums import Lifecycle

    _described(Lifecycle, LIFECYCLE_MEANING, "lifecycle")
    rows = [(f"`{m.value}`", f"`{m.api_name}`", LIFECYCLE_MEANING[m.name]) for m in Lifecycle]
    return table(("Label in responses", "Name for filters", "Meaning"), rows)


def close_code_table() -> str:
    from debitura_provider.api.models.enums import CloseCode

    rows = [(f"`{m.value}`", f"`{m.api_name}`", CLOSE_CODE_RULE.get(m.name, "")) for m in CloseCode]
    return table(("Label in responses", "Name `POST /cases/{id}/close` takes", "Rule"), rows)


def connection_fields_table() -> str:
    from debitura_provider._provider_info import PROVIDER_INFO

    conn = PROVIDER_INFO["connection-types"][0]
    relabel = conn["ui-field-behaviour"]["relabeling"]
    rows: list[Sequence[str]] = [
        (f"{label} (`{field}`)", "Standard field", "secret, masked" if field == "password" else "")
        for field, label in relabel.items()
    ]
    for name, spec in conn["conn-fields"].items():
        schema = spec["schema"]
        default = f"default `{schema['default']}`" if "default" in schema else ""
        secret = "secret, masked" if schema.get("format") == "password" else ""
        notes = "; ".join(filter(None, (default, secret)))
        rows.append((f"{spec['label']} (`{name}`)", spec["description"], notes))
    return table(("Form field (extra key)", "What it is for", "Notes"), rows)


def client_operations_table() -> str:
    from debitura_provider.api.client import _Operation, _Operations

    rows = []
    for name, member in vars(_Operations).items():
        if isinstance(member, _Operation):
            build = member._build
            summary = " ".join(inspect.cleandoc(build.__doc__ or "").split("\n\n")[0].split())
            rows.append((f"[`{name}`][{build.__module__}.{name}]", convert(summary, _resolver(build.__module__))))
    return table(("Method on both clients", "What it does"), rows)


def _resolver(module_name: str) -> Callable[[str], str]:
    """Resolve a docstring role's target the way Python would, from the documented object's module."""
    module = sys.modules[module_name]

    def resolve(name: str) -> str:
        if name.startswith("debitura_provider."):
            return name
        target = getattr(module, name)
        return f"{target.__module__}.{target.__qualname__}"

    return resolve


def sandbox_flags_table() -> str:
    """Every option of ``debitura-sandbox``, read from its argument parser."""
    import argparse

    from debitura_provider.sandbox.__main__ import _parser

    rows = []
    for action in _parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = ", ".join(f"`{option}`" + (f" `{action.metavar or action.dest.upper()}`" if action.nargs != 0 else "")
                         for option in action.option_strings)
        default = "" if action.default in (None, False) else f"`{action.default}`"
        rows.append((flag, default, " ".join((action.help or "").split())))
    return table(("Flag", "Default", "What it does"), rows)


def bench_results_table() -> str:
    """The committed ``make bench`` run (``bench/results.json``), as ``make bench`` prints it."""
    import importlib.util
    import json
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    spec = importlib.util.spec_from_file_location("bench_report", bench / "report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)  # bench/ is not installed; its report module needs only the stdlib
    return str(report.table(json.loads((bench / "results.json").read_text())))


GENERATORS: dict[str, Callable[[], str]] = {
    "lifecycle": lifecycle_table,
    "close-codes": close_code_table,
    "connection-fields": connection_fields_table,
    "client-operations": client_operations_table,
    "sandbox-flags": sandbox_flags_table,
    "bench-results": bench_results_table,
}


def render(markdown: str) -> str:
    """Expand every marker in ``markdown``; an unknown marker is an error, not a silent gap."""

    def expand(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise ValueError(f"unknown generated table {name!r}; known: {', '.join(sorted(GENERATORS))}")
        return GENERATORS[name]()

    return GENERATED.sub(expand, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: runs before each page's Markdown is converted."""
    return render(markdown)
