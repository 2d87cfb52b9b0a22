# A color's process group is ours only when it can be proven: `$dir/$color.pid` holds
# "PID START BOOT" (START: field 22 of /proc/PID/stat, the supervisor's start in clock ticks
# since boot; BOOT: /proc/sys/kernel/random/boot_id then), and a live process of group PID
# carries the start script's marker in its environment (BLUEGREEN_COLOR=$color and
# BLUEGREEN_ARTIFACT under $dir/releases/), began no earlier than the supervisor, and the
# machine has not rebooted since. A pid the kernel handed to someone else fails one of these.
marked() {
  tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null |
    awk -v color="BLUEGREEN_COLOR=$3" -v artifact="BLUEGREEN_ARTIFACT=$2/releases/" \
      '$0 == color { c = 1 } index($0, artifact) == 1 { a = 1 } END { exit !(c && a) }'
}
start_of() {
  read -r line < "/proc/$1/stat" 2>/dev/null || return 1
  # shellcheck disable=SC2086
  set -- ${line##*) }
  echo "${20}"
}
# Sets `group` to the color's process group when it is proven ours; else returns 1.
owned() {
  group='' o_dir=$1 o_color=$2
  read -r o_pid o_start o_boot < "$o_dir/$o_color.pid" 2>/dev/null
  case $o_pid in '' | *[!0-9]*) return 1 ;; esac
  if [ -n "$o_boot" ] && [ "$o_boot" != "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" ]; then
    return 1
  fi
  kill -0 -"$o_pid" 2>/dev/null || return 1
  for o_stat in /proc/[0-9]*/stat; do
    read -r o_line < "$o_stat" 2>/dev/null || continue
    # shellcheck disable=SC2086
    set -- ${o_line##*) }
    [ "$3" = "$o_pid" ] && [ "$1" != Z ] || continue
    [ -z "$o_start" ] || [ "${20}" -ge "$o_start" ] || continue
    o_member=${o_stat#/proc/}
    if marked "${o_member%/stat}" "$o_dir" "$o_color"; then group=$o_pid; return 0; fi
  done
  return 1
}
