#!/usr/bin/env bash
# Runs edge-parser and GoAccess on the same generated Traefik `common` log and prints lines per
# second, peak RSS and the ratios, measured in one run on this machine (with `grep -E` and
# `wc -l` as baselines of reading the same bytes).
#
#   benches/compare.sh [LINES]        # default 1,000,000 lines
#
# Needs: goaccess and GNU time (Debian packages `goaccess`, `time`). Builds edge-parser in
# release mode. The log is generated with `edge-parser generate` into a temporary directory and
# read once beforehand so that every run reads it from the page cache.
set -euo pipefail
cd "$(dirname "$0")/.."

lines="${1:-1000000}"
for tool in goaccess /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apt-get install goaccess time)" >&2; exit 2; }
done

cargo build --release --quiet -p vantage-edge
edge=target/release/edge-parser
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/access.log"
"$edge" generate --format traefik-common --lines "$lines" --seed 1 >"$log"
cat "$log" >/dev/null

# Prints "<seconds> <peak RSS KiB>" of a command.
measure() {
    # Output goes to a file: GNU grep stops at the first match when it writes to /dev/null.
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/stderr" || {
        echo "compare.sh: failed: $*" >&2
        cat "$work/stderr" >&2
        exit 2
    }
    cat "$work/time"
}

goaccess_format='%h %^ %^ [%d:%t %^] "%r" %s %b "%R" "%u" %^ "%v" "%^" %Lms'
declare -A seconds rss
run() {
    local name="$1"
    shift
    read -r seconds["$name"] rss["$name"] < <(measure "$@")
}
run "wc -l" wc -l "$log"
run "grep -E" grep -Ec '" [0-9]{3} [0-9]+ ' "$log"
run "edge-parser -j1" "$edge" report -q -j1 "$log"
run "edge-parser -j2" "$edge" report -q -j2 "$log"
run "edge-parser -j2 --json" "$edge" report -q -j2 --json "$log"
run "goaccess" goaccess "$log" --no-progress --log-format="$goaccess_format" \
    --date-format='%d/%b/%Y' --time-format='%H:%M:%S' -o "$work/report.json"

printf '%s lines, %s MiB, %s\n\n' "$lines" "$(( $(stat -c %s "$log") >> 20 ))" "$(nproc) cores"
printf '%-24s %9s %14s %10s %12s\n' tool seconds "lines/s" "peak RSS" "vs goaccess"
for name in "wc -l" "grep -E" "edge-parser -j1" "edge-parser -j2" "edge-parser -j2 --json" "goaccess"; do
    awk -v name="$name" -v s="${seconds[$name]}" -v m="${rss[$name]}" -v l="$lines" \
        -v g="${seconds[goaccess]}" 'BEGIN {
            if (s < 0.01) s = 0.01
            printf "%-24s %9.2f %14.0f %7.1f MiB %11.1fx\n", name, s, l / s, m / 1024, g / s
        }'
done
