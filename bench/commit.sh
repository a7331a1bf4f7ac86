#!/usr/bin/env bash
# Commit benchmark (issue: commit to a policy repository). N policies (default
# 10000) committed into an empty repository by `insights-policy-render commit`,
# side by side with `git add -A && git commit` of the same rendered files, then
# a second `commit` run with nothing changed. Prints times and ratios per
# round, then the medians and ranges of the ratios.
# Usage: bench/commit.sh [N [ROUNDS]]   (default: 10000 policies, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
rounds=${2:-3}
library=../shared/corpus/insights/library.yaml
[ -f "$library" ] || { echo "needs $library" >&2; exit 1; }
cargo build --release --quiet
# BIN=path compares another build of the tool (an earlier commit, say).
bin=${BIN:-$PWD/target/release/insights-policy-render}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_library.py "$library" "$n" "$work/in.yaml"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

secs() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>&1; cat "$work/t"; }

: >"$work/ratios"
for round in $(seq "$rounds"); do
  tool="$work/tool-$round"; cli="$work/cli-$round"
  git init -q -b main "$tool"; git init -q -b main "$cli"
  "$bin" render --from-file "$work/in.yaml" --out "$cli/policies" 2>/dev/null
  sync
  t_tool=$(secs "$bin" commit --from-file "$work/in.yaml" --cluster bench --path policies --repo "$tool" --author "bench <bench@example.com>")
  t_cli=$(secs bash -c "cd '$cli' && git add -A && git commit -qm render")
  t_noop=$(secs "$bin" commit --from-file "$work/in.yaml" --cluster bench --path policies --repo "$tool" --author "bench <bench@example.com>")
  [ "$(git -C "$tool" rev-list --count HEAD)" = 1 ] || { echo "the no-op run committed" >&2; exit 1; }
  [ "$(git -C "$tool" rev-parse HEAD^{tree})" = "$(git -C "$cli" rev-parse HEAD^{tree})" ] || { echo "trees differ" >&2; exit 1; }
  ratio=$(echo "$t_tool/$t_cli" | bc -l); noop_ratio=$(echo "$t_noop/$t_cli" | bc -l)
  printf 'round %d: tool commit %5.2f s   git add+commit %5.2f s   ratio %.2f   no-op %5.2f s   no-op/git %.2f\n' \
    "$round" "$t_tool" "$t_cli" "$ratio" "$t_noop" "$noop_ratio"
  echo "$t_tool $t_cli $ratio $t_noop $noop_ratio" >>"$work/ratios"
done
# File creation on this kind of disk swings by several times between runs
# (see BENCHMARKS.md), so the summary is medians and ranges, not one round.
summary() { # column, label
  sort -g -k"$1" "$work/ratios" | awk -v c="$1" -v label="$2" '{ v[NR] = $c }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%-16s median %5.2f   range %.2f-%.2f\n", label, m, v[1], v[NR] }'
}
summary 1 "tool commit (s)"; summary 2 "git (s)"; summary 3 "ratio"
summary 4 "no-op (s)"; summary 5 "no-op/git"
