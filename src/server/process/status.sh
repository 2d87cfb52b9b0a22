dir=$1
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
for color in blue green; do
  recorded=$(cat "$dir/$color.pid" 2>/dev/null)
  release=$(cat "$dir/$color.release" 2>/dev/null)
  state=none pid=
  if owned "$dir" "$color"; then
    state=running pid=$group
  elif [ -n "$recorded" ]; then
    # Exited, or a stale file naming a process that is not this color's: never shown as its
    # pid, and removed (unless a start replaced it meanwhile).
    state=exited
    [ "$(cat "$dir/$color.pid" 2>/dev/null)" != "$recorded" ] || rm -f "$dir/$color.pid"
  fi
  restarts=$(cat "$dir/$color.restarts" 2>/dev/null) || restarts=
  echo "$color ${pid:--} $state ${release:--} ${restarts:-0 0}"
done
