dir=$1
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
for color in blue green; do
  pid=$(cat "$dir/$color.pid" 2>/dev/null)
  release=$(cat "$dir/$color.release" 2>/dev/null)
  state=none
  if [ -n "$pid" ]; then if alive "$pid"; then state=running; else state=exited; fi; fi
  restarts=$(cat "$dir/$color.restarts" 2>/dev/null) || restarts=
  echo "$color ${pid:--} $state ${release:--} ${restarts:-0 0}"
done
