"""Intake's pure rules: validation of a new ticket, numbers, page sizes and tokens, JSON drafts."""

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Category,
    Channel,
    NewTicket,
    Priority,
    Requester,
    Status,
    TicketDraft,
    decode_page_token,
    draft_from_json,
    encode_page_token,
    format_number,
    open_ticket,
    page_size,
    parse_number,
    ticket_id_for,
    validate_new_ticket,
)


def draft(**overrides: Any) -> TicketDraft:
    """A valid draft, with the given fields changed."""
    fields: dict[str, Any] = {
        "subject": "VPN is down",
        "description": "Since 9:00 the VPN client says 'connection refused'.",
        "requester_email": "ann@example.com",
    }
    fields.update(overrides)
    return TicketDraft(**fields)


def refusal(bad: TicketDraft, **kwargs: Any) -> list[FieldViolation]:
    """The violations validation reports for a draft it must refuse, in order."""
    with pytest.raises(InvalidArgument) as caught:
        validate_new_ticket(bad, **kwargs)
    return list(caught.value.violations)


def refused_fields(bad: TicketDraft, **kwargs: Any) -> dict[str, str]:
    return {v.field: v.description for v in refusal(bad, **kwargs)}


# --- validate_new_ticket: defaults and normalisation ---


def test_minimal_draft_gets_defaults() -> None:
    new = validate_new_ticket(draft())

    assert new == NewTicket(
        subject="VPN is down",
        description="Since 9:00 the VPN client says 'connection refused'.",
        requester=Requester(email="ann@example.com", name="", organization="", language=""),
        priority=Priority.NORMAL,
        category=Category.QUESTION,
        channel=Channel.API,
        tags=(),
        custom_fields={},
        request_id="",
    )


def test_default_channel_applies_only_when_the_draft_names_none() -> None:
    assert validate_new_ticket(draft(), default_channel=Channel.EVENT).channel is Channel.EVENT
    assert validate_new_ticket(draft(channel="  "), default_channel=Channel.EMAIL).channel is (
        Channel.EMAIL
    )
    named = validate_new_ticket(draft(channel="web"), default_channel=Channel.EVENT)
    assert named.channel is Channel.WEB


def test_text_is_trimmed_and_subject_whitespace_collapsed() -> None:
    new = validate_new_ticket(
        draft(
            subject="  VPN \t is\n  down  ",
            description="\n  First line.\n\n\tSecond line.  \n",
            requester_email="  Ann.Smith@Example.COM ",
            requester_name="  Ann Smith ",
            requester_organization=" ACME ",
            requester_language=" pt-BR ",
            request_id="  req-1  ",
        )
    )

    assert new.subject == "VPN is down"
    # The description keeps its inner layout: only the ends are trimmed.
    assert new.description == "First line.\n\n\tSecond line."
    assert new.requester == Requester(
        email="ann.smith@example.com", name="Ann Smith", organization="ACME", language="pt-BR"
    )
    assert new.request_id == "req-1"


def test_custom_fields_are_copied_not_shared() -> None:
    fields = {"office": "berlin"}
    new = validate_new_ticket(draft(custom_fields=fields))
    fields["office"] = "paris"
    fields["floor"] = "3"

    assert new.custom_fields == {"office": "berlin"}


# --- validate_new_ticket: required fields, lengths, control characters ---


@pytest.mark.parametrize(
    ("attribute", "field"),
    [
        ("subject", "subject"),
        ("description", "description"),
        ("requester_email", "requester.email"),
    ],
)
@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_required_fields(attribute: str, field: str, blank: str) -> None:
    assert refused_fields(draft(**{attribute: blank})) == {field: "is required"}


