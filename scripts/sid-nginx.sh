#!/usr/bin/env bash
# Builds bluegreen-bench/nginx-sid, a local image with Debian sid's nginx (≥ 1.27.4: it has
# `keepalive_min_timeout`), without any registry: a sid root made with debootstrap, nginx
# installed into it, then `docker import`. The benchmark runs its method (f) only when this
# image exists. Cached: does nothing when the image is already there. Needs root and
# deb.debian.org; takes a few minutes the first time.
set -euo pipefail

image=bluegreen-bench/nginx-sid
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "sid-nginx: $image exists ($(docker run --rm "$image" nginx -v 2>&1))"
  exit 0
fi

root=$(mktemp -d /tmp/bluegreen-sid.XXXXXX)
log=$root.log
trap 'rm -rf "$root"' EXIT
failed() {
  tail -20 "$log" >&2
  echo "sid-nginx: $1 failed (full log: $log)" >&2
  exit 1
}
echo "sid-nginx: building $image (debootstrap sid, then nginx; a few minutes)"
debootstrap --variant=minbase sid "$root" http://deb.debian.org/debian >"$log" 2>&1 || failed debootstrap
# Packages must not start services inside the chroot. Valid-Until is not checked (signatures
# are): a machine whose clock runs ahead of the archive's would call sid's Release expired.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
chroot "$root" sh -c 'export DEBIAN_FRONTEND=noninteractive
  apt="apt-get -q -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=false"
  $apt update && $apt install -y --no-install-recommends nginx && apt-get clean &&
  rm -rf /var/lib/apt/lists/*' >>"$log" 2>&1 || failed "installing nginx"
rm -f "$root/usr/sbin/policy-rc.d"
tar -C "$root" -c . | docker import - "$image" >/dev/null
rm -f "$log"
echo "sid-nginx: built $image ($(docker run --rm "$image" nginx -v 2>&1))"
