"""微实事 as projects: proposals, site visits, selection rounds (联席会议 and the residents' vote), approval with
budget and funding sources, 公示 before and after the work, progress in stages, acceptance, and the totals per town
and round. Also the government's standing lists used beside the case: the 权责清单 (who answers for a category,
in how many working days) and 督办 of a whole town.

This package owns the writes of its tables (``bot.projects.tables``); it uses the case lifecycle, the fund ledger
and the outbox from below it and is used by the web views above it."""
