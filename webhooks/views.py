"""The ``/wechat`` endpoint: verification, decryption, replay protection, the reply budget.

Order of checks on a POST (each refusal answers before the handler is called, so nothing is recorded):

1. query: ``timestamp`` (digits) and ``nonce`` (1-64 chars) present, ``encrypt_type`` absent/raw or aes,
   and the mode matching the configuration (a configured EncodingAESKey refuses plaintext posts) - 403/400;
2. ``signature`` over token, timestamp, nonce (required in plaintext mode, checked when present in aes
   mode), constant-time - 403;
3. timestamp within ``max_clock_skew`` of now (0 = off) - 403;
4. body read up to ``max_body`` bytes - 413 past it, without reading the rest;
5. UTF-8, then the safe XML reader (no DTD/entities) - 400;
6. aes mode: ``Encrypt`` present (400), ``msg_signature`` over token, timestamp, nonce, Encrypt (403),
   decryption (400) and the trailing AppID (403);
7. plain XML shape and wechatpy parsing - 400;
8. replay: the nonce is recorded only now, for a request that passed everything above, together with a
   fingerprint of its delivery key. A repeat of a recorded (nonce, timestamp) with the same delivery key is
   WeChat retrying (it retries with the very same query string): it goes to the handler, which gives the
   delivery one effect, and gets the same answer or ``success``. The same pair with another delivery key is
   a replay carrying a different body (in plaintext mode the body is not signed) - 403.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator

from aiohttp import web

from .budget import ReplyRunner
from .crypto import AppIdMismatch, CryptoError, WeChatAes, signature_ok
from .keys import WEBHOOK_CONFIG, WEBHOOK_HANDLER, WEBHOOK_NONCES, WEBHOOK_RUNNER
from .nonces import MemoryNonceStore
from .parsing import BadMessage, decode_body, extract_encrypt, to_delivery
from .replies import encrypt_reply, render_text_reply
from .types import InboundHandler, NonceStore, WebhookConfig

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

SUCCESS = "success"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        reason = reason[:200]  # parts of it may come from the request
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _refusal(exc: Refused, request: web.Request) -> web.Response:
    log.warning("webhook: %s %s refused (%d): %s", request.method, request.path, exc.status, exc.reason)
    response = web.Response(status=exc.status, text=exc.reason, content_type="text/plain")
    if exc.status == 413:
        response.force_close()  # do not drain (linger over) the rest of an oversized body
    return response


def _query_basics(request: web.Request) -> tuple[str, str]:
    timestamp = request.query.get("timestamp", "")
    nonce = request.query.get("nonce", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(403, "missing or malformed timestamp")
    if not 1 <= len(nonce) <= 64:
        raise Refused(403, "missing or malformed nonce")
    return timestamp, nonce


def _check_signature(config: WebhookConfig, request: web.Request, timestamp: str, nonce: str) -> None:
    given = request.query.get("signature", "")
    if not given or not signature_ok((config.token, timestamp, nonce), given):
        raise Refused(403, "bad signature")


def _check_window(config: WebhookConfig, timestamp: str) -> None:
    if config.max_clock_skew > 0 and abs(time.time() - int(timestamp)) > config.max_clock_skew:
        raise Refused(403, "timestamp outside the allowed window")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _aes(config: WebhookConfig) -> WeChatAes:
    assert config.aes_key
    return WeChatAes(config.aes_key, config.appid)


@routes.get("/wechat", name="wechat_verify")
async def verify(request: web.Request) -> web.Response:
    """WeChat's server check when the URL is configured: echo ``echostr`` for a valid signature."""
    config = request.app[WEBHOOK_CONFIG]
    try:
        timestamp, nonce = _query_basics(request)
        _check_signature(config, request, timestamp, nonce)
        _check_window(config, timestamp)
    except Refused as exc:
        return _refusal(exc, request)
    return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")


