#!/bin/sh
# First README command: install what is missing, build, and run the broker with conf/cairn.conf.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/broker/cairn -c conf/cairn.conf "$@"
