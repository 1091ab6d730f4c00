"""The case lifecycle: one explicit state machine for micro-wishes and micro-projects, in three modules —

- ``bot.cases.table``: the states, actions and allowed transitions with their labels, and the rules reading them;
- ``bot.cases.transition``: ``transition()``, the one function that performs a move and its side effects;
- ``bot.cases.actions``: what staff, residents and volunteers do (claim, reassign, edit, ask, complete, merge …).

This module is their public surface: importers keep writing ``from bot.cases.lifecycle import …``.
"""

from __future__ import annotations

from bot.cases.actions import (
    RESIDENT_LINK_KIND,
    RESIDENT_VISIBLE_EVENTS,
    RESIDENT_VISIBLE_NOTES,
    StaffCaseInput,
    add_note,
    ask_resident,
    bind_case,
    cancel_by_resident,
    claim,
    complete,
    create_staff_case,
    edit_case,
    merge_case,
    my_cases_url,
    reassign,
    record_resident_answer,
    release,
)
from bot.cases.actors import ALL_STAFF, CITY_ROLES, ROLE_LABEL, ROLES, SUPERVISORS, TOWN_WORKERS, Actor
from bot.cases.table import (
    ACTION_LABEL,
    OPEN_STATES,
    OWNED_STATES,
    STATE_LABEL,
    TERMINAL,
    TRANSITIONS,
    BindError,
    ClaimConflict,
    LifecycleError,
    Rule,
    TransitionError,
    allowed_actions,
    in_jurisdiction,
)
from bot.cases.transition import notify_resident, transition, withdraw_offers

__all__ = [
    "ACTION_LABEL",
    "ALL_STAFF",
    "CITY_ROLES",
    "OPEN_STATES",
    "OWNED_STATES",
    "RESIDENT_LINK_KIND",
    "RESIDENT_VISIBLE_EVENTS",
    "RESIDENT_VISIBLE_NOTES",
    "ROLES",
    "ROLE_LABEL",
    "STATE_LABEL",
    "SUPERVISORS",
    "TERMINAL",
    "TOWN_WORKERS",
    "TRANSITIONS",
    "Actor",
    "BindError",
    "ClaimConflict",
    "LifecycleError",
    "Rule",
    "StaffCaseInput",
    "TransitionError",
    "add_note",
    "allowed_actions",
    "ask_resident",
    "bind_case",
    "cancel_by_resident",
    "claim",
    "complete",
    "create_staff_case",
    "edit_case",
    "in_jurisdiction",
    "merge_case",
    "my_cases_url",
    "notify_resident",
    "reassign",
    "record_resident_answer",
    "release",
    "transition",
    "withdraw_offers",
]
