dir=$1 color=$2 port=$3 id=$4 run=$5
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
artifact=
for file in "$dir/releases/$id"/*; do [ -f "$file" ] && artifact=$file; done
if [ -z "$artifact" ]; then
  echo "release $id is not on the server (nothing in $dir/releases/$id)" >&2; exit 1
fi
while IFS= read -r line; do [ -z "$line" ] || export "$line"; done
printf '%s\n' "$id" > "$dir/$color.release" || exit 1
cd "$dir/releases/$id" || exit 1
# Supervised: the command is restarted a second after it exits, and each exit is counted in
# $color.restarts ("COUNT LAST-EXIT-CODE"), so a crash is seen at once, as docker reports a
# container that restarts. One process group: stopping the color ends supervisor and app.
echo "0 0" > "$dir/$color.restarts"
supervise='run=$1 counter=$2 n=0
while :; do
  sh -c "$run" "$0"
  code=$?
  n=$((n + 1))
  echo "$n $code" > "$counter"
  echo "bluegreen: the app exited with code $code; restart $n in 1 s"
  sleep 1
done'
BLUEGREEN_COLOR=$color BLUEGREEN_PORT=$port BLUEGREEN_ARTIFACT=$artifact \
  setsid sh -c "$supervise" "bluegreen-$color" "$run" "$dir/$color.restarts" < /dev/null > "$dir/$color.log" 2>&1 &
pid=$!
# The pid file names the supervisor with what proves it later (process/identity.sh): its start
# time and the boot, written once its environment shows the marker (after the exec).
i=0
while ! marked "$pid" "$dir" "$color" && [ "$i" -lt 200 ]; do i=$((i + 1)); sleep 0.01; done
printf '%s %s %s\n' "$pid" "$(start_of "$pid")" "$(cat /proc/sys/kernel/random/boot_id)" > "$dir/$color.pid.new"
mv -f "$dir/$color.pid.new" "$dir/$color.pid"
echo "started $pid"
