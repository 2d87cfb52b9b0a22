pid=$1 tries=$2 i=0
kill -TERM "$pid" 2>/dev/null || exit 0
# A zombie has exited (its parent has not reaped it yet).
while kill -0 "$pid" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]; do
  i=$((i + 1))
  if [ "$i" -ge "$tries" ]; then kill -KILL "$pid" 2>/dev/null; echo killed; exit 0; fi
  sleep 0.1
done
echo stopped
