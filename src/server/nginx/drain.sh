port=$(printf '%04X' "$1") tries=$2 i=0 master= holder= front_port=$3
[ -r /proc/net/tcp ] || { echo unknown; exit 0; }
if [ "$front_port" = 0 ]; then
  :
elif command -v ss >/dev/null 2>&1; then
  holder=$(ss -tlnpH "( sport = :$3 )" 2>/dev/null | sed -n 's/[^0-9]*pid=\([0-9]*\).*/\1/p' | head -n 1)
else
  front=$(printf '%04X' "$3")
  inode=$(awk -v port="$front" '{ split($2, a, ":") } $4 == "0A" && a[2] == port { print $10; exit }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  [ -z "$inode" ] || holder=$(find /proc/[0-9]*/fd -lname "socket:\[$inode\]" 2>/dev/null | head -n 1 | cut -d/ -f3)
fi
if [ -n "$holder" ]; then
  case $(tr '\0' ' ' < "/proc/$holder/cmdline") in
    "nginx: master"*) master=$holder ;;
    *) master=$(awk '{ print $4 }' "/proc/$holder/stat") ;;
  esac
fi
old_workers() {
  if [ "$front_port" = 0 ]; then
    echo 0
  elif [ -n "$master" ]; then
    for child in $(cat /proc/"$master"/task/*/children 2>/dev/null); do
      tr '\0' '\n' < "/proc/$child/cmdline" 2>/dev/null | head -n 1
    done | grep -c 'shutting down'
  else
    cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -c '^nginx: worker process is shutting down'
  fi
}
in_flight() {
  if command -v ss >/dev/null 2>&1; then
    ss -tnH state established state syn-recv "( sport = :$1 )" 2>/dev/null
    ss -tnH state syn-sent "( dport = :$1 )" 2>/dev/null
  else
    awk -v port="$port" '{ split($2, l, ":"); split($3, r, ":") } (($4 == "01" || $4 == "03") && l[2] == port) || ($4 == "02" && r[2] == port)' /proc/net/tcp /proc/net/tcp6 2>/dev/null
  fi | wc -l
}
attempting_ports() {
  if command -v ss >/dev/null 2>&1; then
    ss -tnH state syn-sent dst 127.0.0.1 2>/dev/null | awk '{ n = split($3, a, ":"); print a[n] }'
  else
    awk '$4 == "02" && $3 ~ /^0100007F:/ { split($2, l, ":"); print l[2] }' /proc/net/tcp 2>/dev/null |
      while read -r hex; do printf '%d\n' "0x$hex"; done
  fi
}
translated() {
  live=$(attempting_ports)
  [ -n "$live" ] && [ -r /proc/net/nf_conntrack ] || { echo 0; return; }
  printf '%s\nend\n' "$live" | awk -v p="$1" '
    !table { if ($1 == "end") table = 1; else live[$1] = 1; next }
    $3 == "tcp" && $6 == "SYN_SENT" {
      o = ""; d = ""; s = ""
      for (i = 7; i <= NF; i++) {
        if ($i ~ /^sport=/) { if (o == "") o = substr($i, 7); else s = substr($i, 7) }
        if ($i ~ /^dport=/ && d == "") d = substr($i, 7)
      }
      if (s == p && d != p && (o in live)) n++
    }
    END { print n + 0 }' - /proc/net/nf_conntrack
}
while :; do
  n=$(( $(in_flight "$1") + $(translated "$1") ))
  w=$(old_workers)
  if [ "$n" -eq 0 ] && [ "$w" -eq 0 ]; then echo "drained $i"; exit 0; fi
  i=$((i + 1))
  if [ "$i" -ge "$tries" ]; then echo "busy $n $w"; exit 0; fi
  sleep 0.1
done
