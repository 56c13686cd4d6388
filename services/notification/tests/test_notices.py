"""Who hears what: the defaults per event, self and mute, chat requesters, subscriptions and
people's preferences."""

from dataclasses import replace
from typing import Any

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.notification.domain.notices import (
    Audience,
    Channel,
    Facts,
    Notice,
    Person,
    Subscription,
    dump_person,
    dump_subscription,
    mentioned,
    notices_for,
    parse_person,
    parse_subscription,
    people_by_id,
)
from helpdesk.notification.domain.templates import TEMPLATE_KEYS

PEOPLE = people_by_id(
    [
        Person("boris", "Boris Petrov", "boris@example.com", language="ru"),
        Person(
            "vera",
            "Vera Sokolova",
            "vera@example.com",
            channel=Channel.SLACK,
            slack_webhook_url="https://hooks.slack.com/services/T1/B2/x",
        ),
        Person(
            "dina",
            "Dina",
            "dina@example.com",
            channel=Channel.TELEGRAM,
            telegram_chat_id="12345",
        ),
        Person("gleb", "Gleb", "gleb@example.com"),
        Person("olga", "Olga", "olga@example.com", muted=True),
        Person("maria", "Maria Orlova", "maria@example.com"),
        # A team's shared channel.
        Person(
            "it-l1",
            "IT first line",
            channel=Channel.WEBHOOK,
            webhook_url="https://chat.example.com/hooks/it-l1",
        ),
    ]
)
MANAGERS = ("maria", "olga")
TEAMS = {"hr": ("gleb", "olga", "nobody-known"), "it-l1": ("boris",)}


def facts(event_type: str, **changes: Any) -> Facts:
    base = Facts(
        event_id="evt-1",
        event_type=event_type,
        ticket_id="t-1",
        number="HD-1042",
        subject="VPN does not connect",
        status="open",
        priority="high",
        team="it-l1",
        assignee_id="boris",
        requester_email="Anna@Example.com",
        requester_name="Anna Ivanova",
        requester_language="ru-RU",
        channel="email",
        category="incident",
    )
    return replace(base, **changes)


def notices(
    event: Facts, subscriptions: tuple[Subscription, ...] = (), **people: Person
) -> list[Notice]:
    return notices_for(
        event,
        {**PEOPLE, **people},
        managers=MANAGERS,
        team_people=TEAMS,
        subscriptions=subscriptions,
    )


def heard(event: Facts, subscriptions: tuple[Subscription, ...] = ()) -> set[tuple[str, str]]:
    """(template, recipient) of every notice an event causes."""
    return {(n.template, n.recipient) for n in notices(event, subscriptions)}


# --- defaults, event by event ---


def test_a_new_ticket_is_acknowledged_to_the_requester_by_e_mail_in_their_language() -> None:
    [ack, assigned] = notices(facts("ticket.created"))
    assert ack == Notice(
        event_id="evt-1",
        ticket_id="t-1",
        template="ticket.created.requester",
        audience=Audience.REQUESTER,
        recipient="anna@example.com",
        channel=Channel.EMAIL,
        address="anna@example.com",
        language="ru",
        name="Anna Ivanova",
    )
    assert (assigned.template, assigned.recipient) == ("ticket.assigned.assignee", "boris")


def test_the_acknowledgement_goes_out_although_the_requester_opened_the_ticket() -> None:
    event = facts("ticket.created", actor_id="anna@example.com", actor_role="requester")
    assert ("ticket.created.requester", "anna@example.com") in heard(event)


def test_an_unassigned_new_ticket_is_announced_to_its_queue() -> None:
    # The team's shared channel stands for its members.
    assert heard(facts("ticket.created", assignee_id="")) == {
        ("ticket.created.requester", "anna@example.com"),
        ("ticket.queued.team", "it-l1"),
    }
    # Without one, each member hears it; muted and unknown members do not.
    assert heard(facts("ticket.created", assignee_id="", team="hr")) == {
        ("ticket.created.requester", "anna@example.com"),
        ("ticket.queued.team", "gleb"),
    }


def test_an_agents_public_reply_reaches_the_requester_but_not_the_agent() -> None:
    reply = facts(
        "ticket.commented",
        comment_body="Please restart the client.",
        comment_author_role="agent",
        actor_id="boris",
    )
    assert heard(reply) == {("ticket.replied.requester", "anna@example.com")}


