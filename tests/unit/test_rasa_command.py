"""`rasa run`'s command line as the managed Rasa service builds it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.ops.rasa_service import RasaProcess


def _rasa_run_parser() -> argparse.ArgumentParser:
    # the options of `rasa run` this command uses, declared as Rasa declares them (argparse, a value each)
    p = argparse.ArgumentParser(prog="rasa run", exit_on_error=False)
    p.add_argument("--enable-api", action="store_true")
    p.add_argument("--auth-token", type=str)
    p.add_argument("-i", "--interface")
    p.add_argument("-p", "--port", type=int)
    p.add_argument("-m", "--model")
    return p


@pytest.mark.parametrize("token", ["plain-token", "-starts-with-a-dash", "--double", "-p"])
def test_the_auth_token_reaches_rasa_whatever_it_begins_with(token: str) -> None:
    svc = RasaProcess(rasa_bin=Path("/x/rasa"), model=Path("/m/nlu.tar.gz"), port=5123, token=token)
    cmd = svc.command()
    assert cmd[:2] == ["/x/rasa", "run"]
    args = _rasa_run_parser().parse_args(cmd[2:])
    assert (
        args.auth_token == token and args.port == 5123 and args.model == "/m/nlu.tar.gz" and args.enable_api
    )
