"""`python -m bot nlu conversations`: scripted multi-turn conversations, played through the real webhook.

Each conversation in ``tests/conversations/*.yml`` is what one resident says, in order, and the outcome a
reasonable bot must reach: a case (kind, town, the item of a wish, the phone when one was given) or none, and
whether a cancellation must not happen. The runner starts the real bot app (with the WeChat simulator beside it)
on a fresh SQLite database, pointed at a real Rasa server, and plays every conversation as a fresh resident over
HTTP — signed and encrypted as WeChat sends it (``wechat_sim.client.SimulatedUser``) — then reads the outcome
from the database. It prints the pass rate overall and per theme, the issue's targets, and every failure with
its transcript; the last line is one JSON object with the headline figures.

The runner's rules (the resident's side of the questions the bot may ask in between), applied to each reply:

1. The bot asks for privacy consent → the resident answers ``同意``.
2. Otherwise, when the script has a turn left: a plain turn is said now, whatever the bot asked; a turn written
   ``{when: Q, say: …}`` is said when the bot asks question Q (``phone``, ``town``, ``confirm``, ``cancel``).
   While such a turn waits: a phone question, with no phone left in the script, is answered ``不用``; any other
   question gets the waiting turn (the resident says it anyway).
3. When the script is done: a phone question → ``不用``; the confirmation (the summary) → ``确认``, except in a
   conversation where the resident cancels (``cancel: allowed|required``): who cancelled never confirms, it ends;
   a question whether to cancel → ``确定`` if the conversation allows a cancellation, else ``不``; else it ends.

At most ``len(turns) + 8`` messages per conversation. Questions are recognised by loose patterns (``classify``), so
rewording a prompt does not change the measurement. The set is written apart from the training data and never used
to choose training sentences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy import func, select
from sqlmodel import col

from bot import keys
from bot.models import Case, InboundMessage, Resident
from bot.ops.rasa_service import (
    DEFAULT_MODELS_DIR,
    DEFAULT_PROJECT_DIR,
    DEFAULT_RASA_BIN,
    inputs_hash,
    managed_rasa,
)
from bot.settings import ROOT, Settings
from reference import towns
from wechat_sim.client import SimulatedUser
from wechat_sim.server import SIM_STATE, create_sim_app

DEFAULT_DIR = ROOT / "tests" / "conversations"
KINDS = {
    "wish": "micro_wish",
    "micro_wish": "micro_wish",
    "project": "micro_project",
    "micro_project": "micro_project",
}
QUESTIONS = ("consent", "confirm", "cancel", "phone", "town")
CANCEL_RULES = ("forbidden", "allowed", "required")
TARGET_RATE = 0.95

#: greetings and fillers a resident opens with; a conversation starting with one is "greeting-first"
GREETING = re.compile(
    r"^\s*(喂+|你好|您好|在吗|在不在|哈喽|hello|早晨|早上好|下午好|晚上好|打扰|麻烦|请问|我跟你说|同志|靓女|靓仔|阿妹|后生)",
    re.I,
)
#: a phone number in a turn: seven or more digits, in figures or in words
PHONE_IN_TURN = re.compile(r"(?:[0-9０-９零〇一二三四五六七八九幺两][\s-]*){7,}")

# how the bot's questions are recognised (loose on purpose)
_CONSENT = re.compile(r"[“\"「]同意[”\"」]")
_SUMMARY = re.compile(r"请核对|核对一下|确认一下")
_CONFIRM = re.compile(r"[“\"「](确认|确定|提交)[”\"」]")
_CANCEL_Q = re.compile(r"(取消|不申请|撤回|作废)[^\n。]{0,30}[吗嘛？?]")
_PHONE_Q = re.compile(r"电话|手机|号码|联系方式")
_TOWN_Q = re.compile(r"镇街|哪个镇|住在哪|在哪里|哪个地方")
#: the bot says something was cancelled
CANCELLED = re.compile(r"已经?取消|取消了|已撤回|已经撤回|已作废")
NOT_UNDERSTOOD = re.compile(r"没完全明白|没听明白|没明白|请回复数字")


# ---------------------------------------------------------------------------- the set
@dataclass(frozen=True, slots=True)
class Turn:
    say: str
    when: str | None = None  # a question this turn waits for; None: said right away


@dataclass(frozen=True, slots=True)
class ExpectedCase:
    kind: str  # micro_wish | micro_project
    town: str  # full name
    items: tuple[str, ...] = ()  # any of these in the case's item (wishes)
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    theme: str
    turns: tuple[Turn, ...]
    case: ExpectedCase | None
    cancel: str = "forbidden"  # forbidden | allowed | required (the resident really cancels)
    via: str = "voice"  # voice (WeChat's Recognition) | text

    @property
    def no_cancel(self) -> bool:
        return self.cancel == "forbidden"

    @property
    def greeting_first(self) -> bool:
        return bool(self.turns) and bool(GREETING.match(self.turns[0].say))


def _town(value: str, where: str) -> str:
    town = towns.get(str(value))
    if town is None:
        raise ValueError(f"{where}: unknown town {value!r}")
    return town.name


def _turn(raw: Any, where: str) -> Turn:
    if isinstance(raw, str):
        return Turn(raw)
    if isinstance(raw, dict) and set(raw) <= {"say", "when"} and "say" in raw:
        when = raw.get("when")
        if when not in QUESTIONS:
            raise ValueError(f"{where}: `when` must be one of {QUESTIONS}, not {when!r}")
        return Turn(str(raw["say"]), str(when))
    raise ValueError(f"{where}: a turn is a string or {{say, when}}, not {raw!r}")


def load_file(path: Path) -> list[Conversation]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    theme = str(doc.get("theme") or Path(path).stem)
    default_via = str(doc.get("via") or "voice")
    out: list[Conversation] = []
    for raw in doc.get("conversations") or ():
        cid = str(raw["id"])
        where = f"{Path(path).name}:{cid}"
        turns = tuple(_turn(t, where) for t in raw["turns"])
        if not turns:
            raise ValueError(f"{where}: no turns")
        spec = raw.get("case", "none")
        case: ExpectedCase | None = None
        if spec not in (None, "none"):
            kind = KINDS.get(str(spec.get("kind")))
            if kind is None:
                raise ValueError(f"{where}: kind must be wish or project")
            items = spec.get("item") or ()
            items = (items,) if isinstance(items, str) else tuple(str(i) for i in items)
            if kind == "micro_wish" and not items:
                raise ValueError(f"{where}: a wish names its item")
            phone = spec.get("phone")
            if phone is not None and not re.fullmatch(r"1\d{10}", str(phone)):
                raise ValueError(f"{where}: phone must be 11 digits")
            case = ExpectedCase(kind, _town(spec["town"], where), items, str(phone) if phone else None)
        via = str(raw.get("via") or default_via)
        if via not in ("voice", "text"):
            raise ValueError(f"{where}: via must be voice or text")
        cancel = str(raw.get("cancel") or "forbidden")
        if cancel not in CANCEL_RULES:
            raise ValueError(f"{where}: cancel must be one of {CANCEL_RULES}")
        if cancel == "required" and case is not None:
            raise ValueError(f"{where}: a conversation that cancels expects no case")
        out.append(Conversation(cid, theme, turns, case, cancel, via))
    return out


def load_set(directory: Path = DEFAULT_DIR) -> list[Conversation]:
    conversations: list[Conversation] = []
    for path in sorted(Path(directory).glob("*.yml")):
        conversations += load_file(path)
    seen = Counter(c.id for c in conversations)
    doubled = [cid for cid, n in seen.items() if n > 1]
    if doubled:
        raise ValueError(f"conversation ids used twice: {doubled}")
    return conversations


# ---------------------------------------------------------------------------- the rules
def classify(reply: str | None) -> str | None:
    """Which question the bot's reply asks: consent, confirm, cancel, phone, town, or None."""
    if not reply:
        return None
    if _CONSENT.search(reply):
        return "consent"
    if _SUMMARY.search(reply):
        return "confirm"
    tail = reply.strip().splitlines()[-1] if reply.strip() else ""
    if _CANCEL_Q.search(tail) and not CANCELLED.search(reply):
        return "cancel"
    if _CONFIRM.search(reply):
        return "confirm"
    if _PHONE_Q.search(tail):
        return "phone"
    if _TOWN_Q.search(tail):
        return "town"
    return None


