# Stand-in `java` of the fake OS (process mode's run_command `java -jar ARTIFACT
# --server.port=PORT`): listens on 127.0.0.1:PORT for the stand-in `ss` and the fake network
# ($HOME/os/ss/listen, and $HOME/os/apps/PID naming the port and the release, the directory it
# runs in), then becomes a `sleep`: a real, cheap process with the same pid, stopped by signals.
# Knob java: fail (exits at once, as an app that crashes).
os=$HOME/os
[ ! -e "$os/knobs/java" ] || { echo "java: injected crash" >&2; exit 1; }
port=
for arg; do case $arg in --server.port=*) port=${arg#--server.port=} ;; esac; done
mkdir -p "$os/apps"
echo "$port ${PWD##*/}" > "$os/apps/$$"
echo "127.0.0.1 $port $$ java" >> "$os/ss/listen"
exec sleep 100000
