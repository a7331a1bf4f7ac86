#!/usr/bin/env bash
# Downloads a released insights-policy-render binary for this machine,
# verifies it against the release's SHA256SUMS, and installs it.
#
#   install.sh resolve   print the version to install (resolves "latest")
#   install.sh install   download (or reuse the cached archive), verify, install
#
# Environment:
#   IPR_VERSION     a release tag (v0.1.0) or "latest" [default: the tag the
#                   action was used at (uses: OWNER/NAME@v0.1.0), else latest]
#   IPR_RELEASES    the releases URL [default: https://github.com/$IPR_REPOSITORY/releases];
#                   assets are at $IPR_RELEASES/download/TAG/ASSET
#   IPR_REPOSITORY  OWNER/NAME of the repository that publishes the releases
#                   [default: the action's own repository]
#   IPR_ACTION_PATH where the runner checked out the action
#                   (.../_actions/OWNER/NAME/REF); github.action_repository and
#                   github.action_ref are not reliable in composite actions
#   IPR_CACHE_DIR   where the verified archive is kept between runs (restored by
#                   actions/cache); it is verified again on every run
#   IPR_BIN_DIR     where the binary goes [default: $IPR_CACHE_DIR/bin]
#   RUNNER_OS, RUNNER_ARCH  as GitHub Actions sets them; else from uname
#
# Outputs (when set): the bin directory is appended to $GITHUB_PATH, and
# version=, path= are appended to $GITHUB_OUTPUT.
#
# Release layout (what .github/workflows/release.yaml publishes):
#   insights-policy-render-x86_64-unknown-linux-musl.tar.gz
#   insights-policy-render-aarch64-unknown-linux-musl.tar.gz
#   insights-policy-render-aarch64-apple-darwin.tar.gz
#   SHA256SUMS  (sha256sum format: "HASH  FILE" per line)
set -euo pipefail

NAME=insights-policy-render

die() {
  echo "::error::install insights-policy-render: $*" >&2
  exit 1
}

releases_url() {
  local url="${IPR_RELEASES:-}" repository="${IPR_REPOSITORY:-}"
  if [ -z "$url" ]; then
    if [ -z "$repository" ]; then
      repository="$(action_ref | cut -d' ' -f1)"
    fi
    [ -n "$repository" ] || die "say where the releases are: the repository input (OWNER/NAME)"
    url="https://github.com/${repository}/releases"
  fi
  url="${url%/}"
  # The binary is what runs with the pipeline's tokens: fetch it over TLS.
  # Plain http only to this machine (the tests' local server).
  case "$url" in
    https://*) ;;
    http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
    *) die "refusing $url: releases are downloaded over https only" ;;
  esac
  printf '%s' "$url"
}

# "OWNER/NAME REF" of the action, from the path the runner checked it out
# at; nothing for a local action (uses: ./).
action_ref() {
  local path="${IPR_ACTION_PATH:-}" rest owner name ref
  case "$path" in
    */_actions/*/*/*) ;;
    *) return 0 ;;
  esac
  rest="${path##*/_actions/}"
  owner="${rest%%/*}"
  rest="${rest#*/}"
  name="${rest%%/*}"
  ref="${rest#*/}"
  ref="${ref%%/*}"
  printf '%s/%s %s\n' "$owner" "$name" "$ref"
}

fetch() { # URL OUT
  curl --fail --silent --show-error --location --retry 3 --retry-delay 1 \
    --connect-timeout 10 --max-time 300 --output "$2" "$1"
}

target() {
  local os="${RUNNER_OS:-$(uname -s)}" arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$os/$arch" in
    Linux/X64 | Linux/x86_64 | Linux/amd64) echo x86_64-unknown-linux-musl ;;
    Linux/ARM64 | Linux/aarch64 | Linux/arm64) echo aarch64-unknown-linux-musl ;;
    macOS/ARM64 | Darwin/arm64 | Darwin/aarch64) echo aarch64-apple-darwin ;;
    *) die "no prebuilt binary for $os/$arch (there are Linux x86_64 and aarch64, and macOS arm64): install with cargo install instead" ;;
  esac
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

