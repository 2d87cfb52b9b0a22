#!/bin/sh
# Builds the EC2-like test server image named "$1": a Debian bookworm root made with debootstrap
# (systemd as PID 1, sshd, nginx, nftables) and `docker import`. Host keys are removed: each test
# server gets its own, mounted at /etc/ssh/test_host_key, so its clients check it strictly.
set -eu
image=$1
root=$(mktemp -d /tmp/bluegreen-ec2.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase \
  --include=systemd-sysv,openssh-server,nginx-light,nftables,iproute2,procps,curl,busybox \
  bookworm "$root" http://deb.debian.org/debian
rm -f "$root"/etc/ssh/ssh_host_*
printf 'HostKey /etc/ssh/test_host_key\nPasswordAuthentication no\n' >"$root/etc/ssh/sshd_config.d/test.conf"
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
tar -C "$root" -c . | docker import - "$image" >/dev/null
