"""The open API for other platforms (12345, 一网统管, 智网) and Open311 GeoReport v2.

Owns: API clients and their keys (``clients``), what a caller may read and write about cases (``service``),
status-change callbacks with HMAC signatures, retries and a dead-letter list (``callbacks``), the OpenAPI 3.1
document (``spec``), and the HTTP edges: ``/api/v1/`` (``http``) and ``/open311/v2/`` (``open311``).
Sits beside ``bot/web/``: it calls ``bot/cases`` and never the other way round.
"""
