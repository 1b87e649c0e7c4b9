"""A password reset requested in an ordinary ``TestCase`` (each test in a
transaction that never commits) sends its email, as in production, where the
request runs in autocommit."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, TestCase, override_settings

from hypermail_django.auth.delivery import ResetJob, dispatch, wait_for_deliveries
from hypermail_django.testing.outbox import clear_outbox, get_outbox

from ..auth_urls import FLOW_SETTINGS, MEMORY
from ..conftest import default_mailer_settings


@override_settings(**FLOW_SETTINGS, **default_mailer_settings(MEMORY))
class ResetInATestCase(TestCase):
    def setUp(self) -> None:
        clear_outbox()
        get_user_model().objects.create_user("alice", "alice@example.com", "x-Pa55!")

    def test_the_html_form_sends_the_email(self) -> None:
        response = Client().post(
            "/accounts/password-reset/", {"email": "alice@example.com"}
        )
        assert response.status_code == 302
        assert wait_for_deliveries()
        assert [entry.to for entry in get_outbox()] == [["alice@example.com"]]

    def test_the_json_api_sends_the_email(self) -> None:
        Client().post(
            "/api/password-reset/",
            {"email": "alice@example.com"},
            content_type="application/json",
        )
        assert wait_for_deliveries()
        assert len(get_outbox()) == 1

    def test_an_unknown_address_still_sends_nothing(self) -> None:
        Client().post("/accounts/password-reset/", {"email": "nobody@example.com"})
        assert wait_for_deliveries()
        assert get_outbox() == []

    def test_inside_the_projects_own_transaction_it_still_waits_for_commit(
        self,
    ) -> None:
        job = ResetJob("alice@example.com", "https://app.example.com/r/{uid}/{token}/")
        with (
            self.captureOnCommitCallbacks(execute=False) as callbacks,
            transaction.atomic(),
        ):
            dispatch(job)
        assert wait_for_deliveries()
        assert get_outbox() == []  # not committed: nothing sent
        assert len(callbacks) == 1
