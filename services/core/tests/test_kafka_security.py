"""Kafka security settings: what the broker and the admin client are given."""

import pytest
from faststream.security import SASLScram512

from helpdesk.core.kafka import KafkaSecurity, security_from
from helpdesk.core.settings import ServiceSettings, load_settings


def test_plain_tcp_needs_nothing() -> None:
    assert KafkaSecurity().faststream() is None
    assert KafkaSecurity().client_options() == {}


def test_sasl_over_tls_with_scram() -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username="svc", password="pw"
    )
    faststream = security.faststream()
    assert isinstance(faststream, SASLScram512)
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "svc"
    assert options["ssl_context"] is not None


def test_tls_only() -> None:
    options = KafkaSecurity(protocol="SSL").client_options()
    assert options["security_protocol"] == "SSL"


def test_settings_feed_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("HELPDESK_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("HELPDESK_KAFKA_SASL_PASSWORD", "secret")
    settings = load_settings(ServiceSettings)
    security = security_from(settings)
    assert (security.protocol, security.username, security.password) == (
        "SASL_PLAINTEXT",
        "svc",
        "secret",
    )
    assert "secret" not in repr(settings)


def test_sasl_without_credentials_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPDESK_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "HELPDESK_KAFKA_SASL_USERNAME" in err
    assert err.count("\n") == 1
