# Stand-in `nft` of the fake OS: each table is a file $HOME/os/nft/TABLE holding its ruleset;
# the fake network applies every table's `dport P dnat to ADDRESS:PORT`. Knob nft: fail, hang,
# slow SECONDS.
os=$HOME/os
knob() {
  [ -e "$os/knobs/$1" ] || return 0
  read -r what seconds < "$os/knobs/$1"
  case $what in
    fail) echo "$1: injected failure" >&2; exit 1 ;;
    hang) sleep 3600; exit 1 ;;
    slow) sleep "$seconds" ;;
  esac
}
knob nft
mkdir -p "$os/nft"
case $* in
"-f -")
  ruleset=$(cat)
  table=$(printf '%s\n' "$ruleset" | sed -n 's/^table ip \([A-Za-z0-9_]*\) {$/\1/p' | tail -n 1)
  case $ruleset in *"dnat to"*) ;; *) table= ;; esac
  [ -n "$table" ] || { echo "Error: syntax error" >&2; exit 1; }
  printf '%s\n' "$ruleset" | sed -n "/^table ip $table {\$/,\$p" > "$os/nft/$table" ;;
"list tables") for t in "$os"/nft/*; do [ ! -e "$t" ] || echo "table ip ${t##*/}"; done ;;
"list ruleset") cat "$os"/nft/* 2>/dev/null ;;
"list table ip "*)
  [ -e "$os/nft/$4" ] || { echo "Error: No such file or directory; list table ip $4" >&2; exit 1; }
  cat "$os/nft/$4" ;;
"delete table ip "*)
  [ -e "$os/nft/$4" ] || { echo "Error: Could not process rule: No such file or directory" >&2; exit 1; }
  rm -f "$os/nft/$4" ;;
*) echo "the fake nft does not know \`nft $*\`" >&2; exit 1 ;;
esac
