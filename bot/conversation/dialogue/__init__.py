"""The conversation engine: one turn in, one reply out. State lives in the database (Conversation)."""

from bot.conversation.dialogue.engine import respond
from bot.conversation.dialogue.turn import Turn

__all__ = ["Turn", "respond"]
