"""One set of validators behind every settings area (``conf/validators.py``):
the same value gets the same verdict, and the error names the setting to fix."""

from __future__ import annotations

import math

import pytest
from django.test import override_settings

from hypermail_django.conf import background_delivery, delivery_log, password_reset
from hypermail_django.conf.mailer_options import resolve_options
from hypermail_django.exceptions import ConfigurationError


@pytest.mark.parametrize("value", [math.inf, math.nan, -1, "soon", True])
def test_background_seconds_refuse_what_no_timer_can_wait(value):
    with (
        override_settings(HYPERMAIL_BACKGROUND_MAX_AGE=value),
        pytest.raises(ConfigurationError) as caught,
    ):
        background_delivery.get_settings()
    assert "HYPERMAIL_BACKGROUND_MAX_AGE must be a finite number of seconds" in str(
        caught.value
    )
    assert caught.value.code == "invalid_config"


def test_background_seconds_go_past_a_day_unlike_a_socket_timeout():
    # A message may be retried for a week; a socket may not wait a week.
    with override_settings(HYPERMAIL_BACKGROUND_MAX_AGE=7 * 86400):
        assert background_delivery.get_settings().max_age == 7 * 86400.0
    with pytest.raises(ConfigurationError, match=r"from 0 to 86400 \(a day\)"):
        resolve_options({"retry_delay": 7 * 86400})


def test_numbers_written_as_text_count_in_every_area():
    with override_settings(
        HYPERMAIL_BACKGROUND_REQUEUE_DELAY="30",
        HYPERMAIL_BACKGROUND_MAX_REQUEUES="5",
        HYPERMAIL_LOG_BATCH_SIZE="100",
    ):
        background = background_delivery.get_settings()
        log = delivery_log.get_settings()
    assert (background.requeue_delay, background.max_requeues) == (30.0, 5)
    assert log.batch_size == 100
    assert resolve_options({"max_retries": "3"})["max_retries"] == 3


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("HYPERMAIL_LOG_ENABLED", "False", "must be True or False"),
        ("HYPERMAIL_LOG_BATCH_SIZE", 0, "must be a whole number >= 1"),
        ("HYPERMAIL_BACKGROUND_QUEUE", "", "must be a non-empty string"),
        ("HYPERMAIL_BACKGROUND_MAX_REQUEUES", -1, "must be a whole number >= 0,"),
        ("HYPERMAIL_PASSWORD_RESET_CACHE", "", "must be a non-empty string"),
        ("HYPERMAIL_PASSWORD_RESET_MAILER", "", "must be a non-empty string or"),
    ],
)
def test_each_area_names_the_setting_to_fix(setting, value, words):
    read = {
        "HYPERMAIL_LOG_": delivery_log.get_settings,
        "HYPERMAIL_BACKGROUND_": background_delivery.get_settings,
        "HYPERMAIL_PASSWORD_RESET_": password_reset.get_settings,
    }
    reader = next(f for prefix, f in read.items() if setting.startswith(prefix))
    with (
        override_settings(**{setting: value}),
        pytest.raises(ConfigurationError) as caught,
    ):
        reader()
    assert str(caught.value).startswith(f"{setting} {words}")


def test_flags_read_the_same_in_every_area():
    # 0 and 1 are flags for the mailer options; the delivery log agrees.
    with override_settings(HYPERMAIL_LOG_ENABLED=0):
        assert delivery_log.get_settings().enabled is False
    assert resolve_options({"use_tls": 1})["use_tls"] is True
