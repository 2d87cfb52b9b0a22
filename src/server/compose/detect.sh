if docker compose version >/dev/null 2>&1; then echo v2
elif docker-compose version >/dev/null 2>&1; then echo v1
else echo none
fi
