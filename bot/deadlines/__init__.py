"""Time: working days on the statutory calendar (``workdays``), deadline policies and the stage clock (``sla``),
and the sweeps that act on due rows (``sweeps``).

Imports only ``bot.models``, ``bot.states`` and ``bot.db`` from the bot: the sweeps here write deadline marks and
outbox rows only. What a sweep must do to a case through its lifecycle (the survey timeout closes it) lives in
``bot.cases.sweeps``; offer timeouts call the hook the scheduler passes in.
"""
