"""The shipped wording: every notice template in English and Russian, and the labels the
templates show for statuses, priorities, SLA metrics and events.

Templates are Jinja2 (run in the sandbox). Text and subject are plain; HTML is a body fragment,
autoescaped, that the renderer wraps in a document. Subjects start with the ticket token
"[HD-1042]" so that replies by e-mail thread back into the ticket. Whitespace control
(trim_blocks, lstrip_blocks) is on: a line holding only a block tag leaves nothing behind.
"""

from collections.abc import Mapping
from dataclasses import dataclass

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Texts:
    subject: str
    text: str
    html: str


# --- labels ---

STATUS_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "new": "new",
        "open": "open",
        "pending": "waiting on the requester",
        "on_hold": "on hold",
        "resolved": "resolved",
        "closed": "closed",
    },
    "ru": {
        "new": "новая",
        "open": "в работе",
        "pending": "ожидает ответа заявителя",
        "on_hold": "приостановлена",
        "resolved": "решена",
        "closed": "закрыта",
    },
}

PRIORITY_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"},
    "ru": {"low": "низкий", "normal": "обычный", "high": "высокий", "urgent": "срочный"},
}

# Russian labels are in the genitive: templates say "срок {{ sla.metric }}" ("срок решения").
METRIC_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "first_response": "first response",
        "next_response": "next response",
        "resolution": "resolution",
        "periodic_update": "periodic update",
    },
    "ru": {
        "first_response": "первого ответа",
        "next_response": "следующего ответа",
        "resolution": "решения",
        "periodic_update": "регулярного обновления",
    },
}

# What happened, in a few words, for the generic template admin subscriptions use.
EVENT_SUMMARIES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "ticket.created": "New ticket",
        "ticket.updated": "Ticket updated",
        "ticket.status_changed": "Status changed",
        "ticket.reopened": "Ticket reopened",
        "ticket.resolved": "Ticket resolved",
        "ticket.closed": "Ticket closed",
        "ticket.commented": "New reply",
        "ticket.noted": "New internal note",
        "ticket.assigned": "Ticket assigned",
        "ticket.rated": "Ticket rated",
        "ticket.merged": "Ticket merged",
        "ticket.linked": "Ticket linked",
        "sla.warning": "SLA at risk",
        "sla.breached": "SLA breached",
        "sla.met": "SLA target met",
    },
    "ru": {
        "ticket.created": "Новая заявка",
        "ticket.updated": "Заявка изменена",
        "ticket.status_changed": "Статус изменён",
        "ticket.reopened": "Заявка открыта повторно",
        "ticket.resolved": "Заявка решена",
        "ticket.closed": "Заявка закрыта",
        "ticket.commented": "Новый ответ",
        "ticket.noted": "Новая внутренняя заметка",
        "ticket.assigned": "Заявка назначена",
        "ticket.rated": "Заявка оценена",
        "ticket.merged": "Заявка объединена с другой",
        "ticket.linked": "К заявке добавлена связь",
        "sla.warning": "SLA под угрозой",
        "sla.breached": "SLA нарушен",
        "sla.met": "Срок SLA соблюдён",
    },
}

# Counting words: English (one, other); Russian (one, few, many).
UNIT_WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "en": {
        "m": ("minute", "minutes"),
        "h": ("hour", "hours"),
        "d": ("day", "days"),
        "notification": ("notification", "notifications"),
    },
    "ru": {
        "m": ("минута", "минуты", "минут"),
        "h": ("час", "часа", "часов"),
        "d": ("день", "дня", "дней"),
        "notification": ("уведомление", "уведомления", "уведомлений"),
    },
}

DIGEST_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "subject": "{count} from the service desk",
        "intro": "Several notifications came in a short time, so here they are together ({count}):",
    },
    "ru": {
        "subject": "Служба поддержки: {count}",
        "intro": "За короткое время пришло несколько уведомлений, собрали их вместе ({count}):",
    },
}

# --- shared pieces ---

_LABEL_STYLE = "padding:2px 16px 2px 0;color:#666;vertical-align:top"
_QUOTE_STYLE = "margin:12px 0;padding:8px 12px;border-left:3px solid #ccc;color:#333"


def _details(labels: Mapping[str, str]) -> tuple[str, str]:
    """A ticket card for people who work tickets: text lines and an HTML table."""
    rows = (
        ("ticket.subject", labels["subject"], "{{ ticket.subject }}"),
        ("ticket.priority", labels["priority"], "{{ ticket.priority }}"),
        ("ticket.status", labels["status"], "{{ ticket.status }}"),
        ("ticket.team", labels["team"], "{{ ticket.team }}"),
        ("requester.display", labels["requester"], "{{ requester.display }}"),
    )
    text = "".join(
        f"{{% if {key} %}}\n{label}: {value}\n{{% endif %}}\n" for key, label, value in rows
    )
    text += f"{{% if ticket.url %}}\n{labels['open']}: {{{{ ticket.url }}}}\n{{% endif %}}\n"
    html = '<table style="border-collapse:collapse">\n'
    html += "".join(
        f'{{% if {key} %}}\n<tr><td style="{_LABEL_STYLE}">{label}</td><td>{value}</td></tr>\n'
        "{% endif %}\n"
        for key, label, value in rows
    )
    html += "</table>\n"
    html += (
        '{% if ticket.url %}\n<p><a href="{{ ticket.url }}">'
        f"{labels['open_link']} {{{{ ticket.number }}}}</a></p>\n{{% endif %}}\n"
    )
    return text, html