def has_phone(turns: Iterable[Turn]) -> bool:
    return any(t.when == "phone" or PHONE_IN_TURN.search(t.say) for t in turns)


def next_message(
    question: str | None, remaining: tuple[Turn, ...], *, no_cancel: bool
) -> tuple[str, bool] | None:
    """What the resident says next, and whether it consumes the next script turn; None ends the conversation."""
    if question == "consent":
        return "同意", False
    if remaining:
        turn = remaining[0]
        if turn.when is None or turn.when == question:
            return turn.say, True
        if question == "phone" and not has_phone(remaining):
            return "不用", False
        return turn.say, True
    if question == "phone":
        return "不用", False
    if question == "confirm":
        return ("确认", False) if no_cancel else None  # who has just cancelled does not confirm a summary
    if question == "cancel":
        return ("不" if no_cancel else "确定"), False
    return None


# ---------------------------------------------------------------------------- playing
@dataclass
class Outcome:
    conversation: Conversation
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (who, text): 居民 / 助手
    cases: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    degraded_turns: int = 0
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def failure_class(self) -> str:
        return classify_failure(self)


def check(outcome: Outcome) -> list[str]:
    """Why the outcome differs from the expectation (empty: passed)."""
    conv, reasons = outcome.conversation, []
    if outcome.error:
        reasons.append(f"error: {outcome.error}")
    expected = conv.case
    if expected is None:
        if outcome.cases:
            reasons.append(f"unexpected case: {[_case_label(c) for c in outcome.cases]}")
    elif not outcome.cases:
        reasons.append("no case")
    else:
        if len(outcome.cases) > 1:
            reasons.append(f"{len(outcome.cases)} cases instead of one")
        case = outcome.cases[0]
        if case["kind"] != expected.kind:
            reasons.append(f"kind {case['kind']} (expected {expected.kind})")
        if case["town"] != expected.town:
            reasons.append(f"town {case['town']} (expected {expected.town})")
        if expected.items and not any(i in (case["item"] or "") for i in expected.items):
            reasons.append(f"item {case['item']!r} (expected one of {list(expected.items)})")
        if expected.phone and case["contact_phone"] != expected.phone:
            got = "none" if not case["contact_phone"] else "another number"
            reasons.append(f"phone {got} (expected the one given)")
        if case["status"] == "cancelled":
            reasons.append("case cancelled")
    if conv.no_cancel and outcome.cancelled:
        reasons.append("cancelled without an unambiguous cancel")
    if conv.cancel == "required" and not outcome.cancelled:
        reasons.append("the resident's cancel was not taken")
    return reasons


