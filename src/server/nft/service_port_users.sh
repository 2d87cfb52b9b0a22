# Who else uses service_port `$2` on this server, besides our table `ip $1`: every other
# nftables table with a nat rule for that port (another app's `table ip bluegreen_<app>`:
# the first NAT binding of a connection wins, so two rules for one port make one site serve
# the other app), and every listener on an address `$3` lists (the ones 127.0.0.1 reaches).
# Prints `rule FAMILY TABLE`, `listener ADDRESS COMM PID`, then, when anything was found,
# `free PORT`: the next port above with neither (and not one of the further arguments: the
# colors' ports).
ours=$1 port=$2 reach=$3
shift 3
ruleset=$(nft list ruleset 2>/dev/null)
# A nat rule's port: `tcp dport 8080 dnat …`, `… dport 8080 redirect …`.
rules_for() {
  printf '%s\n' "$ruleset" | awk -v ours="$ours" -v port="$1" '
    $1 == "table" { family = $2; table = $3 }
    /(dnat|redirect)/ && (index($0, "dport " port " ") || $0 ~ ("dport " port "$")) && !(family == "ip" && table == ours) { print "rule " family " " table }' | sort -u
}
listeners_on() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -tlnpH "( sport = :$1 )" 2>/dev/null | awk -v reach="$reach" '
    BEGIN { n = split(reach, r, " ") }
    { a = $4; sub(/:[^:]*$/, "", a); sub(/%[^]]*$/, "", a)
      pid = 0; comm = "unknown"
      if (match($0, /pid=[0-9]+/)) pid = substr($0, RSTART + 4, RLENGTH - 4)
      if (match($0, /\("[^"]*"/)) comm = substr($0, RSTART + 2, RLENGTH - 3)
      for (i = 1; i <= n; i++) if (a == r[i]) { print "listener " a " " comm " " pid; break } }'
}
found=$(rules_for "$port"; listeners_on "$port")
[ -n "$found" ] || exit 0
printf '%s\n' "$found"
candidate=$((port + 1))
while [ "$candidate" -lt $((port + 200)) ] && [ "$candidate" -lt 65536 ]; do
  case " $* " in *" $candidate "*) candidate=$((candidate + 1)); continue ;; esac
  if [ -z "$(rules_for "$candidate")" ] &&
    { ! command -v ss >/dev/null 2>&1 || [ -z "$(ss -tlnH "( sport = :$candidate )" 2>/dev/null)" ]; }; then
    echo "free $candidate"
    break
  fi
  candidate=$((candidate + 1))
done
exit 0
