set -a; . /dev/stdin; set +a; exec "$@"