def classify_failure(outcome: Outcome) -> str:
    """A short class for the to-do list (one per failed conversation, the first that applies)."""
    r = " | ".join(outcome.reasons)
    bot_said = "\n".join(text for who, text in outcome.transcript if who == "助手")
    if not r:
        return ""
    if "error" in r:
        return "runner error"
    if "cancelled without" in r:
        return "draft cancelled by a phrase that is not a cancel"
    if "开了小差" in bot_said or "系统出错" in bot_said:
        return "the bot answered with its internal-error apology"
    if "no case" in r:
        first_reply = next((text for who, text in outcome.transcript if who == "助手"), "")
        if NOT_UNDERSTOOD.search(first_reply):
            return "request not understood (menu) at the first message"
        if NOT_UNDERSTOOD.search(bot_said):
            return "request not understood (menu) later in the conversation"
        if "不在大莞家的办理范围" in bot_said:
            return "request answered as out of scope"
        return "no case (other)"
    if "cancel was not taken" in r:
        return "an unambiguous cancel not understood"
    if "unexpected case" in r:
        return "case created where none was wanted"
    if "cases instead of one" in r:
        return "one request split into several cases (the 'also mentioned' queue)"
    if "kind" in r:
        return "wrong kind"
    if "town" in r:
        return "wrong town"
    if "phone" in r:
        return "phone number said in words/with noise dropped"
    if "item" in r:
        return "item not taken"
    return "other"


_case_label = "{0[kind]}/{0[town]}/{0[item]}".format  # kind/town/item of a case row


