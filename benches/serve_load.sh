#!/usr/bin/env bash
# Sustained load on `edge-parser serve`: appends access-log lines stamped with the current time
# at a steady rate (100 000 lines/s for 60 s by default, over 10 000 distinct paths) to a log
# that `edge-parser serve` (release build) follows, and samples once a second:
#   - `edge_lag_seconds` and the sum of `edge_lines_total` from /metrics,
#   - the server's resident memory (VmRSS in /proc/PID/status) and CPU use,
#   - how many lines the writer wrote (its achieved rate).
# Then it waits for the server to count every line written (up to 15 s) and prints the table
# and a summary: maximum lag, maximum and final RSS, the RSS slope over the second half of the
# run (at least its last 40 s), lines counted against lines written.
#
#   benches/serve_load.sh [--rate N] [--seconds N] [--format F] [--id-paths N]
#                         [--word-paths N] [--max-groups N] [--poll-interval D]
#                         [--checkpoint-interval D] [--no-checkpoint]
#                         [--idle N] [--streams M]
#
# With `--idle N` or `--streams M`, `cargo run --example hostile_clients`
# (examples/examples/hostile_clients.rs) runs beside the writer for the same time: N idle
# connections (opened again whenever the server closes them), M readers of `/api/stream`, and
# a scrape of `/metrics` every 100 ms on a fresh connection, timed, whose `edge_lines_total`
# tells how fresh the counters are (the writer notes when its line 0 was due, and line k is
# due k / rate later). Its figures are added to the summary. Both the clients and the server
# raise their soft descriptor limit to the hard one; 2 000 connections need a hard limit
# above 2 100 (`ulimit -Hn`).
#
# The writer is `cargo run --example loadgen` (examples/examples/loadgen.rs): the default
# format is `envoy`, whose timestamps have millisecond resolution (with a format that logs
# whole seconds, such as nginx-combined-rt, the lag reads up to 1 s more than the delay). The
# default paths are 9 900 with numeric ids (folded into 4 routes) and 100 of letters (one route
# each); `--id-paths 8000 --word-paths 2000` floods past serve's default cap of 1 000 groups.
#
# Everything stays on 127.0.0.1 (a port the system picks) and in a temporary directory, both
# removed on exit; the log grows by about 27 MiB/s with the defaults. Needs curl.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=100000
seconds=60
format=envoy
id_paths=9900
word_paths=100
max_groups=1000
poll_interval=250ms
checkpoint_interval=500ms
checkpoint=yes
idle=0
streams=0
while (($# > 0)); do
    case "$1" in
        --rate) rate="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --format) format="$2"; shift 2 ;;
        --id-paths) id_paths="$2"; shift 2 ;;
        --word-paths) word_paths="$2"; shift 2 ;;
        --max-groups) max_groups="$2"; shift 2 ;;
        --poll-interval) poll_interval="$2"; shift 2 ;;
        --checkpoint-interval) checkpoint_interval="$2"; shift 2 ;;
        --no-checkpoint) checkpoint=no; shift ;;
        --idle) idle="$2"; shift 2 ;;
        --streams) streams="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "serve_load.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for number in "$rate" "$seconds" "$id_paths" "$word_paths" "$max_groups" "$idle" "$streams"; do
    [[ "$number" =~ ^[0-9]+$ ]] || { echo "serve_load.sh: $number is not a number" >&2; exit 2; }
done
((seconds >= 1 && seconds <= 3600)) || { echo "serve_load.sh: --seconds must be 1 to 3600" >&2; exit 2; }
hostile=no
((idle > 0 || streams > 0)) && hostile=yes
command -v curl >/dev/null || { echo "serve_load.sh: curl is missing" >&2; exit 2; }

cargo build --release --quiet -p vantage-edge --bin edge-parser
cargo build --release --quiet -p vantage-examples --example loadgen --example hostile_clients
edge=target/release/edge-parser
loadgen=target/release/examples/loadgen
hostile_clients=target/release/examples/hostile_clients

