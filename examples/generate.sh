#!/usr/bin/env bash
# Produces examples/flux and examples/argo with the tool itself, from the
# bundled response, for two clusters: each is a policy repository as
# `commit` leaves it. tests/testsuite/examples.rs runs this and fails when the result
# differs from what is committed; to refresh the examples after a change:
#   UPDATE_EXAMPLES=1 cargo test --test testsuite examples::
#
# usage: examples/generate.sh BINARY OUTPUT_DIR
set -euo pipefail
bin=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
response=$here/insights/response.yaml
repo_url=https://github.com/acme/kyverno-policies.git

# One policy repository, both clusters committed into it, the .git dropped.
generate() {
  local dir=$1
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  git -C "$dir" init --quiet --initial-branch=main
  for cluster in prod staging; do
    "$bin" commit --from-file "$response" --cluster "$cluster" --repo "$dir" \
      --author "insights-policy-render <insights-policy-render@example.com>" "$@" 2>/dev/null
  done
  rm -rf "$dir/.git"
}

# Flux: the Kustomization under each cluster's bootstrap path, reading the
# bootstrap's own GitRepository (flux-system, which already has the deploy
# key: a second GitRepository for the same repository would have none), with
# a least-privilege service account.
generate "$out/flux" --flux \
  --flux-service-account kyverno-policies

# Argo CD: one ApplicationSet over kyverno-policies/*, and the AppProject
# that admits only policy kinds; clusters are registered in Argo CD under
# their Insights names.
generate "$out/argo" --argo-appset --argo-repo-url "$repo_url" \
  --argo-destination-name '{cluster}'
