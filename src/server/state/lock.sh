dir=$1 holder=$2 wait=$3
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
command -v flock >/dev/null 2>&1 || { echo noflock; exit 0; }
umask 077
mkdir -p "$dir" && chmod 700 "$dir" || exit 1
exec 9>>"$dir/lock"
if ! flock -n 9; then
  printf 'busy %s\n' "$(cat "$dir/lock.json" 2>/dev/null)"
  if ! flock -w "$wait" 9; then echo timeout; exit 0; fi
fi
printf '{"server_pid":%s,"holder":%s}\n' "$$" "$holder" > "$dir/lock.json"
echo acquired
shift 3
if [ "$#" -gt 0 ]; then (exec 9>&-; bluegreen_batch "$@") || echo ::bluegreen-batch-failed::; fi
if IFS= read -r line && [ -n "$line" ]; then
  if printf '%s\n' "$line" >> "$dir/history.jsonl"; then echo recorded; else echo "not recorded"; fi
fi
cat >/dev/null 9>&-
rm -f "$dir/lock.json"
