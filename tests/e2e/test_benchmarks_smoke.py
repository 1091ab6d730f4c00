"""The webhook benchmark stays runnable: its resident script still answers the bot's questions, its audit still
catches lost and doubled messages, and its core runs end to end with a tiny load (bare endpoint + keyword bot); the
handler benchmark (``benchmarks.hotpath``) runs, with N residents really in flight at once."""

from __future__ import annotations

import asyncio
import gc
import random

import pytest

from benchmarks import hotpath, units
from benchmarks.webhook import (
    Delivery,
    Recorded,
    conversation,
    count_effects,
    follow_up,
    percentile,
    run_benchmark,
)
from bot.conversation.dialogue import texts

CASE_REPLY = "已为您登记微心愿，编号：MS20261123-0007\n接下来社区工作人员会先核实情况。"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (texts.PRIVACY, {"同意"}),
        (texts.PRIVACY_AGAIN, {"同意"}),
        (texts.ASK_TOWN, {"厚街", "虎门", "长安", "南城", "松山湖", "樟木头"}),
        (texts.ASK_TOWN_AGAIN, {"厚街", "虎门", "长安", "南城", "松山湖", "樟木头"}),
        (texts.TOOK_ASK_TOWN, {"厚街", "虎门", "长安", "南城", "松山湖", "樟木头"}),
        (texts.ASK_PHONE, {"13800000001", "不用"}),
        (texts.ASK_KIND, {"1"}),
        (texts.menu(), {"1"}),
        (texts.ASK_WHAT, {"想要一辆轮椅"}),
        (
            "请核对：\n类型：微心愿\n镇街：厚街镇\n没问题请回复“确认”；要修改直接告诉我，比如“不对，是虎门”；回复“算了”取消。",
            {"确认"},
        ),
        (CASE_REPLY, {None}),
        (texts.GUIDE, {None}),
        (None, {None}),
    ],
)
def test_the_resident_script_answers_what_the_bot_asks(
    question: str | None, expected: set[str | None]
) -> None:
    answer = follow_up(question, rng=random.Random(1), kind="1", text="想要一辆轮椅", phone="13800000001")
    assert answer in expected


def test_a_resident_files_a_wish_when_the_bot_asks_in_turn() -> None:
    rng = random.Random(3)
    script = conversation(rng, phone="13800000001")
    sent = [next(script)]
    bot = iter([texts.GUIDE, texts.PRIVACY, texts.ASK_PHONE, "请核对……没问题请回复“确认”", CASE_REPLY])
    for reply in bot:
        sent.append(script.send(reply))
    assert sent[2] == "同意" and sent[4] == "确认"
    assert sent[3] in {"13800000001", "不用"}


def _delivery(key: str, reply: str | None, *, retry: list[str | None] | None = None) -> Delivery:
    return Delivery(
        openid="o1",
        key=key,
        text="你好",
        latency=0.01,
        reply=reply,
        first_reply=reply,
        retry_replies=retry or [],
    )


def test_the_audit_counts_lost_and_duplicated_effects() -> None:
    clean = Recorded(
        inbound=[("msg:1", "passive", CASE_REPLY, "keyword"), ("msg:2", "outbox", "晚到的回复", "keyword")],
        outbox_replies={"msg:2": "晚到的回复"},
        cases=["MS20261123-0007"],
    )
    ok = count_effects([_delivery("msg:1", CASE_REPLY, retry=[None]), _delivery("msg:2", None)], clean)
    assert (ok.lost, ok.duplicated, ok.cases, ok.late) == (0, 0, 1, 1)

    lost = count_effects([_delivery("msg:1", CASE_REPLY), _delivery("msg:3", None)], clean)
    assert lost.lost == 1  # msg:3 left no row

    pending = Recorded(inbound=[("msg:1", "pending", None, None)], outbox_replies={}, cases=[])
    assert count_effects([_delivery("msg:1", None)], pending).lost == 1  # recorded but never answered

    twice = Recorded(
        inbound=[("msg:1", "passive", CASE_REPLY, "rasa")],
        outbox_replies={"msg:1": CASE_REPLY},
        cases=["MS20261123-0007", "MS20261123-0008"],
    )
    dup = count_effects([_delivery("msg:1", CASE_REPLY, retry=["另一个回复"])], twice)
    # a passive and an outbox reply, a retry answered differently, a case no reply announces
    assert dup.duplicated == 3 and dup.lost == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.slow  # starts whole processes of the bot (seconds each): run by make test, left out of make test-fast
async def test_the_benchmark_core_runs_on_a_tiny_load() -> None:
    report = await run_benchmark(senders=2, messages=8, with_rasa=False, seed=11)
    figures = report.figures()
    assert set(figures) == {
        "bare_rps",
        "keyword_rps",
        "keyword_p99_ms",
        "rasa_rps",
        "rasa_p99_ms",
        "rasa_ceiling_rps",
        "lost",
        "duplicated",
    }
    assert figures["bare_rps"] > 0 and figures["keyword_rps"] > 0 and figures["keyword_p99_ms"] > 0
    assert figures["rasa_rps"] is None  # skipped, not invented
    assert figures["lost"] == 0 and figures["duplicated"] == 0, report.lines()
    keyword = report.runs["keyword"]
    assert keyword.messages == 16 and keyword.errors == 0
    assert all(d.reply for d in keyword.deliveries), "every message got a passive reply"
    assert report.effects["keyword"].cases >= 1  # the script got through to filed cases
    assert report.effects["keyword"].nlu_sources["keyword"] == 16
    assert report.lines()[-1].startswith("ratios: keyword/bare")


async def test_the_hotpath_mix_at_once_keeps_that_many_residents_in_flight() -> None:
    """``hotpath --concurrency N`` measures N residents at once: each resident's messages in order, N in flight."""
    in_flight, most, seen = 0, 0, {}

    class Handler:
        async def handle(self, delivery: Delivery) -> str:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            seen.setdefault(delivery.openid, []).append(delivery.key)
            await asyncio.sleep(0)
            in_flight -= 1
            return texts.menu()

    sent = await hotpath._mix(Handler(), residents=10, messages=3, tag="t", concurrency=4)
    assert sent == 30 and most == 4 and len(seen) == 10
    assert all(len(keys) == len(set(keys)) == 3 for keys in seen.values())  # each message its own delivery


@pytest.mark.slow  # builds the app in this process and sends a few hundred messages
async def test_the_hotpath_benchmark_runs_with_residents_at_once() -> None:
    try:
        result = await hotpath.run(repeat=15, rounds=1, database_url=None, concurrency=4)
    finally:
        gc.unfreeze()  # the benchmark settles the heap as a worker does; this process goes on testing
    assert set(result) == {
        "greeting",
        "greeting_after_a_pause",
        "menu_digit",
        "wish",
        "progress_query",
        "filing",  # each of its answers checked by the benchmark: the case is filed
        "new_resident",
        "mix",
        "mix_x4",
    }
    assert all(v > 0 for v in result.values()), result


@pytest.mark.postgres
async def test_the_units_benchmark_measures_each_way_a_unit_runs(pg: str) -> None:
    """``python -m benchmarks.units`` (benchmarks/README.md) runs its three ways on a fresh database of its own."""
    measured = await units.run(units=20, rounds=1)
    assert set(measured) == {"held", "borrowed", "session"}
    assert all(us > 0 for us in measured.values())