@pytest.mark.parametrize(
    ("attribute", "field", "limit"),
    [
        ("subject", "subject", 200),
        ("description", "description", 20_000),
        ("requester_name", "requester.name", 200),
        ("requester_organization", "requester.organization", 200),
    ],
)
def test_text_length_limits(attribute: str, field: str, limit: int) -> None:
    at_limit = validate_new_ticket(draft(**{attribute: "x" * limit}))
    assert at_limit is not None

    over = refused_fields(draft(**{attribute: "x" * (limit + 1)}))
    assert over == {field: f"must be at most {limit} characters; got {limit + 1}"}


def test_length_is_measured_after_trimming() -> None:
    new = validate_new_ticket(draft(subject="  " + "x" * 200 + "  "))
    assert new.subject == "x" * 200


@pytest.mark.parametrize(
    ("attribute", "field"),
    [
        ("subject", "subject"),
        ("description", "description"),
        ("requester_name", "requester.name"),
        ("requester_organization", "requester.organization"),
        ("request_id", "request_id"),
    ],
)
@pytest.mark.parametrize("control", ["\x00", "\x07", "\x0b", "\x1b", "\x7f"])
def test_control_characters_are_refused(attribute: str, field: str, control: str) -> None:
    assert refused_fields(draft(**{attribute: f"abc{control}def"})) == {
        field: "must not contain control characters"
    }


def test_tabs_and_line_breaks_are_not_control_characters() -> None:
    new = validate_new_ticket(draft(description="a\tb\r\nc"))
    assert new.description == "a\tb\r\nc"


def test_request_id_limit() -> None:
    assert validate_new_ticket(draft(request_id="r" * 128)).request_id == "r" * 128
    assert refused_fields(draft(request_id="r" * 129)) == {
        "request_id": "must be at most 128 characters"
    }


# --- validate_new_ticket: e-mail and language ---


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.com",
        "first.last+desk@mail.example.co.uk",
        "a@b.co",
        "x" * 242 + "@example.com",  # 254 characters, the limit
    ],
)
def test_email_accepted(email: str) -> None:
    assert validate_new_ticket(draft(requester_email=email)).requester.email == email


@pytest.mark.parametrize(
    "email",
    [
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann@@example.com",
        "ann@ex@ample.com",
        "ann smith@example.com",
        "ann@exa mple.com",
        "x" * 243 + "@example.com",  # 255 characters
    ],
)
def test_email_refused(email: str) -> None:
    assert refused_fields(draft(requester_email=email)) == {
        "requester.email": f"is not an e-mail address: {email!r}"
    }


def test_email_with_control_characters_is_refused() -> None:
    assert "requester.email" in refused_fields(draft(requester_email="ann\x00@example.com"))


@pytest.mark.parametrize("language", ["", "en", "ru", "gsw", "pt-BR", "zh-Hant-TW", "de-CH-1996"])
def test_language_accepted(language: str) -> None:
    assert validate_new_ticket(draft(requester_language=language)).requester.language == language


@pytest.mark.parametrize("language", ["e", "english", "en_US", "en-", "en-B", "12", "en US"])
def test_language_refused(language: str) -> None:
    assert refused_fields(draft(requester_language=language)) == {
        "requester.language": f"must be a language tag like 'en' or 'ru'; got {language!r}"
    }


# --- validate_new_ticket: enums ---

ENUM_FIELDS = [
    ("priority", Priority, Priority.NORMAL),
    ("category", Category, Category.QUESTION),
    ("channel", Channel, Channel.API),
]


@pytest.mark.parametrize(
    ("field", "member"),
    [(field, member) for field, enum, _ in ENUM_FIELDS for member in enum],
)
def test_every_enum_value_is_accepted_in_any_case(field: str, member: Any) -> None:
    new = validate_new_ticket(draft(**{field: f"  {member.value.upper()} "}))
    assert getattr(new, field) is member


@pytest.mark.parametrize(("field", "enum", "default"), ENUM_FIELDS)
def test_enum_default_when_empty(field: str, enum: Any, default: Any) -> None:
    assert getattr(validate_new_ticket(draft(**{field: ""})), field) is default


