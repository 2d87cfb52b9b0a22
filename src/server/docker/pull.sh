set -e
registry=$1 user=$2 ref=$3
shift 3
DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
if [ -n "$user" ]; then
  docker login --username "$user" --password-stdin "$registry" >/dev/null
fi
"$@"
docker image inspect --format '{{json .RepoDigests}}' -- "$ref"
docker image inspect --format 'id {{.Id}}' -- "$ref"
