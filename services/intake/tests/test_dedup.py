"""Which requests count as the same problem."""

import pytest

from helpdesk.intake.domain import TicketDraft, dedup_key, normalized_subject, validate_new_ticket


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer jammed", "printer jammed"),
        ("RE: Fwd: printer   JAMMED!!", "printer jammed"),
        ("Отв: Не работает почта", "не работает почта"),
        ("re:re: VPN", "vpn"),
        ("!!!", ""),
    ],
)
def test_normalized_subject(subject: str, expected: str) -> None:
    assert normalized_subject(subject) == expected


def key(subject: str, email: str = "ann@example.com") -> str | None:
    return dedup_key(
        validate_new_ticket(TicketDraft(subject=subject, description="d", requester_email=email))
    )


def test_same_requester_and_problem_share_a_key() -> None:
    assert key("Printer jammed") == key("RE: printer JAMMED")
    assert key("Printer jammed", "ANN@example.com") == key("Printer jammed")


def test_other_requester_or_problem_differ() -> None:
    assert key("Printer jammed") != key("Printer jammed", "bob@example.com")
    assert key("Printer jammed") != key("Printer out of toner")


def test_a_subject_of_punctuation_never_deduplicates() -> None:
    assert key("???") is None
