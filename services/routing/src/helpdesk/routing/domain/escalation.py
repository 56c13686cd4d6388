"""Escalation: a ticket moves up one support tier, to a team of the same department,
by hand, after too many reopens, or on an SLA breach."""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from helpdesk.routing.domain.directory import Team, Tier

TIERS = (Tier.L1, Tier.L2, Tier.L3)
# SLA targets whose breach moves a ticket up; a missed first response is a matter of
# attention within the tier (reassignment), not of expertise.
ESCALATING_TARGETS = frozenset({"resolution"})


@dataclass(frozen=True)
class Escalation:
    """Whether a ticket moves up, where to, and why (for its history).

    `team` is "" when the ticket keeps its team (its department has no team at the new tier);
    the ticket's tier still rises, so an L3 expert can be pulled in by hand.
    """

    escalate: bool
    reason: str
    tier: Tier | None = None
    team: str = ""


def next_tier(tier: Tier) -> Tier | None:
    """The tier above, None above L3."""
    index = TIERS.index(tier)
    return TIERS[index + 1] if index + 1 < len(TIERS) else None


def team_for_tier(teams: Iterable[Team], department: str, tier: Tier) -> Team | None:
    """The department's team at exactly this tier; the lowest id when there are several."""
    found = [t for t in teams if t.department == department and t.tier == tier]
    return min(found, key=lambda t: t.id) if found else None


def escalation_team(
    teams: Iterable[Team], current_team: str, tier: Tier | None = None
) -> Team | None:
    """The team above `current_team` in its department: the nearest higher tier that has one
    (from `tier` when given, else the team's own), lowest id first; None when there is none."""
    directory = list(teams)
    current = next((t for t in directory if t.id == current_team), None)
    if current is None:
        return None
    start = TIERS.index(tier or current.tier)
    for higher in TIERS[start + 1 :]:
        team = team_for_tier(directory, current.department, higher)
        if team is not None:
            return team
    return None


def escalate(
    teams: Iterable[Team], current_team: str, current_tier: Tier | None, cause: str
) -> Escalation:
    """One tier up from the ticket's tier, with the team there; a ticket is at least at its
    team's tier, whatever its own field says."""
    directory = list(teams)
    team = next((t for t in directory if t.id == current_team), None)
    known = [t for t in (current_tier, team.tier if team else None) if t is not None]
    tier = max(known, key=TIERS.index) if known else Tier.L1
    up = next_tier(tier)
    if up is None:
        return Escalation(False, f"{cause}; already at {tier}, the top tier")
    target = escalation_team(directory, current_team, tier)
    if target is not None:
        return Escalation(
            True,
            f"{cause}; escalated {tier} -> {target.tier} (team {target.id})",
            target.tier,
            target.id,
        )
    if team is None:
        why = "no known team to escalate from"
    else:
        why = f"department {team.department} has no team above {tier}"
    return Escalation(True, f"{cause}; escalated {tier} -> {up}; {why}, team kept", up)


def should_escalate_on_reopen(reopen_count: int, threshold: int) -> bool:
    """Whether a ticket reopened `reopen_count` times moves up; a threshold of 0 never does.

    Each reopen at or past the threshold moves it one more tier, until L3: a ticket that keeps
    coming back needs more expertise each time.
    """
    return threshold > 0 and reopen_count >= threshold


def on_reopen(
    teams: Iterable[Team],
    current_team: str,
    current_tier: Tier | None,
    reopen_count: int,
    threshold: int,
) -> Escalation:
    """The escalation a reopen causes, or a refusal saying why not."""
    cause = f"reopened {reopen_count} time{'s' if reopen_count != 1 else ''}"
    if not should_escalate_on_reopen(reopen_count, threshold):
        limit = f"escalation from {threshold}" if threshold > 0 else "no escalation on reopen"
        return Escalation(False, f"{cause}; {limit}")
    return escalate(teams, current_team, current_tier, cause)


def on_breach(
    teams: Iterable[Team],
    current_team: str,
    current_tier: Tier | None,
    target: str,
    *,
    escalating_targets: Collection[str] = ESCALATING_TARGETS,
) -> Escalation:
    """The escalation an SLA breach of `target` ("first_response", "next_response",
    "resolution") causes, or a refusal saying why not."""
    cause = f"SLA {target} target breached"
    if target not in escalating_targets:
        return Escalation(False, f"{cause}; this target does not escalate")
    return escalate(teams, current_team, current_tier, cause)
