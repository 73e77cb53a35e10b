#!/bin/sh
# The long durability soak: the crash loop (tests/integration/24_crashloop.c) with many kills
# per case — kill -9 and power cut, persistence_sync false and true — and the exact kill points
# (27_ack_window), then one table of what was lost, duplicated and reordered per QoS.
# Usage: tools/soak.sh [KILLS]   (default 200 kills per case; CAIRN_TEST_SEED to replay)
# Builds the release tree build-soak first. Exit status: 0 when every case passed.
set -eu
cd "$(dirname "$0")/.."
KILLS=${1:-200}
tools/deps.sh
cmake -S . -B build-soak -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-soak -j"$(nproc)" --target cairn itest_24_crashloop itest_27_ack_window \
    >build-soak.build.log 2>&1 || { tail -40 build-soak.build.log; exit 1; }
out=build-soak/soak.log
rc=0
CAIRN_CRASH_KILLS=$KILLS build-soak/tests/integration/itest_24_crashloop build-soak/broker/cairn \
    >"$out" 2>&1 || rc=1
build-soak/tests/integration/itest_27_ack_window build-soak/broker/cairn >>"$out" 2>&1 || rc=1
grep -E '^# seed|^(ok|not ok)|FAILED' "$out" || true
echo
awk '
/^# (kill -9|power cut), persistence_sync/ {
    split($0, a, ": "); name = substr(a[1], 3); kills = a[2]; sub(/ kills.*/, "", kills)
}
/^# QoS 1: lost/ { l1 = $5; d1 = $7; u1 = $8; r1 = $NF; sub(/,/, "", l1); sub(/\(/, "", u1) }
/^# QoS 2: lost/ { l2 = $5; d2 = $7; r2 = $NF; sub(/,/, "", l2) }
/^# sessions lost/ { s = $4; sub(/,/, "", s)
    printf "%-34s %6s %8s %8s %10s %8s %8s %8s %9s\n", name, kills, l1, l2, d1 "/" u1, d2, r1, r2, s }
BEGIN { printf "%-34s %6s %8s %8s %10s %8s %8s %8s %9s\n", "case", "kills", "lost q1",
        "lost q2", "dup q1*", "dup q2", "reord q1", "reord q2", "sess lost" }
/^# persistence_sync .*killed after each/ { print "exact kill points: " substr($0, 3) }
' "$out"
echo "(* QoS 1 duplicates / of those neither a DUP resend nor the publisher's own resend;"
echo "   power cut with persistence_sync false must lose: it shows the simulation bites)"
echo "log: $out"
exit $rc
