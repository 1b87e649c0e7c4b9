"""Reset tokens: Django's generator, and when a token stops working."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings
from django.utils.http import urlsafe_base64_decode

from hypermail_django.auth import check_reset_token, generate_reset_token
from hypermail_django.auth.tokens import can_reset_password

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", "old-Pa55word!"
    )


def test_token_is_the_encoded_pk_and_a_django_token(user):
    reset = generate_reset_token(user)
    uid, token = reset  # unpacks as a pair
    assert urlsafe_base64_decode(uid).decode() == str(user.pk)
    assert default_token_generator.check_token(user, token)
    assert check_reset_token(uid, token) == user


def test_repr_hides_the_token(user):
    reset = generate_reset_token(user)
    assert reset.token not in repr(reset)
    assert reset.uid in repr(reset)


def test_token_stops_working_when_the_password_changes(user):
    uid, token = generate_reset_token(user)
    user.set_password("new-Pa55word!")
    user.save()
    assert check_reset_token(uid, token) is None


def test_token_stops_working_once_the_user_logs_in(user):
    uid, token = generate_reset_token(user)
    update_last_login(None, user)  # what django.contrib.auth.login() does
    assert check_reset_token(uid, token) is None


def test_token_stops_working_when_the_email_changes(user):
    uid, token = generate_reset_token(user)
    user.email = "alice@elsewhere.example"
    user.save()
    assert check_reset_token(uid, token) is None


@override_settings(PASSWORD_RESET_TIMEOUT=3600)
def test_token_expires_after_password_reset_timeout(user, monkeypatch):
    uid, token = generate_reset_token(user)
    issued = default_token_generator._now()

    def travel(seconds: int) -> None:
        later = issued + timedelta(seconds=seconds)
        monkeypatch.setattr(default_token_generator, "_now", lambda: later)

    travel(3599)
    assert check_reset_token(uid, token) == user
    travel(3601)
    assert check_reset_token(uid, token) is None


def test_inactive_user_token_is_refused(user):
    uid, token = generate_reset_token(user)
    user.is_active = False
    user.save()
    assert check_reset_token(uid, token) is None


@pytest.mark.parametrize(
    "uid", ["", "not-base64!", "Zm9v", "OTk5OTk5", "\x00", "A" * 500]
)
def test_malformed_or_unknown_uid_gives_none(user, uid):
    _, token = generate_reset_token(user)
    assert check_reset_token(uid, token) is None


def test_wrong_token_and_other_users_token_give_none(user):
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "x-Pa55!")
    uid, token = generate_reset_token(user)
    bob_uid, bob_token = generate_reset_token(bob)
    assert (
        check_reset_token(uid, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    )
    assert check_reset_token(uid, bob_token) is None
    assert check_reset_token(bob_uid, token) is None
    assert check_reset_token(uid, "") is None
    assert check_reset_token(None, token) is None  # type: ignore[arg-type]


def test_who_may_reset(user):
    assert can_reset_password(user)
    user.set_unusable_password()
    assert not can_reset_password(user)
    user.set_password("x")
    user.is_active = False
    assert not can_reset_password(user)
    user.is_active = True
    user.email = ""
    assert not can_reset_password(user)
