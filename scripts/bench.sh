#!/usr/bin/env bash
# The swap benchmark: the seed scripts' methods and bluegreen's, side by side, under load.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet --bin bluegreen
cargo run --release --quiet --example swap_bench
