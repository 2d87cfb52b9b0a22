dir=$1 switch=$2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
echo "::bluegreen::switch"
if [ -e "$switch" ]; then head -c 65536 "$switch"; else echo "::bluegreen::missing"; fi
printf '\n::bluegreen::state\n'
head -c 65536 "$dir/state.json" 2>/dev/null
printf '\n::bluegreen::lock\n'
if [ -e "$dir/lock" ] && ! flock -n "$dir/lock" true 2>/dev/null; then head -c 65536 "$dir/lock.json" 2>/dev/null; fi
printf '\n::bluegreen::history\n'
tail -n 20 "$dir/history.jsonl" 2>/dev/null | head -c 262144
exit 0
