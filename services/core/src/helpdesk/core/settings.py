"""Settings shared by every service, read from HELPDESK_* environment variables."""

import sys
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs to reach its servers and expose itself."""

    model_config = SettingsConfigDict(env_prefix="HELPDESK_", extra="ignore")

    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    # Each service owns its own database; empty means "helpdesk_<service>".
    mongodb_database: str = ""
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Create missing topics at start (one machine); clusters create them with the chart's Job.
    kafka_create_topics: bool = True
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
            for e in error.errors()
        )
        print(f"invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
