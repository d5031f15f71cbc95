#!/usr/bin/env bash
# Builds every fuzz/fuzz_<target>.c into build-fuzz/ and runs each for N
# seconds (default 30).
#
# The commands are not repeated here: they are read from the block after
# "Build and run" in each target's top comment (continuation lines
# joined), so the documented commands are the ones CI runs. Only the
# run's -max_total_time is replaced by N; a per-input timeout and an
# artifact prefix are added, so a crashing input is kept as
# build-fuzz/<target>-crash-<sha1> (hangs: -timeout-, leaks: -leak-).
#
# Exits non-zero when a build fails or any target finds a crash, a leak
# or a hang; the other targets still run. Logs: build-fuzz/<target>.log.
#
# Usage: fuzz/run.sh [seconds] [target ...]   (fuzz/run.sh 20 config)
set -euo pipefail

cd "$(dirname "$0")/.."
secs=${1:-30}
if [ $# -gt 0 ]; then shift; fi
case $secs in
'' | *[!0-9]*)
    echo "usage: fuzz/run.sh [seconds] [target ...]" >&2
    exit 2
    ;;
esac
command -v clang >/dev/null || {
    echo "fuzz/run.sh: clang not found" >&2
    exit 2
}

# Prints the commands of the "Build and run" block of a file, one a line.
commands() {
    awk '
        /Build and run/ { on = 1; next }
        !on { next }
        /^ \*   / {
            sub(/^ \* +/, ""); seen = 1
            if (sub(/\\$/, "")) { cmd = cmd $0 " "; next }
            print cmd $0; cmd = ""; next
        }
        seen { exit }
    ' "$1"
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        n=${f#fuzz/fuzz_}
        targets+=("${n%.c}")
    done
fi

mkdir -p build-fuzz
declare -A run_cmd
for t in "${targets[@]}"; do
    src=fuzz/fuzz_$t.c
    [ -f "$src" ] || {
        echo "fuzz/run.sh: no $src" >&2
        exit 2
    }
    run_cmd[$t]=
    while IFS= read -r cmd; do
        case $cmd in
        ./build-fuzz/*) run_cmd[$t]=$cmd ;;
        *)
            echo "+ $cmd"
            eval "$cmd" || {
                echo "fuzz/run.sh: building $t failed" >&2
                exit 1
            }
            ;;
        esac
    done < <(commands "$src")
    [ -n "${run_cmd[$t]}" ] || {
        echo "fuzz/run.sh: $src: no ./build-fuzz/ run command in its" \
            "\"Build and run\" comment" >&2
        exit 2
    }
done

failed=()
for t in "${targets[@]}"; do
    cmd=$(sed -E "s/-max_total_time=[0-9]+/-max_total_time=$secs/" \
        <<<"${run_cmd[$t]}")
    cmd="$cmd -timeout=10 -artifact_prefix=build-fuzz/$t-"
    log=build-fuzz/$t.log
    echo "+ $cmd"
    if eval "$cmd" >"$log" 2>&1; then
        echo "$t: ok, $(grep -E '^Done [0-9]+ runs' "$log" || echo '?')"
    else
        echo "$t: FAILED (log: $log)" >&2
        grep -E '^(==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' \
            "$log" | head -20 >&2 || true
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
