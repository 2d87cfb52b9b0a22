mode=$1 file=$2 target=$3
shift 3
sockets() {
  if command -v ss >/dev/null 2>&1; then
    # The kernel filters by port (sock_diag): only the color's sockets are formatted.
    ss -tanH exclude listening "( sport = :$2 )" 2>/dev/null | awk -v color="$1" '{ print color, $4 "-" $5 }'
    if [ "$3" != 0 ] && [ "$(readlink "/proc/$3/ns/net")" != "$(readlink /proc/self/ns/net)" ] \
      && command -v nsenter >/dev/null 2>&1; then
      for listening in $(nsenter -t "$3" -n ss -tlnH 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u); do
        nsenter -t "$3" -n ss -tanH exclude listening "( sport = :$listening )" 2>/dev/null \
          | awk -v color="$1" '{ print color, "ns:" $4 "-" $5 }'
      done
    fi
    return
  fi
  awk -v port="$(printf '%04X' "$2")" -v color="$1" '
    { split($2, local_address, ":") }
    $4 != "0A" && local_address[2] == port { print color, $2 "-" $3 }
  ' /proc/self/net/tcp /proc/self/net/tcp6 2>/dev/null
  if [ "$3" != 0 ] && [ -r "/proc/$3/net/tcp" ]; then
    awk -v color="$1" '
      { split($2, local_address, ":") }
      $4 == "0A" { listening[local_address[2]] = 1; next }
      FNR > 1 { seen[local_address[2]] = seen[local_address[2]] "\n" color " " $2 "-" $3 }
      END { for (port in seen) if (port in listening) printf "%s", seen[port]; print "" }
    ' "/proc/$3/net/tcp" "/proc/$3/net/tcp6" 2>/dev/null
  fi
}
reading() {
  sockets blue "$1" "$2"
  sockets green "$3" "$4"
}
case $mode in
save)
  tmp=${TMPDIR:-/tmp}
  find "$tmp" -maxdepth 1 -name 'bluegreen-connections.*' -mmin +10 -exec rm -f {} + 2>/dev/null
  file=$(umask 077 && mktemp "$tmp/bluegreen-connections.XXXXXXXX") || exit 1
  reading "$@" | awk 'NF == 2' > "$file" || exit 1
  echo "file $file"
  ;;
since)
  [ -r "$file" ] || { echo "the first reading ($file) is gone" >&2; exit 1; }
  counts=$(reading "$@" | awk '
    NR == FNR { before[$0] = 1; next }
    NF == 2 && !($0 in before) { gained[$1]++ }
    END { printf "blue %d\ngreen %d\n", gained["blue"], gained["green"] }
  ' "$file" -) || exit 1
  echo "$counts"
  case $target in
    any) rm -f "$file" ;;
    *) echo "$counts" | grep -q "^$target [1-9]" && rm -f "$file" ;;
  esac
  ;;
forget)
  case $file in */bluegreen-connections.*) rm -f "$file" ;; esac
  ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
echo done
