"""The JSON API: every status, enumeration, rate limits, token reuse, CSRF, logs.

Requests go through Django's test client; the email goes through the real
memory backend, from the background thread (or a Django Tasks task run as a
worker would run it). Tests are transactional, because the thread reads the
user table over its own database connection.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from hypermail_django.auth.delivery import (
    TASK_PATH,
    delivery_mode,
    wait_for_deliveries,
)
from hypermail_django.auth.tokens import generate_reset_token
from hypermail_django.background.framework import MODULE, task_backends
from hypermail_django.testing.outbox import get_outbox

from ..auth_urls import reset_flow
from ..conftest import mailer_for

pytestmark = pytest.mark.django_db(transaction=True)

REQUEST = "/api/password-reset/"
VALIDATE = "/api/password-reset/validate/"
CONFIRM = "/api/password-reset/confirm/"
SPA = "https://app.example.com/reset/{uid}/{token}/"
DUMMY = f"{MODULE}.backends.dummy.DummyBackend"
IMMEDIATE = f"{MODULE}.backends.immediate.ImmediateBackend"
LINK = re.compile(r"https://app\.example\.com/reset/([^/\s]+)/([^/\s]+)/")
NEW = "correct-Horse-battery-9"


@pytest.fixture(autouse=True)
def flow() -> Iterator[None]:
    with reset_flow(HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE=SPA):
        yield


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", "old-Pa55word!"
    )


@pytest.fixture
def tasks() -> Iterator[Any]:
    """A task backend that keeps tasks; ``run(result)`` plays the worker."""
    with override_settings(TASKS={"default": {"BACKEND": DUMMY}}):
        backend = task_backends["default"]
        backend.clear()
        yield backend


def run(result: Any) -> Any:
    return result.task.call(*result.args, **result.kwargs)


def post(client: Client, url: str, data: Any, **extra: Any) -> Any:
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(url, body, content_type="application/json", **extra)


def sent_links() -> list[tuple[str, str]]:
    assert wait_for_deliveries()
    return [m for e in get_outbox() for m in set(LINK.findall(e.body))]


def reset_pair(client: Client, email: str = "alice@example.com") -> dict[str, str]:
    assert post(client, REQUEST, {"email": email}).status_code == 202
    (pair,) = sent_links()
    return {"uid": pair[0], "token": pair[1]}


# -- request: one answer for everyone ------------------------------------------


#: Headers stamped with the time of the response: two answers a second apart
#: differ there whoever asked, so they tell nothing about the account.
_TIME_STAMPED = {"expires", "date", "last-modified"}


def _answer(response: Any) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    """Everything a caller sees: status, body, headers (the names of the
    time-stamped ones, not their values)."""
    headers = tuple(
        (name, "<time>" if name.lower() in _TIME_STAMPED else value)
        for name, value in response.headers.items()
    )
    return response.status_code, response.content, headers


def test_known_and_unknown_addresses_get_identical_answers(client, user):
    known = post(client, REQUEST, {"email": "alice@example.com"})
    unknown = post(client, REQUEST, {"email": "nobody@example.com"})
    assert known.status_code == 202
    assert _answer(known) == _answer(unknown)
    assert known.json() == {
        "detail": "If an account with this email address exists, we have sent "
        "it an email with a link to reset its password."
    }
    assert "no-cache" in known.headers["Cache-Control"]
    assert not known.cookies  # no session, no CSRF cookie
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    assert entry.to == ["alice@example.com"]


@pytest.mark.parametrize("kind", ["inactive", "unusable password"])
def test_accounts_that_may_not_reset_get_the_same_answer_and_no_email(
    client, user, kind
):
    reference = post(client, REQUEST, {"email": "nobody@example.com"})
    if kind == "inactive":
        user.is_active = False
    else:
        user.set_unusable_password()
    user.save()
    response = post(client, REQUEST, {"email": "alice@example.com"})
    assert _answer(response) == _answer(reference)
    assert sent_links() == []


def test_the_request_looks_nobody_up(client, user):
    """No query at all in the request, for a known or an unknown address:
    the lookup happens in the background job."""
    for email in ("alice@example.com", "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            assert post(client, REQUEST, {"email": email}).status_code == 202
        assert queries.captured_queries == []
    assert len(sent_links()) == 1


def test_known_and_unknown_do_the_same_work_in_the_request(client, user, tasks):
    """With a task backend, each request enqueues exactly one task of the same
    shape; whether an email goes out is only decided when the task runs."""
    with CaptureQueriesContext(connection) as queries:
        post(client, REQUEST, {"email": "alice@example.com"})
        post(client, REQUEST, {"email": "nobody@example.com"})
    assert queries.captured_queries == []
    known, unknown = tasks.results
    assert known.task.module_path == unknown.task.module_path == TASK_PATH
    assert known.kwargs["payload"].keys() == unknown.kwargs["payload"].keys()
    assert known.kwargs["payload"]["email"] == "alice@example.com"
    assert unknown.kwargs["payload"]["email"] == "nobody@example.com"
    assert get_outbox() == []  # nothing sent in the request
    assert run(known) == {"sent": 1}
    assert run(unknown) == {"sent": 0}
    (entry,) = get_outbox()
    assert entry.to == ["alice@example.com"]


def test_address_matching_is_case_insensitive_and_mails_the_stored_address(
    client, user
):
    post(client, REQUEST, {"email": "ALICE@Example.COM"})
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    assert entry.to == ["alice@example.com"]


# -- delivery: task or thread --------------------------------------------------


def test_auto_uses_a_thread_unless_tasks_run_elsewhere():
    with override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}}):
        assert delivery_mode() == "thread"
    with override_settings(TASKS={"default": {"BACKEND": DUMMY}}):
        assert delivery_mode() == "tasks"
    with override_settings(
        TASKS={"default": {"BACKEND": DUMMY}},
        HYPERMAIL_PASSWORD_RESET_DELIVERY="thread",
    ):
        assert delivery_mode() == "thread"


def test_forced_tasks_run_on_the_configured_backend_and_queue(client, user):
    tasks = {"default": {"BACKEND": DUMMY}, "mail": {"BACKEND": IMMEDIATE}}
    with override_settings(
        TASKS=tasks,
        HYPERMAIL_PASSWORD_RESET_DELIVERY="tasks",
        HYPERMAIL_BACKGROUND_BACKEND="mail",
    ):
        post(client, REQUEST, {"email": "alice@example.com"})
    # The immediate backend ran it at once; the default one kept nothing.
    assert len(get_outbox()) == 1
    with override_settings(TASKS=tasks):
        assert task_backends["default"].results == []


def test_a_broken_task_backend_fails_in_the_request_for_every_address(client, user):
    from hypermail_django.exceptions import ConfigurationError

    with override_settings(
        TASKS={"default": {"BACKEND": DUMMY}}, HYPERMAIL_BACKGROUND_BACKEND="missing"
    ):
        for email in ("alice@example.com", "nobody@example.com"):
            with pytest.raises(ConfigurationError, match="missing"):
                post(client, REQUEST, {"email": email})


def test_the_job_waits_for_the_transaction_to_commit(client, user, tasks):
    with transaction.atomic():
        post(client, REQUEST, {"email": "alice@example.com"})
        assert tasks.results == []
    assert len(tasks.results) == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        post(client, REQUEST, {"email": "alice@example.com"})
        raise RuntimeError("rolled back")
    assert len(tasks.results) == 1


def test_a_failing_send_is_logged_in_the_thread_not_raised(client, user, caplog):
    # Port 9 (discard): nothing listens, so the connection is refused.
    with (
        mailer_for(host="127.0.0.1", port=9, max_retries=0),
        caplog.at_level(logging.ERROR, logger="hypermail_django.auth"),
    ):
        response = post(client, REQUEST, {"email": "alice@example.com"})
        assert response.status_code == 202
        assert wait_for_deliveries()
    (record,) = [r for r in caplog.records if r.name == "hypermail_django.auth"]
    assert record.getMessage() == "Password reset email could not be sent."
    assert record.exc_info is not None
    assert get_outbox() == []


# -- rate limits ---------------------------------------------------------------


@override_settings(HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_EMAIL="2/h")
def test_per_address_limit_holds_and_looks_like_success(client, user):
    answers = {
        _answer(post(client, REQUEST, {"email": email}))
        for email in ["alice@example.com", "Alice@example.com", "ALICE@EXAMPLE.COM"]
    }
    assert len(answers) == 1  # the third, over the limit, answered the same
    assert len(sent_links()) == 2
    # Another address is not affected.
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "x-Pa55!")
    post(client, REQUEST, {"email": bob.email})
    assert len(sent_links()) == 3


@override_settings(HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP="3/h")
def test_per_ip_limit_holds_and_looks_like_success(client, user):
    reference = _answer(post(client, REQUEST, {"email": "a@example.com"}))
    for email in ("b@example.com", "c@example.com"):
        assert _answer(post(client, REQUEST, {"email": email})) == reference
    # The 4th request from this IP, for a real account: same answer, no email.
    assert _answer(post(client, REQUEST, {"email": user.email})) == reference
    assert sent_links() == []
    # Another client IP still gets through.
    post(client, REQUEST, {"email": user.email}, REMOTE_ADDR="203.0.113.9")
    assert len(sent_links()) == 1


@override_settings(HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP="3/h")
def test_per_ip_limit_counts_an_ipv6_client_by_its_64(client, user):
    # Rotating addresses within one /64 (one host's usual allocation) are one
    # client; another /64 is another client.
    for n in range(1, 4):
        post(client, REQUEST, {"email": "a@example.com"}, REMOTE_ADDR=f"2001:db8::{n}")
    post(client, REQUEST, {"email": user.email}, REMOTE_ADDR="2001:db8::ffff:1234")
    assert sent_links() == []
    post(client, REQUEST, {"email": user.email}, REMOTE_ADDR="2001:db8:0:1::1")
    assert len(sent_links()) == 1


@override_settings(
    HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP="1/h",
    HYPERMAIL_PASSWORD_RESET_IPV6_PREFIX=128,
)
def test_the_ipv6_prefix_is_configurable(client, user):
    post(client, REQUEST, {"email": "a@example.com"}, REMOTE_ADDR="2001:db8::1")
    post(client, REQUEST, {"email": user.email}, REMOTE_ADDR="2001:db8::2")
    assert len(sent_links()) == 1


@pytest.mark.parametrize(
    ("ip", "prefix", "counted"),
    [
        ("203.0.113.9", 64, "203.0.113.9"),
        ("2001:db8::1", 64, "2001:db8::/64"),
        ("2001:DB8:0:0:ffff::1", 48, "2001:db8::/48"),
        ("::ffff:203.0.113.9", 64, "203.0.113.9"),
        ("unknown", 64, "unknown"),
    ],
)
def test_counted_client(ip, prefix, counted):
    from hypermail_django.auth.ratelimit import counted_client

    assert counted_client(ip, prefix) == counted


@pytest.mark.parametrize("value", [0, 129, "x", True])
def test_a_bad_ipv6_prefix_is_a_configuration_error(value):
    from hypermail_django.conf.password_reset import get_settings
    from hypermail_django.exceptions import ConfigurationError

    with (
        override_settings(HYPERMAIL_PASSWORD_RESET_IPV6_PREFIX=value),
        pytest.raises(ConfigurationError, match="IPV6_PREFIX"),
    ):
        get_settings()


def client_ip_from_header(request: Any) -> str:
    return request.headers["X-Client-IP"]


@override_settings(
    HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP="1/h",
    HYPERMAIL_PASSWORD_RESET_CLIENT_IP=f"{__name__}.client_ip_from_header",
)
def test_client_ip_can_come_from_a_proxy_header(client, user):
    post(client, REQUEST, {"email": "x@example.com"}, HTTP_X_CLIENT_IP="198.51.100.1")
    post(client, REQUEST, {"email": user.email}, HTTP_X_CLIENT_IP="198.51.100.1")
    assert sent_links() == []
    post(client, REQUEST, {"email": user.email}, HTTP_X_CLIENT_IP="198.51.100.2")
    assert len(sent_links()) == 1


@override_settings(
    HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_EMAIL=None,
    HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP=None,
)
def test_limits_can_be_turned_off(client, user):
    for _ in range(25):
        post(client, REQUEST, {"email": user.email})
    assert len(sent_links()) == 25


def test_the_cache_holds_no_addresses(client, user):
    from django.core.cache import caches

    post(client, REQUEST, {"email": user.email})
    keys = list(caches["default"]._cache)  # LocMemCache's own store
    assert keys and not any("alice" in key for key in keys)


def test_the_limits_live_in_the_configured_cache(client, user):
    caches_setting = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "limits": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "limits",
        },
    }
    with override_settings(
        CACHES=caches_setting,
        HYPERMAIL_PASSWORD_RESET_CACHE="limits",
        HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_EMAIL="1/h",
    ):
        from django.core.cache import caches

        caches["limits"].clear()
        post(client, REQUEST, {"email": user.email})
        post(client, REQUEST, {"email": user.email})
        assert len(sent_links()) == 1
        caches["limits"].clear()  # the window is gone: allowed again
        post(client, REQUEST, {"email": user.email})
        assert len(sent_links()) == 2


# -- validate ------------------------------------------------------------------


def test_validate_accepts_a_fresh_pair(client, user):
    pair = reset_pair(client)
    response = post(client, VALIDATE, pair)
    assert response.status_code == 200
    assert response.json() == {"valid": True}


@pytest.mark.parametrize(
    "change",
    [
        lambda pair: {**pair, "token": pair["token"][:-2] + "xx"},
        lambda pair: {**pair, "uid": "OTk5"},  # pk 999
        lambda pair: {**pair, "uid": "%%%"},
    ],
)
def test_validate_refuses_a_bad_pair(client, user, change):
    response = post(client, VALIDATE, change(reset_pair(client)))
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "token": [
                {
                    "message": "The password reset link is invalid or has "
                    "expired. Please request a new one.",
                    "code": "invalid_token",
                }
            ]
        }
    }


def test_validate_does_not_use_up_the_token(client, user):
    pair = reset_pair(client)
    assert post(client, VALIDATE, pair).status_code == 200
    assert post(client, VALIDATE, pair).status_code == 200
    assert post(client, CONFIRM, {**pair, "new_password": NEW}).status_code == 200


# -- confirm -------------------------------------------------------------------


def test_confirm_sets_the_password(client, user):
    pair = reset_pair(client)
    response = post(client, CONFIRM, {**pair, "new_password": NEW})
    assert response.status_code == 200
    assert response.json() == {"detail": "Your password has been set."}
    assert authenticate(username="alice", password=NEW) == user
    assert authenticate(username="alice", password="old-Pa55word!") is None


def test_a_token_works_once(client, user):
    pair = reset_pair(client)
    assert post(client, CONFIRM, {**pair, "new_password": NEW}).status_code == 200
    again = post(client, CONFIRM, {**pair, "new_password": "another-Pa55word-7"})
    assert again.status_code == 400
    assert again.json()["errors"]["token"][0]["code"] == "invalid_token"
    assert post(client, VALIDATE, pair).status_code == 400
    assert authenticate(username="alice", password=NEW) == user


def test_logging_in_ends_an_unused_token(client, user):
    pair = reset_pair(client)
    assert Client().login(username="alice", password="old-Pa55word!")
    assert post(client, CONFIRM, {**pair, "new_password": NEW}).status_code == 400


def test_a_newer_token_does_not_end_an_older_one_until_used(client, user):
    first = reset_pair(client)
    second = generate_reset_token(user)
    assert post(client, VALIDATE, first).status_code == 200
    assert post(client, CONFIRM, {**first, "new_password": NEW}).status_code == 200
    second_pair = {"uid": second.uid, "token": second.token}
    assert post(client, VALIDATE, second_pair).status_code == 400


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("short", {"password_too_short"}),
        ("password123", {"password_too_common"}),
        ("83920174655", {"password_entirely_numeric"}),
        ("alice-example", {"password_too_similar"}),
    ],
)
def test_confirm_reports_the_password_validators(client, user, password, codes):
    pair = reset_pair(client)
    response = post(client, CONFIRM, {**pair, "new_password": password})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"new_password"}
    assert {e["code"] for e in errors["new_password"]} >= codes
    assert all(e["message"] for e in errors["new_password"])
    # The token still works: a refused password uses nothing up.
    assert post(client, VALIDATE, pair).status_code == 200


def test_confirm_with_a_bad_token_does_not_check_the_password(client, user):
    pair = reset_pair(client)
    response = post(client, CONFIRM, {**pair, "token": "x-y", "new_password": "1"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"token"}


# -- bad requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "field", "code"),
    [
        (REQUEST, {}, "email", "required"),
        (REQUEST, {"email": ""}, "email", "required"),
        (REQUEST, {"email": "not-an-address"}, "email", "invalid"),
        (REQUEST, {"email": ["a@example.com"]}, "email", "invalid"),
        (VALIDATE, {"uid": "MQ"}, "token", "required"),
        (VALIDATE, {"token": "x"}, "uid", "required"),
        (CONFIRM, {"uid": "MQ", "token": "x"}, "new_password", "required"),
        (CONFIRM, {"uid": 1, "token": "x", "new_password": "y"}, "uid", "invalid"),
    ],
)
def test_missing_or_bad_fields_are_400_with_field_errors(
    client, user, url, body, field, code
):
    response = post(client, url, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert code in {e["code"] for e in errors[field]}
    assert all(e["message"] for e in errors[field])
    assert sent_links() == []


def test_a_value_that_is_not_a_string_is_named(client, user):
    response = post(client, REQUEST, {"email": {"$ne": None}})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {"email": [{"message": "Must be a string.", "code": "invalid"}]}
    }
    assert sent_links() == []


@pytest.mark.parametrize("url", [REQUEST, VALIDATE, CONFIRM])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        (" ", "not valid JSON"),  # (the test client drops an empty body)
        (b"\xff\xfe{", "not valid JSON"),
        ('["a@example.com"]', "must be a JSON object"),
        ('"a@example.com"', "must be a JSON object"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_json_is_a_clear_400(client, url, body, message):
    response = post(client, url, body)
    assert response.status_code == 400
    (error,) = response.json()["errors"]["__all__"]
    assert error["code"] == "invalid_json"
    assert message in error["message"]


@pytest.mark.parametrize("url", [REQUEST, VALIDATE, CONFIRM])
def test_other_content_types_are_415(client, url):
    response = client.post(url, {"email": "alice@example.com"})  # form-encoded
    assert response.status_code == 415
    (error,) = response.json()["errors"]["__all__"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


@pytest.mark.parametrize("url", [REQUEST, VALIDATE, CONFIRM])
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options", "head"])
def test_other_methods_are_405(client, url, method):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


# -- CSRF ----------------------------------------------------------------------


def test_api_is_csrf_exempt_and_json_only(user):
    """No CSRF token is needed (the API uses no cookies), and a cross-site form
    -- which cannot send application/json -- is turned away with 415."""
    browser = Client(enforce_csrf_checks=True)
    assert post(browser, REQUEST, {"email": user.email}).status_code == 202
    (pair,) = sent_links()
    uid, token = pair
    assert post(browser, VALIDATE, {"uid": uid, "token": token}).status_code == 200
    form = browser.post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW})
    assert form.status_code == 415
    confirmed = post(
        browser, CONFIRM, {"uid": uid, "token": token, "new_password": NEW}
    )
    assert confirmed.status_code == 200


# -- links ---------------------------------------------------------------------


def test_link_defaults_to_the_html_confirm_view_on_the_validated_host(user):
    client = Client(HTTP_HOST="www.example.com")
    with override_settings(HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE=None):
        post(client, REQUEST, {"email": user.email}, secure=True)
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    assert re.search(
        r"https://www\.example\.com/accounts/password-reset/[^/\s]+/[^/\s]+/",
        entry.body,
    )


def test_a_poisoned_host_header_gets_400_and_no_email(user):
    with override_settings(HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE=None):
        response = post(
            Client(), REQUEST, {"email": user.email}, HTTP_HOST="evil.example"
        )
    assert response.status_code == 400
    assert sent_links() == []


def test_base_url_setting_ignores_the_host_header(user):
    with override_settings(
        HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE=None,
        HYPERMAIL_PASSWORD_RESET_BASE_URL="https://www.example.com",
        ALLOWED_HOSTS=["*"],
    ):
        post(Client(), REQUEST, {"email": user.email}, HTTP_HOST="evil.example")
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    assert "https://www.example.com/accounts/password-reset/" in entry.body
    assert "evil" not in entry.body


# -- logs ----------------------------------------------------------------------


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


def test_tokens_never_reach_the_logs(client, user):
    handler = Everything()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s %(args)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with override_settings(HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_EMAIL="1/h"):
            pair = reset_pair(client)
            post(client, REQUEST, {"email": user.email})  # over the limit: logged
        post(client, VALIDATE, pair)
        post(client, CONFIRM, {**pair, "new_password": "short"})
        post(client, CONFIRM, {**pair, "new_password": NEW})
        post(client, CONFIRM, {**pair, "new_password": NEW})  # reused: 400
        post(client, REQUEST, {"email": "nobody@example.com"})
        assert wait_for_deliveries()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logged = "\n".join(handler.texts)
    assert "Password reset email sent to user" in logged  # the capture works
    assert "rate limit" in logged
    assert pair["token"] not in logged
    assert f"{pair['uid']}/{pair['token']}" not in logged