work="$(mktemp -d "${TMPDIR:-/tmp}/serve-load.XXXXXX")"
server_pid=""
writer_pid=""
clients_pid=""
cleanup() {
    # Only the processes started here.
    for pid in "$clients_pid" "$writer_pid" "$server_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log="$work/access.log"
: >"$log"
serve_args=(serve --log "$log" --format "$format" --listen 127.0.0.1:0
    --poll-interval "$poll_interval" --max-groups "$max_groups")
[[ "$checkpoint" == yes ]] && serve_args+=(--checkpoint "$work/checkpoint.json"
    --checkpoint-interval "$checkpoint_interval")
# Debug lines of the ingest loop: how long each checkpoint took (written, then rendered).
RUST_LOG="${RUST_LOG:-info,vantage_edge::serve::ingest=debug}" \
    "$edge" "${serve_args[@]}" 2>"$work/serve.err" &
server_pid=$!

# The port the system picked, from the "serving on http://ADDR" line.
addr=""
for _ in $(seq 100); do
    addr="$(sed -n 's|.*serving on http://\([0-9.]*:[0-9]*\).*|\1|p' "$work/serve.err" | head -n1)"
    [[ -n "$addr" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$addr" ]]; then
    echo "serve_load.sh: edge-parser serve did not start:" >&2
    cat "$work/serve.err" >&2
    exit 2
fi
ready=no
for _ in $(seq 100); do
    curl -sf --max-time 1 "http://$addr/ready" >/dev/null && { ready=yes; break; }
    sleep 0.1
done
[[ "$ready" == yes ]] || { echo "serve_load.sh: http://$addr/ready did not answer 200" >&2; exit 2; }

# Prints "<lag seconds> <lines counted> <scrape ms> <page KiB>" from one /metrics scrape.
scrape() {
    local timing
    rm -f "$work/metrics"
    timing="$(curl -s --max-time 5 -o "$work/metrics" -w '%{time_total} %{size_download}' \
        "http://$addr/metrics" || true)"
    [[ -f "$work/metrics" ]] || : >"$work/metrics"
    awk -v timing="$timing" '
        /^edge_lag_seconds / { lag = $2 }
        /^edge_lines_total\{/ { lines += $2 }
        END {
            split(timing, t, " ")
            printf "%s %d %.0f %.0f\n", (lag == "" ? "nan" : lag), lines, t[1] * 1000, t[2] / 1024
        }' "$work/metrics"
}
# Resident memory of the server, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
# CPU time of the server (user + system), clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
# Lines the writer wrote so far, and in its last whole second.
writer_progress() {
    local last
    last="$(grep -v "^done" "$work/writer.out" | tail -n1 || true)"
    if [[ -z "$last" ]]; then echo "0 0"; else echo "${last#* }"; fi
}
now_ns() { date +%s%N; }

ticks_per_second="$(getconf CLK_TCK)"
{
    echo "machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(free -g | awk '/^Mem:/ { print $2 }') GiB, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
    echo "run: $rate lines/s for $seconds s, format $format, $id_paths id paths + $word_paths word paths, --max-groups $max_groups, --poll-interval $poll_interval, checkpoint $checkpoint (every $checkpoint_interval), $idle idle connections, $streams streams"
    echo "server idle: RSS $(($(rss_kib) / 1024)) MiB"
    echo
} | tee "$work/header"

if [[ "$hostile" == yes ]]; then
    "$hostile_clients" --addr "$addr" --idle "$idle" --streams "$streams" --seconds "$seconds" \
        --rate "$rate" --lines-started-file "$work/started" >"$work/clients.out" \
        2>"$work/clients.err" &
    clients_pid=$!
fi
"$loadgen" --log "$log" --format "$format" --rate "$rate" --seconds "$seconds" \
    --id-paths "$id_paths" --word-paths "$word_paths" --started-file "$work/started" \
    >"$work/writer.out" &
writer_pid=$!
started="$(now_ns)"
previous_ticks="$(cpu_ticks)"
previous_ns="$started"

printf '%5s %10s %10s %9s %8s %8s %5s %9s %9s\n' \
    t written counted behind lag_s rss_mib cpu% w_lines/s scrape_ms
: >"$work/samples"
sample() {
    local label="$1" lag counted scrape_ms page_kib written wrote rss ticks now cpu
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "serve_load.sh: edge-parser serve exited:" >&2
        cat "$work/serve.err" >&2
        exit 2
    fi
    read -r lag counted scrape_ms page_kib < <(scrape)
    read -r written wrote < <(writer_progress)
    rss="$(rss_kib)"
    ticks="$(cpu_ticks)"
    now="$(now_ns)"
    cpu="$(awk -v d="$((ticks - previous_ticks))" -v hz="$ticks_per_second" \
        -v ns="$((now - previous_ns))" 'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')"
    previous_ticks="$ticks"
    previous_ns="$now"
    echo "$label $written $counted $lag $rss $cpu $wrote $scrape_ms $page_kib" >>"$work/samples"
    # After the writer stopped, the lag only says how long ago the last line was written.
    awk -v label="$label" -v w="$written" -v c="$counted" -v lag="$lag" -v rss="$rss" \
        -v cpu="$cpu" -v wrote="$wrote" -v ms="$scrape_ms" 'BEGIN {
            lag = (label == "end" ? "-" : sprintf("%.3f", lag))
            printf "%5s %10d %10d %9d %8s %8.1f %5d %9d %9d\n",
                label, w, c, w - c, lag, rss / 1024, cpu, wrote, ms
        }'
}

for ((second = 1; second <= seconds; second++)); do
    wait_ns=$((started + second * 1000000000 - $(now_ns)))
    if ((wait_ns > 0)); then
        sleep "$(awk -v ns="$wait_ns" 'BEGIN { printf "%.3f", ns / 1e9 }')"
    fi
    sample "$second"
done

wait "$writer_pid" || { echo "serve_load.sh: the writer failed" >&2; exit 2; }
writer_pid=""
if [[ -n "$clients_pid" ]]; then
    wait "$clients_pid" || { echo "serve_load.sh: hostile_clients failed:" >&2; cat "$work/clients.err" >&2; exit 2; }
    clients_pid=""
fi
read -r _ written_total writer_seconds < <(grep '^done ' "$work/writer.out")

# Drain: the server counts what is left in the file.
drain_started="$(now_ns)"
counted=0
for _ in $(seq 60); do
    read -r _ counted _ _ < <(scrape)
    ((counted >= written_total)) && break
    sleep 0.25
done
drain_ms=$((($(now_ns) - drain_started) / 1000000))
sample end

checkpoint_mib=0
if [[ -f "$work/checkpoint.json" ]]; then
    checkpoint_mib="$(awk -v b="$(stat -c %s "$work/checkpoint.json")" 'BEGIN { printf "%.1f", b / 1048576 }')"
fi
awk -v seconds="$seconds" -v total="$written_total" -v writer_seconds="$writer_seconds" \
    -v drain_ms="$drain_ms" -v rate="$rate" -v checkpoint_mib="$checkpoint_mib" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
    $1 != "end" {
        n++
        if ($4 != "nan" && $4 > max_lag) max_lag = $4
        lag_sum += $4
        if ($5 > max_rss) max_rss = $5
        if ($1 > seconds - (seconds / 2 > 40 ? seconds / 2 : 40)) {
            m++; sx += $1; sy += $5; sxx += $1 * $1; sxy += $1 * $5
        }
        if ($7 > 0 && (min_rate == "" || $7 < min_rate)) min_rate = $7
        if ($7 > max_rate) max_rate = $7
        if ($9 > max_page) max_page = $9
        if ($8 > max_scrape) max_scrape = $8
        cpu_sum += $6
    }
    $1 == "end" { final_rss = $5; counted = $3; final_lag = $4; if ($5 > max_rss) max_rss = $5 }
    END {
        slope = (m > 1 && m * sxx - sx * sx != 0) ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : 0
        printf "\nsummary\n"
        printf "  writer:        %d lines in %s s (%.0f lines/s; per second %d to %d; target %d)\n",
            total, writer_seconds, total / writer_seconds, min_rate, max_rate, rate
        printf "  lag:           max %.3f s, mean %.3f s (target <= 1 s): %s\n",
            max_lag, lag_sum / n, (max_lag <= 1 ? "met" : "NOT met")
        printf "  RSS:           max %.1f MiB, final %.1f MiB (target <= 30 MiB): %s\n",
            max_rss / 1024, final_rss / 1024, (max_rss <= 30 * 1024 ? "met" : "NOT met")
        printf "  RSS slope:     %+.1f KiB/s over the last %d s (%+.2f MiB/min; flat = under 16 KiB/s): %s\n",
            slope, (seconds / 2 > 40 ? seconds / 2 : 40), slope * 60 / 1024,
            (slope < 16 && slope > -16 ? "flat" : "NOT flat")
        printf "  lines:         %d counted, %d written, after a drain of %d ms: %s\n",
            counted, total, drain_ms, (counted == total ? "equal" : "NOT equal")
        printf "  server CPU:    %.0f %% of one core on average; /metrics up to %d KiB, scraped in up to %d ms\n",
            cpu_sum / n, max_page, max_scrape
        printf "  checkpoint:    %s MiB at the end; load average %s at the end\n", checkpoint_mib, load
    }' "$work/samples" | tee "$work/summary"

# Checkpoint durations from the debug lines: "write_ms=<ms> render_ms=<ms>".
sed -n 's/.*checkpoint written.*write_ms=\([0-9.]*\).*render_ms=\([0-9.]*\).*/\1 \2/p' \
    "$work/serve.err" | sort -n >"$work/checkpoints"
if [[ -s "$work/checkpoints" ]]; then
    awk '{ w[NR] = $1; if ($2 > rmax) rmax = $2 } END {
        p99 = int(NR * 0.99)
        if (p99 < 1) p99 = 1
        printf "  checkpoints:   %d written; write + rename p50 %.1f ms, p99 %.1f ms, max %.1f ms; rendering /metrics up to %.1f ms\n",
            NR, w[int((NR + 1) / 2)], w[p99], w[NR], rmax
    }' "$work/checkpoints" | tee -a "$work/summary"
fi

if [[ "$hostile" == yes ]]; then
    awk '{ f[$1] = $2 } END {
        printf "  clients:       %d of %d idle connections open at the end (%d opened again after the server closed them); %d of %d streams open, %d events (at least %d per stream), %.0f MiB read, %d streams ended\n",
            f["idle_open"], idle, f["idle_reopened"], f["streams_open"], streams, f["stream_events"], f["stream_events_min"], f["stream_mib"], f["stream_failures"]
        printf "  /metrics:      %d scrapes every 100 ms on fresh connections, %d failed; latency p50 %s ms, p99 %s ms, max %s ms (target <= 50 ms): %s\n",
            f["scrapes"], f["scrape_failures"], f["scrape_ms_p50"], f["scrape_ms_p99"], f["scrape_ms_max"], (f["scrape_ms_max"] <= 50 && f["scrape_failures"] == 0 ? "met" : "NOT met")
        printf "  freshness:     newest line counted by /metrics written p50 %s s, p99 %s s, max %s s before the scrape (target <= 1 s): %s; lag max %s s\n",
            f["fresh_s_p50"], f["fresh_s_p99"], f["fresh_s_max"], (f["fresh_s_max"] <= 1 ? "met" : "NOT met"), f["lag_s_max"]
    }' idle="$idle" streams="$streams" "$work/clients.out" | tee -a "$work/summary"
fi

kill -TERM "$server_pid"
if ! wait "$server_pid"; then
    echo "serve_load.sh: edge-parser serve did not exit cleanly:" >&2
    cat "$work/serve.err" >&2
fi
server_pid=""
grep -v 'checkpoint written' "$work/serve.err" | grep -iE 'warn|error' >&2 || true
