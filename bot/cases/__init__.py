"""The case aggregate: everything that moves, records or reads one case.

Owns: the lifecycle (``table``: states, actions, the transition table and its rules; ``transition``: the one
function that performs a move and its side effects; ``actions``: what staff, residents and volunteers do;
``lifecycle``: their public surface), ``numbering`` (new cases), ``timeline`` (the one writer of ``CaseEvent``),
``actors``, ``access`` (staff accounts, jurisdiction), ``flags``, ``survey_send`` / ``survey`` (starting and
answering the satisfaction survey), ``sweeps`` (the sweeps that move cases, and every minute's sweeps in order).

Arrows point down: this package imports ``bot.deadlines``, ``bot.delivery``, ``bot.models``, ``bot.states`` and
``bot.db``, never the reverse. ``transition()`` calls its side effects itself (restart the deadline clock, end the
offers, start the survey); where a lower package must reach a case, it is handed a function by the scheduler
(``DeliveryConfig.on_unreachable`` → ``flags.flag_unreachable``), not discovered at runtime.
"""
