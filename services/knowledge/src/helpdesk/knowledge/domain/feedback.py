"""What readers and tickets say about articles: views, helped / did not help, suggestions
shown on tickets, and deflections (tickets closed as self-solved by an article).

Each piece of feedback is one record under a key that makes a retry or a redelivered event
count once; the figures are the records counted.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from helpdesk.core.errors import FieldViolation, InvalidArgument

MAX_KEY = 200
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


class FeedbackKind(StrEnum):
    # From readers.
    VIEW = "view"
    HELPFUL = "helpful"
    NOT_HELPFUL = "not_helpful"
    # From ticket events.
    SUGGESTED = "suggested"
    DEFLECTION = "deflection"


READER_KINDS = frozenset({FeedbackKind.VIEW, FeedbackKind.HELPFUL, FeedbackKind.NOT_HELPFUL})


@dataclass(frozen=True)
class Figures:
    article_id: str
    views: int = 0
    helpful: int = 0
    not_helpful: int = 0
    suggested: int = 0
    deflections: int = 0

    @staticmethod
    def from_counts(article_id: str, counts: Mapping[str, int]) -> "Figures":
        """Figures from record counts by kind; kinds not known here are left out."""
        return Figures(
            article_id=article_id,
            views=counts.get(FeedbackKind.VIEW, 0),
            helpful=counts.get(FeedbackKind.HELPFUL, 0),
            not_helpful=counts.get(FeedbackKind.NOT_HELPFUL, 0),
            suggested=counts.get(FeedbackKind.SUGGESTED, 0),
            deflections=counts.get(FeedbackKind.DEFLECTION, 0),
        )


def reader_feedback_key(article_id: str, kind: FeedbackKind, idempotency_key: str) -> str:
    """The record key of a reader's feedback: one per article, kind and caller's key.
    Raises InvalidArgument for a kind readers cannot give or an unusable key."""
    problems: list[FieldViolation] = []
    if kind not in READER_KINDS:
        problems.append(FieldViolation("kind", "must be view, helpful or not_helpful"))
    if not _KEY.fullmatch(idempotency_key):
        problems.append(
            FieldViolation(
                "idempotency_key",
                f"must be 1-{MAX_KEY} printable characters without spaces",
            )
        )
    if problems:
        raise InvalidArgument(problems)
    return f"{article_id}:{kind.value}:{idempotency_key}"


def event_feedback_key(event_id: str, article_id: str, kind: FeedbackKind) -> str:
    """The record key of feedback a ticket event carries: a redelivery counts once."""
    return f"event:{event_id}:{article_id}:{kind.value}"
