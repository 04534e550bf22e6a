"""Where the sandbox keeps its state: dictionaries in memory, written through to SQLite with ``--state``.

Each aggregate (a case with its payments, chats and timeline; a subscription; an event row ...) is one
JSON row, so a restart loses nothing and the store needs no schema migrations. Writes are batched per
event-loop turn: a handler changes records, marks them with :meth:`Store.touch`, and they are committed
together right after it returns.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from debitura_provider.sandbox.config import PartnerSpec, SandboxConfig
from debitura_provider.sandbox.domain.clock import IdSource, rng
from debitura_provider.sandbox.domain.state import (
    CaseRecord,
    EventRecord,
    IngestionJob,
    Keyed,
    Partner,
    Record,
    StoredResponse,
    Subscription,
    User,
)

log = logging.getLogger("debitura_provider.sandbox")

R = TypeVar("R", bound=Record)

_FIRST_NAMES = ("Anna", "Lars", "Mette", "Jonas", "Sofia", "Peter", "Emma", "Mikkel", "Ida", "Oliver")
_LAST_NAMES = ("Jensen", "Nielsen", "Hansen", "Schmidt", "Berg", "Larsen", "Weber", "Smith", "Olsen", "Keller")

_KINDS: dict[str, type[Record]] = {
    "partner": Partner,
    "case": CaseRecord,
    "subscription": Subscription,
    "event": EventRecord,
    "job": IngestionJob,
    "response": StoredResponse,
}


class Store:
    """All sandbox state. Used only from the server's event loop thread (no locks needed)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.partners: dict[UUID, Partner] = {}
        self.cases: dict[UUID, CaseRecord] = {}
        self.subscriptions: dict[UUID, Subscription] = {}
        self.events: dict[UUID, EventRecord] = {}
        self.jobs: dict[UUID, IngestionJob] = {}
        self.responses: dict[str, StoredResponse] = {}
        self.tombstones: dict[UUID, UUID] = {}
        self.file_contents: dict[UUID, bytes] = {}
        self.references: dict[str, UUID] = {}
        self._dirty: dict[tuple[str, str], Any] = {}
        self._flush_scheduled = False
        self._db = _open(config.state_path)
        self.sandbox_time: float | None = None
        self.read_clock: Callable[[], float] | None = None
        seed = self._load() if self._db is not None else None
        self.ids = IdSource(config.seed if seed is None else seed[0], 0 if seed is None else seed[1])
        if not self.partners:
            for partner in _partners(config, self.ids.seed):
                self.partners[partner.id] = partner
                self.touch(partner)
        self._rekey_managing_partner(config.api_key)
        self.managing_partner_id = next(p.id for p in self.partners.values() if p.slug == "managing")

    # --- lookups ----------------------------------------------------------------------------------

    def partner_by_key(self, api_key: str | None) -> Partner | None:
        if not api_key:
            return None
        return next((p for p in self.partners.values() if p.api_key == api_key), None)

    @property
    def managing_partner(self) -> Partner:
        return self.partners[self.managing_partner_id]

    def add_case(self, case: CaseRecord) -> None:
        self.cases[case.id] = case
        self.references[case.reference] = case.id
        self.touch(case)

    def case_by_reference(self, reference: str) -> CaseRecord | None:
        case_id = self.references.get(reference.strip().upper())
        return self.cases.get(case_id) if case_id else None

    def child_id(self, case: CaseRecord) -> UUID:
        """An id for something below a case; background work and requests never shift each other's ids."""
        case.children += 1
        self.touch(case)
        return self.ids.derived(case.id, case.children)

    # --- writes -----------------------------------------------------------------------------------

    def touch(self, record: Record, key: str | None = None) -> None:
        """Mark a record changed; it is written at the end of this event-loop turn."""
        if key is None:
            if not isinstance(record, Keyed):
                raise TypeError(f"{type(record).__name__} needs an explicit key")
            key = str(record.id)
        self._mark(_kind_of(record), key, record)

    def forget(self, kind: str, key: str) -> None:
        self._mark(kind, key, None)

    def put_file(self, file_id: UUID, content: bytes) -> None:
        self.file_contents[file_id] = content
        self._mark("file", str(file_id), content)

    def delete_case(self, case: CaseRecord) -> None:
        """Hard delete: the case, its files and its webhook delivery records."""
        self.cases.pop(case.id, None)
        self.references.pop(case.reference, None)
        self.forget("case", str(case.id))
        for f in case.files:
            self.file_contents.pop(f.id, None)
            self.forget("file", str(f.id))
        for event in [e for e in self.events.values() if e.case_id == case.id]:
            del self.events[event.id]
            self.forget("event", str(event.id))
        self.tombstones[case.id] = case.managing_partner_id
        self._mark("tombstone", str(case.id), case.managing_partner_id)

    def _mark(self, kind: str, key: str, value: Any) -> None:
        self._dirty[(kind, key)] = value
        if self._db is None:
            self._dirty.clear()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every changed record in one transaction."""
        self._flush_scheduled = False
        if self._db is None or not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        rows = [(kind, key, _encode(value)) for (kind, key), value in dirty.items() if value is not None]
        gone = [(kind, key) for (kind, key), value in dirty.items() if value is None]
        rows.append(("meta", "ids", json.dumps({"seed": self.ids.seed, "counter": self.ids.counter})))
        if self.read_clock is not None:
            rows.append(("meta", "clock", json.dumps(self.read_clock())))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)", rows)
            self._db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", gone)

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

    # --- loading ----------------------------------------------------------------------------------

    def _load(self) -> tuple[int, int] | None:
        assert self._db is not None
        seed: tuple[int, int] | None = None
        for kind, key, data in self._db.execute("SELECT kind, key, data FROM records"):
            if kind == "meta" and key == "clock":
                self.sandbox_time = float(json.loads(data))
            elif kind == "meta":
                meta = json.loads(data)
                seed = (int(meta["seed"]), int(meta["counter"]))
            elif kind == "file":
                self.file_contents[UUID(key)] = base64.b64decode(data)
            elif kind == "tombstone":
                self.tombstones[UUID(key)] = UUID(json.loads(data))
            elif kind == "response":
                self.responses[key] = StoredResponse.model_validate_json(data)
            elif kind in _KINDS:
                record = _KINDS[kind].model_validate_json(data)
                assert isinstance(record, Keyed)
                self._collection(kind)[record.id] = record
                if isinstance(record, CaseRecord):
                    self.references[record.reference] = record.id
        if seed is not None:
            log.info(
                "Sandbox state loaded: %d cases, %d subscriptions, %d events",
                len(self.cases),
                len(self.subscriptions),
                len(self.events),
            )
        return seed

    def _collection(self, kind: str) -> dict[Any, Any]:
        collections: dict[str, dict[Any, Any]] = {
            "partner": self.partners,
            "case": self.cases,
            "subscription": self.subscriptions,
            "event": self.events,
            "job": self.jobs,
        }
        return collections[kind]

    def _rekey_managing_partner(self, api_key: str) -> None:
        for partner in self.partners.values():
            if partner.slug == "managing" and partner.api_key != api_key:
                partner.api_key = api_key
                self.touch(partner)


def _open(path: str | Path | None) -> sqlite3.Connection | None:
    if path is None:
        return None
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, "
        "PRIMARY KEY (kind, key))"
    )
    db.commit()
    return db


def _kind_of(record: Record) -> str:
    for kind, model in _KINDS.items():
        if isinstance(record, model):
            return kind
    raise TypeError(f"not a stored record: {type(record).__name__}")


def _encode(value: Any) -> str:
    if isinstance(value, Record):
        return value.model_dump_json()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return json.dumps(str(value))


def _partners(config: SandboxConfig, seed: int) -> Iterable[Partner]:
    managing = PartnerSpec("managing", config.managing_partner_name, "DK", (), simulated=False, routable=False)
    yield _partner(managing, config.api_key, seed)
    for spec in config.partners:
        yield _partner(spec, f"sandbox-{spec.slug}-key", seed)


def _partner(spec: PartnerSpec, api_key: str, seed: int) -> Partner:
    chance = rng(seed, "partner", spec.slug)
    domain = f"{spec.slug}.example"
    users: list[User] = []
    while len(users) < 2:
        first, last = chance.choice(_FIRST_NAMES), chance.choice(_LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}@{domain}"
        if all(u.email != email for u in users):
            users.append(
                User(
                    id=UUID(int=chance.getrandbits(128), version=4),
                    number=chance.randint(10000, 99999),
                    name=f"{first} {last}",
                    email=email,
                )
            )
    return Partner(
        id=UUID(int=chance.getrandbits(128), version=4),
        slug=spec.slug,
        name=spec.name,
        api_key=api_key,
        country=spec.country,
        coverage=spec.coverage,
        simulated=spec.simulated,
        routable=spec.routable,
        office_email=f"office@{domain}",
        office_phone=f"+45 70 {chance.randint(10, 99)} {chance.randint(10, 99)} {chance.randint(10, 99)}",
        public_site=f"https://www.{domain}",
        users=users,
    )
