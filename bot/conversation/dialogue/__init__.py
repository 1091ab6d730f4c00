"""The conversation engine: one turn in, one reply out. State lives in the database (Conversation)."""

from bot.conversation.dialogue.engine import Turn, respond

__all__ = ["Turn", "respond"]
