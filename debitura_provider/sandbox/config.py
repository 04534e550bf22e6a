"""How a sandbox is set up: key, port, seed, speed, state file, limits and the partners it simulates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from debitura_provider.sandbox.faults import FaultSpec

DEFAULT_PORT = 8642
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_SEED = 7
DEFAULT_SPEED = 86400.0
"""One sandbox day per real second: a simulated case gets its first payment within seconds."""

Middleware = Callable[..., Any]
"""An ASGI middleware factory: called with the inner ASGI app, returns the wrapping app."""

EU_MOST = (
    "AT", "BE", "BG", "HR", "CZ", "EE", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "CH", "LI",
)  # fmt: skip


@dataclass(frozen=True)
class PartnerSpec:
    """A simulated collection partner and the jurisdictions it covers ('US' means every US state).

    ``routable`` partners receive cases by jurisdiction; the others only through ``collectionPartnerId``.
    ``simulated`` partners work their production cases on their own, the others wait for a person
    using their API key.
    """

    slug: str
    name: str
    country: str
    coverage: tuple[str, ...]
    simulated: bool = True
    routable: bool = True


DEFAULT_PARTNERS: tuple[PartnerSpec, ...] = (
    PartnerSpec("nordic", "Nordic Recovery A/S", "DK", ("DK", "SE", "NO", "FI", "IS")),
    PartnerSpec("eurocollect", "EuroCollect GmbH", "DE", EU_MOST),
    PartnerSpec("britannia", "Britannia Credit Management Ltd", "GB", ("GB", "GG", "JE", "IM")),
    PartnerSpec("liberty", "Liberty Receivables LLC", "US", ("US", "CA")),
    PartnerSpec("southern-cross", "Southern Cross Collections Pty Ltd", "AU", ("AU", "NZ")),
    PartnerSpec(
        "workbench",
        "Workbench Collections ApS",
        "DK",
        ("DK", "SE", "NO", "FI", "IS", *EU_MOST, "GB", "US", "CA", "AU", "NZ"),
        simulated=False,
        routable=False,
    ),
)
"""Jurisdictions nobody covers (JP, CN, IN, BR, ZA, MX, CY, MT, ...) answer 422 NoPartnerAvailable."""


@dataclass(frozen=True)
class RateLimitSettings:
    """Debitura's documented limits per API key (API-NOTES §1.4).

    ``time_scale`` runs the windows that much faster than real time (a minute lasts ``60 / time_scale``
    real seconds), so a benchmark can hit the limits without waiting hours; 1 is Debitura's own pace.
    """

    per_minute: int = 2000
    per_hour: int = 20000
    per_day: int = 100000
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be greater than zero")


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox run. Same seed and same requests give the same ids and outcomes.

    ``speed`` compresses sandbox time (simulated partners' work, webhook retry delays, payout
    invoicing): 86400 makes one sandbox day last one real second. Timestamps in responses and
    signatures stay on the real clock, so clients and receivers can check them.

    ``edge_middleware`` wraps the whole API (outside rate limiting and idempotency: a fault there
    looks like the network); ``handler_middleware`` wraps only the handlers (inside idempotency:
    a slow handler there makes a concurrent retry see 409). Both are seams for fault injection.

    ``faults`` makes the sandbox fail requests on purpose (:mod:`debitura_provider.sandbox.faults`):
    a :class:`~debitura_provider.sandbox.faults.FaultSpec` or its text form, ``"error=0.1,reset=0.05"``.
    The draws are seeded by ``seed``.
    """

    api_key: str = DEFAULT_API_KEY
    port: int = DEFAULT_PORT
    seed: int = DEFAULT_SEED
    speed: float = DEFAULT_SPEED
    state_path: str | Path | None = None
    rate_limits: bool = True
    host: str = "127.0.0.1"
    limits: RateLimitSettings = RateLimitSettings()
    partners: tuple[PartnerSpec, ...] = DEFAULT_PARTNERS
    managing_partner_name: str = "Sandbox Managing Partner ApS"
    simulate: bool = True
    payout_invoice_days: float = 30.0
    edge_middleware: tuple[Middleware, ...] = field(default=())
    handler_middleware: tuple[Middleware, ...] = field(default=())
    faults: FaultSpec | str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.faults, str):
            from debitura_provider.sandbox.faults import FaultSpec  # here: faults imports the app's modules

            object.__setattr__(self, "faults", FaultSpec.parse(self.faults))
        if not self.api_key:
            raise ValueError("the sandbox needs an API key")
        if self.speed <= 0:
            raise ValueError("speed must be greater than zero")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0 (any free port) to 65535")

    def __repr__(self) -> str:
        return f"SandboxConfig(port={self.port}, seed={self.seed}, speed={self.speed}, state_path={self.state_path!r})"
