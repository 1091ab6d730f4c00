#!/usr/bin/env bash
# Creates (or refreshes) everything the project needs; idempotent and fast when nothing changed.
#   .venv       the bot's environment (Python >= 3.11)
#   .venv-rasa  Rasa's environment (Python 3.10, rasa[jieba]==3.6.21)
#   chromium    Debian's browser for the browser tests (only with --browser)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
stamp_dir="$ROOT/data/.setup"
mkdir -p "$stamp_dir"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

find_python() {  # find_python MIN_MINOR MAX_MINOR -> a python3.X in that range
  local lo=$1 hi=$2 cand v
  for cand in "${@:3}"; do
    command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ] || continue
    v=$("$cand" -c 'import sys; print(sys.version_info[1])' 2>/dev/null) || continue
    if [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then command -v "$cand" || echo "$cand"; return 0; fi
  done
  return 1
}

pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
BOT_PY=$(find_python 11 13 python3.11 python3.12 python3.13 python3 "$pyenv_root"/versions/3.11*/bin/python) || {
  echo "error: the bot needs Python >= 3.11 (python3.11 on PATH)" >&2; exit 1; }
RASA_PY=$(find_python 10 10 python3.10 "$pyenv_root"/versions/3.10*/bin/python /usr/bin/python3.10) || {
  echo "error: Rasa 3.6 needs Python 3.10: install it (e.g. 'pyenv install 3.10.13') and run again" >&2; exit 1; }

# --- the bot's environment: exactly the versions in requirements.lock (hashes checked), then the project itself
# without resolving anything again. `make lock` re-resolves the lock after pyproject.toml changes.
want=$(hash_of pyproject.toml requirements.lock)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp_dir/bot" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the bot's environment (.venv, $("$BOT_PY" --version)) from requirements.lock"
  [ -x .venv/bin/python ] || "$BOT_PY" -m venv .venv
  log="$stamp_dir/bot.log"
  { .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock \
    && .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .; } >"$log" 2>&1 \
    || { grep -v 'is ignored' "$log" >&2; echo "error: installing from requirements.lock failed" >&2; exit 1; }
  .venv/bin/python -c 'import aiohttp, sqlmodel, wechatpy, bot'
  echo "$want" > "$stamp_dir/bot"
fi

# --- Rasa's environment
want=$(hash_of nlu_data/requirements.txt nlu_data/requirements.lock)
if [ ! -x .venv-rasa/bin/rasa ] || [ "$(cat "$stamp_dir/rasa" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Rasa's environment (.venv-rasa, $("$RASA_PY" --version)); the first time takes a few minutes"
  [ -x .venv-rasa/bin/python ] || "$RASA_PY" -m venv .venv-rasa
  # the lock pins every version (fast, reproducible); requirements.txt names what we depend on directly
  .venv-rasa/bin/python -m pip install -q --disable-pip-version-check -r nlu_data/requirements.txt \
    -c nlu_data/requirements.lock 2>&1 \
    | grep -v 'is ignored\|DEPRECATION' || true
  .venv-rasa/bin/python -c 'import rasa' >/dev/null 2>&1
  echo "$want" > "$stamp_dir/rasa"
fi

# --- Chromium for the browser tests (Debian's package; never a downloaded browser)
if [ "${1:-}" = "--browser" ] && { ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; }; then
  echo "setup: installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
# --- echarts (served by the app for the staff charts) and axe-core for the accessibility tests (npm packages;
#     never a CDN). npm ci runs again whenever package.json or package-lock.json change.
want=$(hash_of package.json package-lock.json)
if [ ! -f node_modules/axe-core/axe.min.js ] || [ ! -f node_modules/echarts/dist/echarts.min.js ] || [ "$(cat "$stamp_dir/npm" 2>/dev/null)" != "$want" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing echarts and axe-core (npm ci)"
    # a download that stalls (seen: npm waiting 18 minutes on one tarball) is cut after 60 s and tried again; the
    # whole install is tried three times, each bounded, before setup fails with a clear line
    installed=""
    for attempt in 1 2 3; do
      if timeout 600 npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=4 \
          --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=20000 >/dev/null; then
        installed=1
        break
      fi
      echo "setup: npm ci failed or stalled (attempt $attempt of 3); trying again" >&2
      sleep 5
    done
    if [ -z "$installed" ]; then
      echo "setup: npm ci did not complete in 3 attempts: check the connection to the npm registry" >&2
      exit 1
    fi
    echo "$want" > "$stamp_dir/npm"
  else
    echo "setup: npm not found; the accessibility tests will be skipped (apt-get install nodejs npm)" >&2
  fi
fi
echo "setup: ready"