def test_an_internal_note_reaches_no_requester() -> None:
    note = facts(
        "ticket.commented",
        comment_body="Looks like the VPN gateway again.",
        comment_internal=True,
        comment_author_role="agent",
        actor_id="vera",
    )
    assert heard(note) == set()


def test_a_requester_reply_reaches_the_assignee_or_else_the_team() -> None:
    reply = facts(
        "ticket.commented",
        comment_body="Still broken.",
        comment_author_role="requester",
        actor_id="anna@example.com",
    )
    assert heard(reply) == {("ticket.requester_replied.assignee", "boris")}
    assert heard(replace(reply, assignee_id="")) == {("ticket.requester_replied.team", "it-l1")}


def test_system_comments_notify_nobody_by_default() -> None:
    # The auto-close comment: the requester hears of the close itself.
    comment = facts("ticket.commented", comment_body="Closed automatically", actor_role="system")
    assert heard(replace(comment, comment_author_role="system")) == set()


def test_pending_tells_the_requester_that_the_desk_waits_for_them() -> None:
    moved = facts("ticket.status_changed", old_status="open", new_status="pending")
    assert heard(moved) == {("ticket.pending.requester", "anna@example.com")}


@pytest.mark.parametrize("status", ["resolved", "closed", "open", "on_hold"])
def test_other_status_moves_say_nothing_themselves(status: str) -> None:
    # Resolved and closed come with events of their own; telling twice would be noise.
    moved = facts("ticket.status_changed", old_status="pending", new_status=status)
    assert heard(moved) == set()


def test_resolution_and_closing_reach_the_requester() -> None:
    assert heard(facts("ticket.resolved", actor_id="boris", actor_role="agent")) == {
        ("ticket.resolved.requester", "anna@example.com")
    }
    assert heard(facts("ticket.closed", actor_id="boris", actor_role="agent")) == {
        ("ticket.closed.requester", "anna@example.com")
    }


def test_a_close_by_the_system_is_the_auto_close_notice() -> None:
    closed = facts("ticket.closed", actor_id="sla", actor_role="system", status="closed")
    assert heard(closed) == {("ticket.auto_closed.requester", "anna@example.com")}


def test_the_requester_is_not_told_of_their_own_close() -> None:
    by_requester = facts("ticket.closed", actor_id="anna@example.com", actor_role="requester")
    assert heard(by_requester) == set()
    # Known by address alone, whatever the case.
    assert heard(replace(by_requester, actor_role="", actor_id="ANNA@example.com")) == set()


def test_assignment_reaches_the_assignee_unless_they_took_the_ticket_themselves() -> None:
    assigned = facts("ticket.assigned", assignee_id="vera", actor_id="routing")
    [notice] = notices(assigned)
    assert (notice.template, notice.recipient) == ("ticket.assigned.assignee", "vera")
    # Vera prefers Slack.
    assert (notice.channel, notice.address) == (
        Channel.SLACK,
        "https://hooks.slack.com/services/T1/B2/x",
    )
    assert notices(replace(assigned, actor_id="vera", actor_role="agent")) == []


def test_a_ticket_moved_to_a_queue_without_an_agent_is_announced_to_the_queue() -> None:
    assert heard(facts("ticket.assigned", assignee_id="", team="hr")) == {
        ("ticket.queued.team", "gleb")
    }


def test_bad_ratings_reach_the_managers_good_ones_nobody() -> None:
    bad = facts("ticket.rated", rating_score=1, rating_bad=True, actor_role="requester")
    # Olga, a manager, is muted.
    assert heard(bad) == {("ticket.bad_rating.manager", "maria")}
    assert heard(replace(bad, rating_score=5, rating_bad=False)) == set()


def test_sla_warnings_reach_the_assignee_or_else_the_team() -> None:
    warning = facts("sla.warning", sla_metric="resolution", sla_due_at="2025-01-31T09:00:00Z")
    assert heard(warning) == {("sla.warning.assignee", "boris")}
    assert heard(replace(warning, assignee_id="")) == {("sla.warning.team", "it-l1")}


def test_breaches_also_reach_the_managers() -> None:
    breach = facts("sla.breached", sla_metric="first_response")
    assert heard(breach) == {
        ("sla.breached.assignee", "boris"),
        ("sla.breached.manager", "maria"),
    }
    assert heard(replace(breach, assignee_id="", team="hr")) == {
        ("sla.breached.team", "gleb"),
        ("sla.breached.manager", "maria"),
    }


