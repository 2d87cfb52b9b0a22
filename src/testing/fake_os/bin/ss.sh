# Stand-in `ss` of the fake OS, for the forms the server scripts use: `-t[a|l][n][p]H`,
# `exclude listening`, `state S…`, and a filter of `sport = :P`, `dport = :P`, `src A`, `dst A`.
# Listening sockets: $HOME/os/ss/listen, "ADDRESS PORT PID COMMAND" (shown while PID lives);
# connections: $HOME/os/ss/conns, "STATE LOCAL-ADDRESS LOCAL-PORT PEER-ADDRESS PEER-PORT"; ports
# in $HOME/os/ss/hidden are never shown (sockets this ss cannot see). Knob ss: fail, hang.
# Shell builtins only (it runs on most steps of every case).
os=$HOME/os
if [ -e "$os/knobs/ss" ]; then
  read -r what _ < "$os/knobs/ss"
  case $what in fail) echo "ss: injected failure" >&2; exit 1 ;; hang) sleep 3600 ;; esac
fi
flags=$1; shift
listening=no all=no process=no states= sport= dport= src= dst=
case $flags in *l*) listening=yes ;; esac
case $flags in *a*) all=yes ;; esac
case $flags in *p*) process=yes ;; esac
# shellcheck disable=SC2048,SC2086
set -f; set -- $*; set +f
while [ "$#" -gt 0 ]; do
  case $1 in
    exclude) all=no; shift ;;
    state)
      case $2 in established) states="$states ESTAB" ;; syn-recv) states="$states SYN-RECV" ;;
        syn-sent) states="$states SYN-SENT" ;; *) states="$states $2" ;; esac
      shift ;;
    sport) sport=${3#:}; shift 2 ;;
    dport) dport=${3#:}; shift 2 ;;
    src) src=$2; shift ;;
    dst) dst=$2; shift ;;
  esac
  shift
done
hidden=" "
[ ! -e "$os/ss/hidden" ] || while read -r port; do hidden="$hidden$port "; done < "$os/ss/hidden"
if [ "$listening" = yes ] || [ "$all" = yes ]; then
  [ ! -e "$os/ss/listen" ] || while read -r address port pid name; do
    [ -z "$sport" ] || [ "$port" = "$sport" ] || continue
    [ -z "$src" ] || [ "$address" = "$src" ] || continue
    case $hidden in *" $port "*) continue ;; esac
    # A process that has exited (a zombie too) listens no more.
    [ -r "/proc/$pid/stat" ] && read -r stat < "/proc/$pid/stat" || continue
    case ${stat##*) } in Z*) continue ;; esac
    users=; [ "$process" = no ] || users=" users:((\"$name\",pid=$pid,fd=3))"
    echo "LISTEN 0 128 $address:$port 0.0.0.0:*$users"
  done < "$os/ss/listen"
fi
[ "$listening" = no ] || exit 0
[ -e "$os/ss/conns" ] || exit 0
while read -r state address port peer peer_port; do
  [ -z "$states" ] || case "$states " in *" $state "*) ;; *) continue ;; esac
  [ -z "$sport" ] || [ "$port" = "$sport" ] || continue
  [ -z "$dport" ] || [ "$peer_port" = "$dport" ] || continue
  [ -z "$src" ] || [ "$address" = "$src" ] || continue
  [ -z "$dst" ] || [ "$peer" = "$dst" ] || continue
  case $hidden in *" $port "*) continue ;; esac
  echo "$state 0 0 $address:$port $peer:$peer_port"
done < "$os/ss/conns"
