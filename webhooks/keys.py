"""The application keys through which the app factory hands the webhook its dependencies."""

from __future__ import annotations

from aiohttp import web

from .budget import ReplyRunner
from .types import InboundHandler, NonceStore, WebhookConfig

WEBHOOK_CONFIG = web.AppKey("webhook_config", WebhookConfig)
WEBHOOK_HANDLER = web.AppKey("webhook_handler", InboundHandler)
WEBHOOK_NONCES = web.AppKey("webhook_nonces", NonceStore)
WEBHOOK_RUNNER = web.AppKey("webhook_runner", ReplyRunner)
"""Set by :func:`webhooks.views.webhook_tasks_ctx`; not for the app factory to set."""
