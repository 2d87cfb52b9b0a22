dir=$1
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
if [ ! -e "$dir/lock" ] || flock -n "$dir/lock" true 2>/dev/null; then echo free; exit 0; fi
cat "$dir/lock.json" 2>/dev/null || echo '{}'
pid=$(sed -n 's/^{"server_pid":\([0-9]*\),.*/\1/p' "$dir/lock.json" 2>/dev/null)
[ -n "$pid" ] && kill "$pid" 2>/dev/null
i=0
while ! flock -n "$dir/lock" true 2>/dev/null; do
  i=$((i + 1)); [ "$i" -ge 50 ] && { echo "still held" >&2; exit 1; }
  sleep 0.1
done
rm -f "$dir/lock.json"
