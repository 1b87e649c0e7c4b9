"""Sending limits shared by every process (``max_per_*``, ``max_connections``,
``limits_cache``, ``limit_wait``): real SMTP test servers, a real Redis
(Debian's ``redis-server``) and the database cache, real processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMessage
from django.test import override_settings

from hypermail_django import send_bulk
from hypermail_django.backends import FluxMailBackend
from hypermail_django.backends.limits import reset_local_limits
from hypermail_django.conf.mailers import get_mailer
from hypermail_django.exceptions import ConfigurationError, RateLimited, SendError
from hypermail_django.testing import SMTPTestServer

from ..paths import ROOT
from ..routing.test_routing import (  # noqa: F401 - kept_tasks is a fixture
    flux,
    kept_tasks,
    mailers,
    received,
    router,
    run_task,
)


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    reset_local_limits()
    yield
    reset_local_limits()


@pytest.fixture
def backup() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as smtp:
        yield smtp


def msg(to: str = "a@x.org") -> EmailMessage:
    return EmailMessage("Hi", "Body", "from@example.com", [to])


def busiest_window(times: list[float], width: float) -> int:
    """The most arrivals in any window of ``width`` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most


# -- one process ----------------------------------------------------------------


def test_a_sync_send_at_its_limit_waits_then_fails_rate_limited(
    server: SMTPTestServer,
) -> None:
    backend = FluxMailBackend(
        host=server.host, port=server.port, max_per_minute=3, limit_wait=0.2
    )
    for number in range(3):
        backend.send_messages([msg(f"r{number}@x.org")])
    late = msg("late@x.org")
    with pytest.raises(RateLimited) as raised:
        backend.send_messages([late])
    assert raised.value.code == "rate_limited"
    assert raised.value.transient is True
    assert "max_per_minute=3" in str(raised.value)
    assert len(server.messages) == 3  # nothing of the fourth was sent
    assert not any(c.argument.endswith("<late@x.org>") for c in server.commands)
    assert late.hypermail_status.status == "failed"


def test_a_send_waits_for_a_free_slot_within_limit_wait(
    server: SMTPTestServer,
) -> None:
    backend = FluxMailBackend(
        host=server.host, port=server.port, max_per_second=2, limit_wait=5
    )
    for number in range(5):
        backend.send_messages([msg(f"r{number}@x.org")])
    times = [m.received_at for m in server.messages]
    assert len(times) == 5
    assert busiest_window(times, 0.9) <= 2


def test_async_sends_respect_the_limit(server: SMTPTestServer) -> None:
    import asyncio

    from hypermail_django.transport.async_pool import aclose_async_pools

    backend = FluxMailBackend(
        host=server.host, port=server.port, max_per_minute=2, limit_wait=0.1
    )

    async def send() -> list[Any]:
        try:
            outcomes = []
            for number in range(3):
                try:
                    outcomes.append(await backend.asend_messages([msg(f"{number}@x")]))
                except SendError as error:
                    outcomes.append(error.code)
            return outcomes
        finally:
            await aclose_async_pools()

    assert asyncio.run(send()) == [1, 1, "rate_limited"]
    assert len(server.messages) == 2


def test_max_connections_bounds_concurrent_sends(server: SMTPTestServer) -> None:
    server.delay("DATA_END", 0.2)
    backend_options = {"host": server.host, "port": server.port}
    options = {**backend_options, "max_connections": 2, "limit_wait": 30}

    def send(number: int) -> None:
        FluxMailBackend(**options).send_messages([msg(f"r{number}@x.org")])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(6)))
    assert len(server.messages) == 6
    # Six threads, each send held 0.2 s by the server: without the limit the
    # pool opens a connection per thread; with it, two carry all six.
    assert len({m.session for m in server.messages}) <= 2


def test_bad_limits_are_refused(server: SMTPTestServer) -> None:
    for option, value in [
        ("max_per_second", 0),
        ("max_per_hour", -5),
        ("max_per_day", 1.5),
        ("max_connections", True),
        ("limits_cache", "nope"),
    ]:
        with pytest.raises(ConfigurationError) as raised:
            FluxMailBackend(host=server.host, port=server.port, **{option: value})
        assert option in str(raised.value)


def test_a_router_moves_on_when_a_member_is_at_its_limit(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router("primary", "backup"),
        primary=flux(server, max_per_minute=2, limit_wait=30),
        backup=flux(backup),
    ):
        chosen = []
        for number in range(4):
            message = msg(f"r{number}@x.org")
            get_mailer("router").send_messages([message])
            chosen.append(message.hypermail_status.mailer)
    assert chosen == ["primary", "primary", "backup", "backup"]
    assert len(server.messages) + len(backup.messages) == 4


def test_a_router_whose_members_are_all_at_their_limit_fails_rate_limited(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router("primary", "backup"),
        primary=flux(server, max_per_minute=1, limit_wait=0.1),
        backup=flux(backup, max_per_minute=1, limit_wait=0.1),
    ):
        get_mailer("router").send_messages([msg("one@x.org")])
        get_mailer("router").send_messages([msg("two@x.org")])
        with pytest.raises(RateLimited):
            get_mailer("router").send_messages([msg("three@x.org")])
    assert received(server) + received(backup) == ["one@x.org", "two@x.org"]


def test_send_bulk_paces_itself_instead_of_failing(server: SMTPTestServer) -> None:
    with mailers(bulk=flux(server, max_per_second=4, limit_wait=0)):
        messages = [msg(f"r{number}@x.org") for number in range(10)]
        result = send_bulk(messages, using="bulk", progress=False)
    assert result["sent"] == 10
    assert result["failed"] == 0
    times = [m.received_at for m in server.messages]
    assert busiest_window(times, 0.9) <= 4


