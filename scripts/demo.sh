#!/usr/bin/env bash
# The demo: a sandbox server on loopback (sshd, nginx, Docker, a private registry), the demo
# app deployed as v1 and then v2 while requests flow through nginx; prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet --bin bluegreen
cargo run --release --quiet --example demo
