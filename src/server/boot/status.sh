# Whether app $1's boot hook ($2: state dir) will run: `systemd enabled|disabled`, `cron`, or
# `missing`, then on a second line whether {state_dir}/boot exists (`script yes|no`).
app=$1 dir=$2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
unit=bluegreen-boot-$app.service
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && [ -f "/etc/systemd/system/$unit" ]; then
  if systemctl is-enabled --quiet "$unit" 2>/dev/null; then echo "systemd enabled"; else echo "systemd disabled"; fi
elif command -v crontab > /dev/null && crontab -l 2>/dev/null | grep -q " # bluegreen-boot $app\$"; then
  echo "cron"
else
  echo "missing"
fi
if [ -x "$dir/boot" ]; then echo "script yes"; else echo "script no"; fi