def test_a_manager_who_is_the_assignee_hears_a_breach_once_per_channel() -> None:
    breach = facts("sla.breached", assignee_id="maria")
    assert [(n.template, n.recipient) for n in notices(breach)] == [
        ("sla.breached.assignee", "maria")
    ]


def test_events_that_tell_nobody() -> None:
    for kind in ("ticket.updated", "ticket.linked", "sla.met", "ticket.erased", "other.thing"):
        assert notices(facts(kind)) == []


def test_cloud_event_types_read_like_short_ones() -> None:
    assert heard(facts("helpdesk.ticket.resolved.v1")) == heard(facts("ticket.resolved"))


def test_every_default_template_is_shipped() -> None:
    events = [
        facts("ticket.created"),
        facts("ticket.created", assignee_id=""),
        facts("ticket.commented", comment_author_role="agent", comment_body="hi @vera"),
        facts("ticket.commented", comment_author_role="requester"),
        facts("ticket.commented", comment_author_role="requester", assignee_id=""),
        facts("ticket.status_changed", new_status="pending"),
        facts("ticket.resolved"),
        facts("ticket.closed"),
        facts("ticket.closed", actor_role="system"),
        facts("ticket.assigned", assignee_id=""),
        facts("ticket.rated", rating_bad=True),
        facts("sla.warning"),
        facts("sla.warning", assignee_id=""),
        facts("sla.breached"),
        facts("sla.breached", assignee_id=""),
    ]
    used = {n.template for event in events for n in notices(event)}
    assert used <= TEMPLATE_KEYS
    assert TEMPLATE_KEYS - used == {"ticket.event.watcher"}


# --- mentions, mute, self ---


def test_agents_mentioned_in_a_note_hear_of_it() -> None:
    note = facts(
        "ticket.commented",
        comment_body="@Vera could you look? Also ask @dina. Mail gleb@example.com, not @nobody.",
        comment_internal=True,
        comment_author_role="agent",
        actor_id="boris",
    )
    assert [(n.template, n.recipient, n.audience) for n in notices(note)] == [
        ("ticket.mentioned.agent", "vera", Audience.MENTIONED),
        ("ticket.mentioned.agent", "dina", Audience.MENTIONED),
    ]


def test_mentions_skip_the_author_and_requesters_cannot_page_agents() -> None:
    assert mentioned("ping @boris and @boris again", PEOPLE) == ("boris",)
    by_author = facts(
        "ticket.commented", comment_body="note to self @boris", comment_author_role="agent"
    )
    assert notices(replace(by_author, comment_internal=True, actor_id="boris")) == []
    by_requester = facts(
        "ticket.commented",
        comment_body="@vera help!",
        comment_author_role="requester",
        assignee_id="",
        team="",
    )
    assert notices(by_requester) == []


def test_muted_people_hear_nothing() -> None:
    muted = replace(PEOPLE["boris"], muted=True)
    assert notices(facts("ticket.assigned"), boris=muted) == []


def test_a_requester_who_opted_out_hears_nothing() -> None:
    opted_out = Person("anna@example.com", "Anna", "anna@example.com", muted=True)
    event = facts("ticket.resolved")
    assert notices(event, **{"anna@example.com": opted_out}) == []


def test_people_without_preferences_are_not_reached() -> None:
    assert notices(facts("ticket.assigned", assignee_id="stranger")) == []


def test_the_language_falls_back_to_english() -> None:
    [notice] = notices(facts("ticket.resolved", requester_language="de-AT"))
    assert notice.language == "en"
    [agent] = notices(facts("ticket.assigned"))
    assert agent.language == "ru"


# --- chat requesters ---


def chat(platform: str) -> Facts:
    return facts(
        "ticket.resolved",
        channel="chat",
        requester_email=f"{platform}-42@{platform}.invalid",
        custom_fields={"chat_platform": platform, "chat_id": "42"},
    )


def test_a_telegram_requester_is_answered_in_telegram() -> None:
    [notice] = notices(chat("telegram"))
    assert (notice.channel, notice.recipient, notice.address) == (Channel.TELEGRAM, "42", "42")


