#!/usr/bin/env bash
# The swap benchmark (issue 12's figures in one run): the seed scripts' methods and bluegreen's,
# side by side, under load; about 8 minutes. Method (f) runs on Debian sid's nginx when
# scripts/sid-nginx.sh can build its image (cached; the first build takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/sid-nginx.sh || echo "bench: no sid nginx image; method (f) is skipped"
cargo build --release --quiet --bin bluegreen
cargo run --release --quiet --example swap_bench
