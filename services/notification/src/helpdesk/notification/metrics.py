"""The notification service's metrics: sent, failed, retried by channel; event to delivery."""

from prometheus_client import Counter, Histogram

SENT = Counter("helpdesk_notifications_sent_total", "Notifications delivered.", ["channel"])
FAILED = Counter(
    "helpdesk_notifications_failed_total",
    "Delivery attempts that failed, by channel and kind (transient, permanent).",
    ["channel", "kind"],
)
RETRIED = Counter(
    "helpdesk_notifications_retried_total", "Deliveries scheduled for another attempt.", ["channel"]
)
DEAD = Counter(
    "helpdesk_notifications_dead_total",
    "Deliveries given up after the last attempt or a permanent failure (to the dead letters).",
    ["channel"],
)
DUPLICATES = Counter(
    "helpdesk_notifications_duplicates_total",
    "Notices already delivered for the same event, recipient and channel (redeliveries).",
)
HELD = Counter(
    "helpdesk_notifications_held_total", "Notices held by flood control for a digest.", ["channel"]
)
LATENCY = Histogram(
    "helpdesk_notification_delivery_seconds",
    "From the event's time to the notification's delivery.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
