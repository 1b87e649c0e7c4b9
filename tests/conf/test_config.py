"""Configuration: settings, MAILERS, get_connection overrides, environment.

Each invalid value must fail at construction with a message naming the setting.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from hypermail_django import options_from_env, settings_from_env
from hypermail_django.backends import FluxMailBackend
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.exceptions import ConfigurationError, FluxMailException

from ..conftest import BACKEND, PASSWORD, legacy_settings, requires_mailers


def test_defaults_fix_djangos_infinite_timeout():
    with legacy_settings(EMAIL_TIMEOUT=None):
        backend = FluxMailBackend()
    assert backend.timeout == 30.0
    assert backend.max_retries == 0
    assert backend.retry_delay == 1.0
    assert isinstance(backend.retry_delay, float)
    assert backend.host == "localhost"
    assert backend.port == 25


def test_legacy_settings_and_fluxmail_settings_are_read():
    with legacy_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT=2525,
        EMAIL_HOST_USER="user",
        EMAIL_HOST_PASSWORD=PASSWORD,
        EMAIL_USE_TLS=True,
        EMAIL_TIMEOUT=7,
        EMAIL_FLUXMAIL_MAX_RETRIES=3,
        EMAIL_FLUXMAIL_RETRY_DELAY=2,
        EMAIL_FLUXMAIL_CHUNKING=False,
    ):
        backend = FluxMailBackend()
    assert (backend.chunking, backend.pipelining) == (False, True)
    assert backend.transport_config.chunking is False
    assert (backend.host, backend.port, backend.username) == (
        "smtp.example.com",
        2525,
        "user",
    )
    assert backend.password == PASSWORD
    assert backend.use_tls is True
    assert backend.timeout == 7.0
    assert backend.max_retries == 3
    assert backend.retry_delay == 2.0
    assert isinstance(backend.retry_delay, float)


def test_constructor_options_win_over_settings():
    with legacy_settings(
        EMAIL_HOST="settings.example.com", EMAIL_FLUXMAIL_MAX_RETRIES=3
    ):
        backend = FluxMailBackend(host="kwarg.example.com", max_retries=1)
    assert backend.host == "kwarg.example.com"
    assert backend.max_retries == 1


def test_settings_are_read_at_call_time_not_import_time():
    with legacy_settings(EMAIL_FLUXMAIL_MAX_RETRIES=1):
        assert FluxMailBackend().max_retries == 1
    with legacy_settings(EMAIL_FLUXMAIL_MAX_RETRIES=4):
        assert FluxMailBackend().max_retries == 4


def test_get_connection_overrides_reach_the_backend():
    with legacy_settings(EMAIL_BACKEND=BACKEND, EMAIL_FLUXMAIL_MAX_RETRIES=1):
        backend = mail.get_connection(max_retries=5, username="u", password="p")
    assert isinstance(backend, FluxMailBackend)
    assert backend.max_retries == 5
    assert (backend.username, backend.password) == ("u", "p")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"EMAIL_USE_TLS": True, "EMAIL_USE_SSL": True}, "EMAIL_USE_TLS"),
        ({"EMAIL_FLUXMAIL_MAX_RETRIES": -1}, "EMAIL_FLUXMAIL_MAX_RETRIES"),
        ({"EMAIL_FLUXMAIL_MAX_RETRIES": 1.5}, "EMAIL_FLUXMAIL_MAX_RETRIES"),
        ({"EMAIL_FLUXMAIL_RETRY_DELAY": "soon"}, "EMAIL_FLUXMAIL_RETRY_DELAY"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
        ({"EMAIL_PORT": 70000}, "EMAIL_PORT"),
        ({"EMAIL_USE_TLS": "False"}, "EMAIL_USE_TLS"),
        ({"EMAIL_FLUXMAIL_PIPELINING": "no"}, "EMAIL_FLUXMAIL_PIPELINING"),
        ({"EMAIL_TIMEOUT": 0}, "EMAIL_TIMEOUT"),
    ],
)
def test_invalid_settings_fail_at_construction_naming_the_setting(settings, named):
    with legacy_settings(**settings), pytest.raises(ConfigurationError) as caught:
        FluxMailBackend()
    error = caught.value
    assert named in str(error)
    assert error.code == "invalid_config"
    # Code written for Django's backend catches ValueError / ImproperlyConfigured.
    assert isinstance(error, ValueError)
    assert isinstance(error, ImproperlyConfigured)
    assert isinstance(error, FluxMailException)


def test_both_tls_modes_say_what_djangos_backend_says():
    with (
        legacy_settings(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True),
        pytest.raises(ValueError) as caught,
    ):
        FluxMailBackend()
    assert str(caught.value).startswith(
        "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of "
        "those settings to True. Set use_tls for STARTTLS"
    )
    assert isinstance(caught.value, ConfigurationError)


def test_a_missing_client_certificate_is_not_an_error_at_construction(tmp_path):
    # As Django's backend: the file is read when TLS is first set up
    # (tests/transport/test_django_exceptions.py), and system check E060 names it.
    absent = str(tmp_path / "cert.pem")
    with legacy_settings(EMAIL_SSL_CERTFILE=absent):
        assert FluxMailBackend().ssl_certfile == absent


def test_empty_host_is_no_relay():
    with legacy_settings(EMAIL_HOST=""), pytest.raises(ConfigurationError) as caught:
        FluxMailBackend()
    assert caught.value.code == "no_relay"
    assert "EMAIL_HOST" in str(caught.value)


@pytest.mark.skipif(MAILERS_SUPPORTED, reason="Django 6.1 warns its own way")
def test_unknown_keyword_is_ignored_with_a_suggestion():
    # Django's backend ignores unknown keywords; we say which option was meant.
    with pytest.warns(UserWarning, match="did you mean 'max_retries'") as caught:
        backend = FluxMailBackend(host="h", max_retry=3)
    assert "'max_retry'" in str(caught[0].message)
    assert backend.max_retries == 0


@requires_mailers
def test_unknown_keyword_is_ignored_with_djangos_warning():
    from django.utils.deprecation import RemovedInDjango2028Warning

    with pytest.warns(RemovedInDjango2028Warning) as caught:
        backend = FluxMailBackend(host="h", max_retry=3)
    messages = [str(w.message) for w in caught]
    assert any("does not support 'max_retry'" in m for m in messages), messages
    assert backend.max_retries == 0


@requires_mailers
def test_direct_construction_warns_as_djangos_backend():
    from django.utils.deprecation import RemovedInDjango2028Warning

    with (
        pytest.warns(
            RemovedInDjango2028Warning,
            match="Directly creating EmailBackend instances is deprecated",
        ),
    ):
        FluxMailBackend(host="h")


@requires_mailers
def test_a_mailers_entry_ignores_the_email_settings_as_djangos_backend():
    mailers = {"default": {"BACKEND": BACKEND, "OPTIONS": {"host": "h"}}}
    with (
        legacy_settings(EMAIL_HOST_USER="legacy", EMAIL_HOST_PASSWORD="secret"),
        override_settings(MAILERS=mailers),
    ):
        backend = mail.mailers["default"]
    assert (backend.username, backend.password) == (None, None)
    assert (backend.use_tls, backend.use_ssl, backend.port) == (False, False, 25)
    assert not backend.transport_config.authenticates


def test_invalid_keyword_option_names_the_option():
    with pytest.raises(ConfigurationError, match="'max_retries' option"):
        FluxMailBackend(host="h", max_retries=-2)


@requires_mailers
def test_mailers_options_configure_the_backend():
    options = {"host": "smtp.example.com", "use_tls": True, "max_retries": 2}
    with override_settings(
        MAILERS={"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    ):
        backend = mail.mailers["default"]
    assert isinstance(backend, FluxMailBackend)
    assert backend.alias == "default"
    assert backend.max_retries == 2
    assert backend.port == 587  # Django 6.1's default for use_tls
    assert backend.timeout == 30.0


@requires_mailers
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"max_retries": -1},
            r"MAILERS\['transactional'\]\['OPTIONS'\]\['max_retries'\]",
        ),
        ({"port": "x"}, r"MAILERS\['transactional'\]\['OPTIONS'\]\['port'\]"),
        (
            {"retry_dely": 1},
            r"^MAILERS\['transactional'\]: Unknown options 'retry_dely'\. "
            r"\(did you mean 'retry_delay' for 'retry_dely'\?\)",
        ),
        (
            {"use_tls": True, "use_ssl": True},
            r"^MAILERS\['transactional'\]: The 'use_ssl' and 'use_tls' OPTIONS "
            r"are incompatible\. Set at most one of them to True\. ",
        ),
    ],
)
def test_invalid_mailers_options_name_the_option(options, message):
    mailers = {
        "default": {"BACKEND": BACKEND, "OPTIONS": {"host": "h"}},
        "transactional": {"BACKEND": BACKEND, "OPTIONS": {"host": "h", **options}},
    }
    with (
        override_settings(MAILERS=mailers),
        pytest.raises(ConfigurationError, match=message) as caught,
    ):
        mail.mailers["transactional"]
    # What Django's own backend raises for a bad MAILERS entry.
    assert isinstance(caught.value, mail.InvalidMailer)


@requires_mailers
def test_mailers_must_name_a_host():
    with (
        override_settings(MAILERS={"default": {"BACKEND": BACKEND, "OPTIONS": {}}}),
        pytest.raises(
            ConfigurationError,
            match=r"^MAILERS\['default'\]: OPTIONS must define 'host'\. ",
        ) as caught,
    ):
        mail.mailers["default"]
    assert caught.value.code == "no_relay"
    assert isinstance(caught.value, mail.InvalidMailer)


@requires_mailers
def test_get_connection_typo_is_reported_with_mailers():
    from django.utils.deprecation import RemovedInDjango2028Warning

    mailers = {"default": {"BACKEND": BACKEND, "OPTIONS": {"host": "h"}}}
    with (
        override_settings(MAILERS=mailers),
        pytest.warns(RemovedInDjango2028Warning),
        pytest.raises(ConfigurationError, match="did you mean 'max_retries'"),
    ):
        mail.get_connection(max_retry=5)


@requires_mailers
def test_get_connection_overrides_apply_to_the_default_mailer():
    from django.utils.deprecation import RemovedInDjango2028Warning

    mailers = {
        "default": {"BACKEND": BACKEND, "OPTIONS": {"host": "h", "max_retries": 2}}
    }
    with override_settings(MAILERS=mailers), pytest.warns(RemovedInDjango2028Warning):
        backend = mail.get_connection(username="u", password="p")
    assert (backend.username, backend.password, backend.max_retries) == ("u", "p", 2)


def test_options_from_env_reads_every_fluxmail_variable():
    environ = {
        "FLUXMAIL_HOST": "smtp.example.com",
        "FLUXMAIL_PORT": "587",
        "FLUXMAIL_USERNAME": "user",
        "FLUXMAIL_PASSWORD": PASSWORD,
        "FLUXMAIL_TLS": "true",
        "FLUXMAIL_SSL": "0",
        "FLUXMAIL_TIMEOUT": "12.5",
        "FLUXMAIL_MAX_RETRIES": "3",
        "FLUXMAIL_RETRY_DELAY": "0.25",
        "UNRELATED": "x",
    }
    assert options_from_env(environ) == {
        "host": "smtp.example.com",
        "port": 587,
        "username": "user",
        "password": PASSWORD,
        "use_tls": True,
        "use_ssl": False,
        "timeout": 12.5,
        "max_retries": 3,
        "retry_delay": 0.25,
    }
    assert settings_from_env({"FLUXMAIL_HOST": "h", "FLUXMAIL_MAX_RETRIES": "2"}) == {
        "EMAIL_HOST": "h",
        "EMAIL_FLUXMAIL_MAX_RETRIES": 2,
    }
    assert options_from_env({}) == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLUXMAIL_PORT", "smtp"),
        ("FLUXMAIL_TLS", "maybe"),
        ("FLUXMAIL_MAX_RETRIES", "-1"),
        ("FLUXMAIL_RETRY_DELAY", "later"),
    ],
)
def test_invalid_environment_names_the_variable(variable, value):
    with pytest.raises(ConfigurationError, match=variable) as caught:
        options_from_env({variable: value})
    assert caught.value.code == "invalid_config"


def test_environment_options_build_a_backend():
    options = options_from_env({"FLUXMAIL_HOST": "h", "FLUXMAIL_MAX_RETRIES": "2"})
    assert FluxMailBackend(**options).max_retries == 2


def test_password_is_in_no_repr():
    backend = FluxMailBackend(host="h", username="user", password=PASSWORD)
    assert PASSWORD not in repr(backend)
    assert PASSWORD not in repr(backend.transport_config)
    assert PASSWORD not in str(vars(backend.transport_config).keys())
