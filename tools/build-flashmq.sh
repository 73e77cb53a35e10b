#!/bin/sh
# Build FlashMQ (https://github.com/halfgaar/FlashMQ) for the load benchmark's comparison
# (tests/bench/bench_load.c, FLASHMQ=DEST/build/flashmq). FlashMQ is never part of Cairn: fetch
# its source yourself (a clone, or a bare git directory), build it outside this tree, use the
# binary, delete it when done. Nothing here downloads anything.
#
# Usage: tools/build-flashmq.sh SOURCE DEST [REF]
#   SOURCE  a FlashMQ source tree (has CMakeLists.txt and main.cpp), or a git directory of one
#           (bare or not); from a git directory REF (default v1.26.2, the version of issue 11)
#           is exported to DEST/src first
#   DEST    a directory outside the Cairn tree; the binary ends up as DEST/build/flashmq
# Needs g++ (C++20), cmake and libssl-dev (Debian: apt-get install -y g++ cmake libssl-dev).
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 SOURCE DEST [REF]" >&2
    exit 2
fi
src=$1
dest=$2
ref=${3:-v1.26.2}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ ! -f "$src/CMakeLists.txt" ]; then
    # a git directory: export REF, so the build never writes into somebody's checkout
    rm -rf "$dest/src"
    mkdir -p "$dest/src"
    git --git-dir="$src" archive "$ref" | tar -x -C "$dest/src"
    src=$dest/src
fi
if [ ! -f "$src/main.cpp" ]; then
    echo "$0: $src does not look like FlashMQ's source" >&2
    exit 1
fi
# FlashMQ's CMakeLists runs ../.get-os-codename-and-stamp.sh for its Debian package name only;
# from elsewhere that fails harmlessly (an empty package release).
cmake -S "$src" -B "$dest/build" -DCMAKE_BUILD_TYPE=Release >"$dest/cmake.log" 2>&1 ||
    { tail -20 "$dest/cmake.log"; exit 1; }
cmake --build "$dest/build" -j"$(nproc)" --target flashmq >"$dest/build.log" 2>&1 ||
    { tail -40 "$dest/build.log"; exit 1; }
"$dest/build/flashmq" --version 2>/dev/null | head -1 || true
echo "$dest/build/flashmq"