def test_a_slack_requester_needs_a_configured_webhook() -> None:
    # Their address is a made-up one in .invalid: no e-mail goes there either.
    assert notices(chat("slack")) == []
    hook = Person("slack:42", channel=Channel.SLACK, slack_webhook_url="https://hooks.slack.com/x")
    [notice] = notices(chat("slack"), **{"slack:42": hook})
    assert (notice.channel, notice.recipient, notice.address) == (
        Channel.SLACK,
        "42",
        "https://hooks.slack.com/x",
    )


def test_a_slack_requester_with_an_e_mail_address_falls_back_to_e_mail() -> None:
    event = replace(chat("slack"), requester_email="anna@example.com")
    [notice] = notices(event)
    assert (notice.channel, notice.address) == (Channel.EMAIL, "anna@example.com")


def test_chat_fields_on_a_ticket_from_another_channel_are_ignored() -> None:
    event = replace(chat("telegram"), channel="email", requester_email="anna@example.com")
    [notice] = notices(event)
    assert notice.channel == Channel.EMAIL


# --- subscriptions ---


def subscription_raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "urgent-to-duty",
        "name": "Urgent incidents to the duty manager",
        "event_types": ["ticket.created", "helpdesk.sla.warning.v1"],
        "conditions": {"priority": ["Urgent", "high"], "category": ["incident"]},
        "person_ids": ["dina"],
        "template": "ticket.event.watcher",
    }
    raw.update(changes)
    return raw


def test_a_subscription_adds_to_the_defaults() -> None:
    subscription = parse_subscription(subscription_raw())
    assert subscription.event_types == frozenset({"ticket.created", "sla.warning"})
    assert subscription.conditions == {
        "priority": frozenset({"urgent", "high"}),
        "category": frozenset({"incident"}),
    }
    found = notices(facts("ticket.created"), (subscription,))
    assert [(n.template, n.recipient, n.audience) for n in found] == [
        ("ticket.created.requester", "anna@example.com", Audience.REQUESTER),
        ("ticket.assigned.assignee", "boris", Audience.ASSIGNEE),
        ("ticket.event.watcher", "dina", Audience.WATCHER),
    ]


def test_a_subscription_holds_only_when_every_condition_does() -> None:
    subscription = parse_subscription(subscription_raw())
    assert heard(facts("ticket.created", priority="low"), (subscription,)) == heard(
        facts("ticket.created", priority="low")
    )
    assert ("ticket.event.watcher", "dina") not in heard(facts("ticket.resolved"), (subscription,))
    disabled = replace(subscription, enabled=False)
    assert ("ticket.event.watcher", "dina") not in heard(facts("ticket.created"), (disabled,))


def test_subscriptions_on_tags_and_custom_fields() -> None:
    subscription = parse_subscription(
        subscription_raw(
            conditions={"tags": ["VIP"], "custom_fields.office": ["  Moscow  HQ "]},
        )
    )
    event = facts("ticket.created", tags=("vip", "vpn"), custom_fields={"office": "moscow hq"})
    assert ("ticket.event.watcher", "dina") in heard(event, (subscription,))
    assert ("ticket.event.watcher", "dina") not in heard(replace(event, tags=()), (subscription,))


def test_a_subscription_does_not_repeat_a_default_notice() -> None:
    subscription = parse_subscription(
        subscription_raw(event_types=["ticket.assigned"], conditions={}, person_ids=["boris"])
    )
    found = notices(facts("ticket.assigned"), (subscription,))
    assert [(n.template, n.recipient) for n in found] == [("ticket.assigned.assignee", "boris")]


def test_a_subscription_channel_applies_where_the_person_has_an_address_for_it() -> None:
    subscription = parse_subscription(
        subscription_raw(person_ids=["vera", "gleb"], channel="slack", conditions={})
    )
    found = notices(facts("ticket.created", assignee_id=""), (subscription,))
    by_person = {n.recipient: n.channel for n in found if n.audience is Audience.WATCHER}
    assert by_person == {"vera": Channel.SLACK, "gleb": Channel.EMAIL}


def test_a_subscription_never_shows_an_internal_note_to_the_requester() -> None:
    subscription = parse_subscription(
        subscription_raw(
            event_types=["ticket.commented"], conditions={}, person_ids=[], audience="requester"
        )
    )
    note = facts(
        "ticket.commented", comment_internal=True, comment_author_role="agent", actor_id="boris"
    )
    assert notices(note, (subscription,)) == []
    reply = replace(note, comment_internal=False)
    assert heard(reply, (subscription,)) == {("ticket.replied.requester", "anna@example.com")}


