dir=$1
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
tail -n 40 "$dir/$2.log"
