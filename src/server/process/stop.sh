dir=$1 color=$2 tries=$3 forget=$4
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
pid=$(cat "$dir/$color.pid" 2>/dev/null)
result="not running"
if [ -n "$pid" ] && alive "$pid"; then
  result=stopped
  kill -TERM -"$pid" 2>/dev/null
  i=0
  while alive "$pid"; do
    i=$((i + 1))
    if [ "$i" -ge "$tries" ]; then kill -KILL -"$pid" 2>/dev/null; result=killed; break; fi
    sleep 0.1
  done
fi
rm -f "$dir/$color.pid"
[ "$forget" != forget ] || rm -f "$dir/$color.release" "$dir/$color.env"
echo "$result"
