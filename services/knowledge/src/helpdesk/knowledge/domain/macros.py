"""Macros: a canned reply with placeholders, and the ticket changes that go with it.

A macro's body is a Jinja2 template limited to what a reply needs: documented placeholders
(`{{ requester.name }}`), a few text filters (`{{ requester.name | default("colleague") }}`)
and `{% if %}`. Loops, assignments, calls, arithmetic and attribute access beyond the
placeholders are refused when the macro is saved; rendering runs in Jinja2's sandbox as well,
with a missing value an error rather than an empty string.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from helpdesk.core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from helpdesk.knowledge.domain import payload
from helpdesk.knowledge.domain.articles import Visibility
from helpdesk.knowledge.domain.payload import Problems, path


class TicketStatus(StrEnum):
    """The statuses a macro may set; new and closed are the ticket's lifecycle to set."""

    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"


# The documented placeholders and what they hold.
PLACEHOLDERS: Mapping[str, str] = {
    "ticket.number": "the ticket's number, e.g. HD-1042",
    "ticket.subject": "the ticket's subject",
    "ticket.status": "the ticket's status, e.g. pending",
    "ticket.priority": "the ticket's priority, e.g. high",
    "ticket.category": "the ticket's category, e.g. incident",
    "ticket.url": "the ticket's page in the portal",
    "requester.name": "the requester's name",
    "requester.email": "the requester's e-mail address",
    "requester.organization": "the requester's organisation",
    "agent.name": "the name of the agent applying the macro",
    "agent.email": "the e-mail address of the agent applying the macro",
    "team.name": "the name of the ticket's team",
}
ROOTS = frozenset(name.split(".", 1)[0] for name in PLACEHOLDERS)
FILTERS = frozenset({"capitalize", "default", "lower", "title", "trim", "truncate", "upper"})
TESTS = frozenset({"defined", "undefined", "none"})
MAX_BODY = 20_000
MACRO_FIELDS = ("id", "name", "body", "actions", "visibility")
ACTION_FIELDS = ("status", "add_tags")

# Nodes a reply template is made of; anything else is refused by name.
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    # Literal lists for `in`: {% if ticket.priority in ["high", "urgent"] %}
    nodes.List,
    nodes.Tuple,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
)
_REFUSED_NAMES: Mapping[type[nodes.Node], str] = {
    nodes.For: "{% for %} loops",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Call: "calls",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.FilterBlock: "{% filter %} blocks",
    nodes.BinExpr: "arithmetic",
    nodes.UnaryExpr: "arithmetic",
    nodes.Slice: "slices",
}

_SAMPLE = {
    root: {name.split(".", 1)[1]: name for name in PLACEHOLDERS if name.startswith(f"{root}.")}
    for root in ROOTS
}

# Replies are plain text; a channel that shows them as HTML escapes them itself.
# Immutable: a macro must not change the ticket data it is shown.
_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)


@dataclass(frozen=True)
class MacroActions:
    # None leaves the status as it is.
    status: TicketStatus | None = None
    add_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Macro:
    id: str
    name: str
    # A template; "" for a macro that only changes the ticket.
    body: str
    actions: MacroActions = MacroActions()
    # Public: a reply the requester receives; internal: a note for agents.
    visibility: Visibility = Visibility.PUBLIC


@dataclass(frozen=True)
class RenderedMacro:
    """A macro applied to one ticket: the reply to send and the changes to make."""

    text: str
    status: TicketStatus | None
    tags: tuple[str, ...]
    visibility: Visibility


def parse_macro(raw: Mapping[str, Any]) -> Macro:
    """An admin's macro payload, checked; raises InvalidArgument naming each bad field,
    with the body's problems by line."""
    problems: Problems = []
    checked = payload.top(raw)
    payload.unknown_fields(checked, MACRO_FIELDS, "", problems)
    macro_id = payload.token(
        checked.get("id"), "id", problems, pattern=payload.IDENTIFIER, rule=payload.IDENTIFIER_RULE
    )
    name = payload.line(checked.get("name"), "name", problems)
    body = payload.text(checked.get("body"), "body", problems, limit=MAX_BODY, required=False)
    actions = _actions(checked.get("actions"), problems)
    visibility = payload.choice(
        Visibility, checked.get("visibility"), "visibility", problems, default=Visibility.PUBLIC
    )
    if body:
        problems.extend(FieldViolation("body", problem) for problem in template_problems(body))
    elif actions == MacroActions() and "body" not in {v.field for v in problems}:
        problems.append(FieldViolation("body", "is required when the macro has no actions"))
    if problems:
        raise InvalidArgument(problems)
    return Macro(macro_id, name, body, actions, visibility)


def dump_macro(macro: Macro) -> dict[str, Any]:
    """The macro as a payload that `parse_macro` reads back to an equal macro."""
    actions: dict[str, Any] = {"add_tags": list(macro.actions.add_tags)}
    if macro.actions.status is not None:
        actions["status"] = macro.actions.status.value
    return {
        "id": macro.id,
        "name": macro.name,
        "body": macro.body,
        "actions": actions,
        "visibility": macro.visibility.value,
    }


