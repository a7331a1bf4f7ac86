#!/usr/bin/env bash
# One cluster of N policies (default 120) committed into a repository that
# already holds M other files (default 50,000), by `insights-policy-render
# commit`, side by side with the git command line doing the same
# (`render --out` into the directory, then `git add -A && git commit`).
# Both start from a fresh clone with a refreshed index; the script checks
# that both commits have the same tree. Prints per round and the medians.
# Usage: bench/commit_big_repo.sh [N [M [ROUNDS]]]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-120}
m=${2:-50000}
rounds=${3:-3}
library=../shared/corpus/insights/library.yaml
[ -f "$library" ] || { echo "needs $library" >&2; exit 1; }
cargo build --release --quiet
bin=${BIN:-$PWD/target/release/insights-policy-render}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_library.py "$library" "$n" "$work/in.yaml"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

# The big repository: M small files in 500 directories, one commit.
git init -q -b main "$work/seed"
python3 - "$work/seed" "$m" <<'PY'
import os, sys
root, m = sys.argv[1], int(sys.argv[2])
for i in range(m):
    d = os.path.join(root, "apps", f"app{i % 500:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i}.yaml"), "w") as f:
        f.write(f"kind: ConfigMap\nmetadata:\n  name: f{i}\ndata:\n  n: \"{i}\"\n")
PY
git -C "$work/seed" add -A && git -C "$work/seed" commit -qm seed

secs() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>&1; cat "$work/t"; }
: >"$work/ratios"
for round in $(seq "$rounds"); do
  tool="$work/tool-$round"; cli="$work/cli-$round"
  git clone -q "$work/seed" "$tool"; git clone -q "$work/seed" "$cli"
  git -C "$tool" update-index -q --refresh; git -C "$cli" update-index -q --refresh
  sync
  t_tool=$(secs "$bin" commit --from-file "$work/in.yaml" --cluster bench --path policies --repo "$tool" --author "bench <bench@example.com>")
  t_cli=$(secs bash -c "'$bin' render --from-file '$work/in.yaml' --out '$cli/policies' && cd '$cli' && git add -A && git commit -qm render")
  t_noop=$(secs "$bin" commit --from-file "$work/in.yaml" --cluster bench --path policies --repo "$tool" --author "bench <bench@example.com>")
  [ "$(git -C "$tool" rev-parse HEAD^{tree})" = "$(git -C "$cli" rev-parse HEAD^{tree})" ] || { echo "trees differ" >&2; exit 1; }
  [ -z "$(git -C "$tool" status --porcelain)" ] || { echo "the tool left git status dirty" >&2; exit 1; }
  ratio=$(echo "$t_tool/$t_cli" | bc -l); noop_ratio=$(echo "$t_noop/$t_cli" | bc -l)
  printf 'round %d: tool commit %5.2f s   render+git add+commit %5.2f s   ratio %.2f   no-op %5.2f s   no-op/git %.2f\n' \
    "$round" "$t_tool" "$t_cli" "$ratio" "$t_noop" "$noop_ratio"
  echo "$t_tool $t_cli $ratio $t_noop $noop_ratio" >>"$work/ratios"
  rm -rf "$tool" "$cli"
done
summary() {
  sort -g -k"$1" "$work/ratios" | awk -v c="$1" -v label="$2" '{ v[NR] = $c }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%-16s median %5.2f   range %.2f-%.2f\n", label, m, v[1], v[NR] }'
}
summary 1 "tool commit (s)"; summary 2 "git (s)"; summary 3 "ratio"
summary 4 "no-op (s)"; summary 5 "no-op/git"
