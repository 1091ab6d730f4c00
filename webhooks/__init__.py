"""The WeChat official-account webhook edge: HTTP in, :class:`Delivery` to the bot, WeChat XML out."""

from .budget import ReplyRunner
from .crypto import AppIdMismatch, CryptoError, WeChatAes, sign
from .keys import WEBHOOK_CONFIG, WEBHOOK_HANDLER, WEBHOOK_NONCES, WEBHOOK_RUNNER
from .nonces import MemoryNonceStore, RedisNonceStore
from .parsing import BadMessage, to_delivery
from .replies import MAX_TEXT_BYTES, render_text_reply
from .types import Delivery, InboundHandler, KeepsUnanswered, NonceStore, WebhookConfig
from .views import SUCCESS, routes, setup_webhook, webhook_tasks_ctx

__all__ = [
    "MAX_TEXT_BYTES",
    "SUCCESS",
    "WEBHOOK_CONFIG",
    "WEBHOOK_HANDLER",
    "WEBHOOK_NONCES",
    "WEBHOOK_RUNNER",
    "AppIdMismatch",
    "BadMessage",
    "CryptoError",
    "Delivery",
    "InboundHandler",
    "KeepsUnanswered",
    "MemoryNonceStore",
    "NonceStore",
    "RedisNonceStore",
    "ReplyRunner",
    "WeChatAes",
    "WebhookConfig",
    "render_text_reply",
    "routes",
    "setup_webhook",
    "sign",
    "to_delivery",
    "webhook_tasks_ctx",
]
