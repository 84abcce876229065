#!/usr/bin/env bash
# Whole-process speed of `edge-parser report`: the release binary on a generated Traefik
# `common` log read from the page cache, 1 and 2 parser threads, several interleaved rounds;
# prints the median wall time, lines per second and the largest peak RSS of each, and the
# machine it ran on. The in-memory figures are `cargo bench --bench pipeline`.
#
#   benches/report_speed.sh [LINES] [ROUNDS]      # default 1,000,000 lines, 9 rounds
#
# Needs GNU time (Debian package `time`). Builds edge-parser in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

lines="${1:-1000000}"
rounds="${2:-9}"
command -v /usr/bin/time >/dev/null || { echo "report_speed.sh: GNU time is missing (apt-get install time)" >&2; exit 2; }

cargo build --release --quiet -p vantage-edge
edge=target/release/edge-parser
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/access.log"
"$edge" generate --format traefik-common --lines "$lines" --seed 1 >"$log"
cat "$log" >/dev/null

variants=("-j1" "-j2" "-j1 --json" "-j2 --json")
for round in $(seq "$rounds"); do
    # Rotate the order each round, so that no variant always runs first on a noisy machine.
    for i in "${!variants[@]}"; do
        variant="${variants[$(( (i + round) % ${#variants[@]} ))]}"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %M" -o "$work/time" "$edge" report -q $variant "$log" >"$work/out"
        echo "$variant|$(cat "$work/time")" >>"$work/results"
    done
done

printf '%s lines, %s MiB, %s rounds; %s, %s cores, load %s\n\n' "$lines" \
    "$(( $(stat -c %s "$log") >> 20 ))" "$rounds" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %10s %14s %12s\n' variant "median s" "lines/s" "peak RSS"
for variant in "${variants[@]}"; do
    grep -F -- "$variant|" "$work/results" | cut -d'|' -f2 \
        | sort -n | awk -v name="$variant" -v lines="$lines" '
            { seconds[NR] = $1; if ($2 > rss) rss = $2 }
            END {
                median = seconds[int((NR + 1) / 2)]
                printf "%-14s %10.3f %14.0f %8.1f MiB\n", name, median, lines / median, rss / 1024
            }'
done
