"""Intake's settings: the shared ones plus numbering and fault injection."""

from pydantic import Field

from helpdesk.core.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    # Tickets are numbered <prefix>-<n>, e.g. HD-1042.
    ticket_number_prefix: str = Field(default="HD", pattern=r"^[A-Z][A-Z0-9]{0,9}$")
    # Consumer group of the intake topic; its dead letters go to helpdesk.dlq.<group>.v1.
    intake_consumer_group: str = "helpdesk-intake"
    # The same requester with the same subject within this window adds to the open ticket
    # instead of opening another; 0 turns it off.
    dedup_window_seconds: float = Field(default=900.0, ge=0)
    # How often the backlog gauge is counted (it reads every open ticket).
    backlog_refresh_seconds: float = Field(default=60.0, gt=0)
    # Testing only: SIGKILL the process right after a ticket is stored, before its event
    # is published, to prove the outbox publishes it after a restart.
    fault_crash_after_store: bool = False
