#!/usr/bin/env bash
# `/metrics` of `edge-parser serve` (release build) at 1 000 groups in each exposition format:
# a Traefik JSON log of 60 000 lines over 1 000 routers, every line with a `TraceId` (so that
# every group's duration buckets carry exemplars), read with `--checkpoint`. Then 15 rounds: one
# line appended (the counters change), a checkpoint later one scrape of each format (`cold`:
# OpenMetrics and protobuf re-encode the new counters), then one more of each (`warm`: the
# counters' encoding of that checkpoint is reused). Timed by curl's `time_total`; prints each
# format's body size and its median, minimum and maximum time, cold and warm.
#
#   benches/exposition_scrape.sh [--groups N] [--lines N] [--rounds N]
#
# Everything stays on 127.0.0.1 and in a temporary directory, removed on exit. Needs curl and
# python3.
set -euo pipefail
cd "$(dirname "$0")/.."

groups=1000
lines=60000
rounds=15
while [ $# -gt 0 ]; do
    case "$1" in
        --groups) groups="$2"; shift 2 ;;
        --lines) lines="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

cargo build --release -q -p vantage-edge --bin edge-parser
work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$groups" "$lines" > "$work/access.log" <<'PY'
import random, sys
groups, lines = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
for n in range(lines):
    router = f"router-{n % groups}@docker"
    status = rng.choice([200] * 17 + [404, 500, 503])
    duration = int(rng.lognormvariate(17.0, 1.2))  # ns: a median of about 24 ms
    second = n // 200
    print('{"DownstreamStatus":%d,"Duration":%d,"OriginDuration":%d,"RequestMethod":"GET",'
          '"RequestPath":"/r/%d","RouterName":"%s","ServiceName":"svc-%d@docker",'
          '"StartUTC":"2025-03-09T12:%02d:%02dZ","TraceId":"%032x"}'
          % (status, duration, duration * 9 // 10, n, router, n % groups,
             second // 60 % 60, second % 60, n + 1))
PY

port_file="$work/port"
./target/release/edge-parser serve --log "$work/access.log" --format traefik-json \
    --from-start --checkpoint "$work/checkpoint.json" --checkpoint-interval 500ms \
    --listen 127.0.0.1:0 \
    --max-groups "$groups" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 100); do
    address="$(sed -n 's/.*serving on http:\/\/\([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.err" | head -n 1)"
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "${address:-}" ] || { echo "serve did not start:"; cat "$work/serve.err"; exit 1; }
until curl -s "http://$address/metrics" | grep -q "^edge_lines_total{result=\"parsed\"} $lines\$"; do
    sleep 0.5
done

declare -A accept=(
    [text]="text/plain;version=0.0.4"
    [openmetrics]="application/openmetrics-text;version=1.0.0"
    [protobuf]="application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
)
# The first scrape of OpenMetrics or protobuf asks for the extras; the next checkpoint has them.
curl -s -H "Accept: ${accept[protobuf]}" "http://$address/metrics" > /dev/null
sleep 2
for format in text openmetrics protobuf; do : > "$work/$format.cold"; : > "$work/$format.warm"; done
for round in $(seq 1 "$rounds"); do
    tail -n 1 "$work/access.log" >> "$work/access.log"
    until curl -s "http://$address/metrics" \
        | grep -q "^edge_lines_total{result=\"parsed\"} $((lines + round))\$"; do
        sleep 0.1
    done
    for pass in cold warm; do
        for format in text openmetrics protobuf; do
            curl -s -o "$work/$format.body" -w '%{time_total}\n' -H "Accept: ${accept[$format]}" \
                "http://$address/metrics" >> "$work/$format.$pass"
        done
    done
done
printf '%-12s %10s %6s %10s %10s %10s\n' format bytes pass median_ms min_ms max_ms
for format in text openmetrics protobuf; do
    for pass in cold warm; do
        sort -n "$work/$format.$pass" | awk -v f="$format" -v p="$pass" \
            -v bytes="$(wc -c < "$work/$format.body")" '
            { t[NR] = $1 * 1000 }
            END { printf "%-12s %10d %6s %10.1f %10.1f %10.1f\n", f, bytes, p, t[int((NR + 1) / 2)], t[1], t[NR] }'
    done
done
grep -c ' # {trace_id=' "$work/openmetrics.body" | sed 's/^/openmetrics bucket lines with an exemplar: /'
