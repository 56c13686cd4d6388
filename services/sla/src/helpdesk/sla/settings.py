"""The SLA service's settings: the shared ones plus intake's address and the timer loop."""

from pydantic import Field

from helpdesk.core.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    grpc_port: int = Field(default=50053, ge=0, le=65535)
    metrics_port: int = Field(default=9103, ge=0, le=65535)
    # Intake's gRPC address: auto-close goes through it.
    intake_target: str = "127.0.0.1:50051"
    intake_deadline_seconds: float = Field(default=5.0, gt=0)
    # Consumer group on the ticket events; its dead letters go to helpdesk.dlq.<group>.v1.
    sla_consumer_group: str = "helpdesk-sla"
    # How often due timers are looked for; a timer fires at most this late (plus work).
    timer_tick_seconds: float = Field(default=0.5, gt=0, le=10)
    # How often every overdue timer is looked for by a range read (after a crash, another
    # replica's timers); the minute-by-minute reads are equality lookups.
    timer_sweep_seconds: float = Field(default=60.0, gt=0)
