switch=$1 dir=$2
case $dir in "~/"*) dir=$HOME/${dir#"~/"};; esac
echo "::section user"
id -un; id -u
echo "::section docker"
docker version --format '{{.Server.Version}}' 2>&1 | head -n 3
echo "::section java"
java -version 2>&1 | head -n 1
echo "::section compose"
docker compose version --short 2>/dev/null || docker-compose version --short 2>/dev/null || echo none
echo "::section switch"
if [ -L "$switch" ]; then echo "symlink $(readlink -f "$switch")"; fi
if [ -e "$switch" ]; then echo exists; else echo missing; fi
if [ -w "$(dirname "$switch")" ]; then echo writable; fi
echo "::section nginx_config"
sh -c "$3" 2>&1 | head -c 2000000
echo
echo "::section nginx_version"
sh -c "$4" 2>&1 | head -n 2
echo "::section mounts"
for c in $(docker ps -q 2>/dev/null); do
  docker inspect --format '{{.Name}}{{range .Mounts}} {{.Source}}={{.Destination}}{{end}}' "$c" 2>/dev/null
done
echo "::section disk"
d=$dir; while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
df -Pk "$d" 2>/dev/null | tail -n 1
echo "::section nft"
if command -v nft >/dev/null 2>&1; then nft list tables >/dev/null 2>&1 && echo usable || echo unprivileged; else echo absent; fi
exit 0
