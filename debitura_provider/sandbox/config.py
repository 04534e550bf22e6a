"""How a sandbox is set up: key, port, seed, speed, state file, limits, faults and the partners it simulates.

Plain settings only: importing this module needs neither FastAPI nor uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8642
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_SEED = 7
DEFAULT_SPEED = 86400.0
"""One sandbox day per real second: a simulated case gets its first payment within seconds."""

OUTCOME_MIXES = ("default", "varied")
DEFAULT_OUTCOMES = "default"

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


KINDS = ("error", "commit_then_error", "commit_then_timeout", "reset", "slow", "rate_limit")
DEFAULT_DELAY = 35.0
"""Seconds a ``slow`` request waits and a ``commit_then_timeout`` one is held: past the client's default 30 s."""


@dataclass(frozen=True)
class FaultSpec:
    """Which faults, how often, and how they behave.

    ``attempts_faulted``, when set, lets only the first N identical requests fail: with probability 1
    it makes exactly N faults before the request goes through (a test can count on one lost answer).
    """

    rates: tuple[tuple[str, float], ...]
    delay: float = DEFAULT_DELAY
    retry_after: float = 1.0
    attempts_faulted: int | None = None

    def __post_init__(self) -> None:
        for kind, rate in self.rates:
            if kind not in KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; the kinds are {', '.join(KINDS)}")
            if not 0 <= rate <= 1:
                raise ValueError(f"fault {kind}: probability {rate} is not between 0 and 1")
        if len({kind for kind, _ in self.rates}) != len(self.rates):
            raise ValueError("each fault kind may be given once")
        if self.total > 1 + 1e-9:
            raise ValueError(f"fault probabilities add up to {self.total:g}, more than 1")
        if not self.delay > 0:
            raise ValueError("the fault delay must be greater than zero")
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.attempts_faulted is not None and self.attempts_faulted < 1:
            raise ValueError("attempts_faulted must be 1 or more")

    @classmethod
    def parse(cls, text: str, **settings: Any) -> FaultSpec:
        """``"error=0.1,reset=0.05"`` (spaces allowed) with the other fields as keywords."""
        rates = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            try:
                rate = float(value)
            except ValueError:
                rate = float("nan")
            if not sep or rate != rate:
                raise ValueError(f"fault {part!r} is not kind=probability (e.g. error=0.1)")
            rates.append((kind.strip(), rate))
        return cls(tuple(rates), **settings)

    @property
    def total(self) -> float:
        return sum(rate for _, rate in self.rates)

    def __str__(self) -> str:
        return ",".join(f"{kind}={rate:g}" for kind, rate in self.rates)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox run. Same seed and same requests give the same ids and outcomes.

    ``speed`` compresses sandbox time (simulated partners' work, webhook retry delays, payout
    invoicing): 86400 makes one sandbox day last one real second. Timestamps in responses and
    signatures stay on the real clock, so clients and receivers can check them.

    ``edge_middleware`` wraps the whole API (outside rate limiting and idempotency: a fault there
    looks like the network); ``handler_middleware`` wraps only the handlers (inside idempotency:
    a slow handler there makes a concurrent retry see 409). Both are seams for fault injection.

    ``strict_spec`` (a path to Debitura's OpenAPI spec) turns on the strict oracle
    (:mod:`debitura_provider.sandbox.contract`): every request body and answer is checked against the
    spec's schemas, and a violation is recorded and answered with a 418.

    ``managing_partner_events`` decides whether the managing partner's live subscriptions receive events
    for the production cases it referred (no source says; off lets you test the path where none arrive).
    Test-case events always reach it.

    ``outcomes`` picks the simulated partners' mix: ``"default"`` (mostly paid, with the occasional
    request for information), or ``"varied"``, where declines, reassignments, merges, system closes,
    fees and payment corrections are common enough that two dozen cases show each of them.

    ``faults`` makes the sandbox fail requests on purpose (:mod:`debitura_provider.sandbox.edge.faults`):
    a :class:`~debitura_provider.sandbox.edge.faults.FaultSpec` or its text form, ``"error=0.1,reset=0.05"``.
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
    strict_spec: str | Path | None = None
    managing_partner_events: bool = True
    outcomes: str = DEFAULT_OUTCOMES

    def __post_init__(self) -> None:
        if self.outcomes not in OUTCOME_MIXES:
            raise ValueError(f"unknown outcome mix {self.outcomes!r}; the mixes are {', '.join(OUTCOME_MIXES)}")
        if isinstance(self.faults, str):
            object.__setattr__(self, "faults", FaultSpec.parse(self.faults))
        if not self.api_key:
            raise ValueError("the sandbox needs an API key")
        if self.speed <= 0:
            raise ValueError("speed must be greater than zero")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0 (any free port) to 65535")

    def __repr__(self) -> str:
        return f"SandboxConfig(port={self.port}, seed={self.seed}, speed={self.speed}, state_path={self.state_path!r})"
