# The body of {state_dir}/boot: after a boot, puts back the last verified live color named in
# state.json — the DNAT rule of the nftables switch, and in process mode the color's app. The
# `set --` line above it, written by each deploy, gives: state dir, app, blue port, green port,
# blue ruleset, green ruleset, blue run command, green run command, the sudo prefix for nft,
# the start script. Containers come back by their restart policy; nginx keeps its switch file.
dir=$1 app=$2 blue_port=$3 green_port=$4 nft_blue=$5 nft_green=$6 run_blue=$7 run_green=$8 sudo=$9
shift 9
start=$1
live=$(sed -n 's/.*"live_color":"\([a-z]*\)".*/\1/p' "$dir/state.json" 2>/dev/null)
case $live in
  blue) ruleset=$nft_blue run=$run_blue port=$blue_port ;;
  green) ruleset=$nft_green run=$run_green port=$green_port ;;
  *) echo "bluegreen boot: $app has no live color in $dir/state.json; nothing to restore"; exit 0 ;;
esac
status=0
if [ -n "$ruleset" ]; then
  if printf '%s\n' "$ruleset" | $sudo nft -f -; then
    echo "bluegreen boot: $app's traffic goes to $live (port $port) again"
  else
    echo "bluegreen boot: restoring $app's nftables switch to $live failed" >&2; status=1
  fi
fi
if [ -n "$run" ]; then
  if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
    echo "bluegreen boot: something already listens on port $port; $app's $live is not started again"
  elif ! id=$(cat "$dir/$live.release" 2>/dev/null) || [ -z "$id" ]; then
    echo "bluegreen boot: $dir/$live.release is missing; cannot start $app's $live" >&2; status=1
  else
    env=/dev/null
    [ -f "$dir/$live.env" ] && env=$dir/$live.env
    sh -c "$start" bluegreen-start-process "$dir" "$live" "$port" "$id" "$run" < "$env" || status=1
  fi
fi
exit $status
