dir=$1 color=$2 tries=$3 forget=$4
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
result="not running"
# Only a group proven ours is signalled; a stale pid file (the pid reused after a crash or a
# reboot, or naming the other color's group) is removed without any signal.
if owned "$dir" "$color"; then
  result=stopped
  kill -TERM -"$group" 2>/dev/null
  i=0
  while alive "$group"; do
    i=$((i + 1))
    if [ "$i" -ge "$tries" ]; then kill -KILL -"$group" 2>/dev/null; result=killed; break; fi
    sleep 0.1
  done
fi
rm -f "$dir/$color.pid"
[ "$forget" != forget ] || rm -f "$dir/$color.release"
echo "$result"
