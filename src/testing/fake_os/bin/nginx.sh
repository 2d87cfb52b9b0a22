# Stand-in `nginx` of the fake OS: `-t` checks nothing; `-s reload` loads the switch file (named
# in $HOME/os/nginx/switch_path) into $HOME/os/nginx/loaded, which the fake network routes by,
# unless the knob nginx-ignores-switch says this nginx never includes it. Knobs nginx-test,
# nginx-reload: fail, hang, slow SECONDS.
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
case $* in
-t) knob nginx-test; echo "nginx: configuration file test is successful" >&2 ;;
"-s reload")
  knob nginx-reload
  [ ! -e "$os/knobs/nginx-ignores-switch" ] || exit 0
  read -r switch < "$os/nginx/switch_path"
  [ -e "$switch" ] || { rm -f "$os/nginx/loaded"; exit 0; }
  while IFS= read -r line; do printf '%s\n' "$line"; done < "$switch" > "$os/nginx/loaded" ;;
*) echo "the fake nginx does not know \`nginx $*\`" >&2; exit 1 ;;
esac
