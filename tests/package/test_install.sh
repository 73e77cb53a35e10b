#!/bin/sh
# `cmake --install` from a build directory, without root:
#   1. DESTDIR with prefix /usr (what the package holds): every file in its place — the
#      programs in usr/sbin and usr/bin, the man pages, the config in /etc/cairn with a system
#      service's paths, the logrotate snippet, the unit — and the config passes `cairn -t`;
#   2. a real install under --prefix in a temporary directory (sysconfdir PREFIX/etc, the unit in
#      PREFIX/lib/systemd/system): the unit's ExecStart is that prefix's cairn, and
#      `systemd-analyze verify` accepts the installed unit as it is (it checks that ExecStart
#      exists, and the man pages of Documentation= through MANPATH).
# Usage: test_install.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "test_install: $*"; fail=1; }

# ---- 1. DESTDIR, prefix /usr -------------------------------------------------------------------
d=$tmp/destdir
if ! DESTDIR=$d cmake --install "$build" --prefix /usr >"$tmp/install1.log" 2>&1; then
    cat "$tmp/install1.log"
    bad "cmake --install with DESTDIR failed"
fi
for f in usr/sbin/cairn usr/bin/cairn-passwd usr/bin/cairn-db; do
    [ -x "$d/$f" ] || bad "$f missing or not executable"
done
for f in usr/share/man/man8/cairn.8.gz usr/share/man/man5/cairn.conf.5.gz \
    usr/share/man/man1/cairn-passwd.1.gz usr/share/man/man1/cairn-db.1.gz \
    usr/share/doc/cairn/README.md etc/cairn/cairn.conf etc/logrotate.d/cairn; do
    [ -f "$d/$f" ] || bad "$f missing"
done
unit=$(find "$d" -name cairn.service)
[ -n "$unit" ] || bad "cairn.service missing"
case $unit in
*/lib/systemd/system/cairn.service) ;;
*) bad "cairn.service at $unit, not in a systemd unit directory" ;;
esac
unexpected=$(find "$d" -type f | sed "s|^$d/||" | grep -vE '^(usr/(s?bin|share/(man|doc))/|etc/(cairn|logrotate\.d)/|(usr/)?lib/systemd/system/)')
[ -z "$unexpected" ] || bad "unexpected files installed: $unexpected"
conf=$d/etc/cairn/cairn.conf
for line in "persistence_location /var/lib/cairn/" "pid_file /run/cairn/cairn.pid" \
    "log_dest stderr" "persistence true"; do
    grep -qx "$line" "$conf" || bad "cairn.conf lacks the line '$line'"
done
out=$("$d/usr/sbin/cairn" -t -c "$conf" 2>&1) || bad "cairn -t on the installed config: $out"
grep -qx "ExecStart=/usr/sbin/cairn -c /etc/cairn/cairn.conf" "$unit" ||
    bad "the unit's ExecStart is not /usr/sbin/cairn -c /etc/cairn/cairn.conf"
[ "$(zcat "$d/usr/share/man/man8/cairn.8.gz" | grep -c '@VERSION@')" = 0 ] ||
    bad "cairn.8 still holds @VERSION@"

# ---- 2. an installed tree under a prefix -----------------------------------------------------
p=$tmp/prefix
if ! cmake --install "$build" --prefix "$p" >"$tmp/install2.log" 2>&1; then
    cat "$tmp/install2.log"
    bad "cmake --install --prefix failed"
fi
unit=$p/lib/systemd/system/cairn.service
[ -f "$unit" ] || bad "no unit at $unit"
[ -f "$p/etc/cairn/cairn.conf" ] || bad "no config at $p/etc/cairn/cairn.conf"
grep -qx "ExecStart=$p/sbin/cairn -c $p/etc/cairn/cairn.conf" "$unit" ||
    bad "the unit's ExecStart is not $p/sbin/cairn -c $p/etc/cairn/cairn.conf"
if command -v systemd-analyze >/dev/null 2>&1; then
    # any line it prints is a finding (unknown keys are only warnings to it)
    out=$(cd "$tmp" && MANPATH="$p/share/man:" systemd-analyze verify "$unit" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && [ -z "$out" ] || bad "systemd-analyze verify $unit (exit $rc): $out"
else
    bad "systemd-analyze not found (package systemd; tools/deps.sh installs it)"
fi

[ $fail -eq 0 ] && echo "test_install: ok"
exit $fail
