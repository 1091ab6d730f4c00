"""Prometheus metrics, one registry per application (no module-level singletons)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.inbound = Counter(
            "dgj_inbound_messages_total", "WeChat deliveries recorded", ["msg_type"], registry=r
        )
        self.duplicates = Counter(
            "dgj_inbound_duplicates_total", "WeChat retries answered from the record", registry=r
        )
        self.replies = Counter("dgj_replies_total", "Replies by how they left", ["mode"], registry=r)
        self.nlu = Histogram(
            "dgj_nlu_parse_seconds",
            "NLU parse time",
            ["source"],
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )
        self.cases = Gauge(
            "dgj_cases", "Cases by kind and status (read at scrape time)", ["kind", "status"], registry=r
        )
        self.outbox = Gauge(
            "dgj_outbox_rows", "Outbox rows by status (read at scrape time)", ["status"], registry=r
        )
        self.overdue = Gauge(
            "dgj_overdue_cases", "Open cases past their stage deadline (read at scrape time)", registry=r
        )
