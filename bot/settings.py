"""One pydantic-settings object, passed in; never read at import time."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "token", "xxx"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: str = "development"  # development | test | production
    base_url: str = "http://127.0.0.1:8080"  # how residents and staff reach the web views

    # WeChat official account
    wechat_token: str = "daguanjia-dev-token"
    wechat_appid: str = "wx00000000simulator"
    wechat_secret: str = "simulator-secret"
    wechat_encoding_aes_key: str = ""  # empty = plaintext mode
    wechat_max_clock_skew: int = 300
    wechat_api_base: str = ""  # empty: the simulator when no real AppID
    wechat_reply_budget: float = 3.5
    wechat_max_body: int = 64 * 1024
    wechat_template_id: str = "TPL_PROGRESS"  # template used outside the 48-hour window

    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8090

    # the servers' event loop: uvloop (libuv, about half the CPU per database round trip and per request) or asyncio
    # (the standard library's); uvloop falls back to asyncio where it is not installed (bot/ops/eventloop.py)
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # storage
    data_dir: Path = ROOT / "data"
    database_url: str = ""  # empty: SQLite in data_dir
    # SQLite: the webhook's short statements run on the event loop's thread, not a hop to a driver thread each
    # (bot/db.py InlineEngine: about half of a greeting's CPU went to the asyncio driver); off: every statement on the driver thread
    sqlite_inline_chat: bool = True
    # PostgreSQL: server connections one worker keeps (and may open beyond them while all are in use). Each message
    # holds one for a few milliseconds; more connections than the server's cores only queue inside it (32 residents
    # at once on 2 cores: p99 301-366 ms with 4 + 4, 613-915 ms with 10 + 10; benchmarks/README.md)
    db_pool_size: int = Field(default=4, ge=1, le=200)
    db_max_overflow: int = Field(default=4, ge=0, le=200)
    redis_url: str = ""

    # media residents and volunteers send (images, voice): kept in the project's own storage (bot/media)
    media_backend: str = "local"  # local (a folder, media_dir) | s3 (an S3-compatible store such as MinIO)
    media_dir: Path | None = None  # the local folder; empty: data_dir / "media"
    media_s3_endpoint: str = ""  # e.g. http://minio:9000
    media_s3_bucket: str = "daguanjia-media"
    media_s3_access_key: str = ""
    media_s3_secret_key: str = ""
    media_s3_region: str = "us-east-1"
    media_max_image_bytes: int = 10 * 1024 * 1024  # WeChat's own limit for an image
    media_max_voice_bytes: int = 2 * 1024 * 1024  # WeChat's own limit for a voice message

    # NLU
    # empty: the managed local Rasa server; several comma-separated: replicas, spread by the bot
    # (bot.conversation.nlu.replicas)
    rasa_url: str = ""
    rasa_token: str = "daguanjia-local-rasa"
    rasa_port: int = 5005
    rasa_timeout: float = 2.0  # one parse's budget, all replicas' attempts included
    rasa_replica_retry: float = 5.0  # seconds a failing replica rests before it takes its turn again
    nlu_cache_size: int = 4096  # short texts' parses kept per model (0: no cache)
    nlu_cache_refresh: float = 10.0  # seconds between checks of the model's fingerprint
    rasa_bin: Path = ROOT / ".venv-rasa" / "bin" / "rasa"
    nlu_project_dir: Path = ROOT / "nlu_data"
    nlu_fallback_threshold: float = 0.55

    # conversation
    draft_idle_minutes: int = 60
    messages_per_minute: int = (
        20  # per resident; beyond it messages are kept but not processed (0 = no limit)
    )
    # deliveries a process handles at once; beyond it a delivery goes to the local journal at once (fsync'd) and the
    # resident is told it is kept (load shedding: memory and the database's queue stay bounded under a flood)
    inbound_in_flight_limit: int = Field(default=512, ge=1, le=100_000)
    # …and also when the oldest delivery in hand has waited this many seconds (a queue that cannot be answered within
    # WeChat's 5 s, whatever this machine's speed; 0 = only the count)
    inbound_shed_after: float = Field(default=2.0, ge=0, le=60)
    privacy_notice_version: str = "2026-11"
    # where a resident who asks for a person is sent: town full name → office line (JSON); unset towns use 12345
    town_office_phones: dict[str, str] = {}
    office_hours: str = "工作日 8:30–12:00、14:00–17:30"
    # deadlines a person must act on (offers, call tasks) and reminders to people land in this window (China time)
    waking_hours: str = "08:00-21:00"
    # personal data of finished cases is anonymised this many years after they finished (PIPL; 0 = kept)
    retention_years: int = 3

    # web views
    session_secret: str = ""  # 32+ chars; generated for development when empty
    link_secret: str = ""  # signs resident/volunteer links; generated for development when empty
    cookie_secure: bool = False  # required in production (HTTPS only); also turns on HSTS
    #: reverse proxies whose X-Forwarded-For is believed (addresses or networks, e.g. ["10.0.0.0/8"]);
    #: empty: the direct peer is the client
    trusted_proxies: list[str] = []

    # matching (the resource pool)
    matching_weights: dict[str, float] = {}  # e.g. {"distance": 2, "fairness": 1.5}; names or Chinese labels
    matching_max_unfinished: int = 5  # anti-hoarding: no new offers while this many matches are unfinished
    auto_offer_towns: list[str] = []  # towns whose claimed wishes are offered automatically ("全市" = all)
    auto_offer_k: int = 3
    wall_reserve_hours: float = 48.0  # 圆梦墙: how long a donor's claim holds a wish until staff confirm it

    # SMS for residents without WeChat (bot/delivery/sms.py); the defaults talk to the simulator
    sms_provider: str = "tencent"  # tencent | aliyun | off
    sms_api_base: str = ""  # empty: the simulator while WeChat is simulated, else the provider's endpoint
    sms_key_id: str = "AKIDsimulator"  # Tencent SecretId / Aliyun AccessKeyId
    sms_key_secret: str = "simulator-tencent-key"  # Tencent SecretKey / Aliyun AccessKeySecret
    sms_app_id: str = "1400000000"  # Tencent SmsSdkAppId
    sms_sign_name: str = "大莞家"
    sms_templates: dict[str, str] = {}  # our template name (bot.delivery.sms.TEMPLATES) -> approved id
    sms_per_number_per_hour: int = 5
    # the secret path segment of the providers' receipt and reply callbacks (/sms/callback/{provider}/{token});
    # empty: the callbacks are off (404)
    sms_callback_token: str = ""

    # the open API (bot/api)
    api_calls_per_minute: int = 120  # per API key; beyond it 429 with Retry-After

    # operations
    metrics_token: str = ""  # when set, /metrics needs "Authorization: Bearer <token>"; else loopback only

    # scheduler
    scheduler_enabled: bool = True
    outbox_concurrency: int = 8

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.environment == "production":
            for name in ("wechat_token", "wechat_secret", "session_secret", "link_secret", "rasa_token"):
                value = getattr(self, name).strip()
                if value.lower() in PLACEHOLDERS or value == type(self).model_fields[name].default:
                    raise ValueError(f"{name.upper()} must be set to a real secret in production")
            if not self.cookie_secure:
                raise ValueError("COOKIE_SECURE must be true in production (staff sessions only over HTTPS)")
            if not self.base_url.startswith("https://"):
                raise ValueError("BASE_URL must be an https:// address in production")
        for url in self.rasa_bases if self.rasa_url else ():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"RASA_URL: {url!r} is not an http(s) URL (several are separated by commas)")
        if not self.session_secret:
            self.session_secret = secrets.token_urlsafe(32)
        if not self.link_secret:
            self.link_secret = secrets.token_urlsafe(32)
        return self

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "daguanjia.sqlite3"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def db_pool(self) -> dict[str, int]:
        """``make_engine``'s pool options for a serving process: PostgreSQL's connections (none for SQLite)."""
        if not self.db_url.startswith("postgresql"):
            return {}
        return {"pool_size": self.db_pool_size, "max_overflow": self.db_max_overflow}

    @property
    def is_simulated(self) -> bool:
        return self.wechat_appid.endswith("simulator") or not self.wechat_api_base.startswith(
            "https://api.weixin"
        )

    @property
    def api_base(self) -> str:
        if self.wechat_api_base:
            return self.wechat_api_base.rstrip("/")
        if self.wechat_appid.endswith("simulator"):
            return f"http://{self.simulator_host}:{self.simulator_port}"
        return "https://api.weixin.qq.com"

    @property
    def sms_base(self) -> str:
        if self.sms_api_base:
            return self.sms_api_base.rstrip("/")
        if self.wechat_appid.endswith("simulator"):  # the simulator serves WeChat and both SMS providers
            return f"{self.api_base}/sms/{self.sms_provider}"
        return {"aliyun": "https://dysmsapi.aliyuncs.com"}.get(
            self.sms_provider, "https://sms.tencentcloudapi.com"
        )

    @property
    def rasa_bases(self) -> list[str]:
        """The Rasa servers' base URLs: the managed local one, or RASA_URL's comma-separated replicas."""
        urls = [u.strip().rstrip("/") for u in self.rasa_url.split(",") if u.strip()]
        return urls or [f"http://127.0.0.1:{self.rasa_port}"]

    @property
    def rasa_base(self) -> str:
        return self.rasa_bases[0]

    @property
    def rasa_managed(self) -> bool:
        return not self.rasa_url