@pytest.mark.usefixtures("kept_tasks")
def test_background_delivery_requeues_a_rate_limited_message(
    server: SMTPTestServer,
) -> None:
    from hypermail_django.background import enqueue_messages

    with mailers(limited=flux(server, max_per_minute=1, limit_wait=0)):
        messages = [msg("one@x.org"), msg("two@x.org")]
        first, second = enqueue_messages(messages, using="limited")
        assert run_task(first)["sent"] == ["one@x.org"]
        summary = run_task(second)
    assert summary["sent"] == []
    assert summary["deferred"] == ["two@x.org"]
    assert summary["requeued_as"] is not None
    assert received(server) == ["one@x.org"]


# -- every process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on loopback (Debian's package), no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is missing: run scripts/_system.sh "
            "(apt-get install redis-server)"
        )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


HOUR_QUOTA = 120


def run_processes(
    server: SMTPTestServer, config: dict[str, Any]
) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    options = {
        "host": server.host,
        "port": server.port,
        "max_per_second": 50,
        "max_per_hour": HOUR_QUOTA,
        "limits_cache": "shared",
        "limit_wait": 4,
    }
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.limits_worker",
                json.dumps(
                    {**config, "options": options, "process": n, "per_thread": 6}
                ),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def assert_shared_limits_held(
    server: SMTPTestServer, results: list[dict[str, Any]]
) -> None:
    sent = sum(r["sent"] for r in results)
    limited = sum(r["rate_limited"] for r in results)
    assert [r["other"] for r in results] == [[], [], [], []]
    assert sent + limited == 4 * 8 * 6  # every send accounted for
    assert len(server.messages) == sent  # nothing lost, nothing extra
    assert sent <= HOUR_QUOTA  # the hour quota, across all processes
    assert sent > 50  # more than one second's worth went through
    times = [m.received_at for m in server.messages]
    # The limiter bounds when sends start; arrival adds each client's own
    # scheduling delay (up to a few hundred ms with 32 threads on a loaded
    # machine), so half-second windows are counted. Without the limiter the
    # 120 sends arrive within about half a second, far more than 50.
    assert busiest_window(times, 0.5) <= 50


def test_four_processes_share_the_limits_through_redis(
    server: SMTPTestServer, redis_url: str
) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"t{free_port()}",
        },
    }
    results = run_processes(server, {"caches": caches})
    assert_shared_limits_held(server, results)


def test_four_processes_share_the_limits_through_the_database_cache(
    server: SMTPTestServer, tmp_path: Path
) -> None:
    databases = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "cache.sqlite3"),
            "OPTIONS": {"timeout": 60},
        }
    }
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "hypermail_limits",
            "OPTIONS": {"MAX_ENTRIES": 100000},
        },
    }
    config = {"caches": caches, "databases": databases}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.limits_worker",
            json.dumps({**config, "setup": True}),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    results = run_processes(server, config)
    assert_shared_limits_held(server, results)


def test_a_bad_limit_is_reported_at_start_up(server: SMTPTestServer) -> None:
    from django.core import checks

    with mailers(limited=flux(server, max_per_hour=0)):
        messages = checks.run_checks(tags=["hypermail"])
    assert any(m.id == "hypermail.E003" and "max_per_hour" in m.msg for m in messages)


def test_limits_come_from_the_environment(server: SMTPTestServer) -> None:
    from hypermail_django.conf.env import options_from_env

    options = options_from_env(
        {
            "FLUXMAIL_HOST": server.host,
            "FLUXMAIL_PORT": str(server.port),
            "FLUXMAIL_MAX_PER_HOUR": "500",
            "FLUXMAIL_MAX_CONNECTIONS": "3",
            "FLUXMAIL_LIMIT_WAIT": "0.5",
        }
    )
    backend = FluxMailBackend(**options)
    assert backend.limits is not None
    assert backend.limits.rates == ((3600, 500),)
    assert backend.limits.max_connections == 3
    assert backend.limits.wait == 0.5


def test_router_health_is_shared_through_redis(
    server: SMTPTestServer, backup: SMTPTestServer, redis_url: str
) -> None:
    from django.core.cache import caches

    from hypermail_django.routing.order import reset_local_state

    shared = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "KEY_PREFIX": f"h{free_port()}",
    }
    local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    server.fail("CONNECT", "421 4.3.2 Busy")
    with (
        override_settings(CACHES={"default": local, "shared": shared}),
        mailers(
            router=router(
                "primary",
                "backup",
                failure_threshold=1,
                cooldown=60,
                limits_cache="shared",
            ),
            primary=flux(server),
            backup=flux(backup),
        ),
    ):
        get_mailer("router").send_messages([msg("one@x.org")])
        until = caches["shared"].get("hypermail:route:router:primary:until")
        reset_local_state()  # Nothing kept in this process...
        get_mailer("router").send_messages([msg("two@x.org")])
    assert until is not None  # ...the cool-down is in Redis,
    assert server.sessions == 1  # so the second send skipped the primary.
    assert received(backup) == ["one@x.org", "two@x.org"]


def test_a_limits_cache_too_small_for_the_slots_warns(server: SMTPTestServer) -> None:
    from django.core import checks

    def warned(max_entries: int | None) -> bool:
        options = {} if max_entries is None else {"MAX_ENTRIES": max_entries}
        cache = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": options,
        }
        with (
            override_settings(CACHES={"default": cache}),
            mailers(limited=flux(server, max_per_hour=500, limits_cache="default")),
        ):
            found = checks.run_checks(tags=["hypermail"])
        return any(message.id == "hypermail.W050" for message in found)

    assert warned(None)  # Django's default: 300 entries
    assert not warned(10_000)
