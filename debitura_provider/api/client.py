"""Sync and async clients for the Collection Partner API.

Both clients share one request path (:class:`_ClientCore`): build the request, take a slot in the
key's rate budget, send, map errors, retry what is safe to retry. Every endpoint is declared once,
in :class:`_Operations`, from the definitions in :mod:`debitura_provider.api.endpoints`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload
from urllib.parse import urlsplit

import httpx
import tenacity
from typing_extensions import Unpack

from debitura_provider import __version__
from debitura_provider.api import endpoints
from debitura_provider.api._call import Call, encode_json, uuid_arg
from debitura_provider.api.endpoints import MAX_PAGE_SIZE, CaseFilters, CaseId
from debitura_provider.api.errors import (
    ApiError,
    ConfigurationError,
    DebituraError,
    RateLimitError,
    TransportError,
    error_from_response,
)
from debitura_provider.api.models import Case, CasePage
from debitura_provider.api.ratelimit import DEBITURA_LIMITS, RateBudget, RateLimits, budget_for
from debitura_provider.api.validation import is_loopback

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("debitura_provider.api")

DEFAULT_BASE_URL = "https://collectionpartner-api.debitura.com"
USER_AGENT = f"airflow-provider-debitura/{__version__} httpx/{httpx.__version__}"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one request.

    Backoff is exponential with full jitter; a 429's ``retryAfter`` (or ``Retry-After``) wins over it.
    A ``retryAfter`` longer than ``max_retry_after`` is not slept through but raised. A 429 does not
    use up ``attempts`` (the request was refused, not failed): it is absorbed by waiting, until the
    request has waited ``rate_limit_patience`` seconds on 429s in total.
    """

    attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 300.0
    rate_limit_patience: float = 1800.0


class _ApiKeyAuth(httpx.Auth):
    """Adds ``XApiKey`` to each request; the key is kept here only and never printed."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["XApiKey"] = self._api_key
        yield request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(api_key='***')"


def _check_transport_security(base_url: str, verify: bool) -> None:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"base URL {base_url!r} must be an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            f"refusing plain http to {host}: the API key would cross the network unencrypted. "
            "Use https://, or a loopback address for the local sandbox."
        )
    if not verify and not is_loopback(host):
        message = f"TLS certificate verification is OFF for {host}; the API key can be intercepted."
        warnings.warn(message, stacklevel=3)
        log.warning(message)


class _ClientCore:
    """Configuration and the parts of the request path that do no I/O."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        rate_limits: RateLimits,
        verify: bool,
        user_agent: str | None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("an API key is required (the connection's password)")
        base_url = base_url.rstrip("/")
        _check_transport_security(base_url, verify)
        self.base_url = base_url
        self.retry = retry
        self._auth = _ApiKeyAuth(api_key)
        self._budget: RateBudget = budget_for(base_url, api_key, rate_limits)
        self._client_kwargs: dict[str, Any] = {
            "base_url": base_url,
            "auth": self._auth,
            "timeout": timeout,
            "verify": verify,
            "headers": {"User-Agent": " ".join(filter(None, (USER_AGENT, user_agent))), "Accept": "application/json"},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _request_args(self, call: Call[Any]) -> dict[str, Any]:
        """What ``httpx``'s ``request`` takes besides method and path.

        ``params`` is None rather than empty: given any params, even none, httpx parses the URL again.
        A JSON body is encoded here (:func:`~debitura_provider.api._call.encode_json`), not by httpx,
        so that amounts go out as exact numbers.
        """
        headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
        if call.json is not None:
            headers["Content-Type"] = "application/json"
        return {
            "params": call.params or None,
            "content": encode_json(call.json) if call.json is not None else None,
            "files": call.files,
            "data": call.data,
            "headers": headers,
        }

    def _finish(self, call: Call[T], response: httpx.Response) -> T:
        if response.is_success:
            return call.parse(response)
        error = error_from_response(response, call.method, call.path, idempotency_key_sent=bool(call.idempotency_key))
        if isinstance(error, RateLimitError) and error.retry_after:
            self._budget.hold(error.retry_after)  # every request of this key waits, not just this one
        raise error

    def _retrying_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        policy = self.retry
        backoff = tenacity.wait_exponential_jitter(initial=policy.backoff_initial, max=policy.backoff_max)

        def should_retry(exc: BaseException) -> bool:
            # Whether it may pass is the error's to say; whether sending again is harmless is the call's.
            if not isinstance(exc, DebituraError) or not exc.retryable:
                return False
            if isinstance(exc, RateLimitError):  # refused before any work: always safe to send again
                return exc.retry_after is None or exc.retry_after <= policy.max_retry_after
            if isinstance(exc, TransportError) and isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
                return True  # a refused connection never reached Debitura
            return call.replay_safe

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ApiError) and exc.retry_after is not None:
                return exc.retry_after
            return float(backoff(state))

        failures = 0
        rate_limited_for = 0.0

        def stop(state: tenacity.RetryCallState) -> bool:
            nonlocal failures, rate_limited_for
            if isinstance(state.outcome.exception() if state.outcome else None, RateLimitError):
                rate_limited_for += state.upcoming_sleep
                return rate_limited_for > policy.rate_limit_patience
            failures += 1
            return failures >= policy.attempts

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            if isinstance(exc, RateLimitError):
                log.info("Rate limited: retrying %s %s in %.1fs", call.method, call.path, delay)
                return
            log.warning(
                "Retrying %s %s in %.1fs (attempt %d of %d) after: %s",
                call.method,
                call.path,
                delay,
                failures + 1,
                policy.attempts,
                exc,
            )

        return {
            "stop": stop,
            "wait": wait,
            "retry": tenacity.retry_if_exception(should_retry),
            "before_sleep": before_sleep,
            "reraise": True,
        }


