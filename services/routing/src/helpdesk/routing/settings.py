"""Routing's settings: the shared ones plus where intake is and when to escalate."""

from pydantic import Field

from helpdesk.core.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    grpc_port: int = Field(default=50052, ge=0, le=65535)
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    # Intake's gRPC address: routing applies its decisions through AssignTicket.
    intake_target: str = "127.0.0.1:50051"
    intake_deadline_seconds: float = Field(default=5.0, gt=0)
    # Consumer group on the ticket events; its dead letters go to helpdesk.dlq.<group>.v1.
    routing_consumer_group: str = "helpdesk-routing"
    # A ticket reopened this many times moves up a tier; 0 turns it off.
    reopen_escalation_threshold: int = Field(default=2, ge=0)
    # How often availability is looked at again: working hours begin and end, absences
    # start, and waiting tickets are offered to whoever has room.
    availability_sweep_seconds: float = Field(default=30.0, gt=0)
