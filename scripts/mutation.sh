#!/usr/bin/env bash
# make mutation [TARGETS="privacy workdays crypto edge filters"]: mutation testing with mutmut of the modules that carry
# guarantees. Slow, so not part of `make test`/CI.
#
#   scripts/mutation.sh [TARGET ...]
#     TARGET is a name below, or a module path (e.g. webhooks/nonces.py) run against TESTS="tests/unit/x.py ...".
#     ONLY="glob ..." limits a run to mutants whose names match (mutmut's names: matching.scoring.x_eligible__mutmut_3,
#     matching.scoring.xǁPoolǁscores__mutmut_7); REV=<commit> mutates another commit than HEAD.
#
# Each target runs in a throw-away copy of the tracked files of HEAD (the work tree gets no mutants/ folder, and
# half-done edits in it cannot break the run) against only the tests that guard that module, so that one target
# takes minutes. Every mutant's status is written to data/mutation/<target>.txt, the survivors and a count are
# printed; docs/testing.md lists the survivors with a verdict each.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
targets=${TARGETS:-${*:-privacy workdays crypto edge filters}}
mkdir -p data/mutation

# mutmut's names of the hard filters of matching/ (the functions that decide who may be offered a wish)
FILTERS="matching.scoring.x_resource_exclusion__* matching.scoring.x_offers_item__* matching.scoring.x_eligible__*
matching.scoring.x_town_name__* matching.scoring.xǁPoolǁ_candidates__* matching.scoring.xǁPoolǁ_item_fits__*
matching.scoring.xǁPoolǁscores__* matching.scoring.xǁPoolǁremaining__* matching.model.xǁResourceǁserves__*"

# the checks of the /wechat edge in webhooks/views.py (query, signatures, time window, body size, envelope)
EDGE="webhooks.views.x__query_basics__* webhooks.views.x__check_signature__* webhooks.views.x__check_window__*
webhooks.views.x__read_limited__* webhooks.views.x__open_envelope__* webhooks.views.x_verify__*"

for target in $targets; do
  patterns=${ONLY:-}
  case "$target" in
    privacy)  only="reference/privacy.py"
              tests="tests/unit/test_privacy_rules.py tests/unit/test_privacy_edges.py" ;;
    workdays) only="bot/deadlines/workdays.py"
              tests="tests/unit/test_workdays.py tests/unit/test_workdays_edges.py" ;;
    crypto)   only="webhooks/crypto.py webhooks/nonces.py"
              tests="tests/unit/test_webhook_crypto.py tests/web/test_webhook_signature_exact.py
                     tests/web/test_nonce_store_redis.py" ;;
    webhooks) only="webhooks/*"
              tests="tests/unit/test_webhook_crypto.py tests/web/test_webhook_signature_exact.py
                     tests/web/test_nonce_store_redis.py tests/web/test_webhook_protocol.py
                     tests/web/test_webhook_hostile.py" ;;
    edge)     only="webhooks/views.py"
              tests="tests/web/test_webhook_edge_checks.py tests/web/test_webhook_signature_exact.py
                     tests/web/test_webhook_protocol.py tests/web/test_webhook_hostile.py"
              patterns=${ONLY:-$EDGE} ;;
    filters)  only="matching/scoring.py matching/model.py"
              tests="tests/unit/test_matching_scoring.py tests/unit/test_matching_filters.py"
              patterns=${ONLY:-$FILTERS} ;;
    */*.py)   only="$target"
              tests=${TESTS:?"TESTS=\"tests/... \" names the tests that guard $target"} ;;
    *) echo "unknown target $target (privacy workdays crypto edge webhooks filters, or a module path)" >&2; exit 2 ;;
  esac
  name=$(basename "${target%.py}")
  # the package folders holding the mutated files; everything else the tests import is copied beside them
  src=$(for f in $only; do echo "${f%%/*}"; done | sort -u)
  work=$(mktemp -d /tmp/mutation-XXXX)
  git archive "${REV:-HEAD}" | tar -x -C "$work"
  quoted() { printf '"%s",' "$@" | sed 's/,$//'; }
  {
    echo
    echo "[tool.mutmut]"
    echo "source_paths = [$(quoted $src)]"
    echo "only_mutate = [$(quoted $only)]"
    echo "pytest_add_cli_args_test_selection = [$(quoted $tests)]"
    echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]'
    also=""; for p in bot reference matching webhooks wechat_sim tests nlu_data/data; do
      case " $src " in *" $p "*) ;; *) also="$also\"$p\"," ;; esac; done
    echo "also_copy = [${also%,}]"
  } >> "$work/pyproject.toml"
  echo "mutation: $target ($only) against $tests${patterns:+ (mutants: $patterns)}"
  started=$(date +%s)
  # shellcheck disable=SC2086  # the patterns are globs for mutmut, not for the shell
  (cd "$work" && set -f && PYTHONPATH="$work" "$PY" -m mutmut run --max-children 2 $patterns >"$work/mutmut.out" 2>&1) || true
  (cd "$work" && PYTHONPATH="$work" "$PY" -m mutmut results --all true 2>/dev/null) > "$work/all.txt" || true
  if [ -n "$patterns" ]; then
    # keep only the named mutants (mutmut lists the other mutants of the same files as "not checked")
    (set -f; for p in $patterns; do
       awk -v pat="$p" 'BEGIN{gsub(/\./,"\\.",pat); gsub(/\*/,".*",pat); pat="^ *" pat ":"} $0 ~ pat' "$work/all.txt"
     done) | sort -u > "$work/selected.txt"
  else
    cp "$work/all.txt" "$work/selected.txt"
  fi
  seconds=$(( $(date +%s) - started ))
  total=$(wc -l < "$work/selected.txt")
  summary=$(awk -F': ' '{n[$2]++} END {for (s in n) printf "%s %d, ", s, n[s]}' "$work/selected.txt" | sed 's/, $//')
  {
    echo "# $target: $only against $tests; $(git rev-parse --short "${REV:-HEAD}"); $(date -u +%FT%TZ); ${seconds}s"
    echo "# mutants $total: $summary"
    grep -v ": killed$" "$work/selected.txt" || true
    echo "# killed:"
    grep ": killed$" "$work/selected.txt" || true
  } > "data/mutation/$name.txt"
  # the diff of every survivor, for the verdicts in docs/testing.md
  grep -v ": killed$" "$work/selected.txt" | grep -v ": no tests$" | sed 's/^ *//; s/: .*//' | while read -r mutant; do
    (cd "$work" && PYTHONPATH="$work" "$PY" -m mutmut show "$mutant" 2>/dev/null) || true
  done > "data/mutation/$name.diff"
  echo "mutation: $target: $total mutants ($summary) in ${seconds}s; survivors (diffs in data/mutation/$name.diff):"
  grep -v ": killed$" "$work/selected.txt" || echo "    none"
  if [ "$total" -gt 0 ] && grep -q ": killed$" "$work/selected.txt"; then
    rm -rf "$work"
  else
    echo "mutation: $target did not run; see $work/mutmut.out" >&2
  fi
done
