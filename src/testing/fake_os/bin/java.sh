# Stand-in `java` of the fake OS (process mode's run_command `java -jar ARTIFACT
# --server.port=PORT`): listens on 127.0.0.1:PORT for the stand-in `ss` and the fake network
# ($HOME/os/ss/listen, and $HOME/os/apps/PID naming the port and the release, the directory it
# runs in), then waits: a real, cheap process with the same pid, stopped by signals. Once the
# test process that owns the machine ($FAKE_OS_OWNER) is gone, it kills its own process group
# (the supervisor too), so no color outlives the tests.
# Knob java: fail (exits at once, as an app that crashes).
os=$HOME/os
[ ! -e "$os/knobs/java" ] || { echo "java: injected crash" >&2; exit 1; }
port=
for arg; do case $arg in --server.port=*) port=${arg#--server.port=} ;; esac; done
mkdir -p "$os/apps"
echo "$port ${PWD##*/}" > "$os/apps/$$"
echo "127.0.0.1 $port $$ java" >> "$os/ss/listen"
while kill -0 "${FAKE_OS_OWNER:?}" 2>/dev/null; do sleep 1; done
kill -KILL 0
