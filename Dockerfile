# The GitHub Action's runtime image: the bluegreen binary, the OpenSSH client, the docker CLI
# (+ buildx), CA certificates and a JDK for `build_command: auto`. Linux x86-64 only.
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
# Size: every workflow run pulls this image before anything else, so it holds nothing a run does
# not need: no docker daemon (the runner's serves the CLI), no curl (the downloads happen in a
# stage of their own), no git (the commit and the repository come from GITHUB_SHA and
# GITHUB_REPOSITORY; git would bring perl, about 95 MB), no documentation, no apt cache, and no
# JDK `jmods` (only `jlink` reads them; building a jar does not). The README gives the measured
# size and pull time.
#
# Build arguments let the image be made without any registry (the tests do so):
#   BUILDER       image for the compile stage; if it has /prebuilt/bluegreen, that is used as is
#   RUNTIME_BASE  base of the downloads and runtime stages (needs apt)
#   DOCKER_CLI_URL, BUILDX_URL   static docker CLI / buildx downloads, each checked against its
#                 *_SHA256 before use; empty DOCKER_CLI_URL: Debian's docker.io instead (a test
#                 image: it brings the daemon too); empty BUILDX_URL: no buildx
#   JDK_PACKAGE   empty: no JDK
ARG BUILDER=rust:1-bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BUILDER} AS builder
WORKDIR /src
COPY . .
RUN if [ -x /prebuilt/bluegreen ]; then install -m 755 /prebuilt/bluegreen /usr/local/bin/bluegreen; \
    else cargo build --release --locked --bin bluegreen && install -m 755 target/release/bluegreen /usr/local/bin/bluegreen; fi

# The static docker CLI and buildx, verified by sha256 (the checksums come from the releases'
# published digests; a new version brings new ones). curl stays in this stage. /out is laid out
# like the runtime's / and holds the binary too, so the runtime takes it all in one COPY (the
# legacy builder, which the tests use, fails on consecutive COPYs of empty directories).
FROM ${RUNTIME_BASE} AS downloads
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DOCKER_CLI_URL=https://download.docker.com/linux/static/stable/x86_64/docker-29.6.2.tgz
ARG DOCKER_CLI_SHA256=d6204aea92238e2453d5445c885b9d2e5eb8f82915568ec50edf9dbe12a3ac74
ARG BUILDX_URL=https://github.com/docker/buildx/releases/download/v0.37.1/buildx-v0.37.1.linux-amd64
ARG BUILDX_SHA256=9447199cdb435f25880548343c128a4b6650e8891ee598905d8d29d39a8e359b
# hadolint ignore=DL3008
RUN set -eux; \
    mkdir -p /out/usr/local/bin /out/usr/local/lib/docker/cli-plugins; \
    if [ -n "$DOCKER_CLI_URL$BUILDX_URL" ]; then \
      export DEBIAN_FRONTEND=noninteractive; \
      apt-get update; \
      apt-get install -y --no-install-recommends ca-certificates curl; \
    fi; \
    if [ -n "$DOCKER_CLI_URL" ]; then \
      curl -fsSL "$DOCKER_CLI_URL" -o /tmp/docker.tgz; \
      echo "$DOCKER_CLI_SHA256  /tmp/docker.tgz" | sha256sum -c -; \
      tar -xzf /tmp/docker.tgz -C /out/usr/local/bin --strip-components=1 docker/docker; \
    fi; \
    if [ -n "$BUILDX_URL" ]; then \
      curl -fsSL "$BUILDX_URL" -o /tmp/docker-buildx; \
      echo "$BUILDX_SHA256  /tmp/docker-buildx" | sha256sum -c -; \
      install -m 755 /tmp/docker-buildx /out/usr/local/lib/docker/cli-plugins/docker-buildx; \
    fi
COPY --from=builder /usr/local/bin/bluegreen /out/usr/local/bin/bluegreen

FROM ${RUNTIME_BASE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DOCKER_CLI_URL=https://download.docker.com/linux/static/stable/x86_64/docker-29.6.2.tgz
ARG JDK_PACKAGE=openjdk-17-jdk-headless
# Files no run reads are never unpacked (debian:bookworm-slim excludes the docs already; the JDK's
# jmods are for jlink alone). The JDK's postinst links its manual page into /usr/share/man/man1
# and fails when that directory is missing, as it is on a slim base.
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' \
      'path-include=/usr/share/doc/*/copyright' 'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/lib/jvm/*/jmods/*' > /etc/dpkg/dpkg.cfg.d/bluegreen-slim \
    && mkdir -p /usr/share/man/man1
# Debian's packages are not pinned to versions: a release rebuild should get the distribution's
# security updates (hadolint DL3008, kept on purpose).
# hadolint ignore=DL3008
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends openssh-client ca-certificates ${JDK_PACKAGE}; \
    if [ -z "$DOCKER_CLI_URL" ]; then apt-get install -y --no-install-recommends docker.io; fi; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log
COPY --from=downloads /out/ /
ENTRYPOINT ["/usr/local/bin/bluegreen"]
CMD ["action"]
