#!/bin/sh
# Second README command: install what is missing, build, and run every test:
#   1. format check (clang-format, .clang-format at the top);
#   2. release build with -Werror, epoll backend (the Linux default): every test;
#   3. the same with the poll(2) backend: every test;
#   4. ThreadSanitizer build: the TLS tests (the handshake threads, broker/net/tls_pool.c);
#   5. ASan + UBSan build: every test;
#   6. as root only: the Debian package of the release build installed into this machine, run as
#      its service user, upgraded, removed and purged (tests/package/test_package.sh).
# The last lines printed are ctest's summary of the sanitizer run, preceded by one line per stage.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh
JOBS=$(nproc)
SUMMARY=""
CTEST_ONLY=""

stage() { # name, build dir, cmake options... (CTEST_ONLY: a ctest -R regex, else every test)
    name=$1; dir=$2; shift 2
    echo "=== $name ==="
    cmake -S . -B "$dir" -DCAIRN_WERROR=ON "$@" >/dev/null
    if ! cmake --build "$dir" -j"$JOBS" >"$dir.build.log" 2>&1; then
        tail -60 "$dir.build.log"
        echo "check: build failed in $dir"
        exit 1
    fi
    log="$dir/ctest.log"
    set +e
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 300 ${CTEST_ONLY:+-R "$CTEST_ONLY"}) \
        >"$log" 2>&1
    rc=$?
    set -e
    line=$(grep -E 'tests passed|tests failed' "$log" | tail -1)
    SUMMARY="$SUMMARY$name: $line
"
    if [ $rc -ne 0 ]; then
        cat "$log"
        printf '%s' "$SUMMARY"
        echo "check: FAILED in stage '$name'"
        exit 1
    fi
    echo "$line"
}

echo "=== format ==="
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find mqtt persist broker tools tests -name '*.[ch]')
if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    clang-format --dry-run -Werror $files
fi
echo "format: ok"

stage "release+epoll" build-check -DCMAKE_BUILD_TYPE=Release -DCAIRN_LOOP=epoll
stage "release+poll" build-check-poll -DCMAKE_BUILD_TYPE=Release -DCAIRN_LOOP=poll
CTEST_ONLY='tls|websockets'
stage "tsan (TLS)" build-check-tsan -DCMAKE_BUILD_TYPE=Release -DCAIRN_SANITIZE=thread
CTEST_ONLY=""
stage "asan+ubsan" build-check-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON

echo "=== package ==="
if [ "$(id -u)" -eq 0 ]; then
    log=build-check.package.log
    if sh tests/package/test_package.sh build-check >"$log" 2>&1; then
        line="package: ok (.deb installed, served as user cairn, upgraded, purged; $log)"
    else
        cat "$log"
        printf '%s' "$SUMMARY"
        echo "package: FAILED ($log)"
        echo "check: FAILED in stage 'package'"
        exit 1
    fi
else
    line="package: skipped: not root (the stage installs the .deb with dpkg -i and purges it)"
fi
SUMMARY="$SUMMARY$line
"
echo "$line"

echo "=== summary ==="
printf '%s' "$SUMMARY"
# ctest's own closing lines of the last stage, so its verdict is the last thing printed.
sed -n '/tests passed/,$p' build-check-asan/ctest.log
