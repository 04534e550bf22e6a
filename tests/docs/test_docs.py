"""The docs site builds strictly, and its generated tables follow the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docs" / "_ext"))

import generated  # noqa: E402 - docs/_ext is not a package; mkdocs loads it by path
import sphinx_roles  # noqa: E402

from debitura_provider.api.models.enums import CloseCode, Lifecycle  # noqa: E402


def test_site_builds_strictly(tmp_path: Path) -> None:
    """A broken cross-reference, include or nav entry fails here, as it fails `make docs`."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "client" / "index.html").is_file()


def test_lifecycle_table_lists_every_label_and_name() -> None:
    rendered = generated.render("<!-- generated: lifecycle -->")
    for member in Lifecycle:
        assert f"| `{member.value}` | `{member.api_name}` |" in rendered


def test_close_code_table_lists_every_code() -> None:
    rendered = generated.render("<!-- generated: close-codes -->")
    assert (
        f"| `{CloseCode.DISPUTED_LEGAL_ACTION_DECLINED_BY_CLIENT.value}` | `DisputedLegalActionDeclinedByClient` |"
        in rendered
    )
    assert rendered.count("\n| `") == len(CloseCode)


def test_a_lifecycle_without_a_description_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(generated.LIFECYCLE_MEANING, "MERGED")
    with pytest.raises(ValueError, match="no lifecycle description for MERGED"):
        generated.render("<!-- generated: lifecycle -->")


def test_an_unknown_marker_fails_the_build() -> None:
    with pytest.raises(ValueError, match="unknown generated table 'nope'"):
        generated.render("text <!-- generated: nope --> text")


def test_connection_fields_show_the_secrets_masked() -> None:
    rendered = generated.render("<!-- generated: connection-fields -->")
    assert "API key (`password`) | Standard field | secret, masked |" in rendered
    assert "(`webhook_secret`)" in rendered and rendered.count("secret, masked") == 2


def test_client_operations_link_each_endpoint() -> None:
    rendered = generated.render("<!-- generated: client-operations -->")
    assert "[`create_managed_case`][debitura_provider.api.endpoints.create_managed_case]" in rendered
    assert ":class:" not in rendered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":class:`~debitura_provider.api.errors.ApiError`", "[`ApiError`][debitura_provider.api.errors.ApiError]"),
        (
            ":func:`debitura_provider.api.webhooks.sign`",
            "[`debitura_provider.api.webhooks.sign`][debitura_provider.api.webhooks.sign]",
        ),
        (":class:`_ClientCore`", "`_ClientCore`"),
        (":meth:`close`", "`close`"),
    ],
)
def test_sphinx_roles_become_cross_references_or_code(text: str, expected: str) -> None:
    known = {"debitura_provider.api.errors.ApiError", "debitura_provider.api.webhooks.sign"}

    def resolve(name: str) -> str:
        if name in known:
            return name
        if name.startswith("_"):
            return f"debitura_provider.api.client.{name}"
        raise KeyError(name)

    assert sphinx_roles.convert(text, resolve) == expected