@dataclass
class Bench:
    """The bot and the simulator on free ports, over a fresh SQLite database, against a running Rasa."""

    app: Any
    sim_app: Any
    bot_url: str
    settings: Any
    http: Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_bot(*, rasa_url: str, rasa_token: str, workdir: Path) -> AsyncIterator[Bench]:
    from bot.app import create_app  # the whole app, loaded only when a run starts (bot.app sits above here)

    sim_port, bot_port = _free_port(), _free_port()
    settings = Settings(
        environment="test",
        base_url=f"http://127.0.0.1:{bot_port}",
        database_url=f"sqlite+aiosqlite:///{Path(workdir) / 'conversations.sqlite3'}",
        data_dir=Path(workdir),
        redis_url="",
        rasa_url=rasa_url,
        rasa_token=rasa_token,
        rasa_timeout=10.0,  # measure the model, not the machine's load (degraded turns are counted anyway)
        wechat_token="conversation-set-token",
        wechat_appid="wxconversationsimulator",
        wechat_secret="conversation-set-secret",
        wechat_encoding_aes_key=secrets.token_urlsafe(32)[:43].replace("-", "a").replace("_", "b"),
        wechat_api_base=f"http://127.0.0.1:{sim_port}",
        scheduler_enabled=False,
        messages_per_minute=0,
        session_secret=secrets.token_urlsafe(32),
        link_secret=secrets.token_urlsafe(32),
    )
    sim_app = create_sim_app(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        aes_key=settings.wechat_encoding_aes_key,
        mode="safe",
        webhook_url=f"http://127.0.0.1:{bot_port}/wechat",
        secret=settings.wechat_secret,
    )
    app = create_app(settings, run_migrations=True, with_scheduler=False)
    runners = [web.AppRunner(sim_app, access_log=None), web.AppRunner(app, access_log=None)]
    for r, port in zip(runners, (sim_port, bot_port), strict=True):
        await r.setup()
        await web.TCPSite(r, "127.0.0.1", port).start()
    http = aiohttp.ClientSession()
    try:
        yield Bench(app, sim_app, f"http://127.0.0.1:{bot_port}", settings, http)
    finally:
        await http.close()
        for r in reversed(runners):
            await r.cleanup()


async def _pushed_since(bench: Bench, openid: str, seen: int) -> list[str]:
    sent = [m for m in bench.sim_app[SIM_STATE].sent if m.openid == openid]
    return [m.display() for m in sent[seen:]]


async def play(bench: Bench, conv: Conversation) -> Outcome:
    """One conversation as a fresh resident; the outcome read from the database."""
    openid = f"oconv{uuid.uuid4().hex[:22]}"
    user = SimulatedUser(
        bench.http,
        webhook_url=f"{bench.bot_url}/wechat",
        token=bench.settings.wechat_token,
        appid=bench.settings.wechat_appid,
        aes_key=bench.settings.wechat_encoding_aes_key,
        mode="safe",
        openid=openid,
        timeout=15.0,
    )
    outcome = Outcome(conv)
    remaining = conv.turns
    say: tuple[str, bool] | None = (remaining[0].say, True)
    budget = len(conv.turns) + 8
    try:
        while say is not None and budget > 0:
            text, consumes = say
            budget -= 1
            if consumes:
                remaining = remaining[1:]
            outcome.transcript.append(("居民", text))
            scripted = consumes and conv.via == "voice"
            seen = len([m for m in bench.sim_app[SIM_STATE].sent if m.openid == openid])
            reply = await (user.send_voice(text) if scripted else user.send_text(text))
            if reply.status != 200:
                raise RuntimeError(f"webhook answered HTTP {reply.status}")
            answers = [reply.text] if reply.text else []
            if not answers:  # no passive reply: the answer follows as a customer-service message
                for _ in range(80):
                    answers = await _pushed_since(bench, openid, seen)
                    if answers:
                        break
                    await asyncio.sleep(0.25)
            else:
                await asyncio.sleep(0)
                answers += await _pushed_since(bench, openid, seen)
            for answer in answers:
                outcome.transcript.append(("助手", answer))
                if CANCELLED.search(answer):
                    outcome.cancelled = True
            question = classify(answers[0] if answers else None)
            if question is None and len(answers) > 1:
                question = classify(answers[-1])
            say = next_message(question, remaining, no_cancel=conv.no_cancel)
    except Exception as exc:  # noqa: BLE001 - a broken conversation is a finding, not a crash of the run
        outcome.error = f"{type(exc).__name__}: {exc}"
    await _read_outcome(bench, openid, outcome)
    outcome.reasons = check(outcome)
    return outcome


