set -e
dir=$1
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
if [ -n "$2" ]; then
  # A write that fails (a full disk) leaves no temp file behind; state.json stays as it was.
  tmp=$dir/state.json.tmp
  if ! { printf '%s\n' "$2" > "$tmp" && mv -f "$tmp" "$dir/state.json"; }; then
    rm -f "$tmp"
    exit 1
  fi
fi
[ -z "$3" ] || printf '%s\n' "$3" >> "$dir/history.jsonl"
