bluegreen_batch() {
  mode=$1; shift
  tmp=${TMPDIR:-}
  if [ -z "$tmp" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmp=/dev/shm; else tmp=/tmp; fi
  fi
  find "$tmp" -maxdepth 1 -name 'bluegreen-batch.*' -user "$(id -u)" -mmin +10 -exec rm -rf {} + 2>/dev/null
  d=$(mktemp -d "$tmp/bluegreen-batch.XXXXXX") || { echo ::bluegreen-batch-failed::; return 0; }
  trap 'rm -rf "$d"' EXIT
  trap 'exit 143' HUP INT TERM PIPE
  exec 3<&0
  i=0
  while [ "$#" -gt 0 ]; do
    i=$((i + 1)); n=$1 in=$2; shift 2
    words=""; k=1
    while [ "$k" -le "$n" ]; do words="$words \"\${$k}\""; k=$((k + 1)); done
    (
      start=; [ "$mode" = all ] || start=$(date +%s%N)
      case $in in
        "<") eval "$words" <&3 3<&- ;;
        -) eval "$words" </dev/null 3<&- ;;
        *) printf '%s' "${in#=}" | eval "$words" 3<&- ;;
      esac >"$d/o$i" 2>"$d/e$i"
      code=$?
      end=; [ "$mode" = all ] || end=$(date +%s%N)
      case $start:$end in
        :*|*:|*[!0-9:]*) ms=-1 ;;
        *) ms=$(( (end - start) / 1000000 )) ;;
      esac
      echo "$code $ms" >"$d/c$i"
    ) &
    shift "$n"
    if [ "$mode" != all ]; then
      wait "$!"
      bluegreen_frame "$i" || break
    fi
  done
  if [ "$mode" = all ]; then
    wait
    j=1
    while [ "$j" -le "$i" ]; do bluegreen_frame "$j"; j=$((j + 1)); done
  fi
  echo ::bluegreen-batch-end::
  exec 3<&-
  rm -rf "$d"
  trap - EXIT HUP INT TERM PIPE
}
bluegreen_frame() {
  f=$1 code=255 ms=-1
  [ -e "$d/c$f" ] && read -r code ms <"$d/c$f"
  set -- $(cd "$d" && wc -c "o$f" "e$f")
  printf '::bluegreen-batch:: %s %s %s %s %s\n' "$f" "$code" "$1" "$3" "$ms"
  cat "$d/o$f" "$d/e$f"
  [ "$code" = 0 ]
}
