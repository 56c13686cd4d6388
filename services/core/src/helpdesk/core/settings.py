"""Settings shared by every service, read from HELPDESK_* environment variables."""

import sys
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs to reach its servers and expose itself."""

    model_config = SettingsConfigDict(env_prefix="HELPDESK_", extra="ignore")

    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    # Each service owns its own database; empty means "helpdesk_<service>".
    mongodb_database: str = ""
    # Connections to MongoDB per process, and the deadline of each operation.
    mongodb_max_pool_size: int = Field(default=16, ge=1, le=500)
    mongodb_operation_timeout_ms: int = Field(default=15_000, ge=100)
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Create missing topics at start (one machine); clusters create them with the chart's Job.
    kafka_create_topics: bool = True
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # PEM files: the CA to trust, and a client certificate and key for mutual TLS.
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    grpc_host: str = "0.0.0.0"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # 0 turns the Prometheus endpoint off (tests that start several replicas).
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    # How long in-flight calls and handlers may finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # How often dependencies are checked for the health service.
    health_check_interval_seconds: float = Field(default=5.0, gt=0)
    # How often the outbox relay looks for events left behind (e.g. after a crash); it also
    # looks once at start. Each look reads the owning collection, so not too often.
    outbox_sweep_interval_seconds: float = Field(default=10.0, gt=0)
    # How often the consumer groups' lag is read from Kafka for the metrics (two small
    # requests per group each time).
    kafka_lag_interval_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> "ServiceSettings":
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                "HELPDESK_KAFKA_SASL_USERNAME and HELPDESK_KAFKA_SASL_PASSWORD are required "
                f"with {self.kafka_security_protocol}"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("HELPDESK_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        return self

    def database_name(self, service: str) -> str:
        return self.mongodb_database or f"helpdesk_{service}"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Reads settings from the environment; a bad value stops the process with one clear line."""
    try:
        return settings_class()
    except ValidationError as error:
        prefix = settings_class.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        )
        print(f"invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
