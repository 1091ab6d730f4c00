"""Reporting: read models over the cases for staff and the public, and the notices.

- :mod:`~bot.reporting.scope` — jurisdiction (:class:`Scope`, ``scope_for``) and the shared query helpers;
- :mod:`~bot.reporting.figures` — 数据统计: counts, timeliness, satisfaction, pool use, the dashboard;
- :mod:`~bot.reporting.demand` — 需求分析: top categories and items, towns, weekly trend, frequent words;
- :mod:`~bot.reporting.words` — the frequent-word list (jieba, stop words, no personal data);
- :mod:`~bot.reporting.xlsx` — writing exported sheets: every cell through ``reference.spreadsheet.safe_cell``,
  a bold frozen header, fitted columns;
- :mod:`~bot.reporting.workbook` — the statistics workbook (.xlsx);
- :mod:`~bot.reporting.archive` — 档案留存: the archive workbook of cases and their timelines;
- :mod:`~bot.reporting.public` — 项目公示: what the public page may show;
- :mod:`~bot.reporting.notices` — 信息发布: notices, with the supervisors' writes (the only writes here);
- :mod:`~bot.reporting.audit` — the audit log as supervisors read it: Chinese labels, filters, jurisdiction.

Every figure is a SQL aggregate with the jurisdiction in the WHERE clause; the views derive the scope from the
signed-in staff member and pass it in. Date ranges are half-open ``[start, end)`` over aware UTC datetimes.
Imports point one way: scope ← figures/demand/archive/public/notices, words ← demand ← figures ← workbook,
xlsx ← workbook/archive; nothing here imports from bot.web.
"""
