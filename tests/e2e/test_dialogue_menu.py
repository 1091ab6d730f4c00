"""The numbered menu without a pending message: choosing 1 starts an empty draft and asks what is needed."""

from __future__ import annotations

from tests.helpers import System


async def test_menu_choice_without_a_message_asks_what_is_needed(keyword_system: System) -> None:
    user = keyword_system.user()
    r = await user.send_text("嗯嗯")
    assert "回复数字" in r.text
    r = await user.send_text("1")
    assert "同意" in r.text  # privacy notice first
    r = await user.send_text("同意")
    assert "具体需要什么" in r.text, r.text  # the digit is not taken as the description
