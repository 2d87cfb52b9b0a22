if command -v nft >/dev/null 2>&1; then
  if nft list tables >/dev/null 2>&1; then echo "nft usable"; else echo "nft unprivileged"; fi
else
  echo "nft absent"
fi
if command -v ss >/dev/null 2>&1; then
  echo "listeners $(ss -tlnH "( sport = :$1 )" 2>/dev/null | wc -l)"
else
  port=$(printf '%04X' "$1")
  awk -v port="$port" '{ split($2, a, ":") } $4 == "0A" && a[2] == port { n++ } END { print "listeners " n + 0 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
fi