_DETAILS_EN, _DETAILS_EN_HTML = _details(
    {
        "subject": "Subject",
        "priority": "Priority",
        "status": "Status",
        "team": "Queue",
        "requester": "Requester",
        "open": "Open",
        "open_link": "Open ticket",
    }
)
_DETAILS_RU, _DETAILS_RU_HTML = _details(
    {
        "subject": "Тема",
        "priority": "Приоритет",
        "status": "Статус",
        "team": "Очередь",
        "requester": "Заявитель",
        "open": "Открыть",
        "open_link": "Открыть заявку",
    }
)

_QUOTE_TEXT = "\n{{ comment.body }}\n\n"
_QUOTE_HTML = f'<blockquote style="{_QUOTE_STYLE}">{{{{ comment.body | nl2br }}}}</blockquote>\n'

_HELLO_EN = "Hello{% if recipient.name %} {{ recipient.name }}{% endif %},\n\n"
_HELLO_EN_HTML = "<p>Hello{% if recipient.name %} {{ recipient.name }}{% endif %},</p>\n"
_HELLO_RU = "Здравствуйте{% if recipient.name %}, {{ recipient.name }}{% endif %}!\n\n"
_HELLO_RU_HTML = "<p>Здравствуйте{% if recipient.name %}, {{ recipient.name }}{% endif %}!</p>\n"

_TRACK_EN = "{% if ticket.url %}\nFollow your request at {{ ticket.url }}\n\n{% endif %}\n"
_TRACK_EN_HTML = (
    '{% if ticket.url %}\n<p><a href="{{ ticket.url }}">Follow request {{ ticket.number }}</a>'
    "</p>\n{% endif %}\n"
)
_TRACK_RU = "{% if ticket.url %}\nСледить за заявкой: {{ ticket.url }}\n\n{% endif %}\n"
_TRACK_RU_HTML = (
    '{% if ticket.url %}\n<p><a href="{{ ticket.url }}">Заявка {{ ticket.number }} на портале</a>'
    "</p>\n{% endif %}\n"
)

# Chat requesters answer in the chat; everyone else by e-mail, which threads by the token.
_ADD_EN = (
    '{% if delivery.channel == "email" %}\n'
    "To add details, reply to this e-mail and keep [{{ ticket.number }}] in the subject.\n"
    "{% else %}\nTo add details, reply in this chat.\n{% endif %}\n"
)
_ADD_EN_HTML = (
    "<p>To add details, reply to this e-mail and keep [{{ ticket.number }}] in the subject.</p>\n"
)
_ADD_RU = (
    '{% if delivery.channel == "email" %}\n'
    "Чтобы дополнить заявку, ответьте на это письмо, сохранив [{{ ticket.number }}] в теме.\n"
    "{% else %}\nЧтобы дополнить заявку, ответьте в этом чате.\n{% endif %}\n"
)
_ADD_RU_HTML = (
    "<p>Чтобы дополнить заявку, ответьте на это письмо, сохранив [{{ ticket.number }}] в теме."
    "</p>\n"
)
_REPLY_EN = (
    '{% if delivery.channel == "email" %}reply to this e-mail{% else %}reply in this chat'
    "{% endif %}"
)
_REPLY_RU = (
    '{% if delivery.channel == "email" %}ответьте на это письмо{% else %}ответьте в этом чате'
    "{% endif %}"
)

_SIGN_EN = "\n— Service desk"
_SIGN_EN_HTML = "<p>— Service desk</p>"
_SIGN_RU = "\n— Служба поддержки"
_SIGN_RU_HTML = "<p>— Служба поддержки</p>"

_UNASSIGNED_EN = "Nobody is assigned to the ticket yet: please pick it up."
_UNASSIGNED_RU = "Заявка пока ни на кого не назначена — возьмите её в работу."

_DUE_EN = "{% if sla.due_at %} by {{ sla.due_at }}{% endif %}"
_DUE_RU = "{% if sla.due_at %} — до {{ sla.due_at }}{% endif %}"
_WAS_DUE_EN = "{% if sla.due_at %} (it was due {{ sla.due_at }}){% endif %}"
_WAS_DUE_RU = "{% if sla.due_at %} (срок истёк {{ sla.due_at }}){% endif %}"
_SUBJECT_TAIL = "{% if ticket.subject %}: {{ ticket.subject }}{% endif %}"
_ABOUT_EN = '{% if ticket.subject %} ("{{ ticket.subject }}"){% endif %}'
_ABOUT_EN_HTML = "{% if ticket.subject %} ({{ ticket.subject }}){% endif %}"
_ABOUT_RU = "{% if ticket.subject %} «{{ ticket.subject }}»{% endif %}"


