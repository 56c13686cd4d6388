"""Intake's settings: the shared ones plus numbering, the HTTP channels and fault injection."""

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from helpdesk.core.settings import ServiceSettings
from helpdesk.intake.alertmanager import AlertRules
from helpdesk.intake.domain import EMAIL_ADDRESS, Category, Priority


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
    # E-mail: an IMAP mailbox polled for new mail and replies; empty host: no polling.
    # The mailbox must belong to the help desk alone (a message read elsewhere is seen).
    mail_imap_host: str = ""
    mail_imap_port: int = Field(default=993, ge=1, le=65535)
    mail_imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    mail_imap_ca_file: str = ""
    mail_imap_username: str = ""
    mail_imap_password: SecretStr = SecretStr("")
    mail_imap_folder: str = "INBOX"
    # Empty: processed mail stays where it is, flagged seen.
    mail_imap_processed_folder: str = ""
    mail_imap_failed_folder: str = "helpdesk-failed"
    mail_poll_interval_seconds: float = Field(default=30.0, gt=0)
    mail_imap_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_max_attempts: int = Field(default=5, ge=1)
    mail_max_message_bytes: int = Field(default=30 * 1024 * 1024, gt=0)
    # The help desk's own addresses (JSON list): mail from them never opens tickets.
    mail_own_addresses: list[str] = Field(default_factory=list)
    # The knowledge base's gRPC address: new tickets carry the articles it suggests. Empty:
    # no suggestions. A ticket is created anyway when it does not answer within the deadline.
    knowledge_target: str = ""
    knowledge_deadline_seconds: float = Field(default=0.3, gt=0, le=10)
    # How many articles a new ticket carries at most.
    knowledge_suggestions: int = Field(default=3, ge=1, le=20)
    # How often the backlog gauge is counted (it reads every open ticket).
    backlog_refresh_seconds: float = Field(default=60.0, gt=0)
    # Testing only: SIGKILL the process right after a ticket is stored, before its event
    # is published, to prove the outbox publishes it after a restart.
    fault_crash_after_store: bool = False

    # HTTP/JSON channels (ticket API, webhooks); port 0 turns the listener off.
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Larger request bodies are refused with 413 without being read.
    http_max_body_bytes: int = Field(default=1024 * 1024, gt=0)

    # Alertmanager webhook: who the tickets' requester is, and how labels map to fields.
    # Dict and list values are JSON, e.g. HELPDESK_ALERTMANAGER_PRIORITIES='{"page":"urgent"}'.
    alertmanager_requester_email: str = "alertmanager@helpdesk.local"
    alertmanager_priority_label: str = "severity"
    alertmanager_priorities: dict[str, Priority] = Field(
        default_factory=lambda: dict(AlertRules().priorities)
    )
    alertmanager_default_priority: Priority = Priority.NORMAL
    alertmanager_category_label: str = "category"
    alertmanager_default_category: Category = Category.INCIDENT
    alertmanager_team_label: str = "team"
    alertmanager_tag_labels: list[str] = Field(default_factory=lambda: ["alertname", "severity"])
    alertmanager_resolve_on_resolved: bool = True
    # When set, the webhook wants `Authorization: Bearer <token>` (Alertmanager's
    # http_config.authorization); empty accepts any caller.
    alertmanager_bearer_token: SecretStr = SecretStr("")

    # Chat webhooks. Telegram: the secret_token given to setWebhook, checked against the
    # X-Telegram-Bot-Api-Secret-Token header. Slack: the app's signing secret, checked
    # against X-Slack-Signature. Empty accepts any caller (keep the route private then).
    telegram_webhook_secret: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    # MTA piping (POST /v1/mail/inbound): when set, `Authorization: Bearer <token>`.
    mail_inbound_token: SecretStr = SecretStr("")

    @field_validator("alertmanager_requester_email")
    @classmethod
    def _email(cls, value: str) -> str:
        address = value.strip().lower()
        if not EMAIL_ADDRESS.fullmatch(address):
            raise ValueError(f"is not an e-mail address: {value!r}")
        return address

    @field_validator("alertmanager_priorities")
    @classmethod
    def _severities(cls, value: dict[str, Priority]) -> dict[str, Priority]:
        return {k.strip().lower(): v for k, v in value.items()}

    def alert_rules(self) -> AlertRules:
        return AlertRules(
            requester_email=self.alertmanager_requester_email,
            priority_label=self.alertmanager_priority_label,
            priorities=dict(self.alertmanager_priorities),
            default_priority=self.alertmanager_default_priority,
            category_label=self.alertmanager_category_label,
            default_category=self.alertmanager_default_category,
            team_label=self.alertmanager_team_label,
            tag_labels=tuple(self.alertmanager_tag_labels),
            resolve_on_resolved=self.alertmanager_resolve_on_resolved,
        )
