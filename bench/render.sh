#!/usr/bin/env bash
# Render benchmark (issue: render core). For N policies (the Kyverno library
# repeated with new names): render to an empty directory, then render again
# with nothing changed. Prints wall time, peak RSS and files written.
# Usage: bench/render.sh [N ...]   (default: 1000 2500 5000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
library=../shared/corpus/insights/library.yaml
[ -f "$library" ] || { echo "needs $library" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/insights-policy-render
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" 2>"$work/stderr" >/dev/null
  read -r secs kb <"$work/time"
  printf '%-8s %8.2f s %8.1f MB   %s\n' "$label" "$secs" "$(echo "$kb/1024" | bc -l)" "$(grep -v WARN "$work/stderr" | tail -1)"
}

for n in "${@:-1000 2500 5000 10000}"; do
  for one in $n; do
    input="$work/in-$one.yaml"
    python3 bench/gen_library.py "$library" "$one" "$input"
    echo "== $one policies, $(du -m "$input" | cut -f1) MB of YAML"
    # Five rounds: creating thousands of files on ext4 right after deleting
    # thousands varies by several times from run to run (inode allocation
    # skips recently deleted inodes), so look at the spread, not one number.
    for round in 1 2 3 4 5; do
      out="$work/out-$one-$round"
      measure first "$bin" render --from-file "$input" --out "$out"
      touch "$work/marker"; sleep 1
      measure second "$bin" render --from-file "$input" --out "$out"
      echo "         files written by the second run: $(find "$out" -newer "$work/marker" -type f | wc -l)"
    done
  done
done
