"""Getting messages out: the outbox (``outbox.enqueue``, one row per cause thanks to its dedupe key), the
dispatcher, the WeChat API client and signed links.

Imports only ``bot.models``, ``bot.states`` and ``bot.db`` from the bot. What a case must learn from a delivery
(the resident unsubscribed: staff must phone) is a function in ``DeliveryConfig.on_unreachable``, wired by the
scheduler to ``bot.cases.flags.flag_unreachable``.
"""