@pytest.mark.parametrize(("field", "enum", "default"), ENUM_FIELDS)
def test_unknown_enum_value_is_refused_with_the_allowed_ones(
    field: str, enum: Any, default: Any
) -> None:
    allowed = ", ".join(member.value for member in enum)
    assert refused_fields(draft(**{field: "Critical"})) == {
        field: f"must be one of {allowed}; got 'Critical'"
    }


# --- validate_new_ticket: tags ---


def test_tags_are_lowercased_trimmed_and_deduplicated_in_order() -> None:
    new = validate_new_ticket(draft(tags=("VPN", " Network ", "vpn", "team:it/eu", "NETWORK")))
    assert new.tags == ("vpn", "network", "team:it/eu")


@pytest.mark.parametrize("tag", ["a", "x" * 50, "a.b-c_d", "team:it/eu", "v2"])
def test_tag_accepted(tag: str) -> None:
    assert validate_new_ticket(draft(tags=(tag,))).tags == (tag,)


def test_bad_tags_are_named_by_index() -> None:
    bad = draft(tags=("ok", "has space", "fine", "", "x" * 51, "semi;colon"))
    violations = refusal(bad)

    assert [v.field for v in violations] == ["tags[1]", "tags[3]", "tags[4]", "tags[5]"]
    assert violations[0].description == (
        "must be 1-50 letters, digits or - _ . : /; got 'has space'"
    )


def test_tag_count_limit() -> None:
    twenty = tuple(f"t{i}" for i in range(20))
    assert validate_new_ticket(draft(tags=twenty)).tags == twenty

    # Too many is one violation, not one per extra tag.
    assert refused_fields(draft(tags=(*twenty, "t20", "bad tag"))) == {
        "tags": "at most 20 tags; got 22"
    }


# --- validate_new_ticket: custom fields ---


@pytest.mark.parametrize("key", ["office", "a", "cost_center_2", "a" + "b" * 63])
def test_custom_field_key_accepted(key: str) -> None:
    assert validate_new_ticket(draft(custom_fields={key: "v"})).custom_fields == {key: "v"}


@pytest.mark.parametrize(
    "key", ["", "Office", "2fa", "_office", "cost-center", "has space", "a" * 65, "café"]
)
def test_custom_field_key_refused(key: str) -> None:
    assert refused_fields(draft(custom_fields={key: "v"})) == {
        f"custom_fields.{key}": (
            "name must start with a lowercase letter and use a-z, 0-9, _ (at most 64)"
        )
    }


def test_custom_field_key_with_a_trailing_newline_is_refused() -> None:
    assert "custom_fields.office\n" in refused_fields(draft(custom_fields={"office\n": "v"}))


def test_custom_field_value_limit() -> None:
    assert validate_new_ticket(draft(custom_fields={"note": "v" * 1000})).custom_fields == {
        "note": "v" * 1000
    }
    assert refused_fields(draft(custom_fields={"note": "v" * 1001})) == {
        "custom_fields.note": "must be at most 1000 characters"
    }


def test_custom_field_count_limit() -> None:
    fifty = {f"f{i}": "v" for i in range(50)}
    assert len(validate_new_ticket(draft(custom_fields=fifty)).custom_fields) == 50

    assert refused_fields(draft(custom_fields={**fifty, "f50": "v"})) == {
        "custom_fields": "at most 50 fields; got 51"
    }


# --- validate_new_ticket: everything at once ---


