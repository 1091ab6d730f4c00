"""The schema fuzzer (schemathesis, from the package index) over /api/openapi.json against the real app on a real
port: no 500, no undocumented status, no response that violates the schema, invalid input refused."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.api.clients import create_client
from bot.db import make_engine, make_sessions, transaction
from tests.helpers import app_client

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
        "missing_required_header",
    ]
)


@pytest.mark.slow  # the schema fuzzer over every operation: run by make test, left out of make test-fast
async def test_the_open_api_holds_to_its_own_schema(
    sqlite_url: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await app_client(sqlite_url, tmp_path, aiohttp_client, now=NOW, api_calls_per_minute=100_000)
    engine = make_engine(sqlite_url)
    try:
        async with transaction(make_sessions(engine)) as s:
            _, key = await create_client(
                s, name="fuzz", scopes=["cases:read", "cases:write", "webhooks"], town=None, now=NOW
            )
    finally:
        await engine.dispose()
    schemathesis = Path(sys.executable).with_name("schemathesis")
    proc = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        str(client.make_url("/api/openapi.json")),
        "--url",
        str(client.make_url("/api")),
        "-H",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        "--seed",
        "20261205",
        "--workers",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "passed" in report and "Tested: 8" in report, report[-2000:]