@routes.post("/wechat", name="wechat_inbound")
async def inbound(request: web.Request) -> web.Response:
    started = time.monotonic()
    config = request.app[WEBHOOK_CONFIG]
    handler: InboundHandler = request.app[WEBHOOK_HANDLER]
    nonces: NonceStore = request.app[WEBHOOK_NONCES]
    runner = request.app.get(WEBHOOK_RUNNER)
    if runner is None:
        raise RuntimeError("webhooks.webhook_tasks_ctx is missing from app.cleanup_ctx")

    try:
        timestamp, nonce = _query_basics(request)
        encrypt_type = request.query.get("encrypt_type", "raw").lower() or "raw"
        if encrypt_type not in ("raw", "aes"):
            raise Refused(400, "unsupported encrypt_type")
        encrypted = encrypt_type == "aes"
        if encrypted and not config.encrypted:
            raise Refused(400, "encrypted message but no EncodingAESKey configured")
        if config.encrypted and not encrypted:
            raise Refused(403, "plaintext message refused: an EncodingAESKey is configured")
        if not encrypted or "signature" in request.query:
            _check_signature(config, request, timestamp, nonce)
        _check_window(config, timestamp)

        body = await _read_limited(request, config.max_body)
        text = decode_body(body)
        if encrypted:
            plain_xml = _open_envelope(config, request, text, timestamp, nonce)
        else:
            plain_xml = text
        delivery = to_delivery(plain_xml)

        fingerprint = hashlib.sha256(delivery.key.encode("utf-8")).hexdigest()[:32]
        recorded = await nonces.claim(nonce, timestamp, fingerprint, config.nonce_ttl)
        if recorded is not None and not hmac.compare_digest(recorded, fingerprint):
            raise Refused(403, "nonce already used for another message")
        if recorded is not None:
            log.info("webhook: retry of a processed request (%s)", delivery.msg_type)
    except BadMessage as exc:
        return _refusal(Refused(400, str(exc)), request)
    except Refused as exc:
        return _refusal(exc, request)

    remaining = config.reply_budget - (time.monotonic() - started)
    reply = await runner.answer(handler, delivery, timeout=remaining)
    if not reply:
        return web.Response(text=SUCCESS, content_type="text/plain")
    xml = render_text_reply(to_user=delivery.openid, from_user=delivery.account, text=reply)
    if encrypted:
        xml = encrypt_reply(xml, aes=_aes(config), token=config.token, nonce=str(secrets.randbelow(10**10)))
    return web.Response(text=xml, content_type="application/xml")


def _open_envelope(config: WebhookConfig, request: web.Request, text: str, timestamp: str, nonce: str) -> str:
    encrypt = extract_encrypt(text)
    msg_signature = request.query.get("msg_signature", "")
    if not msg_signature or not signature_ok((config.token, timestamp, nonce, encrypt), msg_signature):
        raise Refused(403, "bad msg_signature")
    try:
        return _aes(config).decrypt(encrypt)
    except AppIdMismatch as exc:
        raise Refused(403, "message for another AppID") from exc
    except CryptoError as exc:
        raise Refused(400, f"cannot decrypt: {exc}") from exc


async def webhook_tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: owns the handler tasks and awaits them (up to ``shutdown_grace``) at shutdown."""
    runner = ReplyRunner()
    app[WEBHOOK_RUNNER] = runner
    yield
    config = app.get(WEBHOOK_CONFIG)
    await runner.drain(config.shutdown_grace if config is not None else 10.0)


def setup_webhook(
    app: web.Application,
    *,
    config: WebhookConfig,
    handler: InboundHandler,
    nonces: NonceStore | None = None,
) -> None:
    """Mount ``/wechat`` on ``app`` with its dependencies and its cleanup context, in one call."""
    app[WEBHOOK_CONFIG] = config
    app[WEBHOOK_HANDLER] = handler
    app[WEBHOOK_NONCES] = nonces if nonces is not None else MemoryNonceStore()
    app.add_routes(routes)
    app.cleanup_ctx.append(webhook_tasks_ctx)
