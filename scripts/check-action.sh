#!/usr/bin/env bash
# The GitHub Action's own checkers, from PyPI (installed by scripts/setup.sh into a venv):
# actionlint, check-jsonschema (GitHub's action and workflow schemas), zizmor (offline audits)
# and hadolint, on action.yml, .github/workflows/*, .github/dependabot.yml, examples/* and the
# Dockerfile. Zero findings.
# Kept on purpose (with the reason, where they are):
#   Dockerfile   DL3008 apt packages not pinned to versions: a release rebuild must get Debian's
#                security updates (ignored inline).
#   examples/deploy.yml  pins org/bluegreen-action to a placeholder commit SHA, to be replaced by
#                the user with the SHA of the release they use (zizmor runs offline, so it
#                cannot tell).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BLUEGREEN_CHECKERS:-/opt/bluegreen-checkers}/bin
workflows=(.github/workflows/*.yml examples/*.yml)

echo "check-action: actionlint"
"$bin/actionlint" -no-color "${workflows[@]}"
echo "check-action: check-jsonschema"
"$bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml
"$bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$bin/check-jsonschema" --builtin-schema vendor.dependabot .github/dependabot.yml
echo "check-action: zizmor"
"$bin/zizmor" --offline --quiet --no-progress action.yml "${workflows[@]}" .github/dependabot.yml
echo "check-action: hadolint"
"$bin/hadolint" Dockerfile

# The release pins runs.image, and only it, to a digest: try it on a copy.
pinned=$(mktemp --suffix=.yml)
trap 'rm -f "$pinned"' EXIT
cp action.yml "$pinned"
digest="sha256:$(printf '%064d' 0)"
scripts/release-action.sh pin "$pinned" "ghcr.io/owner/bluegreen-action@$digest"
"$bin/check-jsonschema" --builtin-schema vendor.github-actions "$pinned"
changed=$(diff action.yml "$pinned" | grep -c '^>' || true)
[ "$changed" = 1 ] || { echo "check-action: pinning changed $changed lines, expected 1" >&2; exit 1; }
grep -q "^  image: docker://ghcr.io/owner/bluegreen-action@$digest\$" "$pinned"
echo "check-action: all checks passed"
