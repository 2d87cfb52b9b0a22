dir=$1 which=$2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
if [ ! -e "$dir/lock" ] || flock -n "$dir/lock" true 2>/dev/null; then echo free; exit 0; fi
cat "$dir/lock.json" 2>/dev/null || echo '{}'
# `show`: only say who holds it. A pid: end the holder only if it is still that one, so a lock
# that changed hands since the caller looked is never taken from the new holder.
[ "$which" = show ] && exit 0
pid=$(sed -n 's/^{"server_pid":\([0-9]*\),.*/\1/p' "$dir/lock.json" 2>/dev/null)
if [ -n "$which" ] && [ "$which" != "$pid" ]; then echo changed; exit 0; fi
[ -n "$pid" ] && kill "$pid" 2>/dev/null
i=0
while ! flock -n "$dir/lock" true 2>/dev/null; do
  i=$((i + 1)); [ "$i" -ge 50 ] && { echo "still held" >&2; exit 1; }
  sleep 0.1
done
rm -f "$dir/lock.json"
