#!/usr/bin/env bash
# Releases the action so that a version pins the code it runs:
#   release-action.sh publish
#       (run by .github/workflows/release.yml) builds the runtime image, pushes it to
#       ghcr.io/OWNER/bluegreen-action:VERSION, commits an action.yml that runs that image by
#       digest, tags the commit VERSION (new, never moved) and the major tag vX (moved), and
#       pushes both tags. Reads VERSION, OWNER, GHCR_USER and GITHUB_TOKEN from the environment.
#   release-action.sh pin ACTION_YML REFERENCE
#       points `runs.image` of ACTION_YML at docker://REFERENCE (repo@sha256:...).
# The GHCR package must be public: the runners of the action's users pull it anonymously.
set -euo pipefail

pin() {
  local file=$1 reference=$2
  [[ $reference =~ ^[a-z0-9./_-]+@sha256:[0-9a-f]{64}$ ]] || { echo "not a digest reference: $reference" >&2; exit 2; }
  # Only the `image:` under `runs:` (the input named `image` is indented the same way).
  sed -i -E "/^runs:/,\$ s#^  image: .*#  image: docker://${reference}#" "$file"
  grep -q "^  image: docker://${reference}\$" "$file" || { echo "runs.image not found in $file" >&2; exit 1; }
}

publish() {
  [[ ${VERSION:?} =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "VERSION must look like v1.2.3, got $VERSION" >&2; exit 2; }
  local major=${VERSION%%.*}
  local repository="ghcr.io/${OWNER:?}/bluegreen-action"
  repository=${repository,,}
  if git rev-parse -q --verify "refs/tags/$VERSION" >/dev/null; then
    echo "tag $VERSION exists already; a version is never moved" >&2
    exit 2
  fi
  printf '%s' "${GITHUB_TOKEN:?}" | docker login ghcr.io --username "${GHCR_USER:?}" --password-stdin
  docker build --platform linux/amd64 --tag "$repository:$VERSION" \
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD)" .
  docker push "$repository:$VERSION"
  local reference
  reference=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repository:$VERSION" | grep -m1 "^$repository@")
  pin action.yml "$reference"

  git -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
    commit --quiet -m "release $VERSION: action.yml runs $reference" action.yml
  git tag -a "$VERSION" -m "bluegreen $VERSION ($reference)"
  git tag -f "$major"
  # The token goes to git through its environment, never on a command line.
  local basic
  basic=$(printf 'x-access-token:%s' "$GITHUB_TOKEN" | base64 -w0)
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.https://github.com/.extraheader" \
    GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic"
  git push --quiet origin "refs/tags/$VERSION"
  git push --quiet --force origin "refs/tags/$major"
  echo "released $VERSION and $major: $reference"
}

case ${1:-} in
  pin) shift; pin "$@" ;;
  publish) publish ;;
  *) echo "usage: $0 publish | pin ACTION_YML REFERENCE" >&2; exit 2 ;;
esac
