"""The notification service's settings: the shared ones plus mail, webhooks, chat, retries."""

from pydantic import Field, SecretStr

from helpdesk.core.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    grpc_port: int = Field(default=50054, ge=0, le=65535)
    metrics_port: int = Field(default=9104, ge=0, le=65535)
    notification_consumer_group: str = "helpdesk-notification"
    # E-mail out.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    # The sender, and where requesters' replies go (intake's mailbox, so they thread back).
    mail_from: str = "Help desk <helpdesk@helpdesk.local>"
    mail_reply_to: str = ""
    # Webhooks are signed with HMAC-SHA256 of the body under this secret (empty: unsigned).
    webhook_secret: SecretStr = SecretStr("")
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # Telegram Bot API: the bot's token, and the API's address.
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_api_url: str = "https://api.telegram.org"
    # Links and figures the templates show.
    portal_url: str = "http://127.0.0.1:8080"
    survey_url: str = "http://127.0.0.1:8080/v1/tickets/{ticket_id}/rating"
    typical_resolution: str = "2 hours"
    # Who the managers are (person ids), and who is in each team (JSON).
    managers: list[str] = Field(default_factory=list)
    team_people: dict[str, list[str]] = Field(default_factory=dict)
    # Retries of transient failures, with exponential backoff and jitter.
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_cap_seconds: float = Field(default=60.0, gt=0)
    # No floods: more than this many messages to one recipient within the window are
    # held and sent as one digest when the window has passed.
    throttle_limit: int = Field(default=5, ge=1)
    throttle_window_seconds: float = Field(default=300.0, gt=0)
    # How often the worker reads the deliveries for pending ones it was not handed (left by
    # a crash or another replica) and held ones due as a digest. New ones, retries and
    # replays are sent at once without it; on FerretDB each such read scans the collection.
    delivery_sweep_seconds: float = Field(default=30.0, gt=0)