resolve() {
  local version="${IPR_VERSION:-}" base location
  if [ -z "$version" ]; then
    version="$(action_ref | cut -s -d' ' -f2)"
    case "$version" in
      v[0-9]*) ;;
      *) version=latest ;; # a branch or a commit: there is no release of it
    esac
  fi
  if [ "$version" != latest ]; then
    printf '%s\n' "$version"
    return
  fi
  base="$(releases_url)"
  # /releases/latest redirects to /releases/tag/TAG.
  location="$(curl --fail --silent --show-error --retry 3 --connect-timeout 10 \
    --max-time 60 --output /dev/null --write-out '%{redirect_url}' "$base/latest")" ||
    die "cannot ask $base/latest for the latest release"
  version="${location##*/}"
  case "$version" in
    v[0-9]*) printf '%s\n' "$version" ;;
    *) die "$base/latest does not redirect to a release tag (got ${location:-nothing}): set the version input" ;;
  esac
}

install() {
  local version base target asset dir bin_dir expected actual
  version="$(resolve)"
  base="$(releases_url)"
  target="$(target)"
  asset="$NAME-$target.tar.gz"
  dir="${IPR_CACHE_DIR:?set IPR_CACHE_DIR}"
  bin_dir="${IPR_BIN_DIR:-$dir/bin}"
  mkdir -p "$dir" "$bin_dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT

  # The checksums are fetched on every run, so a cached archive is checked
  # against the release, not against itself.
  fetch "$base/download/$version/SHA256SUMS" "$tmp/SHA256SUMS" ||
    die "cannot download SHA256SUMS of release $version from $base/download/$version/: is $version released?"
  expected="$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")"
  [ -n "$expected" ] || die "SHA256SUMS of release $version lists no $asset"
  case "$expected" in
    *[!0-9a-fA-F]*) die "SHA256SUMS of release $version has a malformed or repeated entry for $asset" ;;
  esac
  [ "${#expected}" -eq 64 ] || die "SHA256SUMS of release $version has a malformed entry for $asset"
  expected="$(printf '%s' "$expected" | tr 'A-F' 'a-f')"

  local cached="$dir/$asset"
  if [ -f "$cached" ] && [ "$(sha256 "$cached")" = "$expected" ]; then
    echo "using the cached $asset of $version (checksum verified)" >&2
  else
    echo "downloading $asset of $version" >&2
    fetch "$base/download/$version/$asset" "$tmp/$asset" ||
      die "cannot download $asset of release $version from $base/download/$version/"
    actual="$(sha256 "$tmp/$asset")"
    [ "$actual" = "$expected" ] ||
      die "checksum mismatch for $asset of release $version: SHA256SUMS says $expected, the download is $actual; nothing was installed"
    mv -f "$tmp/$asset" "$cached"
  fi

  mkdir -p "$tmp/unpacked"
  tar -xzf "$cached" -C "$tmp/unpacked"
  [ -f "$tmp/unpacked/$NAME" ] || die "$asset holds no $NAME"
  chmod 0755 "$tmp/unpacked/$NAME"
  mv -f "$tmp/unpacked/$NAME" "$bin_dir/$NAME"
  echo "installed $bin_dir/$NAME ($version, $target)" >&2

  if [ -n "${GITHUB_PATH:-}" ]; then echo "$bin_dir" >>"$GITHUB_PATH"; fi
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
      echo "version=$version"
      echo "path=$bin_dir/$NAME"
    } >>"$GITHUB_OUTPUT"
  fi
}

case "${1:-}" in
  resolve) resolve ;;
  install) install ;;
  *) die "usage: install.sh resolve|install" ;;
esac