def test_every_violation_is_reported_at_once_in_field_order() -> None:
    bad = TicketDraft(
        subject="",
        description="\x00",
        requester_email="not-an-address",
        requester_name="n" * 201,
        requester_organization="o\x1b",
        requester_language="english",
        priority="asap",
        category="rant",
        channel="fax",
        tags=("ok", "not ok"),
        custom_fields={"Bad": "v", "good": "v" * 1001},
        request_id="r" * 129,
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_new_ticket(bad)

    fields = [v.field for v in caught.value.violations]
    assert fields == [
        "subject",
        "description",
        "requester.email",
        "requester.name",
        "requester.organization",
        "requester.language",
        "priority",
        "category",
        "channel",
        "tags[1]",
        "custom_fields.Bad",
        "custom_fields.good",
        "request_id",
    ]
    message = str(caught.value)
    assert message.startswith("invalid request: subject: is required; description: ")
    assert all(f"{field}: " in message for field in fields)


# --- ticket numbers ---


def test_format_number() -> None:
    assert format_number("HD", 1042) == "HD-1042"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("HD-1042", ("HD", 1042)),
        ("hd-1042", ("HD", 1042)),
        ("  Hd-7 ", ("HD", 7)),
        ("OPS2-0012", ("OPS2", 12)),
    ],
)
def test_parse_number(text: str, parsed: tuple[str, int]) -> None:
    assert parse_number(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "HD",
        "HD-",
        "-12",
        "1042",
        "HD-12a",
        "HD 12",
        "HD--1",
        "HD-1-2",
        "2HD-1",
        "H_D-1",
        "507f1f77bcf86cd799439011",
        "3f2c9a0e-7d1b-4c5e-9a7f-2b8e1d6c4a10",
    ],
)
def test_parse_number_refuses_junk(text: str) -> None:
    assert parse_number(text) is None


@given(
    prefix=st.from_regex(r"[A-Z][A-Z0-9]{0,9}", fullmatch=True),
    sequence=st.integers(min_value=0, max_value=10**12),
)
def test_parse_number_reads_what_format_number_writes(prefix: str, sequence: int) -> None:
    assert parse_number(format_number(prefix, sequence)) == (prefix, sequence)


# --- page size ---


@pytest.mark.parametrize(
    ("requested", "used"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (50, 50), (MAX_PAGE_SIZE, MAX_PAGE_SIZE)],
)
def test_page_size(requested: int, used: int) -> None:
    assert page_size(requested) == used


@pytest.mark.parametrize("requested", [-1, MAX_PAGE_SIZE + 1, 10**9])
def test_page_size_out_of_bounds(requested: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_size(requested)
    assert caught.value.violations == (
        FieldViolation("page_size", f"must be between 0 and 500; got {requested}"),
    )


# --- page tokens ---


@pytest.mark.parametrize("status", ["", "new", "on_hold"])
def test_page_token_round_trip(status: str) -> None:
    token = encode_page_token(1042, status)

    assert decode_page_token(token, status) == 1042
    # Opaque and safe in a URL: no padding, no '+' or '/'.
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token


def test_empty_token_is_the_first_page() -> None:
    assert decode_page_token("", "new") is None


@given(before=st.integers(), status=st.text())
def test_page_token_round_trips_any_sequence_and_status(before: int, status: str) -> None:
    assert decode_page_token(encode_page_token(before, status), status) == before


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!!",
        "a",
        _token(b"\xff\xfe\x00"),
        _token(b"plain text"),
        _token(b"[1042]"),
        _token(b'"1042"'),
        _token(b'{"status":"new"}'),
        _token(b'{"before":1042}'),
        _token(b'{"before":"soon","status":"new"}'),
        _token(b'{"before":null,"status":"new"}'),
    ],
)
def test_garbage_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, "new")
    assert caught.value.violations == (
        FieldViolation("page_token", "is not a token from this listing"),
    )


def test_token_with_an_infinite_sequence_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        decode_page_token(_token(b'{"before":Infinity,"status":"new"}'), "new")


