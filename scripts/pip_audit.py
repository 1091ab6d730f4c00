"""Audit both environments (.venv: the bot; .venv-rasa: the NLU service) for known vulnerabilities with pip-audit.

    python scripts/pip_audit.py            # make audit

pip-audit runs from its own small tools environment (.venv-tools, made on first use), so neither audited
environment gains a package. Each environment is frozen (pip freeze) and audited without resolving again
(--no-deps --disable-pip). Accepted advisories are listed, each with its reason, in
security/pip-audit-exceptions.txt.

pip-audit asks a vulnerability service (PyPI's JSON API, or OSV) about every pinned version. When that service
cannot be reached — every package comes back "could not be audited" — the audit has not happened: the script
says so in capitals and exits 0, unless AUDIT_REQUIRED=1 (set it in a CI that has the network; this project's
own CI machine reaches only the package index, whose per-version JSON API answers 404, and not OSV). Known
vulnerabilities always fail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-tools"
ENVIRONMENTS = {"bot (.venv)": ROOT / ".venv", "NLU (.venv-rasa)": ROOT / ".venv-rasa"}
EXCEPTIONS = ROOT / "security" / "pip-audit-exceptions.txt"
PIP_AUDIT_VERSION = "2.10.1"


def exceptions() -> list[str]:
    ids = []
    for line in EXCEPTIONS.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            if "#" not in line:
                sys.exit(f"{EXCEPTIONS}: '{entry}' has no reason; write why it is accepted")
            ids.append(entry)
    return ids


def tools() -> Path:
    exe = TOOLS / "bin" / "pip-audit"
    if not exe.exists():
        venv.create(TOOLS, with_pip=True)
        subprocess.run(
            [TOOLS / "bin" / "python", "-m", "pip", "install", "-q", f"pip-audit=={PIP_AUDIT_VERSION}"],
            check=True,
        )
    return exe


def freeze(env: Path) -> str:
    out = subprocess.run(
        [env / "bin" / "python", "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # local paths (the project itself, wheels from a folder) cannot be looked up by version
    return "\n".join(line for line in out.splitlines() if "==" in line and " @ " not in line) + "\n"


def audit(name: str, env: Path, exe: Path, ignore: list[str], tmp: Path) -> str:
    """ "ok", "vulnerable" or "unreachable"."""
    requirements = tmp / f"{env.name}.txt"
    requirements.write_text(freeze(env), encoding="utf-8")
    cmd = [str(exe), "--no-deps", "--disable-pip", "--progress-spinner", "off", "-r", str(requirements)]
    for vuln in ignore:
        cmd += ["--ignore-vuln", vuln]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    pinned = sum(1 for line in requirements.read_text().splitlines() if "==" in line)
    skipped = len(re.findall(r"could not be audited", report))
    print(f"== {name}: {pinned} packages, {skipped} not audited")
    if pinned and skipped >= pinned:
        return "unreachable"
    print(report.strip())
    return "ok" if result.returncode == 0 else "vulnerable"


def main() -> int:
    import tempfile

    ignore = exceptions()
    exe = tools()
    required = os.environ.get("AUDIT_REQUIRED", "").lower() in ("1", "true", "yes")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in ENVIRONMENTS.items():
            if not (env / "bin" / "python").exists():
                print(f"== {name}: not installed, skipped")
                continue
            results[name] = audit(name, env, exe, ignore, Path(tmp))
    if "vulnerable" in results.values():
        print("pip-audit: known vulnerabilities found (fix, or explain in security/pip-audit-exceptions.txt)")
        return 1
    if "unreachable" in results.values():
        message = (
            "pip-audit: NO AUDIT DONE — the vulnerability service (PyPI JSON API per version, or OSV) could not "
            "be reached from this machine, so no package could be looked up."
        )
        print(message)
        return 1 if required else 0
    print("pip-audit: no known vulnerabilities in", ", ".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
