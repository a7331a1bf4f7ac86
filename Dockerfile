# syntax=docker/dockerfile:1
#
# The insights-policy-render image: the static binary, git, CA certificates
# and an ssh client (for pushes over SSH), running as a non-root user
# (65532). examples/ci uses it for GitLab CI and the Kubernetes CronJob;
# .github/workflows/release.yaml publishes it for every release.
#
#   docker build --build-arg INSIGHTS_POLICY_RENDER_COMMIT="$(git rev-parse HEAD)" \
#     -t insights-policy-render .
#
# Base images are pinned by digest: a tag can be moved to other content, a
# digest cannot. How these were chosen, honestly: the machine this file was
# written on has no container engine and no registry access, so they were
# NOT pulled or verified there. They are the digests that many independent
# public Dockerfiles pin for these exact tags. Before relying on them, and
# to refresh them (Renovate and Dependabot can do it too), run
#   docker buildx imagetools inspect alpine:3.23.3           # or: crane digest alpine:3.23.3
#   docker buildx imagetools inspect rust:1.95-alpine3.23
# and replace the tag and its digest together. A wrong digest fails the
# build at pull time; it cannot silently pull something else.

# Build: Alpine is musl, so the binary is static; the `static` feature
# builds OpenSSL (for libgit2's HTTPS and libssh2) and zlib from source.
FROM rust:1.95-alpine3.23@sha256:606fd313a0f49743ee2a7bd49a0914bab7deedb12791f3a846a34a4711db7ed2 AS build
# Packages come from the Alpine branch of the pinned base (not version-pinned:
# Alpine removes superseded package versions from its mirrors).
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev linux-headers perl make
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
# The commit `--version` reports (.git is not in the build context).
ARG INSIGHTS_POLICY_RENDER_COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features static \
    && cp target/release/insights-policy-render /insights-policy-render \
    && /insights-policy-render --version

# The bare binary, for the release workflow:
#   docker buildx build --target binary --output type=local,dest=dist .
FROM scratch AS binary
COPY --from=build /insights-policy-render /insights-policy-render

# Runtime: git and an ssh client for the repository, CA certificates for
# Insights and HTTPS remotes, curl for the merge request call in the GitLab
# example. No compiler, no package cache.
FROM alpine:3.23.3@sha256:25109184c71bdad752c8312a8623239686a9a2071e8825f20acb8f2198c3f659
# hadolint ignore=DL3018
RUN apk add --no-cache git ca-certificates openssh-client curl \
    && addgroup -S -g 65532 nonroot \
    && adduser -S -D -u 65532 -G nonroot -h /home/nonroot nonroot
COPY --from=build /insights-policy-render /usr/local/bin/insights-policy-render
USER 65532:65532
ENV HOME=/home/nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["insights-policy-render"]
CMD ["--help"]
