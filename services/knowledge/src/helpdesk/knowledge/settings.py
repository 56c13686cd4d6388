"""The knowledge base's settings: the shared ones plus intake's address and the portal."""

from pydantic import Field

from helpdesk.core.settings import ServiceSettings


class KnowledgeSettings(ServiceSettings):
    grpc_port: int = Field(default=50055, ge=0, le=65535)
    metrics_port: int = Field(default=9105, ge=0, le=65535)
    # Intake's gRPC address: drafts from tickets and macros read tickets through it.
    intake_target: str = "127.0.0.1:50051"
    intake_deadline_seconds: float = Field(default=5.0, gt=0)
    # Consumer group on the ticket events (suggestions shown, deflections); its dead letters
    # go to helpdesk.dlq.<group>.v1. Article events are followed by every replica, no group.
    knowledge_consumer_group: str = "helpdesk-knowledge"
    # The requester portal, for {{ ticket.url }} in macros ("<portal>/tickets/HD-1042").
    portal_url: str = ""