def _paragraphs(*lines: str) -> str:
    return "".join(f"<p>{line}</p>\n" for line in lines)


# --- the templates ---

_EN: dict[str, Texts] = {
    "ticket.created.requester": Texts(
        subject="[{{ ticket.number }}] Request received" + _SUBJECT_TAIL,
        text=_HELLO_EN + "We have received your request and registered it as {{ ticket.number }}.\n"
        "{% if ticket.subject %}\nSubject: {{ ticket.subject }}\n{% endif %}\n"
        "{% if resolution_time %}\n"
        "Typical resolution time for requests like this: {{ resolution_time }}.\n"
        "{% endif %}\n\n" + _TRACK_EN + _ADD_EN + _SIGN_EN,
        html=_HELLO_EN_HTML
        + _paragraphs(
            "We have received your request and registered it as <b>{{ ticket.number }}</b>."
            "{% if ticket.subject %}<br>Subject: {{ ticket.subject }}{% endif %}"
        )
        + "{% if resolution_time %}\n"
        "<p>Typical resolution time for requests like this: {{ resolution_time }}.</p>\n"
        "{% endif %}\n" + _TRACK_EN_HTML + _ADD_EN_HTML + _SIGN_EN_HTML,
    ),
    "ticket.replied.requester": Texts(
        subject="[{{ ticket.number }}] New reply to your request" + _SUBJECT_TAIL,
        text=_HELLO_EN
        + "There is a new reply to your request {{ ticket.number }}:\n"
        + _QUOTE_TEXT
        + _TRACK_EN
        + _ADD_EN
        + "\n— {% if agent.name %}{{ agent.name }}, {% endif %}Service desk",
        html=_HELLO_EN_HTML
        + _paragraphs("There is a new reply to your request <b>{{ ticket.number }}</b>:")
        + _QUOTE_HTML
        + _TRACK_EN_HTML
        + _ADD_EN_HTML
        + "<p>— {% if agent.name %}{{ agent.name }}, {% endif %}Service desk</p>",
    ),
    "ticket.pending.requester": Texts(
        subject="[{{ ticket.number }}] We need your reply" + _SUBJECT_TAIL,
        text=_HELLO_EN
        + "To continue working on your request {{ ticket.number }}"
        + _ABOUT_EN
        + ", we need more information from you. "
        "Please read our latest message{% if ticket.url %} at {{ ticket.url }}{% endif %} "
        "and " + _REPLY_EN + ".\n\n"
        "If we do not hear back, the request may be closed automatically in a few days.\n"
        + _SIGN_EN,
        html=_HELLO_EN_HTML
        + _paragraphs(
            "To continue working on your request <b>{{ ticket.number }}</b>"
            + _ABOUT_EN_HTML
            + ", we need more information from you. Please read our latest "
            'message{% if ticket.url %} <a href="{{ ticket.url }}">on the portal</a>{% endif %} '
            "and reply to this e-mail.",
            "If we do not hear back, the request may be closed automatically in a few days.",
        )
        + _SIGN_EN_HTML,
    ),
    "ticket.resolved.requester": Texts(
        subject="[{{ ticket.number }}] Your request is resolved" + _SUBJECT_TAIL,
        text=_HELLO_EN + "Your request {{ ticket.number }}" + _ABOUT_EN + " has been resolved.\n"
        "{% if survey_url %}\n\n"
        "How did we do? Please rate our help, it takes a few seconds:\n"
        "{{ survey_url }}\n"
        "{% endif %}\n\n"
        "If the problem is still there, just "
        + _REPLY_EN
        + " and the request will be reopened.\n"
        + _SIGN_EN,
        html=_HELLO_EN_HTML
        + _paragraphs(
            "Your request <b>{{ ticket.number }}</b>" + _ABOUT_EN_HTML + " has been resolved."
        )
        + "{% if survey_url %}\n"
        '<p>How did we do? <a href="{{ survey_url }}">Please rate our help</a>, '
        "it takes a few seconds.</p>\n"
        "{% endif %}\n"
        + _paragraphs(
            "If the problem is still there, just reply to this e-mail and the request will be "
            "reopened."
        )
        + _SIGN_EN_HTML,
    ),
    "ticket.closed.requester": Texts(
        subject="[{{ ticket.number }}] Request closed" + _SUBJECT_TAIL,
        text=_HELLO_EN + "Your request {{ ticket.number }}" + _ABOUT_EN + " is now closed. "
        "Thank you for contacting us.\n\n"
        "If you need help again, " + _REPLY_EN + " and we will open a new request.\n" + _SIGN_EN,
        html=_HELLO_EN_HTML
        + _paragraphs(
            "Your request <b>{{ ticket.number }}</b>" + _ABOUT_EN_HTML + " is now closed. "
            "Thank you for contacting us.",
            "If you need help again, reply to this e-mail and we will open a new request.",
        )
        + _SIGN_EN_HTML,
    ),
    "ticket.auto_closed.requester": Texts(
        subject="[{{ ticket.number }}] Request closed after no reply" + _SUBJECT_TAIL,
        text=_HELLO_EN
        + "We were waiting for your reply on request {{ ticket.number }}"
        + _ABOUT_EN
        + " "
        "but have not heard back, so we have closed it.\n\n"
        "If you still need help, " + _REPLY_EN + " and we will open a new request.\n" + _SIGN_EN,
        html=_HELLO_EN_HTML
        + _paragraphs(
            "We were waiting for your reply on request <b>{{ ticket.number }}</b>"
            + _ABOUT_EN_HTML
            + " but have not heard back, so we have closed it.",
            "If you still need help, reply to this e-mail and we will open a new request.",
        )
        + _SIGN_EN_HTML,
    ),
    "ticket.assigned.assignee": Texts(
        subject="[{{ ticket.number }}] Assigned to you" + _SUBJECT_TAIL,
        text=_HELLO_EN + "Ticket {{ ticket.number }} has been assigned to you.\n\n" + _DETAILS_EN,
        html=_HELLO_EN_HTML
        + _paragraphs("Ticket <b>{{ ticket.number }}</b> has been assigned to you.")
        + _DETAILS_EN_HTML,
    ),
    "ticket.requester_replied.assignee": Texts(
        subject="[{{ ticket.number }}] Requester replied" + _SUBJECT_TAIL,
        text="New reply from the requester{% if requester.name %} ({{ requester.name }}){% endif %}"
        " on ticket {{ ticket.number }}:\n" + _QUOTE_TEXT + _DETAILS_EN,
        html=_paragraphs(
            "New reply from the requester{% if requester.name %} ({{ requester.name }}){% endif %}"
            " on ticket <b>{{ ticket.number }}</b>:"
        )
        + _QUOTE_HTML
        + _DETAILS_EN_HTML,
    ),
    "ticket.requester_replied.team": Texts(
        subject="[{{ ticket.number }}] Requester replied, nobody assigned" + _SUBJECT_TAIL,
        text="New reply from the requester{% if requester.name %} ({{ requester.name }}){% endif %}"
        " on ticket {{ ticket.number }}:\n" + _QUOTE_TEXT + _UNASSIGNED_EN + "\n\n" + _DETAILS_EN,
        html=_paragraphs(
            "New reply from the requester{% if requester.name %} ({{ requester.name }}){% endif %}"
            " on ticket <b>{{ ticket.number }}</b>:"
        )
        + _QUOTE_HTML
        + _paragraphs(_UNASSIGNED_EN)
        + _DETAILS_EN_HTML,
    ),
    "ticket.queued.team": Texts(
        subject="[{{ ticket.number }}] New ticket in queue {{ ticket.team }}" + _SUBJECT_TAIL,
        text="A new ticket is waiting in the {{ ticket.team }} queue. "
        + _UNASSIGNED_EN
        + "\n\n"
        + _DETAILS_EN,
        html=_paragraphs(
            "A new ticket is waiting in the <b>{{ ticket.team }}</b> queue. " + _UNASSIGNED_EN
        )
        + _DETAILS_EN_HTML,
    ),
    "ticket.mentioned.agent": Texts(
        subject="[{{ ticket.number }}] You were mentioned" + _SUBJECT_TAIL,
        text="{% if author.name %}{{ author.name }} mentioned you{% else %}You were mentioned"
        "{% endif %} in {% if comment.internal %}an internal note{% else %}a reply{% endif %}"
        " on ticket {{ ticket.number }}:\n" + _QUOTE_TEXT + _DETAILS_EN,
        html=_paragraphs(
            "{% if author.name %}{{ author.name }} mentioned you{% else %}You were mentioned"
            "{% endif %} in {% if comment.internal %}an internal note{% else %}a reply{% endif %}"
            " on ticket <b>{{ ticket.number }}</b>:"
        )
        + _QUOTE_HTML
        + _DETAILS_EN_HTML,
    ),
    "sla.warning.assignee": Texts(
        subject="[{{ ticket.number }}] SLA at risk: {{ sla.metric }}" + _DUE_EN,
        text="Ticket {{ ticket.number }} is at risk of breaching its SLA: the {{ sla.metric }} "
        "target is due" + _DUE_EN + ".\n\nPlease act on it before the deadline.\n\n" + _DETAILS_EN,
        html=_paragraphs(
            "Ticket <b>{{ ticket.number }}</b> is at risk of breaching its SLA: the "
            "{{ sla.metric }} target is due" + _DUE_EN + ".",
            "Please act on it before the deadline.",
        )
        + _DETAILS_EN_HTML,
    ),
    "sla.warning.team": Texts(
        subject="[{{ ticket.number }}] SLA at risk, nobody assigned: {{ sla.metric }}" + _DUE_EN,
        text="Ticket {{ ticket.number }} is at risk of breaching its SLA: the {{ sla.metric }} "
        "target is due" + _DUE_EN + ".\n\n" + _UNASSIGNED_EN + "\n\n" + _DETAILS_EN,
        html=_paragraphs(
            "Ticket <b>{{ ticket.number }}</b> is at risk of breaching its SLA: the "
            "{{ sla.metric }} target is due" + _DUE_EN + ".",
            _UNASSIGNED_EN,
        )
        + _DETAILS_EN_HTML,
    ),
    "sla.breached.assignee": Texts(
        subject="[{{ ticket.number }}] SLA breached: {{ sla.metric }}",
        text="The {{ sla.metric }} target of ticket {{ ticket.number }} was missed"
        + _WAS_DUE_EN
        + ".\n\nPlease deal with the ticket as soon as possible.\n\n"
        + _DETAILS_EN,
        html=_paragraphs(
            "The {{ sla.metric }} target of ticket <b>{{ ticket.number }}</b> was missed"
            + _WAS_DUE_EN
            + ".",
            "Please deal with the ticket as soon as possible.",
        )
        + _DETAILS_EN_HTML,
    ),
    "sla.breached.team": Texts(
        subject="[{{ ticket.number }}] SLA breached, nobody assigned: {{ sla.metric }}",
        text="The {{ sla.metric }} target of ticket {{ ticket.number }} was missed"
        + _WAS_DUE_EN
        + ".\n\n"
        + _UNASSIGNED_EN
        + "\n\n"
        + _DETAILS_EN,
        html=_paragraphs(
            "The {{ sla.metric }} target of ticket <b>{{ ticket.number }}</b> was missed"
            + _WAS_DUE_EN
            + ".",
            _UNASSIGNED_EN,
        )
        + _DETAILS_EN_HTML,
    ),
    "sla.breached.manager": Texts(
        subject="[{{ ticket.number }}] SLA breached: {{ sla.metric }}",
        text="The {{ sla.metric }} target of ticket {{ ticket.number }} was missed"
        + _WAS_DUE_EN
        + ".\n"
        "{% if assignee.name %}Assignee: {{ assignee.name }}.{% else %}The ticket has no assignee."
        "{% endif %}\n\n\n" + _DETAILS_EN,
        html=_paragraphs(
            "The {{ sla.metric }} target of ticket <b>{{ ticket.number }}</b> was missed"
            + _WAS_DUE_EN
            + ".",
            "{% if assignee.name %}Assignee: {{ assignee.name }}.{% else %}The ticket has no "
            "assignee.{% endif %}",
        )
        + _DETAILS_EN_HTML,
    ),
    "ticket.bad_rating.manager": Texts(
        subject="[{{ ticket.number }}] Bad rating{% if rating.score %} ({{ rating.score }}/5)"
        "{% endif %}" + _SUBJECT_TAIL,
        text="The requester{% if requester.name %} ({{ requester.name }}){% endif %} rated the help"
        " on ticket {{ ticket.number }}{% if rating.score %}: {{ rating.score }} out of 5"
        "{% endif %}.\n"
        "{% if rating.comment %}\n\nTheir comment:\n{{ rating.comment }}\n{% endif %}\n\n"
        "The ticket will not close until someone reviews it."
        "{% if assignee.name %} Assignee: {{ assignee.name }}.{% endif %}\n\n\n" + _DETAILS_EN,
        html=_paragraphs(
            "The requester{% if requester.name %} ({{ requester.name }}){% endif %} rated the help"
            " on ticket <b>{{ ticket.number }}</b>"
            "{% if rating.score %}: {{ rating.score }} out of 5{% endif %}."
        )
        + "{% if rating.comment %}\n<p>Their comment:</p>\n"
        f'<blockquote style="{_QUOTE_STYLE}">{{{{ rating.comment | nl2br }}}}</blockquote>\n'
        "{% endif %}\n"
        + _paragraphs(
            "The ticket will not close until someone reviews it."
            "{% if assignee.name %} Assignee: {{ assignee.name }}.{% endif %}"
        )
        + _DETAILS_EN_HTML,
    ),
    "ticket.event.watcher": Texts(
        subject="[{{ ticket.number }}] {{ event.summary }}" + _SUBJECT_TAIL,
        text="{{ event.summary }}: ticket {{ ticket.number }}.\n"
        "{% if comment.body %}\n" + _QUOTE_TEXT + "{% endif %}\n\n\n" + _DETAILS_EN,
        html=_paragraphs("{{ event.summary }}: ticket <b>{{ ticket.number }}</b>.")
        + "{% if comment.body %}\n"
        + _QUOTE_HTML
        + "{% endif %}\n"
        + _DETAILS_EN_HTML,
    ),
}

