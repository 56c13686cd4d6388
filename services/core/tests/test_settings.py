"""Settings from HELPDESK_* variables: defaults, overrides, and one clear line when bad."""

import os

import pytest

from helpdesk.core.settings import ServiceSettings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HELPDESK_* variable from the shell running the tests leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("HELPDESK_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings(ServiceSettings)

    assert settings.mongodb_uri == "mongodb://127.0.0.1:27017/"
    assert settings.mongodb_database == ""
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert (settings.grpc_host, settings.grpc_port) == ("0.0.0.0", 50051)
    assert settings.metrics_port == 9101
    assert (settings.log_level, settings.log_format) == ("info", "json")
    assert settings.shutdown_grace_seconds == 10.0
    assert settings.health_check_interval_seconds == 5.0


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_GRPC_PORT", "6000")
    monkeypatch.setenv("HELPDESK_LOG_LEVEL", "debug")
    monkeypatch.setenv("HELPDESK_KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("HELPDESK_SOMETHING_ELSE", "ignored")

    settings = load_settings(ServiceSettings)

    assert settings.grpc_port == 6000
    assert settings.log_level == "debug"
    assert settings.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"


def test_bad_port_stops_the_process_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPDESK_GRPC_PORT", "abc")

    with pytest.raises(SystemExit) as caught:
        load_settings(ServiceSettings)

    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("invalid settings: HELPDESK_GRPC_PORT: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HELPDESK_GRPC_PORT", "70000"),
        ("HELPDESK_METRICS_PORT", "-1"),
        ("HELPDESK_LOG_LEVEL", "verbose"),
        ("HELPDESK_SHUTDOWN_GRACE_SECONDS", "-5"),
        ("HELPDESK_HEALTH_CHECK_INTERVAL_SECONDS", "0"),
    ],
)
def test_out_of_range_values_are_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as caught:
        load_settings(ServiceSettings)

    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith(f"invalid settings: {name}: ")


def test_every_bad_value_is_named_on_the_same_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPDESK_GRPC_PORT", "abc")
    monkeypatch.setenv("HELPDESK_LOG_FORMAT", "xml")

    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "HELPDESK_GRPC_PORT: " in err
    assert "; HELPDESK_LOG_FORMAT: " in err


def test_database_name_defaults_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(ServiceSettings).database_name("intake") == "helpdesk_intake"

    monkeypatch.setenv("HELPDESK_MONGODB_DATABASE", "shared")
    assert load_settings(ServiceSettings).database_name("intake") == "shared"
