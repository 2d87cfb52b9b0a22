# Stand-in `docker` of the fake OS. State: $HOME/os/containers/NAME/{image,port,app,color,label_image}
# (+ `running` while it runs); the registry: $HOME/os/registry, one image a line:
# "TAG-REF DIGEST-REF ID HEALTHY ERRORS-EVERY"; pulled images: $HOME/os/pulled (the same lines).
# A knob $HOME/os/knobs/docker-SUBCOMMAND (fail, hang, slow SECONDS) makes that subcommand
# misbehave. Shell builtins only where it can (it runs on every step of every case).
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
image_line() { # the line of a tag or digest reference in FILE
  [ -e "$2" ] || return 0
  while read -r tag digest id rest; do
    if [ "$tag" = "$1" ] || [ "$digest" = "$1" ]; then echo "$tag $digest $id $rest"; return; fi
  done < "$2"
}
field() { v=; [ ! -e "$os/containers/$1/$2" ] || read -r v < "$os/containers/$1/$2"; echo "$v"; }
inspect_one() {
  c=$os/containers/$1
  image=$(field "$1" image)
  running=false status=exited
  [ ! -e "$c/running" ] || { running=true status=running; }
  # shellcheck disable=SC2046
  set -- "$1" "$image" $(image_line "$image" "$os/pulled")
  printf '{"Id":"id-%s","Name":"/%s","Image":"%s","RestartCount":0,' "$1" "$1" "$5"
  printf '"State":{"Status":"%s","Running":%s,"Restarting":false,"ExitCode":0,"Pid":0},' "$status" "$running"
  printf '"Config":{"Image":"%s","Labels":{"bluegreen.app":"%s","bluegreen.color":"%s","bluegreen.image":"%s"}}}' \
    "$2" "$(field "$1" app)" "$(field "$1" color)" "$(field "$1" label_image)"
}
value() { # value FLAG ARGS…: the word after FLAG
  flag=$1; shift
  while [ "$#" -gt 1 ]; do [ "$1" = "$flag" ] && { echo "$2"; return; }; shift; done
}
run() {
  name=$(value --name "$@") publish=$(value --publish "$@")
  for last; do :; done
  if [ -e "$os/containers/$name" ]; then
    echo "docker: Error response from daemon: Conflict. The container name \"/$name\" is already in use" >&2; exit 125
  fi
  [ -n "$(image_line "$last" "$os/pulled")" ] || { echo "Unable to find image '$last' locally" >&2; exit 125; }
  port=${publish#*:}; port=${port%%:*}
  for other in "$os"/containers/*; do
    if [ -e "$other/running" ] && [ "$(field "${other##*/}" port)" = "$port" ]; then
      echo "docker: Error response from daemon: port is already allocated ($port)" >&2; exit 125
    fi
  done
  c=$os/containers/$name
  mkdir -p "$c"
  echo "$last" > "$c/image"; echo "$port" > "$c/port"
  app= color= label_image=
  while [ "$#" -gt 1 ]; do
    if [ "$1" = --label ]; then
      case $2 in
        bluegreen.app=*) app=${2#*=} ;;
        bluegreen.color=*) color=${2#*=} ;;
        bluegreen.image=*) label_image=${2#*=} ;;
      esac
    fi
    shift
  done
  echo "$app" > "$c/app"; echo "$color" > "$c/color"; echo "$label_image" > "$c/label_image"
  : > "$c/running"
  echo "0123abcd$name"
}
exists() { [ -d "$os/containers/$1" ] || { echo "Error response from daemon: No such container: $1" >&2; exit 1; }; }
command=$1; shift
knob "docker-$command"
case $command in
inspect)
  shift 2 # --type container
  printf '['; sep= code=0
  for name; do
    if [ -d "$os/containers/$name" ]; then printf '%s' "$sep"; inspect_one "$name"; sep=,; else code=1; fi
  done
  echo ']'; exit "$code" ;;
pull)
  for last; do :; done
  line=$(image_line "$last" "$os/registry")
  [ -n "$line" ] || { echo "Error response from daemon: manifest for $last not found: manifest unknown" >&2; exit 1; }
  echo "$line" >> "$os/pulled"
  set -- $line
  echo "$2" ;;
image)
  # image inspect --format FORMAT -- REF
  line=$(image_line "$5" "$os/pulled")
  [ -n "$line" ] || { echo "Error: No such image: $5" >&2; exit 1; }
  set -- "$3" $line
  case $1 in
    *RepoDigests*) echo "[\"$3\"]" ;;
    *) echo "id $4" ;;
  esac ;;
run) run "$@" ;;
start) exists "$1"; : > "$os/containers/$1/running" ;;
stop) exists "$3"; [ ! -e "$os/containers/$3/running" ] || rm "$os/containers/$3/running" ;;
rename)
  exists "$1"
  [ ! -e "$os/containers/$2" ] || { echo "Error response from daemon: Conflict: $2 is in use" >&2; exit 1; }
  mv "$os/containers/$1" "$os/containers/$2" ;;
rm) [ ! -d "$os/containers/$2" ] || rm -rf "${os:?}/containers/$2" ;;
logs) echo "app log line" ;;
ps)
  # ps --filter publish=PORT --format '{{.Names}} {{.Image}} {{.Label "bluegreen.app"}}'
  port=${2#publish=}
  for c in "$os"/containers/*; do
    [ -e "$c/running" ] && [ "$(field "${c##*/}" port)" = "$port" ] || continue
    echo "${c##*/} $(field "${c##*/}" image) $(field "${c##*/}" app)"
  done ;;
*) echo "the fake docker does not know \`docker $command $*\`" >&2; exit 1 ;;
esac
