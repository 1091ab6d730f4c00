"""Entity post-processing shared by the Rasa client and the keyword interpreter."""

from __future__ import annotations

from collections.abc import Iterable

from bot.conversation.nlu import normalize
from bot.conversation.nlu.types import Entity
from reference.privacy import normalize_phone


def normalize_value(entity: str, value: str) -> str | None:
    """The canonical value of an entity, or None when it does not hold one (e.g. a 'town' that is no town)."""
    value = (value or "").strip()
    if not value:
        return None
    if entity == "town":
        return normalize.normalize_town(value)
    if entity == "phone":
        return normalize_phone(value)
    if entity == "quantity":
        quantity = normalize.parse_quantity(value)
        return str(quantity) if quantity is not None else None
    if entity == "case_no":
        return normalize.find_case_no(value)
    return value


def finalize_entities(
    text: str, raw: Iterable[Entity], *, add_rule_entities: bool = True
) -> tuple[Entity, ...]:
    """Normalise values, drop what does not normalise, drop duplicates (DIET and the regex extractor may both
    report a phone), and add the towns, phones and case numbers the deterministic rules find in the text but
    the model missed."""
    result: list[Entity] = []
    seen: set[tuple[str, str]] = set()
    for ent in raw:
        value = normalize_value(ent.entity, ent.value if ent.entity != "quantity" else ent.text or ent.value)
        if (
            ent.entity == "case_no"
        ):  # the text's own, whole: the model's regex stops after four digits of the serial
            value = normalize.find_case_no(text)
        if value is None and ent.entity == "quantity":
            value = normalize_value("quantity", ent.value)
        if value is None or (ent.entity, value) in seen:
            continue
        seen.add((ent.entity, value))
        result.append(Entity(ent.entity, value, ent.text, ent.start, ent.end))
    if add_rule_entities:
        for entity, value in _rule_entities(text):
            if (entity, value) not in seen and not any(e.entity == entity for e in result):
                seen.add((entity, value))
                result.append(Entity(entity, value, value, None, None))
    return tuple(result)


def _rule_entities(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    town = normalize.find_town(text)
    if town:
        found.append(("town", town))
    phone = normalize_phone(text)
    if phone:
        found.append(("phone", phone))
    case_no = normalize.find_case_no(text)
    if case_no:
        found.append(("case_no", case_no))
    return found
