# Writes {state_dir}/boot ($1: state dir, $2: app; the further arguments are the body's own,
# after state dir and app; $restore: the body; $start: the process start script, its last
# value) and registers it to run at boot: a
# systemd unit bluegreen-boot-$2.service where PID 1 is systemd and root is reachable, else an
# `@reboot` line in the SSH user's crontab, marked with the app. Touches no other app's unit or
# line. Never fails the deploy: prints `boot-hook systemd|cron|none REASON`.
dir=$1 app=$2
shift 2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
umask 077
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
if ! mkdir -p "$dir" || ! {
  printf '#!/bin/sh\n# bluegreen: restores the last verified live color after a boot; rewritten by each deploy.\nset --'
  for arg in "$dir" "$app" "$@" "$start"; do printf ' '; quote "$arg"; done
  printf '\n%s\n' "$restore"
} > "$dir/boot.tmp" || ! chmod 700 "$dir/boot.tmp" || ! mv -f "$dir/boot.tmp" "$dir/boot"; then
  rm -f "$dir/boot.tmp"
  echo "boot-hook none cannot write $dir/boot"; exit 0
fi
root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
unit=bluegreen-boot-$app.service
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && root true 2>/dev/null; then
  path=/etc/systemd/system/$unit
  text="[Unit]
Description=bluegreen: restore $app's live color after a boot
After=network.target nginx.service

[Service]
Type=oneshot
User=$(id -un)
ExecStart=/bin/sh \"$(printf '%s' "$dir" | sed 's/%/%%/g')/boot\"
RemainAfterExit=yes
KillMode=process

[Install]
WantedBy=multi-user.target"
  if [ "$(root cat "$path" 2>/dev/null)" != "$text" ]; then
    printf '%s\n' "$text" | root tee "$path.tmp" > /dev/null && root mv -f "$path.tmp" "$path" &&
      root systemctl daemon-reload || { echo "boot-hook none cannot write $path"; exit 0; }
  fi
  root systemctl is-enabled --quiet "$unit" 2>/dev/null || root systemctl enable --quiet "$unit" 2>/dev/null ||
    { echo "boot-hook none systemctl enable $unit failed"; exit 0; }
  echo "boot-hook systemd $unit"; exit 0
fi
marker="# bluegreen-boot $app"
line="@reboot /bin/sh $(quote "$dir/boot" | sed 's/%/\\%/g') $marker"
if ! command -v crontab > /dev/null; then echo "boot-hook none no systemd and no crontab"; exit 0; fi
current=$(crontab -l 2>/dev/null)
if printf '%s\n' "$current" | grep -qxF -- "$line"; then echo "boot-hook cron"; exit 0; fi
if { printf '%s\n' "$current" | awk -v m=" $marker" 'length($0) < length(m) || substr($0, length($0) - length(m) + 1) != m' | grep -v '^$'
  printf '%s\n' "$line"; } | crontab -; then
  echo "boot-hook cron"
else
  echo "boot-hook none crontab failed"
fi
