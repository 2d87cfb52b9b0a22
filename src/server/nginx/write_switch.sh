set -e
file=$1
content=$(cat)
# A symlink to the one real switch file is followed (its link, owner and mode are kept). A
# symlink that selects one of several sibling files the new content names (seed 002's
# sites-enabled/default -> sites-available/blue) is itself replaced, never written through.
if [ -L "$file" ]; then
  target=$(readlink -f "$file")
  case $content in *"$(dirname "$target")/"*) ;; *) file=$target;; esac
fi
tmp=$(mktemp "$file.bluegreen.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$content" > "$tmp"
if [ -e "$file" ]; then
  chmod --reference="$file" "$tmp"
  chown --reference="$file" "$tmp" 2>/dev/null || true
else
  chmod 644 "$tmp"
fi
mv -f "$tmp" "$file"
trap - EXIT
