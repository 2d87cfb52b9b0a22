# $1: the local addresses nginx reaches (space-separated, as `ss` writes them: `127.0.0.1`,
# `0.0.0.0`, `*`, `[::ffff:127.0.0.1]`, `[::1]`…); then the ports. A listener on any other
# address (say 127.0.0.3) is not what nginx reaches: reported as foreign, never as the holder.
reach=$1
shift
# Reads "ADDRESS" lines; prints "reachable ADDRESS" for the first nginx reaches, else
# "foreign ADDRESS" for the first line.
pick() {
  awk -v reach="$reach" 'BEGIN { n = split(reach, r, " ") }
    { for (i = 1; i <= n; i++) if ($1 == r[i]) { print "reachable " $1; found = 1; exit } }
    NR == 1 { first = $1 }
    END { if (!found && first != "") print "foreign " first }'
}
# ss's local address without its port or interface (`127.0.0.1%lo:8081` → 127.0.0.1).
addresses() {
  awk '{ a = $4; sub(/:[^:]*$/, "", a); sub(/%[^]]*$/, "", a); print a }'
}
comm_of() { tr -d ' ' < "/proc/$1/comm" 2>/dev/null; }
for port in "$@"; do
  # A published port may have no listener on the host (docker without its userland proxy).
  container=$(docker ps --filter "publish=$port" --format '{{.Names}} {{.Image}} {{.Label "bluegreen.app"}}' 2>/dev/null | head -n 1)
  if [ -n "$container" ]; then echo "$port container $container"; continue; fi
  if command -v ss >/dev/null 2>&1; then
    # The kernel filters by port; under load /proc/net/tcp lists tens of thousands of sockets.
    # Without -p first: naming the process walks every process's descriptors.
    picked=$(ss -tlnH "( sport = :$port )" 2>/dev/null | addresses | pick)
    if [ -z "$picked" ]; then echo "$port free"; continue; fi
    address=${picked#* }
    pid=$(ss -tlnpH "( sport = :$port )" 2>/dev/null |
      awk -v want="$address" '{ a = $4; sub(/:[^:]*$/, "", a); sub(/%[^]]*$/, "", a) } a == want' |
      sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
  else
    hex=$(printf '%04X' "$port")
    # /proc/net/tcp{,6}: listening sockets' local address (hex) and inode, decoded to the
    # notation above (an all-zero IPv6 address is `*`: dual-stack unless set otherwise).
    listeners=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '
      function byte(h, at) { return index("0123456789ABCDEF", substr(h, at, 1)) * 16 - 16 + index("0123456789ABCDEF", substr(h, at + 1, 1)) - 1 }
      function v4(h) { return byte(h, 7) "." byte(h, 5) "." byte(h, 3) "." byte(h, 1) }
      $4 == "0A" && substr($2, length($2) - 4) == p {
        h = substr($2, 1, length($2) - 5)
        if (length(h) == 8) a = v4(h)
        else if (h == "00000000000000000000000000000000") a = "*"
        else if (h == "00000000000000000000000001000000") a = "[::1]"
        else if (substr(h, 1, 24) == "0000000000000000FFFF0000") a = "[::ffff:" v4(substr(h, 25)) "]"
        else a = "[" h "]"
        print a, $10
      }')
    picked=$(printf '%s\n' "$listeners" | grep . | pick)
    if [ -z "$picked" ]; then echo "$port free"; continue; fi
    address=${picked#* }
    pid=
    for inode in $(printf '%s\n' "$listeners" | awk -v want="$address" '$1 == want { print $2 }'); do
      fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | head -n 1)
      if [ -n "$fd" ]; then pid=${fd#/proc/}; pid=${pid%%/*}; break; fi
    done
  fi
  case $picked in
    reachable*) kind=process ;;
    *) kind="foreign $address" ;;
  esac
  if [ -n "$pid" ]; then echo "$port $kind $(comm_of "$pid") $pid"; else echo "$port $kind unknown 0"; fi
done
exit 0
