#!/usr/bin/env bash
# Runs every check: formatting, clippy, the Action's checkers, unit tests and the real-server
# integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
scripts/check-action.sh
cargo test --quiet
