set -e
dir=$1 id=$2 file=$3 keep=$4
shift 4
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
mkdir -p "$dir/releases/$id"
cat > "$dir/releases/$id/.upload"
mv -f "$dir/releases/$id/.upload" "$dir/releases/$id/$file"
touch "$dir/releases/$id"
n=0
for old in $(ls -1t "$dir/releases"); do
  n=$((n + 1))
  [ "$n" -gt "$keep" ] || continue
  wanted=no
  for name in "$id" "$@"; do [ "$old" != "$name" ] || wanted=yes; done
  [ "$wanted" = yes ] || rm -rf "${dir:?}/releases/$old"
done
echo uploaded
