#!/usr/bin/env bash
# Runs insights-policy-render with the GitHub Action's inputs.
#
# Each input NAME arrives as the variable IPR_IN_NAME (upper case, `-` as
# `_`), set in action.yml; an empty input is not passed, so the tool's own
# default applies. Input names are the tool's flag names:
#   - value inputs become `--NAME VALUE`;
#   - list inputs (cluster, flux-depends-on, pr-label, pr-reviewer) take one value per line or
#     comma-separated, each becoming `--NAME VALUE`;
#   - switch inputs are `true` (pass `--NAME`) or `false`;
#   - `args`: further arguments, one per line, appended as they are.
# `token` and `git-token` become FAIRWINDS_TOKEN and GIT_TOKEN when set.
# For `diff`, exit code 2 (something would change) is `changed=true`, not a
# failure.
#
# With IPR_PRINT_ARGS=1 it prints the arguments, NUL-separated, instead of
# running the tool (tests/testsuite/ci_examples.rs parses them with the real CLI).
# Portable to macOS's bash 3.2.
set -euo pipefail

SWITCHES="keep-going allow-empty push stdout flux argo argo-appset sign pull-request pr-draft"
LISTS="cluster flux-depends-on pr-label pr-reviewer"
VALUES="from-file org insights-host token-file ca-file concurrency connect-timeout
request-timeout retries retry-min-backoff retry-max-backoff max-body-size crd-dir
max-removals out repo path base remote branch push-attempts author ssh-key
ssh-key-passphrase-file git-username forge forge-api-url forge-repo forge-token-file
forge-ca-file forge-max-wait
pr-body-file summary-file flux-path flux-name flux-namespace flux-source
flux-source-url flux-source-branch flux-source-secret flux-interval flux-timeout
flux-service-account argo-repo-url argo-dir argo-revision argo-namespace argo-project
argo-destination-server argo-destination-name log-level log-format"

die() {
  echo "::error::insights-policy-render action: $*" >&2
  exit 64
}

input() {
  local name
  name="IPR_IN_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
  printf '%s' "${!name:-}"
}

trim() {
  local s="$1"
  s="${s#"${s%%[![:space:]]*}"}"
  s="${s%"${s##*[![:space:]]}"}"
  printf '%s' "$s"
}

command="$(trim "$(input command)")"
case "$command" in
  render | commit | diff) ;;
  *) die "command must be render, commit or diff, not '${command}'" ;;
esac
args=("$command")

for name in $VALUES; do
  value="$(input "$name")"
  if [ -n "$value" ]; then args+=("--$name" "$value"); fi
done

for name in $LISTS; do
  while IFS= read -r line || [ -n "$line" ]; do
    # Items on a line may also be comma-separated.
    rest="$line,"
    while [ -n "$rest" ]; do
      item="$(trim "${rest%%,*}")"
      rest="${rest#*,}"
      if [ -n "$item" ]; then args+=("--$name" "$item"); fi
    done
  done <<EOF
$(input "$name")
EOF
done

for name in $SWITCHES; do
  value="$(trim "$(input "$name")")"
  case "$value" in
    true) args+=("--$name") ;;
    false | "") ;;
    *) die "input $name must be true or false, not '${value}'" ;;
  esac
done

while IFS= read -r line || [ -n "$line" ]; do
  if [ -n "$(trim "$line")" ]; then args+=("$(trim "$line")"); fi
done <<EOF
$(input args)
EOF

if [ "${IPR_PRINT_ARGS:-}" = 1 ]; then
  printf '%s\0' "${args[@]}"
  exit 0
fi

token="$(input token)"
if [ -n "$token" ]; then export FAIRWINDS_TOKEN="$token"; fi
git_token="$(input git-token)"
if [ -n "$git_token" ]; then export GIT_TOKEN="$git_token"; fi

if [ "$command" != diff ]; then
  exec insights-policy-render "${args[@]}"
fi
# `diff` exits 2 when something would change: for the workflow that is an
# answer (the `changed` output), not a failure.
code=0
insights-policy-render "${args[@]}" || code=$?
# (The tool writes changed=true|false to GITHUB_OUTPUT itself.)
case "$code" in
  0 | 2) exit 0 ;;
  *) exit "$code" ;;
esac
