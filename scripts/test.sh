#!/usr/bin/env bash
# Runs every check: formatting, clippy, the Action's checkers, shellcheck over the server
# scripts, unit tests and the real-server integration tests. A failing step does not stop the
# ones after it, and cargo runs every test target (--no-fail-fast). The last line gives the
# totals: `N passed, N failed`, the tests of every test binary (from cargo's `test result:`
# lines) plus one per check step; a test target that fails without reporting a failed test
# (it did not build, or it crashed) counts as one failure. Exits 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0

# A check step: counts as one passed or one failed.
check() {
  echo "==> $*"
  if "$@"; then passed=$((passed + 1)); else echo "==> FAILED: $*"; failed=$((failed + 1)); fi
}

# The tests: sums cargo's `test result: … N passed; N failed; …` lines.
tests() {
  echo "==> $*"
  local log status tests_passed tests_failed
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  read -r tests_passed tests_failed < <(awk '/^test result: / {
      for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed;?$/) p += $i; if ($(i + 1) ~ /^failed;?$/) f += $i }
    } END { print p + 0, f + 0 }' "$log")
  rm -f "$log"
  passed=$((passed + tests_passed))
  failed=$((failed + tests_failed))
  if [ "$status" -ne 0 ] && [ "$tests_failed" -eq 0 ]; then
    echo "==> FAILED: $* exited with $status without a failed test"
    failed=$((failed + 1))
  fi
}

if scripts/setup.sh; then
  check cargo fmt --all -- --check
  check cargo clippy --all-targets --quiet -- -D warnings
  check scripts/check-action.sh
  check scripts/shellcheck.sh
  check scripts/check-dependencies.sh
  tests cargo test --no-fail-fast --quiet
else
  echo "==> FAILED: scripts/setup.sh (nothing else can run)"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