_RU: dict[str, Texts] = {
    "ticket.created.requester": Texts(
        subject="[{{ ticket.number }}] Заявка принята" + _SUBJECT_TAIL,
        text=_HELLO_RU
        + "Мы получили ваше обращение и зарегистрировали его под номером {{ ticket.number }}.\n"
        "{% if ticket.subject %}\nТема: {{ ticket.subject }}\n{% endif %}\n"
        "{% if resolution_time %}\n"
        "Обычное время решения таких заявок — {{ resolution_time }}.\n"
        "{% endif %}\n\n" + _TRACK_RU + _ADD_RU + _SIGN_RU,
        html=_HELLO_RU_HTML
        + _paragraphs(
            "Мы получили ваше обращение и зарегистрировали его под номером "
            "<b>{{ ticket.number }}</b>."
            "{% if ticket.subject %}<br>Тема: {{ ticket.subject }}{% endif %}"
        )
        + "{% if resolution_time %}\n"
        "<p>Обычное время решения таких заявок — {{ resolution_time }}.</p>\n"
        "{% endif %}\n" + _TRACK_RU_HTML + _ADD_RU_HTML + _SIGN_RU_HTML,
    ),
    "ticket.replied.requester": Texts(
        subject="[{{ ticket.number }}] Новый ответ по вашей заявке" + _SUBJECT_TAIL,
        text=_HELLO_RU
        + "По вашей заявке {{ ticket.number }} есть новый ответ:\n"
        + _QUOTE_TEXT
        + _TRACK_RU
        + _ADD_RU
        + "\n— {% if agent.name %}{{ agent.name }}, служба поддержки{% else %}Служба поддержки"
        "{% endif %}",
        html=_HELLO_RU_HTML
        + _paragraphs("По вашей заявке <b>{{ ticket.number }}</b> есть новый ответ:")
        + _QUOTE_HTML
        + _TRACK_RU_HTML
        + _ADD_RU_HTML
        + "<p>— {% if agent.name %}{{ agent.name }}, служба поддержки{% else %}Служба поддержки"
        "{% endif %}</p>",
    ),
    "ticket.pending.requester": Texts(
        subject="[{{ ticket.number }}] Нужен ваш ответ" + _SUBJECT_TAIL,
        text=_HELLO_RU + "Чтобы продолжить работу по заявке {{ ticket.number }}" + _ABOUT_RU + ", "
        "нам нужна дополнительная информация от вас. Пожалуйста, прочитайте наше последнее "
        "сообщение{% if ticket.url %} ({{ ticket.url }}){% endif %} и " + _REPLY_RU + ".\n\n"
        "Если ответа не будет, через несколько дней заявка может быть закрыта автоматически.\n"
        + _SIGN_RU,
        html=_HELLO_RU_HTML
        + _paragraphs(
            "Чтобы продолжить работу по заявке <b>{{ ticket.number }}</b>" + _ABOUT_RU + ", "
            "нам нужна дополнительная информация от вас. Пожалуйста, прочитайте наше последнее "
            'сообщение{% if ticket.url %} <a href="{{ ticket.url }}">на портале</a>{% endif %} '
            "и ответьте на это письмо.",
            "Если ответа не будет, через несколько дней заявка может быть закрыта автоматически.",
        )
        + _SIGN_RU_HTML,
    ),
    "ticket.resolved.requester": Texts(
        subject="[{{ ticket.number }}] Ваша заявка решена" + _SUBJECT_TAIL,
        text=_HELLO_RU + "Ваша заявка {{ ticket.number }}" + _ABOUT_RU + " решена.\n"
        "{% if survey_url %}\n\n"
        "Пожалуйста, оцените нашу работу — это займёт несколько секунд:\n"
        "{{ survey_url }}\n"
        "{% endif %}\n\n"
        "Если проблема осталась, просто " + _REPLY_RU + ", и заявка снова откроется.\n" + _SIGN_RU,
        html=_HELLO_RU_HTML
        + _paragraphs("Ваша заявка <b>{{ ticket.number }}</b>" + _ABOUT_RU + " решена.")
        + "{% if survey_url %}\n"
        '<p>Пожалуйста, <a href="{{ survey_url }}">оцените нашу работу</a> — '
        "это займёт несколько секунд.</p>\n"
        "{% endif %}\n"
        + _paragraphs(
            "Если проблема осталась, просто ответьте на это письмо, и заявка снова откроется."
        )
        + _SIGN_RU_HTML,
    ),
    "ticket.closed.requester": Texts(
        subject="[{{ ticket.number }}] Заявка закрыта" + _SUBJECT_TAIL,
        text=_HELLO_RU + "Ваша заявка {{ ticket.number }}" + _ABOUT_RU + " закрыта. "
        "Спасибо, что обратились к нам.\n\n"
        "Если снова понадобится помощь, " + _REPLY_RU + ", и мы откроем новую заявку.\n" + _SIGN_RU,
        html=_HELLO_RU_HTML
        + _paragraphs(
            "Ваша заявка <b>{{ ticket.number }}</b>" + _ABOUT_RU + " закрыта. "
            "Спасибо, что обратились к нам.",
            "Если снова понадобится помощь, ответьте на это письмо, и мы откроем новую заявку.",
        )
        + _SIGN_RU_HTML,
    ),
    "ticket.auto_closed.requester": Texts(
        subject="[{{ ticket.number }}] Заявка закрыта автоматически" + _SUBJECT_TAIL,
        text=_HELLO_RU + "Мы ждали вашего ответа по заявке {{ ticket.number }}" + _ABOUT_RU + ", "
        "но так и не получили его, поэтому заявка закрыта.\n\n"
        "Если помощь всё ещё нужна, " + _REPLY_RU + ", и мы откроем новую заявку.\n" + _SIGN_RU,
        html=_HELLO_RU_HTML
        + _paragraphs(
            "Мы ждали вашего ответа по заявке <b>{{ ticket.number }}</b>" + _ABOUT_RU + ", "
            "но так и не получили его, поэтому заявка закрыта.",
            "Если помощь всё ещё нужна, ответьте на это письмо, и мы откроем новую заявку.",
        )
        + _SIGN_RU_HTML,
    ),
    "ticket.assigned.assignee": Texts(
        subject="[{{ ticket.number }}] Вам назначена заявка" + _SUBJECT_TAIL,
        text=_HELLO_RU + "Вам назначена заявка {{ ticket.number }}.\n\n" + _DETAILS_RU,
        html=_HELLO_RU_HTML
        + _paragraphs("Вам назначена заявка <b>{{ ticket.number }}</b>.")
        + _DETAILS_RU_HTML,
    ),
    "ticket.requester_replied.assignee": Texts(
        subject="[{{ ticket.number }}] Ответ заявителя" + _SUBJECT_TAIL,
        text="Новый ответ заявителя{% if requester.name %} ({{ requester.name }}){% endif %}"
        " по заявке {{ ticket.number }}:\n" + _QUOTE_TEXT + _DETAILS_RU,
        html=_paragraphs(
            "Новый ответ заявителя{% if requester.name %} ({{ requester.name }}){% endif %}"
            " по заявке <b>{{ ticket.number }}</b>:"
        )
        + _QUOTE_HTML
        + _DETAILS_RU_HTML,
    ),
    "ticket.requester_replied.team": Texts(
        subject="[{{ ticket.number }}] Ответ заявителя, исполнитель не назначен" + _SUBJECT_TAIL,
        text="Новый ответ заявителя{% if requester.name %} ({{ requester.name }}){% endif %}"
        " по заявке {{ ticket.number }}:\n" + _QUOTE_TEXT + _UNASSIGNED_RU + "\n\n" + _DETAILS_RU,
        html=_paragraphs(
            "Новый ответ заявителя{% if requester.name %} ({{ requester.name }}){% endif %}"
            " по заявке <b>{{ ticket.number }}</b>:"
        )
        + _QUOTE_HTML
        + _paragraphs(_UNASSIGNED_RU)
        + _DETAILS_RU_HTML,
    ),
    "ticket.queued.team": Texts(
        subject="[{{ ticket.number }}] Новая заявка в очереди {{ ticket.team }}" + _SUBJECT_TAIL,
        text="В очереди {{ ticket.team }} новая заявка, она пока ни на кого не назначена — "
        "возьмите её в работу.\n\n" + _DETAILS_RU,
        html=_paragraphs(
            "В очереди <b>{{ ticket.team }}</b> новая заявка, она пока ни на кого не назначена — "
            "возьмите её в работу."
        )
        + _DETAILS_RU_HTML,
    ),
    "ticket.mentioned.agent": Texts(
        subject="[{{ ticket.number }}] Вас упомянули" + _SUBJECT_TAIL,
        text="Вас упомянули в {% if comment.internal %}внутренней заметке{% else %}ответе"
        "{% endif %} по заявке {{ ticket.number }}{% if author.name %} (автор: {{ author.name }})"
        "{% endif %}:\n" + _QUOTE_TEXT + _DETAILS_RU,
        html=_paragraphs(
            "Вас упомянули в {% if comment.internal %}внутренней заметке{% else %}ответе"
            "{% endif %} по заявке <b>{{ ticket.number }}</b>{% if author.name %} "
            "(автор: {{ author.name }}){% endif %}:"
        )
        + _QUOTE_HTML
        + _DETAILS_RU_HTML,
    ),
    "sla.warning.assignee": Texts(
        subject="[{{ ticket.number }}] SLA под угрозой: срок {{ sla.metric }}" + _DUE_RU,
        text="Заявка {{ ticket.number }} под угрозой нарушения SLA: срок {{ sla.metric }}"
        + _DUE_RU
        + ".\n\nПожалуйста, займитесь ею, пока срок не истёк.\n\n"
        + _DETAILS_RU,
        html=_paragraphs(
            "Заявка <b>{{ ticket.number }}</b> под угрозой нарушения SLA: срок {{ sla.metric }}"
            + _DUE_RU
            + ".",
            "Пожалуйста, займитесь ею, пока срок не истёк.",
        )
        + _DETAILS_RU_HTML,
    ),
    "sla.warning.team": Texts(
        subject="[{{ ticket.number }}] SLA под угрозой, исполнитель не назначен: срок "
        "{{ sla.metric }}" + _DUE_RU,
        text="Заявка {{ ticket.number }} под угрозой нарушения SLA: срок {{ sla.metric }}"
        + _DUE_RU
        + ".\n\n"
        + _UNASSIGNED_RU
        + "\n\n"
        + _DETAILS_RU,
        html=_paragraphs(
            "Заявка <b>{{ ticket.number }}</b> под угрозой нарушения SLA: срок {{ sla.metric }}"
            + _DUE_RU
            + ".",
            _UNASSIGNED_RU,
        )
        + _DETAILS_RU_HTML,
    ),
    "sla.breached.assignee": Texts(
        subject="[{{ ticket.number }}] SLA нарушен: срок {{ sla.metric }}",
        text="По заявке {{ ticket.number }} нарушен SLA: пропущен срок {{ sla.metric }}"
        + _WAS_DUE_RU
        + ".\n\nПожалуйста, займитесь заявкой как можно скорее.\n\n"
        + _DETAILS_RU,
        html=_paragraphs(
            "По заявке <b>{{ ticket.number }}</b> нарушен SLA: пропущен срок {{ sla.metric }}"
            + _WAS_DUE_RU
            + ".",
            "Пожалуйста, займитесь заявкой как можно скорее.",
        )
        + _DETAILS_RU_HTML,
    ),
    "sla.breached.team": Texts(
        subject="[{{ ticket.number }}] SLA нарушен, исполнитель не назначен: срок {{ sla.metric }}",
        text="По заявке {{ ticket.number }} нарушен SLA: пропущен срок {{ sla.metric }}"
        + _WAS_DUE_RU
        + ".\n\n"
        + _UNASSIGNED_RU
        + "\n\n"
        + _DETAILS_RU,
        html=_paragraphs(
            "По заявке <b>{{ ticket.number }}</b> нарушен SLA: пропущен срок {{ sla.metric }}"
            + _WAS_DUE_RU
            + ".",
            _UNASSIGNED_RU,
        )
        + _DETAILS_RU_HTML,
    ),
    "sla.breached.manager": Texts(
        subject="[{{ ticket.number }}] SLA нарушен: срок {{ sla.metric }}",
        text="По заявке {{ ticket.number }} нарушен SLA: пропущен срок {{ sla.metric }}"
        + _WAS_DUE_RU
        + ".\n"
        "{% if assignee.name %}Исполнитель: {{ assignee.name }}.{% else %}Исполнитель не назначен."
        "{% endif %}\n\n\n" + _DETAILS_RU,
        html=_paragraphs(
            "По заявке <b>{{ ticket.number }}</b> нарушен SLA: пропущен срок {{ sla.metric }}"
            + _WAS_DUE_RU
            + ".",
            "{% if assignee.name %}Исполнитель: {{ assignee.name }}.{% else %}Исполнитель не "
            "назначен.{% endif %}",
        )
        + _DETAILS_RU_HTML,
    ),
    "ticket.bad_rating.manager": Texts(
        subject="[{{ ticket.number }}] Низкая оценка{% if rating.score %} ({{ rating.score }} из 5)"
        "{% endif %}" + _SUBJECT_TAIL,
        text="Заявитель{% if requester.name %} ({{ requester.name }}){% endif %} оценил помощь"
        " по заявке {{ ticket.number }}{% if rating.score %} на {{ rating.score }} из 5{% endif %}"
        ".\n"
        "{% if rating.comment %}\n\nКомментарий заявителя:\n{{ rating.comment }}\n{% endif %}\n\n"
        "Заявка не закроется, пока её не разберут."
        "{% if assignee.name %} Исполнитель: {{ assignee.name }}.{% endif %}\n\n\n" + _DETAILS_RU,
        html=_paragraphs(
            "Заявитель{% if requester.name %} ({{ requester.name }}){% endif %} оценил помощь"
            " по заявке <b>{{ ticket.number }}</b>{% if rating.score %} на {{ rating.score }} из 5"
            "{% endif %}."
        )
        + "{% if rating.comment %}\n<p>Комментарий заявителя:</p>\n"
        f'<blockquote style="{_QUOTE_STYLE}">{{{{ rating.comment | nl2br }}}}</blockquote>\n'
        "{% endif %}\n"
        + _paragraphs(
            "Заявка не закроется, пока её не разберут."
            "{% if assignee.name %} Исполнитель: {{ assignee.name }}.{% endif %}"
        )
        + _DETAILS_RU_HTML,
    ),
    "ticket.event.watcher": Texts(
        subject="[{{ ticket.number }}] {{ event.summary }}" + _SUBJECT_TAIL,
        text="{{ event.summary }}: заявка {{ ticket.number }}.\n"
        "{% if comment.body %}\n" + _QUOTE_TEXT + "{% endif %}\n\n\n" + _DETAILS_RU,
        html=_paragraphs("{{ event.summary }}: заявка <b>{{ ticket.number }}</b>.")
        + "{% if comment.body %}\n"
        + _QUOTE_HTML
        + "{% endif %}\n"
        + _DETAILS_RU_HTML,
    ),
}

SHIPPED: Mapping[tuple[str, str], Texts] = {
    **{(key, "en"): texts for key, texts in _EN.items()},
    **{(key, "ru"): texts for key, texts in _RU.items()},
}

TEMPLATE_KEYS: frozenset[str] = frozenset(_EN)
