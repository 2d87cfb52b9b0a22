# The GitHub Action's runtime image: the bluegreen binary, the OpenSSH client, the docker CLI
# (+ buildx), CA certificates, git and a JDK for `build_command: auto`.
#
# It is built once per release and published to ghcr.io (.github/workflows/release.yml), and
# the release commit's action.yml runs the published image by digest: a container action whose
# Dockerfile compiled Rust would spend minutes compiling on every workflow run. (On a branch,
# action.yml builds this Dockerfile.)
#
# JDK in the image: the action runs in its own container, so the runner's setup-java JDK is not
# visible to it. The image carries Debian's OpenJDK 17 so `./gradlew`/`./mvnw` work out of the box.
# Projects on another JDK either build the jar in an earlier workflow step (with setup-java; the
# workspace is shared) and set `build_command: none`, or build it in a multi-stage Dockerfile.
#
# Build arguments let the image be made without any registry (the tests do so):
#   BUILDER       image for the compile stage; if it has /prebuilt/bluegreen, that is used as is
#   RUNTIME_BASE  base of the runtime stage (needs apt)
#   DOCKER_CLI_URL, BUILDX_URL   static docker CLI / buildx downloads; empty: Debian's docker.io
#   JDK_PACKAGE   empty: no JDK
ARG BUILDER=rust:1-bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BUILDER} AS builder
WORKDIR /src
COPY . .
RUN if [ -x /prebuilt/bluegreen ]; then install -m 755 /prebuilt/bluegreen /usr/local/bin/bluegreen; \
    else cargo build --release --locked --bin bluegreen && install -m 755 target/release/bluegreen /usr/local/bin/bluegreen; fi

FROM ${RUNTIME_BASE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DOCKER_CLI_URL=https://download.docker.com/linux/static/stable/x86_64/docker-27.3.1.tgz
ARG BUILDX_URL=https://github.com/docker/buildx/releases/download/v0.19.3/buildx-v0.19.3.linux-amd64
ARG JDK_PACKAGE=openjdk-17-jdk-headless
# Debian's packages are not pinned to versions: a release rebuild should get the distribution's
# security updates (hadolint DL3008, kept on purpose).
# hadolint ignore=DL3008
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends openssh-client ca-certificates git curl ${JDK_PACKAGE}; \
    if [ -n "$DOCKER_CLI_URL" ]; then \
      curl -fsSL "$DOCKER_CLI_URL" | tar -xz -C /usr/local/bin --strip-components=1 docker/docker; \
    else \
      apt-get install -y --no-install-recommends docker.io; \
    fi; \
    if [ -n "$BUILDX_URL" ]; then \
      mkdir -p /usr/local/lib/docker/cli-plugins; \
      curl -fsSL "$BUILDX_URL" -o /usr/local/lib/docker/cli-plugins/docker-buildx; \
      chmod +x /usr/local/lib/docker/cli-plugins/docker-buildx; \
    fi; \
    rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/bluegreen /usr/local/bin/bluegreen
ENTRYPOINT ["/usr/local/bin/bluegreen"]
CMD ["action"]