def template_problems(body: str) -> list[str]:
    """What is wrong with a macro body, by line; empty when it may be saved."""
    try:
        tree = _ENVIRONMENT.parse(body)
    except TemplateSyntaxError as error:
        return [f"line {error.lineno}: {error.message or 'syntax error'}"]
    problems: list[str] = []
    _check(tree, problems)
    if not problems:
        try:
            # Filled with sample values, so that a filter given arguments it cannot take
            # shows now rather than when an agent applies the macro.
            _ENVIRONMENT.from_string(body).render(_SAMPLE)
        except (TemplateError, TypeError, ValueError) as error:
            problems.append(f"does not render with sample values: {error}")
    # In order of appearance, each once.
    return list(dict.fromkeys(problems))


def render_macro(macro: Macro, context: Mapping[str, Mapping[str, object]]) -> RenderedMacro:
    """The macro filled in for one ticket; `context` maps placeholder roots to their values,
    e.g. {"ticket": {"number": "HD-1042"}}. A value the body needs but the ticket lacks
    (absent or None) raises FailedPrecondition naming it."""
    # Every root is there, so that a missing field is one StrictUndefined, which `default`
    # and `is defined` can handle.
    values = {
        root: {key: value for key, value in context.get(root, {}).items() if value is not None}
        for root in ROOTS
    }
    text = ""
    if macro.body:
        try:
            text = _compiled(macro.body).render(values).strip()
        except UndefinedError as error:
            missing = sorted(p for p in placeholders_in(macro.body) if not _has(values, p))
            what = ", ".join(missing) if missing else str(error.message)
            raise FailedPrecondition(
                f"macro {macro.id} needs {what}, which this ticket does not have"
            ) from error
        except (TemplateError, TypeError, ValueError) as error:
            # The sandbox refusing what parse_macro refuses (a macro made some other way), or
            # a filter's arguments failing on this ticket's values.
            raise FailedPrecondition(f"macro {macro.id} cannot be rendered: {error}") from error
    return RenderedMacro(
        text=text,
        status=macro.actions.status,
        tags=macro.actions.add_tags,
        visibility=macro.visibility,
    )


def placeholders_in(body: str) -> frozenset[str]:
    """The documented placeholders a body uses."""
    try:
        tree = _ENVIRONMENT.parse(body)
    except TemplateSyntaxError:
        return frozenset()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = _placeholder(node)
        if name is not None and name in PLACEHOLDERS:
            found.add(name)
    return frozenset(found)


@lru_cache(maxsize=1024)
def _compiled(body: str) -> Template:
    return _ENVIRONMENT.from_string(body)


def _has(values: Mapping[str, Mapping[str, object]], placeholder: str) -> bool:
    root, key = placeholder.split(".", 1)
    return key in values.get(root, {})


def _placeholder(node: nodes.Node) -> str | None:
    """The placeholder `ticket.number` or `ticket["number"]` names; None for anything else."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem):
        return None
    if not isinstance(node.node, nodes.Name):
        return None
    if isinstance(node, nodes.Getattr):
        return f"{node.node.name}.{node.attr}"
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return f"{node.node.name}.{node.arg.value}"
    return None


def _check(node: nodes.Node, problems: list[str]) -> None:
    line = f"line {node.lineno}: " if node.lineno else ""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        name = _placeholder(node)
        if name is None:
            problems.append(
                f"{line}only placeholders may be looked into, such as ticket.number; "
                "use filters (| upper) to change a value"
            )
        elif name not in PLACEHOLDERS:
            problems.append(f"{line}unknown placeholder {name}; known: {', '.join(PLACEHOLDERS)}")
        return
    if isinstance(node, nodes.Name):
        if node.ctx != "load":
            # The target of a {% for %} or {% set %}, refused as such.
            return
        if node.name in ROOTS:
            problems.append(
                f"{line}{node.name} is not a placeholder; use one of its fields, "
                f"such as {_example(node.name)}"
            )
        else:
            problems.append(
                f"{line}unknown placeholder {node.name}; known: {', '.join(PLACEHOLDERS)}"
            )
        return
    if not isinstance(node, _ALLOWED_NODES):
        refused = next(
            (text for kind, text in _REFUSED_NAMES.items() if isinstance(node, kind)),
            type(node).__name__,
        )
        problems.append(f"{line}{refused} not allowed in a macro")
    if isinstance(node, nodes.Filter | nodes.Test):
        allowed = FILTERS if isinstance(node, nodes.Filter) else TESTS
        kind = "filter" if isinstance(node, nodes.Filter) else "test"
        if node.name not in allowed:
            problems.append(
                f"{line}{kind} {node.name!r} not allowed; allowed: {', '.join(sorted(allowed))}"
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            problems.append(f"{line}*args and **kwargs not allowed in a macro")
    for child in node.iter_child_nodes():
        _check(child, problems)


def _example(root: str) -> str:
    return next(name for name in PLACEHOLDERS if name.startswith(f"{root}."))


def _actions(value: Any, problems: Problems) -> MacroActions:
    if value is None:
        return MacroActions()
    raw = payload.mapping(value, "actions", problems)
    payload.unknown_fields(raw, ACTION_FIELDS, "actions", problems)
    status = None
    if raw.get("status") not in (None, ""):
        status = payload.choice(
            TicketStatus, raw["status"], path("actions", "status"), problems, default=None
        )
    tags = payload.tags(raw.get("add_tags"), path("actions", "add_tags"), problems)
    return MacroActions(status, tags)
