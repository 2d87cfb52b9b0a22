dir=$1 id=$2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
for file in "$dir/releases/$id"/*; do
  if [ -f "$file" ]; then touch "$dir/releases/$id"; echo present; exit 0; fi
done
echo absent