class _Operation(Generic[P, T]):
    """Binds one endpoint definition to a client; on a sync client it returns T, on an async one an awaitable."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: DebituraClient, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: AsyncDebituraClient, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self._build

        @functools.wraps(build)
        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client.send(build(*args, **kwargs))  # validation runs here, before any I/O

        return bound


class _Operations:
    """Every operation, declared once for both clients."""

    create_managed_case = _Operation(endpoints.create_managed_case)
    list_managed_cases = _Operation(endpoints.list_managed_cases)
    get_managed_case = _Operation(endpoints.get_managed_case)
    get_managed_case_by_reference = _Operation(endpoints.get_managed_case_by_reference)
    get_managed_case_timeline = _Operation(endpoints.get_managed_case_timeline)
    get_managed_case_chats = _Operation(endpoints.get_managed_case_chats)
    get_managed_case_payments = _Operation(endpoints.get_managed_case_payments)
    get_managed_case_files = _Operation(endpoints.get_managed_case_files)
    record_test_payment = _Operation(endpoints.record_test_payment)
    update_test_payment = _Operation(endpoints.update_test_payment)
    delete_test_payment = _Operation(endpoints.delete_test_payment)
    list_cases = _Operation(endpoints.list_cases)
    get_case = _Operation(endpoints.get_case)
    get_case_by_reference = _Operation(endpoints.get_case_by_reference)
    get_case_by_partner_reference = _Operation(endpoints.get_case_by_partner_reference)
    get_cases_by_partner_references = _Operation(endpoints.get_cases_by_partner_references)
    get_case_by_creditor_reference = _Operation(endpoints.get_case_by_creditor_reference)
    get_case_timeline = _Operation(endpoints.get_case_timeline)
    get_case_chats = _Operation(endpoints.get_case_chats)
    send_case_chat = _Operation(endpoints.send_case_chat)
    get_case_payments = _Operation(endpoints.get_case_payments)
    record_payment = _Operation(endpoints.record_payment)
    update_payment = _Operation(endpoints.update_payment)
    delete_payment = _Operation(endpoints.delete_payment)
    get_case_files = _Operation(endpoints.get_case_files)
    upload_case_file = _Operation(endpoints.upload_case_file)
    add_case_note = _Operation(endpoints.add_case_note)
    close_case = _Operation(endpoints.close_case)
    start_case = _Operation(endpoints.start_case)
    update_case_fees = _Operation(endpoints.update_case_fees)
    get_exclusive_period = _Operation(endpoints.get_exclusive_period)
    get_case_validation = _Operation(endpoints.get_case_validation)
    create_ingestion_job = _Operation(endpoints.create_ingestion_job)
    get_ingestion_job = _Operation(endpoints.get_ingestion_job)
    get_me = _Operation(endpoints.get_me)
    list_users = _Operation(endpoints.list_users)
    advance_test_case = _Operation(endpoints.advance_test_case)
    delete_test_case = _Operation(endpoints.delete_test_case)
    delete_test_cases_by_tag = _Operation(endpoints.delete_test_cases_by_tag)
    replay_last_test_event = _Operation(endpoints.replay_last_test_event)
    fire_test_webhook = _Operation(endpoints.fire_test_webhook)
    list_webhook_events = _Operation(endpoints.list_webhook_events)
    replay_webhook_event = _Operation(endpoints.replay_webhook_event)
    list_webhooks = _Operation(endpoints.list_webhooks)
    create_webhook = _Operation(endpoints.create_webhook)
    get_webhook = _Operation(endpoints.get_webhook)
    update_webhook = _Operation(endpoints.update_webhook)
    delete_webhook = _Operation(endpoints.delete_webhook)


ListCall = Callable[..., Call[CasePage]]


def _pages(list_call: ListCall, filters: Mapping[str, Any]) -> Iterator[Call[CasePage]]:
    """The calls for page 1, 2, ...; the caller stops when a page says it is the last."""
    page = 1
    while True:
        yield list_call(page=page, **filters)
        page += 1


def _is_last(result: CasePage) -> bool:
    info = result.page
    return info.current_page >= info.total_pages or info.response_count < info.page_size or not result.cases


def _in_order(ids: Iterable[CaseId], found: Mapping[str, Case]) -> list[Case]:
    wanted = dict.fromkeys(str(uuid_arg(i, "Ids")) for i in ids)
    return [found[cid] for cid in wanted if cid in found]


class DebituraClient(_ClientCore, _Operations):
    """Blocking client. Use as a context manager, or call :meth:`close`.

    ``rate_limits`` defaults to Debitura's documented limits, shared by every client of the same key.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limits: RateLimits = DEBITURA_LIMITS,
        verify: bool = True,
        user_agent: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            rate_limits=rate_limits,
            verify=verify,
            user_agent=user_agent,
        )
        self._http = httpx.Client(transport=transport, **self._client_kwargs)

    def send(self, call: Call[T]) -> T:
        """Send one call with the rate budget and retry policy applied.

        The first try goes out bare: the retry machinery costs more than a local request and
        makes garbage for the cycle collector, so it is only built once a try has failed.
        """
        try:
            return self._attempt(call)
        except DebituraError as exc:
            failed = [exc]

        def attempt(call: Call[T]) -> T:
            if failed:  # the retry policy judges the first try as if it had made it
                raise failed.pop()
            return self._attempt(call)

        retrying = tenacity.Retrying(sleep=time.sleep, **self._retrying_kwargs(call))
        result: T = retrying(attempt, call)
        return result

    def _attempt(self, call: Call[T]) -> T:
        delay = self._budget.reserve()
        if delay > 0:
            time.sleep(delay)
        try:
            response = self._http.request(call.method, call.path, **self._request_args(call))
        except httpx.TransportError as exc:
            raise TransportError(call.method, call.path, exc) from exc
        return self._finish(call, response)

    def get_managed_cases(self, ids: Iterable[CaseId], *, chunk_size: int = MAX_PAGE_SIZE) -> list[Case]:
        """Many managed cases by id, in ``ceil(N / chunk_size)`` list requests, in the order of ``ids``.

        An id this partner has no case for is left out of the result (compare the ids to find it).
        """
        ids = list(ids)
        calls = endpoints.list_managed_cases_by_id(ids, chunk_size=chunk_size)
        return _in_order(ids, endpoints.cases_by_id(self.send(call) for call in calls))

    def iter_managed_cases(self, **filters: Unpack[CaseFilters]) -> Iterator[Case]:
        """Every referred case matching the filters, page after page."""
        yield from self._iterate(endpoints.list_managed_cases, filters)

    def iter_cases(self, *, include_test_cases: bool = False, **filters: Unpack[CaseFilters]) -> Iterator[Case]:
        """Every case assigned to this partner matching the filters."""
        yield from self._iterate(endpoints.list_cases, {**filters, "include_test_cases": include_test_cases})

    def _iterate(self, list_call: ListCall, filters: Mapping[str, Any]) -> Iterator[Case]:
        for call in _pages(list_call, filters):
            result = self.send(call)
            yield from result.cases
            if _is_last(result):
                return

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncDebituraClient(_ClientCore, _Operations):
    """Non-blocking client for triggers and bulk work; every operation returns an awaitable."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limits: RateLimits = DEBITURA_LIMITS,
        verify: bool = True,
        user_agent: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            rate_limits=rate_limits,
            verify=verify,
            user_agent=user_agent,
        )
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(transport=transport, limits=limits, **self._client_kwargs)

    async def send(self, call: Call[T]) -> T:
        """Send one call with the rate budget and retry policy applied (first try bare, as in the sync client)."""
        try:
            return await self._attempt(call)
        except DebituraError as exc:
            failed = [exc]

        async def attempt(call: Call[T]) -> T:
            if failed:
                raise failed.pop()
            return await self._attempt(call)

        retrying = tenacity.AsyncRetrying(sleep=asyncio.sleep, **self._retrying_kwargs(call))
        result: T = await retrying(attempt, call)
        return result

    async def _attempt(self, call: Call[T]) -> T:
        delay = self._budget.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            response = await self._http.request(call.method, call.path, **self._request_args(call))
        except httpx.TransportError as exc:
            raise TransportError(call.method, call.path, exc) from exc
        return self._finish(call, response)

    async def get_managed_cases(self, ids: Iterable[CaseId], *, chunk_size: int = MAX_PAGE_SIZE) -> list[Case]:
        """Many managed cases by id, in ``ceil(N / chunk_size)`` concurrent list requests, in the order of ``ids``.

        An id this partner has no case for is left out of the result (compare the ids to find it).
        """
        ids = list(ids)
        calls = endpoints.list_managed_cases_by_id(ids, chunk_size=chunk_size)
        pages = await asyncio.gather(*(self.send(call) for call in calls))
        return _in_order(ids, endpoints.cases_by_id(pages))

    async def iter_managed_cases(self, **filters: Unpack[CaseFilters]) -> AsyncIterator[Case]:
        """Every referred case matching the filters, page after page."""
        async for case in self._iterate(endpoints.list_managed_cases, filters):
            yield case

    async def iter_cases(
        self, *, include_test_cases: bool = False, **filters: Unpack[CaseFilters]
    ) -> AsyncIterator[Case]:
        """Every case assigned to this partner matching the filters."""
        async for case in self._iterate(endpoints.list_cases, {**filters, "include_test_cases": include_test_cases}):
            yield case

    async def _iterate(self, list_call: ListCall, filters: Mapping[str, Any]) -> AsyncIterator[Case]:
        for call in _pages(list_call, filters):
            result = await self.send(call)
            for case in result.cases:
                yield case
            if _is_last(result):
                return

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
