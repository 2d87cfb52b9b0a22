for port in "$@"; do
  # A published port may have no listener on the host (docker without its userland proxy).
  container=$(docker ps --filter "publish=$port" --format '{{.Names}} {{.Image}} {{.Label "bluegreen.app"}}' 2>/dev/null | head -n 1)
  if [ -n "$container" ]; then echo "$port container $container"; continue; fi
  if command -v ss >/dev/null 2>&1; then
    # The kernel filters by port; under load /proc/net/tcp lists tens of thousands of sockets.
    # Without -p first: naming the process walks every process's descriptors.
    if [ -z "$(ss -tlnH "( sport = :$port )" 2>/dev/null)" ]; then echo "$port free"; continue; fi
    listener=$(ss -tlnpH "( sport = :$port )" 2>/dev/null | head -n 1)
    pid=$(printf '%s\n' "$listener" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
    if [ -n "$pid" ]; then
      echo "$port process $(tr -d ' ' < /proc/$pid/comm 2>/dev/null) $pid"
    else
      echo "$port process unknown 0"
    fi
    continue
  fi
  hex=$(printf '%04X' "$port")
  inodes=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }')
  if [ -z "$inodes" ]; then echo "$port free"; continue; fi
  holder="process unknown 0"
  for inode in $inodes; do
    fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | head -n 1)
    if [ -n "$fd" ]; then
      pid=${fd#/proc/}; pid=${pid%%/*}
      holder="process $(tr -d ' ' < /proc/$pid/comm 2>/dev/null) $pid"
      break
    fi
  done
  echo "$port $holder"
done
exit 0
