"""A stand-in for WeChat: the API endpoints the bot calls, and a resident's phone that sends signed (and in safe
mode encrypted) messages to the bot's webhook exactly as WeChat does."""
