#!/usr/bin/env bash
# make mutation [TARGETS="privacy workdays crypto webhooks filters"]: mutation testing with mutmut of the modules
# that carry guarantees. Slow, so not part of `make test`/CI. Each target runs in a throw-away copy of the tracked
# files of HEAD (the work tree gets no mutants/ folder) against the tests that guard that module; the survivors are
# printed and written to data/mutation/<target>.txt. docs/testing.md lists them with a verdict each.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
targets=${TARGETS:-${*:-privacy workdays crypto webhooks filters}}
mkdir -p data/mutation

for target in $targets; do
  case "$target" in
    privacy)  src=reference; only="reference/privacy.py"
              tests="tests/unit/test_privacy_rules.py tests/unit/test_nlu_normalize.py" ;;
    workdays) src=bot; only="bot/deadlines/workdays.py"
              tests="tests/unit/test_workdays.py tests/unit/test_workdays_edges.py" ;;
    crypto)   src=webhooks; only="webhooks/crypto.py"
              tests="tests/unit/test_webhook_crypto.py tests/web/test_webhook_protocol.py" ;;
    webhooks) src=webhooks; only="webhooks/*"
              tests="tests/unit/test_webhook_crypto.py tests/web/test_webhook_protocol.py tests/web/test_webhook_hostile.py" ;;
    filters)  src=matching; only="matching/scoring.py"
              tests="tests/unit/test_matching_scoring.py tests/unit/test_matching_cascade.py" ;;
    *) echo "unknown target $target (privacy workdays crypto webhooks filters)" >&2; exit 2 ;;
  esac
  work=$(mktemp -d /tmp/mutation-XXXX)
  # the committed tree (HEAD), so half-done edits in the work tree cannot break the run; REV=... picks another
  git archive "${REV:-HEAD}" | tar -x -C "$work"
  {
    echo
    echo "[tool.mutmut]"
    echo "source_paths = [\"$src\"]"
    printf 'only_mutate = [%s]\n' "$(printf '"%s",' $only | sed 's/,$//')"
    printf 'pytest_add_cli_args_test_selection = [%s]\n' "$(printf '"%s",' $tests | sed 's/,$//')"
    echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]'
    also=""; for p in bot reference matching webhooks wechat_sim tests nlu_data/data; do
      [ "$p" = "$src" ] || also="$also\"$p\","; done
    echo "also_copy = [${also%,}]"
  } >> "$work/pyproject.toml"
  echo "mutation: $target ($only) against $tests"
  (cd "$work" && PYTHONPATH="$work" "$PY" -m mutmut run --max-children 2 >/dev/null 2>"$work/mutmut.err" || true
   cd "$work" && PYTHONPATH="$work" "$PY" -m mutmut results 2>/dev/null) | tee "data/mutation/$target.txt"
  if grep -q ": killed" "data/mutation/$target.txt"; then rm -rf "$work"
  else echo "mutation: $target did not run; see $work/mutmut.err" >&2; fi
done
