"""RoutingBackend against real SMTP test servers: failover, exact per-recipient
moving (nobody gets two copies), round robin and weighted spread, health and
cool-down, in sync, async and bulk sending, and bad configuration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.mail import EmailMessage
from django.test import override_settings

from hypermail_django import send_bulk
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.conf.mailers import get_mailer
from hypermail_django.exceptions import ConfigurationError, SendError
from hypermail_django.routing import order
from hypermail_django.routing.order import reset_local_state, smooth_sequence
from hypermail_django.testing import SMTPTestServer

from ..conftest import BACKEND, PASSWORD
from ..paths import ROOT

ROUTER = "hypermail_django.backends.RoutingBackend"


def flux(target: SMTPTestServer | int, **options: Any) -> dict[str, Any]:
    """A FluxMailBackend member aimed at a server (or at a closed port)."""
    port = target if isinstance(target, int) else target.port
    return {
        "BACKEND": BACKEND,
        "OPTIONS": {"host": "127.0.0.1", "port": port, "max_retries": 0, **options},
    }


def router(*members: str, **options: Any) -> dict[str, Any]:
    return {"BACKEND": ROUTER, "OPTIONS": {"mailers": list(members), **options}}


@contextlib.contextmanager
def mailers(**entries: Any) -> Iterator[None]:
    """MAILERS on Django 6.1, HYPERMAIL_MAILERS (the bridge) before."""
    setting = "MAILERS" if MAILERS_SUPPORTED else "HYPERMAIL_MAILERS"
    reset_local_state()
    with override_settings(**{setting: entries}):
        yield
    reset_local_state()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def msg(*to: str, subject: str = "Hi") -> EmailMessage:
    return EmailMessage(subject, "Body", "from@example.com", list(to or ["a@x.org"]))


def received(server: SMTPTestServer) -> list[str]:
    """Every recipient the server accepted a copy for, one entry per copy."""
    return sorted(rcpt for m in server.messages for rcpt in m.rcpt_tos)


@pytest.fixture
def backup() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as smtp:
        yield smtp


@pytest.fixture
def third() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as smtp:
        yield smtp


# -- failover ------------------------------------------------------------------


def test_a_down_primary_fails_over_to_the_backup(backup: SMTPTestServer) -> None:
    with mailers(
        router=router("primary", "backup"),
        primary=flux(closed_port()),
        backup=flux(backup),
    ):
        message = msg("a@x.org", "b@x.org")
        assert get_mailer("router").send_messages([message]) == 1
    assert received(backup) == ["a@x.org", "b@x.org"]
    assert message.hypermail_status.status == "sent"
    assert message.hypermail_status.mailer == "backup"


def test_a_stopped_primary_fails_over(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    primary = flux(server)
    server.stop()
    with mailers(
        router=router("primary", "backup"), primary=primary, backup=flux(backup)
    ):
        message = msg()
        get_mailer("router").send_messages([message])
    assert received(backup) == ["a@x.org"]


def test_a_healthy_primary_keeps_the_traffic(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        message = msg()
        get_mailer("router").send_messages([message])
    assert received(server) == ["a@x.org"]
    assert backup.messages == []
    assert message.hypermail_status.mailer == "primary"


@pytest.mark.parametrize(
    "verb", ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "DATA_END"]
)
def test_421_at_any_step_moves_the_message_once(
    server: SMTPTestServer, backup: SMTPTestServer, verb: str
) -> None:
    server.fail(verb, "421 4.3.2 Service shutting down")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        message = msg("a@x.org", "b@x.org")
        get_mailer("router").send_messages([message])
    assert sorted(received(server) + received(backup)) == ["a@x.org", "b@x.org"]
    if verb != "EHLO":  # After 421 to EHLO the client says HELO, and is served.
        assert server.messages == []
        assert received(backup) == ["a@x.org", "b@x.org"]
        assert message.hypermail_status.mailer == "backup"


def test_4xx_at_mail_moves_the_message(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("MAIL", "451 4.7.1 Greylisted")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        get_mailer("router").send_messages([msg()])
    assert received(backup) == ["a@x.org"]


def test_5xx_at_mail_is_not_moved(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("MAIL", "550 5.7.1 Sender not allowed")
    with (
        mailers(
            router=router("primary", "backup"),
            primary=flux(server),
            backup=flux(backup),
        ),
        pytest.raises(SendError) as raised,
    ):
        get_mailer("router").send_messages([msg()])
    assert raised.value.code == "sender_refused"
    assert backup.messages == []


def test_only_the_deferred_recipients_move(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("RCPT", "451 4.2.1 Mailbox busy", match="b@x.org")
    server.fail("RCPT", "550 5.1.1 No such user", match="c@x.org")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        message = msg("a@x.org", "b@x.org", "c@x.org")
        assert get_mailer("router").send_messages([message]) == 1
    assert received(server) == ["a@x.org"]
    assert received(backup) == ["b@x.org"]
    status = message.hypermail_status
    assert status.sent == ["a@x.org", "b@x.org"]
    assert status.refused == ["c@x.org"]
    assert status.mailer == "primary"


def test_a_5xx_refused_recipient_never_moves(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("RCPT", "550 5.1.1 No such user")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        message = msg()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            get_mailer("router").send_messages([message])
    assert backup.messages == []
    assert message.hypermail_status.refused == ["a@x.org"]


def test_an_uncertain_delivery_never_moves(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.hang("DATA_END")
    with mailers(
        router=router("primary", "backup"),
        primary=flux(server, timeout=5, data_timeout=0.3),
        backup=flux(backup),
    ):
        message = msg()
        with pytest.raises(SendError) as raised:
            get_mailer("router").send_messages([message])
    assert raised.value.code == "delivery_uncertain"
    assert backup.messages == []
    assert message.hypermail_status.uncertain == ["a@x.org"]


def test_a_lost_connection_before_data_moves(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.drop("RCPT")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        get_mailer("router").send_messages([msg()])
    assert received(backup) == ["a@x.org"]


def test_refused_credentials_move_to_the_backup(
    tls_server: SMTPTestServer, backup: SMTPTestServer, trust_ca: None
) -> None:
    with mailers(
        router=router("primary", "backup"),
        primary=flux(
            tls_server, use_tls=True, username="mailer", password="wrong-" + PASSWORD
        ),
        backup=flux(backup),
    ):
        message = msg()
        get_mailer("router").send_messages([message])
    assert tls_server.messages == []
    assert received(backup) == ["a@x.org"]
    assert PASSWORD not in repr(message.hypermail_status)


def test_when_every_member_fails_the_last_error_is_raised(
    server: SMTPTestServer,
) -> None:
    server.fail("CONNECT", "421 4.3.2 Busy")
    with mailers(
        router=router("primary", "backup"),
        primary=flux(closed_port()),
        backup=flux(server),
    ):
        message = msg()
        with pytest.raises(SendError) as raised:
            get_mailer("router").send_messages([message])
    assert raised.value.code == "connection_failed"
    assert message.hypermail_status.status == "failed"
    assert message.hypermail_status.mailer == "backup"


def test_a_member_that_is_not_ours_fails_over_on_a_refused_connection(
    backup: SMTPTestServer,
) -> None:
    django_smtp = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": closed_port(), "timeout": 5},
    }
    if not MAILERS_SUPPORTED:
        django_smtp["OPTIONS"].pop("timeout")
    with mailers(
        router=router("primary", "backup"), primary=django_smtp, backup=flux(backup)
    ):
        message = msg()
        get_mailer("router").send_messages([message])
    assert received(backup) == ["a@x.org"]
    assert message.hypermail_status.mailer == "backup"


def test_routers_nest(server: SMTPTestServer, backup: SMTPTestServer) -> None:
    with mailers(
        outer=router("inner", "backup"),
        inner=router("down", "primary"),
        down=flux(closed_port()),
        primary=flux(server),
        backup=flux(backup),
    ):
        message = msg()
        get_mailer("outer").send_messages([message])
    assert received(server) == ["a@x.org"]
    assert backup.messages == []
    assert message.hypermail_status.mailer == "primary"


def test_signals_carry_the_delivering_mailer(backup: SMTPTestServer) -> None:
    from hypermail_django import signals

    seen: list[str | None] = []

    def on_sent(sender: Any, status: Any, **kwargs: Any) -> None:
        seen.append(status.mailer)

    signals.post_send.connect(on_sent)
    try:
        with mailers(
            router=router("primary", "backup"),
            primary=flux(closed_port()),
            backup=flux(backup),
        ):
            get_mailer("router").send_messages([msg()])
    finally:
        signals.post_send.disconnect(on_sent)
    assert seen == ["backup"]


def test_a_plain_fluxmail_send_names_its_mailer(server: SMTPTestServer) -> None:
    with mailers(primary=flux(server)):
        message = msg()
        get_mailer("primary").send_messages([message])
    assert message.hypermail_status.mailer == "primary"


# -- async and bulk ------------------------------------------------------------


def test_async_failover_moves_exactly_the_deferred(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    from hypermail_django.transport.async_pool import aclose_async_pools

    server.fail("RCPT", "451 4.2.1 Mailbox busy", match="b@x.org")
    with mailers(
        router=router("down", "primary", "backup"),
        down=flux(closed_port()),
        primary=flux(server),
        backup=flux(backup),
    ):
        message = msg("a@x.org", "b@x.org")

        async def send() -> int:
            try:
                return await get_mailer("router").asend_messages([message])
            finally:
                await aclose_async_pools()

        assert asyncio.run(send()) == 1
    assert received(server) == ["a@x.org"]
    assert received(backup) == ["b@x.org"]
    assert message.hypermail_status.mailer == "primary"


def test_bulk_through_a_router_delivers_each_message_once(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("CONNECT", "421 4.3.2 Busy")
    with mailers(
        router=router("primary", "backup", failure_threshold=2, cooldown=60),
        primary=flux(server),
        backup=flux(backup),
    ):
        messages = [msg(f"r{i}@x.org") for i in range(12)]
        result = send_bulk(messages, using="router", progress=False)
    assert result["sent"] == 12
    assert received(backup) == sorted(f"r{i}@x.org" for i in range(12))
    # Two failures, then the primary is skipped for the rest of the cool-down.
    assert server.sessions == 2


# -- strategies ----------------------------------------------------------------


def test_round_robin_spreads_evenly(
    server: SMTPTestServer, backup: SMTPTestServer, third: SMTPTestServer
) -> None:
    with mailers(
        router=router("one", "two", "three", strategy="round_robin"),
        one=flux(server),
        two=flux(backup),
        three=flux(third),
    ):
        for index in range(9):
            get_mailer("router").send_messages([msg(f"r{index}@x.org")])
    assert [len(s.messages) for s in (server, backup, third)] == [3, 3, 3]


def test_weighted_spreads_by_weight_in_every_cycle(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router(
            "big", "small", strategy="weighted", weights={"big": 3, "small": 1}
        ),
        big=flux(server),
        small=flux(backup),
    ):
        chosen = []
        for index in range(12):
            message = msg(f"r{index}@x.org")
            get_mailer("router").send_messages([message])
            chosen.append(message.hypermail_status.mailer)
    for start in range(0, 12, 4):
        cycle = chosen[start : start + 4]
        assert abs(cycle.count("big") - 3) <= 1
        assert abs(cycle.count("small") - 1) <= 1
    assert chosen.count("big") == 9
    assert chosen.count("small") == 3


def test_smooth_sequence_interleaves() -> None:
    assert smooth_sequence({"a": 3, "b": 1}) == ["a", "a", "b", "a"]
    assert smooth_sequence({"a": 1, "b": 1, "c": 1}) == ["a", "b", "c"]


def test_round_robin_skips_a_down_member_without_losing_mail(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router("one", "down", "two", strategy="round_robin"),
        one=flux(server),
        down=flux(closed_port()),
        two=flux(backup),
    ):
        for index in range(6):
            get_mailer("router").send_messages([msg(f"r{index}@x.org")])
    assert len(server.messages) + len(backup.messages) == 6
    everyone = received(server) + received(backup)
    assert sorted(everyone) == sorted(f"r{i}@x.org" for i in range(6))


# -- health --------------------------------------------------------------------


def test_cooldown_skips_a_failing_member_then_one_probe_brings_it_back(
    server: SMTPTestServer, backup: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(order, "clock", lambda: now[0])
    server.fail("CONNECT", "421 4.3.2 Busy")
    with mailers(
        router=router("primary", "backup", failure_threshold=2, cooldown=0.5),
        primary=flux(server),
        backup=flux(backup),
    ):
        for index in range(4):
            get_mailer("router").send_messages([msg(f"r{index}@x.org")])
        assert server.sessions == 2  # skipped after two failures in a row
        now[0] += 0.4
        get_mailer("router").send_messages([msg("still@x.org")])
        assert server.sessions == 2  # still cooling down
        server.clear_faults()
        now[0] += 0.2
        message = msg("probe@x.org")
        get_mailer("router").send_messages([message])
        assert message.hypermail_status.mailer == "primary"  # the probe passed
        message = msg("back@x.org")
        get_mailer("router").send_messages([message])
        assert message.hypermail_status.mailer == "primary"
    assert received(server) == ["back@x.org", "probe@x.org"]
    assert len(backup.messages) == 5


def test_a_failed_probe_cools_down_again(
    server: SMTPTestServer, backup: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(order, "clock", lambda: now[0])
    server.fail("CONNECT", "421 4.3.2 Busy")
    with mailers(
        router=router("primary", "backup", failure_threshold=1, cooldown=0.5),
        primary=flux(server),
        backup=flux(backup),
    ):
        get_mailer("router").send_messages([msg()])
        now[0] += 0.6
        get_mailer("router").send_messages([msg()])  # the probe fails
        get_mailer("router").send_messages([msg()])
    assert server.sessions == 2
    assert len(backup.messages) == 3


# -- bad configuration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"mailers": []}, "'mailers'"),
        ({"mailers": ["a", "a"]}, "'mailers'"),
        ({"mailers": ["a"], "strategy": "random"}, "'strategy'"),
        ({"mailers": ["a"], "strategy": "weighted"}, "'weights'"),
        ({"mailers": ["a"], "weights": {"a": 0}}, "weights['a']"),
        ({"mailers": ["a"], "weights": {"a": 1.5}}, "weights['a']"),
        ({"mailers": ["a"], "weights": {"b": 1}}, "'weights'"),
        ({"mailers": ["a"], "failure_threshold": 0}, "'failure_threshold'"),
        ({"mailers": ["a"], "cooldown": -1}, "'cooldown'"),
        ({"mailers": ["a"], "limits_cache": "nope"}, "'limits_cache'"),
    ],
)
def test_bad_options_are_refused_on_use(
    server: SMTPTestServer, options: dict[str, Any], fragment: str
) -> None:
    entries = {"router": {"BACKEND": ROUTER, "OPTIONS": options}, "a": flux(server)}
    with mailers(**entries), pytest.raises(ConfigurationError) as raised:
        get_mailer("router")
    assert raised.value.code == "invalid_routing"
    assert fragment in str(raised.value)


def test_an_unknown_member_is_refused_on_use(server: SMTPTestServer) -> None:
    entries = {"router": router("a", "ghost"), "a": flux(server)}
    with mailers(**entries), pytest.raises(ConfigurationError) as raised:
        get_mailer("router").send_messages([msg()])
    assert raised.value.code == "unknown_mailer"
    assert server.messages == []


@pytest.mark.parametrize("through_another", [False, True])
def test_a_router_that_reaches_itself_is_refused(
    server: SMTPTestServer, through_another: bool
) -> None:
    entries: dict[str, Any] = {"a": flux(server)}
    if through_another:
        entries["router"] = router("a", "other")
        entries["other"] = router("router")
    else:
        entries["router"] = router("a", "router")
    with mailers(**entries), pytest.raises(ConfigurationError) as raised:
        get_mailer("router").send_messages([msg()])
    assert raised.value.code == "invalid_routing"
    assert "routes back to itself" in str(raised.value)
    assert server.messages == []


def check_ids() -> list[str]:
    from django.core import checks

    return [message.id or "" for message in checks.run_checks(tags=["hypermail"])]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"router": router("a", strategy="random")}, "hypermail.E050"),
        ({"router": router("a", weights={"a": -1})}, "hypermail.E050"),
        ({"router": router("a", "ghost")}, "hypermail.E051"),
        ({"router": router("a", "router")}, "hypermail.E052"),
        ({"router": router("a", "other"), "other": router("router")}, "hypermail.E052"),
    ],
)
def test_bad_routing_is_reported_at_start_up(
    server: SMTPTestServer, entries: dict[str, Any], expected: str
) -> None:
    with mailers(a=flux(server), **entries):
        assert expected in check_ids()


def test_a_good_router_passes_the_checks(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    with mailers(
        router=router("a", "b", strategy="weighted", weights={"a": 2, "b": 1}),
        a=flux(server),
        b=flux(backup),
    ):
        assert not [i for i in check_ids() if i.startswith("hypermail.E05")]


def test_the_example_runs() -> None:
    root = ROOT
    result = subprocess.run(
        [sys.executable, "examples/routing.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert "delivered by: backup" in result.stdout
    assert "primary copies: [], backup copies: ['alice@example.com']" in result.stdout
    assert "backup copies: ['alice@example.com', 'bob@example.com']" in result.stdout
    assert "through primary: 3, through other: 3" in result.stdout


# -- background delivery -------------------------------------------------------


@pytest.fixture
def kept_tasks() -> Iterator[Any]:
    from hypermail_django.background.framework import MODULE, task_backends

    dummy = f"{MODULE}.backends.dummy.DummyBackend"
    with override_settings(TASKS={"default": {"BACKEND": dummy}}):
        yield task_backends["default"]


def run_task(result: Any) -> Any:
    from hypermail_django.background.framework import TaskContext

    return result.task.call(
        TaskContext(task_result=result), *result.args, **result.kwargs
    )


def test_background_delivery_routes_in_the_worker(
    server: SMTPTestServer, backup: SMTPTestServer, kept_tasks: Any
) -> None:
    from hypermail_django.background import enqueue_messages

    server.fail("RCPT", "451 4.2.1 Mailbox busy", match="b@x.org")
    with mailers(
        router=router("down", "primary", "backup"),
        down=flux(closed_port()),
        primary=flux(server),
        backup=flux(backup),
    ):
        (result,) = enqueue_messages([msg("a@x.org", "b@x.org")], using="router")
        summary = run_task(result)
    assert summary["sent"] == ["a@x.org", "b@x.org"]
    assert summary["requeued_as"] is None
    assert received(server) == ["a@x.org"]
    assert received(backup) == ["b@x.org"]


def test_background_delivery_requeues_when_every_member_is_down(
    kept_tasks: Any, backup: SMTPTestServer
) -> None:
    from hypermail_django.background import enqueue_messages

    with mailers(
        router=router("one", "two"),
        one=flux(closed_port()),
        two=flux(closed_port()),
    ):
        (result,) = enqueue_messages([msg("a@x.org")], using="router")
        summary = run_task(result)
    assert summary["sent"] == []
    assert summary["deferred"] == ["a@x.org"]
    assert summary["requeued_as"] is not None


# -- health checks ---------------------------------------------------------------


def test_test_connection_accepts_the_bridge_aliases(server: SMTPTestServer) -> None:
    from hypermail_django import test_connection

    with mailers(primary=flux(server)):
        report = test_connection("primary")
    assert report["ok"] is True
    assert report["port"] == server.port


def test_test_connection_of_a_router_checks_every_member(
    server: SMTPTestServer,
) -> None:
    from hypermail_django import test_connection

    with mailers(
        router=router("down", "primary"), primary=flux(server), down=flux(closed_port())
    ):
        report = test_connection("router")
    assert report["ok"] is True
    members = {m["alias"]: m["status"] for m in report["members"]}
    assert members == {"down": "unhealthy", "primary": "healthy"}
    assert server.messages == []


def test_test_connection_of_a_router_with_every_member_down_raises() -> None:
    from hypermail_django.health import ProbeFailed, test_connection

    with (
        mailers(
            router=router("one", "two"),
            one=flux(closed_port()),
            two=flux(closed_port()),
        ),
        pytest.raises(ProbeFailed) as caught,
    ):
        test_connection("router")
    assert caught.value.code == "connection_failed"
    assert caught.value.step == "connect"
    assert [m["alias"] for m in caught.value.members] == ["one", "two"]
    assert {m["status"] for m in caught.value.members} == {"unhealthy"}


def test_test_connection_of_a_router_without_a_checkable_member() -> None:
    from hypermail_django import test_connection

    memory = {"BACKEND": "hypermail_django.backends.MemoryBackend"}
    with (
        mailers(router=router("mem"), mem=memory),
        pytest.raises(ConfigurationError) as caught,
    ):
        test_connection("router")
    assert caught.value.code == "invalid_config"
    assert "has no member that can be checked: mem:" in caught.value.message


def mailcheck(*args: str) -> tuple[int, list[dict[str, Any]]]:
    import io
    import json

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    code = 0
    try:
        call_command("mailcheck", *args, "--json", stdout=out)
    except CommandError as error:
        code = error.returncode
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_mailcheck_all_reports_each_member_and_the_router(
    server: SMTPTestServer,
) -> None:
    with mailers(
        router=router("primary", "down"), primary=flux(server), down=flux(closed_port())
    ):
        code, reports = mailcheck("--all")
    by_alias = {report["alias"]: report for report in reports}
    assert by_alias["primary"]["status"] == "healthy"
    assert by_alias["down"]["status"] == "unhealthy"
    assert by_alias["router"]["status"] == "healthy"
    members = {m["alias"]: m["status"] for m in by_alias["router"]["members"]}
    assert members == {"primary": "healthy", "down": "unhealthy"}
    assert code == 1  # one mailer (down) is unhealthy


def test_mailcheck_of_a_router_with_every_member_down_is_unhealthy() -> None:
    with mailers(
        router=router("one", "two"), one=flux(closed_port()), two=flux(closed_port())
    ):
        code, reports = mailcheck("--using", "router")
    assert code == 1
    assert reports[0]["status"] == "unhealthy"
    assert reports[0]["ok"] is False


def test_a_passing_mailcheck_probe_ends_a_cooldown(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.fail("CONNECT", "421 4.3.2 Busy", times=1)
    with mailers(
        router=router("primary", "backup", failure_threshold=1, cooldown=3600),
        primary=flux(server),
        backup=flux(backup),
    ):
        get_mailer("router").send_messages([msg("first@x.org")])
        assert received(backup) == ["first@x.org"]
        mailcheck("--using", "router")
        message = msg("again@x.org")
        get_mailer("router").send_messages([message])
    assert message.hypermail_status.mailer == "primary"


def test_mailcheck_human_output_lists_the_members(server: SMTPTestServer) -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    with mailers(router=router("primary"), primary=flux(server)):
        call_command("mailcheck", "--using", "router", stdout=out)
    assert "routes to" in out.getvalue()
    assert "primary      healthy" in out.getvalue()


def test_a_slow_primary_times_out_and_fails_over(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    server.delay("CONNECT", 2)  # No greeting within the primary's timeout.
    with mailers(
        router=router("primary", "backup"),
        primary=flux(server, timeout=0.3),
        backup=flux(backup),
    ):
        message = msg()
        get_mailer("router").send_messages([message])
    assert received(backup) == ["a@x.org"]
    assert message.hypermail_status.mailer == "backup"


def test_shared_state_in_a_django_cache_keeps_one_turn(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    from django.core.cache import caches

    cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(CACHES={"default": cache, "routing": cache}):
        caches["routing"].clear()
        with mailers(
            router=router("one", "two", strategy="round_robin", limits_cache="routing"),
            one=flux(server),
            two=flux(backup),
        ):
            # Two router instances (as two requests build them) share the turn.
            for number in range(6):
                get_mailer("router").send_messages([msg(f"r{number}@x.org")])
        assert caches["routing"].get("hypermail:route:router:turn") == 6
    assert [len(server.messages), len(backup.messages)] == [3, 3]


def test_async_round_robin_and_failover(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    from hypermail_django import asend_mail
    from hypermail_django.transport.async_pool import aclose_async_pools

    with mailers(
        router=router("one", "down", "two", strategy="round_robin"),
        one=flux(server),
        down=flux(closed_port()),
        two=flux(backup),
    ):

        async def send() -> None:
            try:
                for number in range(6):
                    await asend_mail(
                        "Hi", "Body", "f@x.org", [f"r{number}@x.org"], using="router"
                    )
            finally:
                await aclose_async_pools()

        asyncio.run(send())
    everyone = received(server) + received(backup)
    assert sorted(everyone) == sorted(f"r{number}@x.org" for number in range(6))
    assert len(server.messages) >= 2
    assert len(backup.messages) >= 2


def test_async_bulk_through_a_router(
    server: SMTPTestServer, backup: SMTPTestServer
) -> None:
    from hypermail_django import asend_bulk
    from hypermail_django.transport.async_pool import aclose_async_pools

    server.fail("CONNECT", "421 4.3.2 Busy")
    with mailers(
        router=router("primary", "backup"), primary=flux(server), backup=flux(backup)
    ):
        messages = [msg(f"r{number}@x.org") for number in range(5)]

        async def send() -> Any:
            try:
                return await asend_bulk(messages, using="router", progress=False)
            finally:
                await aclose_async_pools()

        result = asyncio.run(send())
    assert result["sent"] == 5
    assert received(backup) == sorted(f"r{number}@x.org" for number in range(5))
    assert server.messages == []


def test_each_member_is_probed_by_the_send_that_tries_it(
    server: SMTPTestServer, backup: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(order, "clock", lambda: now[0])
    server.fail("CONNECT", "421 4.3.2 Busy", times=1)
    backup.fail("CONNECT", "421 4.3.2 Busy", times=1)
    with mailers(
        router=router("primary", "backup", failure_threshold=1, cooldown=0.5),
        primary=flux(server),
        backup=flux(backup),
    ):
        with pytest.raises(SendError):
            get_mailer("router").send_messages([msg("lost@x.org")])
        now[0] += 0.6  # Both past their cool-down.
        first = msg("first@x.org")
        get_mailer("router").send_messages([first])  # The primary's probe.
        server.fail("MAIL", "451 4.3.0 Queue full", times=1)
        second = msg("second@x.org")
        get_mailer("router").send_messages([second])  # The backup's probe.
    assert first.hypermail_status.mailer == "primary"
    assert second.hypermail_status.mailer == "backup"
    assert received(backup) == ["second@x.org"]