@pytest.mark.parametrize(("made_for", "used_for"), [("new", "open"), ("", "new"), ("new", "")])
def test_token_from_another_status_filter_is_refused(made_for: str, used_for: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(encode_page_token(1042, made_for), used_for)
    assert caught.value.violations == (
        FieldViolation("page_token", "belongs to a listing with another status filter"),
    )


# --- draft_from_json ---


def test_draft_from_json_reads_every_field() -> None:
    data = {
        "request_id": "req-1",
        "subject": "VPN is down",
        "description": "Connection refused.",
        "requester": {
            "email": "ann@example.com",
            "name": "Ann",
            "organization": "ACME",
            "language": "en",
        },
        "priority": "high",
        "category": "incident",
        "channel": "monitoring",
        "tags": ["vpn", "network"],
        "custom_fields": {"office": "berlin"},
    }

    assert draft_from_json(data) == TicketDraft(
        request_id="req-1",
        subject="VPN is down",
        description="Connection refused.",
        requester_email="ann@example.com",
        requester_name="Ann",
        requester_organization="ACME",
        requester_language="en",
        priority="high",
        category="incident",
        channel="monitoring",
        tags=("vpn", "network"),
        custom_fields={"office": "berlin"},
    )


def test_draft_from_json_leaves_missing_fields_empty() -> None:
    assert draft_from_json({}) == TicketDraft()


def test_draft_from_json_reads_null_as_empty() -> None:
    data = {
        "request_id": None,
        "subject": None,
        "description": None,
        "requester": {"email": None, "name": None, "organization": None, "language": None},
        "priority": None,
        "category": None,
        "channel": None,
        "tags": None,
        "custom_fields": None,
    }
    assert draft_from_json(data) == TicketDraft()


def test_draft_from_json_ignores_unknown_fields() -> None:
    assert draft_from_json({"subject": "Hi", "colour": 7}) == TicketDraft(subject="Hi")


@pytest.mark.parametrize("body", [[], ["subject"], "subject", 42, 4.2, True, None])
def test_draft_from_json_refuses_a_non_object(body: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        draft_from_json(body)
    assert caught.value.violations == (FieldViolation("$", "must be a JSON object"),)


@pytest.mark.parametrize(
    ("data", "field", "description"),
    [
        ({"subject": 5}, "subject", "must be a string; got int"),
        ({"description": ["a"]}, "description", "must be a string; got list"),
        ({"request_id": 1.5}, "request_id", "must be a string; got float"),
        ({"priority": 3}, "priority", "must be a string; got int"),
        ({"category": {}}, "category", "must be a string; got dict"),
        ({"channel": True}, "channel", "must be a string; got bool"),
        ({"requester": {"email": 1}}, "requester.email", "must be a string; got int"),
        ({"requester": {"name": []}}, "requester.name", "must be a string; got list"),
        (
            {"requester": {"organization": False}},
            "requester.organization",
            "must be a string; got bool",
        ),
        ({"requester": {"language": 7}}, "requester.language", "must be a string; got int"),
        (
            {"requester": "ann@example.com"},
            "requester",
            "must be an object with email, name, organization, language",
        ),
        ({"tags": "vpn"}, "tags", "must be a list of strings"),
        ({"tags": ["vpn", 1]}, "tags", "must be a list of strings"),
        ({"custom_fields": ["office"]}, "custom_fields", "must be an object of string values"),
        ({"custom_fields": {"floor": 3}}, "custom_fields", "must be an object of string values"),
    ],
)
def test_draft_from_json_names_the_field_of_a_wrong_type(
    data: dict[str, Any], field: str, description: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        draft_from_json(data)
    assert caught.value.violations == (FieldViolation(field, description),)


@pytest.mark.parametrize(
    ("data", "field"),
    [({"tags": ""}, "tags"), ({"tags": {}}, "tags"), ({"custom_fields": []}, "custom_fields")],
)
def test_draft_from_json_refuses_an_empty_value_of_the_wrong_type(
    data: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        draft_from_json(data)
    assert [v.field for v in caught.value.violations] == [field]


def test_draft_from_json_reports_every_wrong_type_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        draft_from_json({"subject": 1, "requester": {"email": True}, "tags": "vpn", "channel": 2})
    assert {v.field for v in caught.value.violations} == {
        "subject",
        "requester.email",
        "tags",
        "channel",
    }


def test_draft_from_json_feeds_validation() -> None:
    data = json.loads(
        '{"subject": "Printer", "description": "Jammed.", "requester": {"email": "B@X.io"}}'
    )
    new = validate_new_ticket(draft_from_json(data), default_channel=Channel.EVENT)
    assert new.requester.email == "b@x.io"
    assert new.channel is Channel.EVENT


# --- open_ticket ---


def test_open_ticket_starts_new_at_version_one() -> None:
    new = validate_new_ticket(
        draft(priority="urgent", category="incident", tags=("vpn",), custom_fields={"a": "b"})
    )
    now = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

    ticket = open_ticket(
        new, ticket_id="t-1", number="HD-7", sequence=7, request_id="req-1", now=now
    )

    assert ticket.status is Status.NEW
    assert ticket.version == 1
    assert ticket.created_at == ticket.updated_at == now
    assert (ticket.id, ticket.number, ticket.sequence, ticket.request_id) == (
        "t-1",
        "HD-7",
        7,
        "req-1",
    )
    assert (ticket.subject, ticket.description, ticket.requester) == (
        new.subject,
        new.description,
        new.requester,
    )
    assert (ticket.priority, ticket.category, ticket.channel) == (
        Priority.URGENT,
        Category.INCIDENT,
        Channel.API,
    )
    assert ticket.tags == ("vpn",)
    assert ticket.custom_fields == {"a": "b"}


# --- ticket ids ---


def test_ticket_id_for_a_request_id_is_stable_and_distinct() -> None:
    first = ticket_id_for("req-1")

    assert ticket_id_for("req-1") == first
    assert ticket_id_for("req-2") != first
    assert ticket_id_for("kafka:helpdesk.intake.requests.v1:0:17") != first
    assert uuid.UUID(first).version == 5


# --- property: validation is idempotent ---

_text_char = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from(
    " \t\n\r"
)


def _text(max_size: int, *, required: bool = False) -> st.SearchStrategy[str]:
    text = st.text(_text_char, max_size=max_size)
    return text.filter(str.strip) if required else text


def _enum_text(enum: Any) -> st.SearchStrategy[str]:
    values = [member.value for member in enum]
    return st.sampled_from(["", *values, *(v.upper() for v in values)])


drafts = st.builds(
    TicketDraft,
    subject=_text(200, required=True),
    description=_text(2_000, required=True),
    requester_email=st.from_regex(
        r"[A-Za-z0-9._+-]{1,20}@[A-Za-z0-9-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True
    ),
    requester_name=_text(200),
    requester_organization=_text(200),
    requester_language=st.sampled_from(["", "en", "ru", "pt-BR", "zh-Hant-TW"]),
    priority=_enum_text(Priority),
    category=_enum_text(Category),
    channel=_enum_text(Channel),
    tags=st.lists(st.from_regex(r" ?[A-Za-z0-9_\-.:/]{1,50} ?", fullmatch=True), max_size=20).map(
        tuple
    ),
    custom_fields=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True), _text(100), max_size=5
    ),
    request_id=_text(128),
)


@given(drafts)
def test_validating_a_valid_ticket_again_changes_nothing(raw: TicketDraft) -> None:
    first = validate_new_ticket(raw)
    again = validate_new_ticket(
        TicketDraft(
            subject=first.subject,
            description=first.description,
            requester_email=first.requester.email,
            requester_name=first.requester.name,
            requester_organization=first.requester.organization,
            requester_language=first.requester.language,
            priority=first.priority.value,
            category=first.category.value,
            channel=first.channel.value,
            tags=first.tags,
            custom_fields=first.custom_fields,
            request_id=first.request_id,
        )
    )
    assert again == first
