"""Who may move a case, written out BY HAND from the programme's roles — never read back from TRANSITIONS:

- a community worker (村(社区)民政干部) only verifies what was filed in their community;
- town staff review (accept/reject), claim, work, complete, close, cancel and merge their town's cases;
- a town supervisor does all that, assigns cases to staff and reopens archived (closed) ones;
- a city supervisor and an admin may step in on the work (assign, release, match, dispatch, start, complete,
  close, reopen, resume, merge) but neither review, claim nor cancel a case for a town;
- a volunteer starts a wish they said yes to and reports it done;
- a resident only cancels their own request;
- a wish may be routed to a livelihood policy by those who work on it (the department's answer is recorded by
  them too: granted, or refused and back to matching); only the town's own staff pay for one from the town's
  or the 慈善会 fund;
- the system matches, starts, closes after the survey and reopens on a bad outcome.
"""

from __future__ import annotations

import pytest

from bot.cases.lifecycle import TRANSITIONS, Actor, allowed_actions
from bot.models import Case

TOWN, COMMUNITY = "厚街镇", "新围社区"
ROLES = (
    "community_worker",
    "town_staff",
    "town_supervisor",
    "city_supervisor",
    "admin",
    "volunteer",
    "resident",
    "system",
)
CW, TS, SUP, CITY, ADMIN, VOL, RES, SYS = ROLES
WORK = {TS, SUP, CITY, ADMIN}  # those who do and oversee the work
OPEN = ("submitted", "verified", "accepted", "claimed", "matching", "dispatched", "in_progress", "reopened")

#: (state, action, kind) -> the roles that may do it; kind "*" = both kinds
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    ("submitted", "verify", "*"): {CW, TS, SUP},
    ("verified", "accept", "*"): {TS, SUP},
    ("submitted", "reject", "*"): {TS, SUP},
    ("verified", "reject", "*"): {TS, SUP},
    ("accepted", "claim", "*"): {TS, SUP},
    ("accepted", "assign", "*"): {SUP, CITY, ADMIN},
    ("claimed", "release", "*"): WORK,
    ("reopened", "release", "*"): WORK,
    ("claimed", "match", "micro_wish"): WORK | {SYS},
    ("claimed", "dispatch", "micro_project"): WORK,
    # only a wish reaches "matching" and only a project "dispatched": starting is bound by the state, not the kind
    ("matching", "start", "*"): WORK | {SYS, VOL},
    ("dispatched", "start", "*"): WORK | {SYS},
    ("in_progress", "complete", "*"): WORK | {VOL},
    ("completed", "close", "*"): WORK | {SYS},
    ("completed", "reopen", "*"): WORK | {SYS},
    ("closed", "reopen", "*"): {SUP, CITY, ADMIN, SYS},
    ("reopened", "resume", "*"): WORK,
    **{(state, "cancel", "*"): {TS, SUP, RES} for state in OPEN},
    **{(state, "merge", "*"): WORK for state in OPEN},
    ("claimed", "route_policy", "micro_wish"): WORK,
    ("matching", "route_policy", "micro_wish"): WORK,
    ("policy", "policy_grant", "micro_wish"): WORK,
    ("policy", "policy_refuse", "micro_wish"): WORK,
    ("claimed", "fund", "micro_wish"): {TS, SUP},
    ("matching", "fund", "micro_wish"): {TS, SUP},
    ("policy", "cancel", "*"): {TS, SUP, RES},
    ("policy", "merge", "*"): WORK,
}
KINDS = ("micro_wish", "micro_project")


def _actor(role: str) -> Actor:
    if role in (VOL, SYS):
        return Actor(role, 7, role)
    if role == RES:
        return Actor(RES, 42, "居民")
    city = role in (CITY, ADMIN)
    worker = role == CW  # the registry's community 5, the case's community too
    return Actor(
        "staff", 7, role, role, None if city else TOWN, COMMUNITY if worker else None, 5 if worker else None
    )


def _case(state: str, kind: str) -> Case:
    # the actor owns it (staff id 7) and the resident (id 42) filed it, in the actor's town and community
    return Case(
        id=1, case_no="MS20261102-0001", kind=kind, status=state, town=TOWN, community=COMMUNITY,
        community_id=5, resident_id=42, claimed_by_id=7,
    )  # fmt: skip


CELLS = [
    (state, action, kind, role)
    for (state, action, k), _ in EXPECTED.items()
    for kind in (KINDS if k == "*" else (k,))
    for role in ROLES
]


@pytest.mark.parametrize(("state", "action", "kind", "role"), CELLS)
def test_who_may_move_a_case(state: str, action: str, kind: str, role: str) -> None:
    expected = role in EXPECTED[(state, action, "*" if (state, action, "*") in EXPECTED else kind)]
    assert (action in allowed_actions(_case(state, kind), _actor(role))) is expected


@pytest.mark.parametrize(("state", "action", "kind"), [(s, a, k) for (s, a, k) in EXPECTED if k != "*"])
def test_kind_bound_actions_are_refused_for_the_other_kind(state: str, action: str, kind: str) -> None:
    other = next(k for k in KINDS if k != kind)
    for role in ROLES:
        assert action not in allowed_actions(_case(state, other), _actor(role))


def test_the_table_holds_no_transition_the_matrix_does_not_know() -> None:
    assert {(s, a) for (s, a) in TRANSITIONS} == {(s, a) for (s, a, _) in EXPECTED}
