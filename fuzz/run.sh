#!/usr/bin/env bash
# Runs each fuzz target in turn for SECONDS (default 300) each, on nightly,
# from a working corpus seeded with real policies. Exits non-zero if any
# target crashed, leaked, ran out of memory or timed out; the input that did
# is left in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${1:-300}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(render yaml_roundtrip)
fi
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

# Inputs far larger than a policy only slow the search; 64 KiB holds the
# largest single policy in the corpus several times over.
max_len=65536
# Any input up to max_len is handled in milliseconds; seconds means a
# superlinear path.
timeout=10
# With alias expansion capped at 100,000 nodes, honest inputs of max_len
# stay in the tens of megabytes, and under ASan's quarantine well below
# this; more means something grows with the input faster than it should.
rss_limit_mb=2048
# No single buffer (the rendered text is the largest) has a reason to reach
# this for a 64 KiB input.
malloc_limit_mb=256

shared="$root/../shared/corpus"
seeds=()
[ -d "$shared" ] && seeds+=("$shared")
[ -f "$root/examples/insights/response.yaml" ] && seeds+=("$root/examples/insights/response.yaml")

cd "$here"
mkdir -p logs
status=0
for target in "${targets[@]}"; do
    corpus="$here/corpus/$target"
    mkdir -p "$corpus" "$here/artifacts/$target"
    if [ "${#seeds[@]}" -gt 0 ]; then
        # Flattened and named by content, so reseeding adds nothing twice.
        find "${seeds[@]}" -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 |
            while IFS= read -r -d '' f; do
                cp "$f" "$corpus/seed-$(sha1sum "$f" | cut -c1-16)"
            done
    fi
    log="$here/logs/$target.log"
    echo "fuzzing $target for ${seconds}s (log: $log)"
    if ! cargo +nightly fuzz run --release "$target" "$corpus" -- \
        -max_total_time="$seconds" \
        -max_len="$max_len" \
        -timeout="$timeout" \
        -rss_limit_mb="$rss_limit_mb" \
        -malloc_limit_mb="$malloc_limit_mb" \
        -dict="$here/yaml.dict" \
        -print_final_stats=1 \
        >"$log" 2>&1; then
        echo "$target: FOUND A PROBLEM; see $log and $here/artifacts/$target/" >&2
        tail -n 40 "$log" >&2
        status=1
    else
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
        grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 || true
    fi
done
exit "$status"
