#!/usr/bin/env bash
# The dependency decisions that must not slip back: no crate that an advisory names unmaintained
# (indicatif 0.17's number_prefix, RUSTSEC-2025-0119), no deprecated serde_yaml (serde_norway is
# its maintained drop-in fork), and a release profile that strips the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in number_prefix serde_yaml; do
  if cargo tree --quiet --edges normal,build --invert "$crate" >/dev/null 2>&1; then
    echo "dependencies: $crate is in the tree again (cargo tree -i $crate shows who brings it)" >&2
    status=1
  fi
done
if ! grep -Eq '^strip *= *true' Cargo.toml; then
  echo "dependencies: Cargo.toml's [profile.release] no longer strips the binary" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "dependencies: no number_prefix, no serde_yaml, release binary stripped"
exit "$status"
