"""The retry policy: which failures to retry, how often, and how long to wait.

Built from tenacity's small parts. Transient failures (4xx replies, timeouts,
refused or dropped connections) are retried up to ``max_retries`` times, waiting
``retry_delay * 2**n`` (capped at ``retry_max_delay``) plus up to ``retry_delay`` of
random jitter, so many workers retrying at once do not hit the server in step.
Permanent failures (5xx, TLS and certificate errors) are never retried. The last
error is re-raised as it is, so callers see the real SMTP reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from .config import TransportConfig
from .errors import SendError

logger = logging.getLogger("hypermail_django.transport")


def sleep(seconds: float) -> None:
    """Wait between attempts. Module-level so a test can replace it and never wait."""
    time.sleep(seconds)


def is_transient(exc: BaseException) -> bool:
    """Retry only what a later attempt may fix."""
    return isinstance(exc, SendError) and exc.transient


async def async_sleep(seconds: float) -> None:
    """The async twin of :func:`sleep`, replaceable the same way."""
    await asyncio.sleep(seconds)


def _policy(config: TransportConfig, subject: str | None) -> dict[str, Any]:
    """The parts of the policy, shared by the sync and async controllers."""
    return {
        "stop": stop_after_attempt(config.max_retries + 1),
        "wait": (
            wait_exponential(multiplier=config.retry_delay, max=config.retry_max_delay)
            + wait_random(0, config.retry_delay)
        ),
        "retry": retry_if_exception(is_transient),
        "reraise": True,
        "before_sleep": lambda state: _log_retry(state, subject),
    }


def retrying(config: TransportConfig, subject: str | None = None) -> Retrying:
    """A fresh tenacity controller for one message under ``config``'s policy.

    ``subject`` names what is being retried (a Message-ID) in the log.
    """
    return Retrying(sleep=lambda seconds: sleep(seconds), **_policy(config, subject))


def async_retrying(
    config: TransportConfig, subject: str | None = None
) -> AsyncRetrying:
    """The same policy for coroutines (tenacity's ``AsyncRetrying``)."""
    return AsyncRetrying(
        sleep=lambda seconds: async_sleep(seconds), **_policy(config, subject)
    )


def _log_retry(state: RetryCallState, subject: str | None) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "Message %s: attempt %d failed (%s); retrying in %.2f s",
        subject,
        state.attempt_number,
        error,
        wait,
    )