def test_subscription_audiences() -> None:
    subscription = parse_subscription(
        subscription_raw(
            event_types=["ticket.resolved"], conditions={}, person_ids=[], audience="manager"
        )
    )
    assert ("ticket.event.watcher", "maria") in heard(facts("ticket.resolved"), (subscription,))


def refused(raw: Any, parse: Any = parse_subscription) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse(raw)
    return {v.field: v.description for v in caught.value.violations}


def test_a_bad_subscription_is_refused_naming_every_field() -> None:
    problems = refused(
        subscription_raw(
            id="Bad Id",
            event_types=["ticket.created", "ticket.exploded"],
            conditions={"priority": ["low", "critical"], "colour": ["red"]},
            channel="pigeon",
            template="ticket.fancy",
            extra=1,
        )
    )
    assert set(problems) == {
        "id",
        "event_types[1]",
        "conditions.priority[1]",
        "conditions.colour",
        "channel",
        "template",
        "extra",
    }
    assert problems["event_types[1]"].startswith("unknown event type 'ticket.exploded'")
    assert problems["template"].startswith("unknown template key 'ticket.fancy'")
    assert problems["channel"] == ("must be one of email, webhook, slack, telegram; got 'pigeon'")


def test_a_subscription_must_name_someone_and_something() -> None:
    problems = refused(subscription_raw(person_ids=[], event_types=[], template=""))
    assert problems == {
        "event_types": "name at least one event type",
        "person_ids": "name an audience or at least one person",
        "template": "is required",
    }
    assert "audience" in refused(subscription_raw(audience="watcher"))


def test_subscriptions_round_trip() -> None:
    subscription = parse_subscription(
        subscription_raw(audience="team", channel="Telegram", enabled=False)
    )
    assert subscription.audience is Audience.TEAM
    assert subscription.channel is Channel.TELEGRAM
    assert parse_subscription(dump_subscription(subscription)) == subscription


# --- people ---


def test_a_person_is_read_and_written_back() -> None:
    person = parse_person(
        {
            "id": "dina",
            "name": " Dina ",
            "email": "Dina@Example.com",
            "language": "ru-RU",
            "channel": "telegram",
            "telegram_chat_id": "-1001234567890",
        }
    )
    assert person == Person(
        id="dina",
        name="Dina",
        email="dina@example.com",
        language="ru",
        channel=Channel.TELEGRAM,
        telegram_chat_id="-1001234567890",
    )
    assert parse_person(dump_person(person)) == person


def test_a_person_defaults_to_english_e_mail() -> None:
    person = parse_person({"id": "gleb", "email": "gleb@example.com"})
    assert (person.language, person.channel, person.muted) == ("en", Channel.EMAIL, False)


def test_a_bad_person_is_refused_naming_every_field() -> None:
    problems = refused(
        {
            "id": "",
            "email": "not-an-address",
            "language": "de",
            "webhook_url": "ftp://example.com/hook",
            "slack_webhook_url": "https://user:secret@hooks.slack.com/x",
            "telegram_chat_id": "chat 42",
            "muted": "yes",
            "phone": "+7 900",
        },
        parse_person,
    )
    assert set(problems) == {
        "id",
        "email",
        "language",
        "webhook_url",
        "slack_webhook_url",
        "telegram_chat_id",
        "muted",
        "phone",
    }
    assert problems["webhook_url"] == "must be an http(s) URL; got 'ftp://example.com/hook'"


def test_the_preferred_channel_needs_its_address() -> None:
    assert refused({"id": "vera", "channel": "slack"}, parse_person) == {
        "slack_webhook_url": "is required when the channel is slack"
    }
    assert refused({"id": "vera"}, parse_person) == {
        "email": "is required when the channel is email"
    }
    assert set(refused({"id": "vera", "channel": "fax"}, parse_person)) == {"channel"}


def test_chat_requesters_made_up_addresses_are_no_contact() -> None:
    problems = refused({"id": "x", "email": "telegram-1@telegram.invalid"}, parse_person)
    assert problems["email"].startswith("is in the reserved .invalid domain")