async def _read_outcome(bench: Bench, openid: str, outcome: Outcome) -> None:
    async with bench.app[keys.SESSIONS]() as session:
        resident = (
            await session.exec(select(Resident).where(col(Resident.openid) == openid))
        ).scalar_one_or_none()
        if resident is not None:
            rows = (
                (
                    await session.exec(
                        select(Case).where(col(Case.resident_id) == resident.id).order_by(col(Case.id))
                    )
                )
                .scalars()
                .all()
            )
            fields = ("case_no", "kind", "town", "item", "contact_phone", "status")
            outcome.cases = [{f: getattr(c, f) for f in fields} for c in rows]
            if any(c.status == "cancelled" for c in rows):
                outcome.cancelled = True
        outcome.degraded_turns = (
            await session.exec(
                select(func.count())
                .select_from(InboundMessage)
                .where(
                    col(InboundMessage.openid) == openid,
                    col(InboundMessage.nlu_source).is_not(None),
                    col(InboundMessage.nlu_source) != "rasa",
                )
            )
        ).scalar_one()


# ---------------------------------------------------------------------------- the run and its report
@dataclass
class Report:
    outcomes: list[Outcome]
    fingerprint: str
    seconds: float
    when: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def rate(self) -> float:
        return sum(o.passed for o in self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def per_theme(self) -> dict[str, tuple[int, int]]:
        themes: dict[str, tuple[int, int]] = {}
        for o in self.outcomes:
            passed, total = themes.get(o.conversation.theme, (0, 0))
            themes[o.conversation.theme] = (passed + o.passed, total + 1)
        return themes

    @property
    def hidden_by_greeting(self) -> list[Outcome]:
        """Greeting-first conversations that expect a case and got none."""
        return [
            o
            for o in self.outcomes
            if o.conversation.greeting_first and o.conversation.case is not None and not o.cases
        ]

    @property
    def greeting_cases(self) -> int:
        return sum(o.conversation.greeting_first and o.conversation.case is not None for o in self.outcomes)

    @property
    def wrongly_cancelled(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.conversation.no_cancel and o.cancelled]

    def failure_classes(self) -> Counter[str]:
        return Counter(o.failure_class for o in self.outcomes if not o.passed)

    def summary(self) -> dict[str, Any]:
        return {
            "conversations": len(self.outcomes),
            "passed": sum(o.passed for o in self.outcomes),
            "pass_rate": round(self.rate, 4),
            "hidden_by_greeting": len(self.hidden_by_greeting),
            "greeting_first_with_case": self.greeting_cases,
            "wrongly_cancelled": len(self.wrongly_cancelled),
            "degraded_turns": sum(o.degraded_turns for o in self.outcomes),
            "model": self.fingerprint,
        }

    def targets_missed(self, minimum: float = TARGET_RATE) -> list[str]:
        missed = []
        if self.rate < minimum:
            missed.append(f"pass rate {self.rate:.3f} < {minimum}")
        if self.hidden_by_greeting:
            missed.append(f"{len(self.hidden_by_greeting)} requests hidden by a greeting")
        if self.wrongly_cancelled:
            missed.append(f"{len(self.wrongly_cancelled)} drafts cancelled without an unambiguous cancel")
        return missed


def transcript_text(outcome: Outcome) -> str:
    lines = [f"  [{outcome.conversation.theme}] {outcome.conversation.id}: " + "; ".join(outcome.reasons)]
    for who, text in outcome.transcript:
        body = text.replace("\n", " ⏎ ")
        lines.append(f"    {who}：{body}")
    if outcome.cases:
        lines.append(f"    cases: {[_case_label(c) for c in outcome.cases]}")
    return "\n".join(lines)


def render(report: Report, *, transcripts: bool = True) -> str:
    out = [
        f"Conversation set — {len(report.outcomes)} conversations, model {report.fingerprint}, "
        f"{report.when}, {report.seconds:.0f} s",
        "",
        f"right outcome: {sum(o.passed for o in report.outcomes)}/{len(report.outcomes)} = {report.rate:.3f}"
        f" (target ≥ {TARGET_RATE})",
        f"requests hidden by a greeting: {len(report.hidden_by_greeting)} of {report.greeting_cases} "
        "greeting-first requests (target 0)",
        f"drafts cancelled without an unambiguous cancel: {len(report.wrongly_cancelled)} (target 0)",
        f"turns answered without Rasa (degraded): {sum(o.degraded_turns for o in report.outcomes)}",
        "",
        f"{'theme':34}{'passed':>8}{'total':>7}{'rate':>8}",
    ]
    for theme, (passed, total) in sorted(report.per_theme().items()):
        out.append(f"{theme:34}{passed:>8}{total:>7}{passed / total:>8.3f}")
    classes = report.failure_classes()
    if classes:
        out += ["", "failure classes:"]
        out += [f"  {n:>4}  {name}" for name, n in classes.most_common()]
    if transcripts:
        failed = [o for o in report.outcomes if not o.passed]
        if failed:
            out += ["", f"failures ({len(failed)}):"]
            for o in sorted(failed, key=lambda o: (o.failure_class, o.conversation.id)):
                out += [f"- {o.failure_class}", transcript_text(o)]
    return "\n".join(out)


async def served_model(rasa_url: str, token: str) -> str | None:
    """The model file the Rasa server says it serves (its name carries the hash of the training inputs)."""
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{rasa_url.rstrip('/')}/status",
                params={"token": token} if token else {},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                status = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    model = str(status.get("model_file") or "") if isinstance(status, dict) else ""
    return Path(model).name.removesuffix(".tar.gz") or None


async def run_conversations(
    conversations: list[Conversation],
    *,
    rasa_url: str,
    rasa_token: str,
    workdir: Path | None = None,
    concurrency: int = 3,
    fingerprint: str = "",
) -> Report:
    started = time.perf_counter()
    fingerprint = fingerprint or await served_model(rasa_url, rasa_token) or inputs_hash(DEFAULT_PROJECT_DIR)
    with tempfile.TemporaryDirectory(prefix="dgj-conv-") as tmp:
        async with running_bot(
            rasa_url=rasa_url, rasa_token=rasa_token, workdir=Path(workdir or tmp)
        ) as bench:
            gate = asyncio.Semaphore(max(1, concurrency))

            async def one(conv: Conversation) -> Outcome:
                async with gate:
                    return await play(bench, conv)

            outcomes = await asyncio.gather(*(one(c) for c in conversations))
    return Report(list(outcomes), fingerprint, time.perf_counter() - started)


async def _run(args: argparse.Namespace, conversations: list[Conversation]) -> Report:
    fingerprint = ""  # the model the Rasa server reports
    if args.rasa_url:
        return await run_conversations(
            conversations,
            rasa_url=args.rasa_url,
            rasa_token=args.token,
            concurrency=args.concurrency,
            fingerprint=fingerprint,
        )

    token = secrets.token_urlsafe(16)
    async with managed_rasa(
        rasa_bin=args.rasa_bin,
        project_dir=args.project_dir,
        models_dir=args.models_dir,
        port=args.port or _free_port(),
        token=token,
    ) as url:
        return await run_conversations(
            conversations,
            rasa_url=url,
            rasa_token=token,
            concurrency=args.concurrency,
            fingerprint=fingerprint,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot nlu conversations", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the conversation set (*.yml)")
    parser.add_argument("--only", default="", help="run only conversations whose id or theme contains this")
    parser.add_argument("--min", type=float, default=0.0, help="exit 1 when the pass rate is below this")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--project-dir", type=Path, default=DEFAULT_PROJECT_DIR)
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--rasa-bin", type=Path, default=DEFAULT_RASA_BIN)
    parser.add_argument("--port", type=int, default=0, help="port for the managed Rasa (default: a free one)")
    parser.add_argument("--rasa-url", help="use an already running Rasa instead of training and starting one")
    parser.add_argument("--token", default="", help="auth token of --rasa-url")
    parser.add_argument("--quiet", action="store_true", help="no transcripts of the failures")
    parser.add_argument("--json", type=Path, default=None, help="also write every outcome to this file")
    args = parser.parse_args(argv)
    conversations = [
        c for c in load_set(args.dir) if not args.only or args.only in c.id or args.only in c.theme
    ]
    if not conversations:
        print("no conversations", file=sys.stderr)
        return 2
    report = asyncio.run(_run(args, conversations))
    print(render(report, transcripts=not args.quiet))
    print(json.dumps(report.summary(), ensure_ascii=False))
    if args.json:
        fields = ("passed", "reasons", "failure_class", "transcript", "cases")
        rows = [
            {"id": o.conversation.id, "theme": o.conversation.theme} | {f: getattr(o, f) for f in fields}
            for o in report.outcomes
        ]
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    sys.stdout.flush()
    return 1 if report.rate < args.min else 0


if __name__ == "__main__":
    raise SystemExit(main())
