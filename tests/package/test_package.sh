#!/bin/sh
# The Debian package, installed into this machine as an administrator would (root only;
# tools/check.sh runs it after the test stages):
#   1. cpack builds the .deb from BUILD_DIR; its Depends name the package of every shared library
#      the binaries link (dpkg -S), its conffiles are /etc/cairn/cairn.conf and the logrotate
#      snippet;
#   2. dpkg -i: the files, the cairn system user, /var/lib/cairn (cairn:cairn 0750), nothing
#      enabled or started; systemd-analyze verify accepts the installed unit as it is;
#   3. the installed broker runs as systemd would run it (user cairn, no new privileges, no
#      capabilities, /run/cairn made for it) with the installed /etc/cairn/cairn.conf, in a
#      network namespace of its own (so its 127.0.0.1:1883 is nobody else's): pid file, store in
#      /var/lib/cairn, mosquitto_pub/mosquitto_sub through it, a queued message across a
#      restart, SIGUSR1's backup readable by cairn-db, log_dest file rotated by the installed
#      logrotate snippet;
#   4. an upgrade (the same build as a higher version): the changed conffile kept, the store
#      kept and served by the new broker;
#   5. dpkg -r keeps the conffile, the store and the user; dpkg --purge deletes the conffiles and
#      the logs, and keeps /var/lib/cairn (the store, the backup) and the user.
# What the test itself made (the user, /var/lib/cairn, when they were not there before) is
# removed at the end; an already installed cairn package stops it before it changes anything.
# Usage: test_package.sh BUILD_DIR        (exit 0 ok, 1 failed, 77 skipped: not root)
set -eu

if [ "${1:-}" = --in-netns ]; then
    phase=$2
else
    phase=main
    build=$(cd "${1:?usage: test_package.sh BUILD_DIR}" && pwd)
fi
WAIT=20 # seconds, for anything to happen

say() { echo "package: $*"; }
die() {
    echo "package: FAILED: $*"
    exit 1
}

# Wait up to WAIT seconds for a command to succeed (a bounded retry, not a pause).
wait_for() { # description, command...
    what=$1
    shift
    n=0
    until "$@"; do
        n=$((n + 1))
        [ $n -lt $((WAIT * 20)) ] || die "timed out waiting for $what"
        sleep 0.05
    done
}

log_has() { grep -q -- "$2" "$1" 2>/dev/null; }

# ---- inside the network namespace: the installed broker, run as systemd would -----------------
# The broker's stderr (its log, as journald would get it) goes to $RUNLOG.
start_broker() {
    : >"$RUNLOG"
    # what cairn.service's RuntimeDirectory= makes
    install -d -o cairn -g cairn -m 0755 /run/cairn
    setpriv --reuid=cairn --regid=cairn --init-groups --no-new-privs --inh-caps=-all \
        --bounding-set=-all /usr/sbin/cairn -c /etc/cairn/cairn.conf >>"$RUNLOG" 2>&1 &
    BROKER=$!
    wait_for "the broker's listener" log_has "$RUNLOG" "listening on 127.0.0.1:1883"
}

stop_broker() {
    kill -TERM "$BROKER"
    rc=0
    wait "$BROKER" || rc=$?
    BROKER=
    [ $rc -eq 0 ] || die "the broker exited $rc after SIGTERM"
    [ ! -e /run/cairn/cairn.pid ] || die "pid file left behind after a clean stop"
}

run_first() {
    start_broker
    pid=$(cat /run/cairn/cairn.pid)
    [ "$pid" = "$BROKER" ] || die "pid file holds $pid, the broker is $BROKER"
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$BROKER/status")
    [ "$uid" = "$(id -u cairn)" ] || die "the broker runs as uid $uid, not cairn"
    [ "$(stat -c %U "/var/lib/cairn/cairn.db")" = cairn ] || die "store not owned by cairn"
    # a persistent subscriber goes away; a QoS 1 message waits for it across a restart
    mosquitto_sub -h 127.0.0.1 -p 1883 -i pkg-sub -c -q 1 -t 'pkg/#' -E
    mosquitto_pub -h 127.0.0.1 -p 1883 -i pkg-pub -q 1 -t pkg/one -m before-restart
    stop_broker
    start_broker
    got=$(mosquitto_sub -h 127.0.0.1 -p 1883 -i pkg-sub -c -q 1 -t 'pkg/#' -C 1 -W $WAIT)
    [ "$got" = before-restart ] || die "after a restart the subscriber got '$got'"
    say "published and received through the installed broker (as cairn), across a restart"
    # one more, left queued for the upgrade
    mosquitto_pub -h 127.0.0.1 -p 1883 -i pkg-pub -q 1 -t pkg/two -m before-upgrade
    # SIGUSR1: a backup in /var/lib/cairn/backup, written by cairn, readable by cairn-db
    kill -USR1 "$BROKER"
    wait_for "the backup" log_has "$RUNLOG" "backup complete: /var/lib/cairn/backup"
    [ "$(stat -c %U /var/lib/cairn/backup/cairn.db)" = cairn ] || die "backup not owned by cairn"
    cairn-db --summary /var/lib/cairn/backup | grep -q "queued messages   1 " ||
        die "cairn-db does not find the queued message in the backup"
    say "SIGUSR1 backup written to /var/lib/cairn/backup; cairn-db reads it"
    # log_dest file in the conffile, applied by SIGHUP; logrotate's snippet rotates it
    printf '\n# added by test_package.sh\nlog_dest file /var/log/cairn/cairn.log\n' \
        >>/etc/cairn/cairn.conf
    kill -HUP "$BROKER"
    wait_for "the log file" log_has /var/log/cairn/cairn.log "reloaded /etc/cairn/cairn.conf"
    logrotate -f -s "$TMPD/logrotate.state" /etc/logrotate.d/cairn
    [ -f /var/log/cairn/cairn.log.1 ] || die "logrotate did not rotate /var/log/cairn/cairn.log"
    wait_for "the reopened log" log_has /var/log/cairn/cairn.log "SIGUSR2: log reopened"
    ! log_has /var/log/cairn/cairn.log.1 "SIGUSR2: log reopened" ||
        die "the line after the rotation went to the rotated file"
    say "logrotate -f with /etc/logrotate.d/cairn: rotated, the broker writes the new file"
    stop_broker
}

run_after_upgrade() {
    start_broker
    got=$(mosquitto_sub -h 127.0.0.1 -p 1883 -i pkg-sub -c -q 1 -t 'pkg/#' -C 1 -W $WAIT)
    [ "$got" = before-upgrade ] || die "after the upgrade the subscriber got '$got'"
    say "the upgraded broker served the message queued before the upgrade"
    stop_broker
}

# A phase that fails shows the broker's log, and never leaves the broker running.
netns_exit() {
    rc=$?
    if [ -n "${BROKER:-}" ] && kill -0 "$BROKER" 2>/dev/null; then
        kill -KILL "$BROKER" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ]; then
        echo "package: the broker's log:"
        tail -40 "$RUNLOG" | sed 's/^/package:   | /'
    fi
}

if [ "$phase" != main ]; then
    BROKER=
    trap netns_exit EXIT
    ip link set lo up
    case $phase in
    first) run_first ;;
    upgraded) run_after_upgrade ;;
    esac
    exit 0
fi

# ---- outside: build, install, upgrade, remove, purge ----------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    say "skipped: not root (dpkg -i into this machine needs root)"
    exit 77
fi
# one package test per machine at a time (other checkouts may run theirs): it owns the package
# name, the user and /var/lib/cairn while it runs
exec 9>/tmp/cairn-package-test.lock
flock -w 300 9 || die "another package test has held /tmp/cairn-package-test.lock for 5 minutes"
if dpkg-query -W -f='${Status}' cairn 2>/dev/null | grep -q installed; then
    die "a cairn package is installed on this machine already; this test installs and purges its own: remove it first (dpkg --purge cairn)"
fi
for tool in cpack dpkg-deb readelf logrotate setpriv unshare mosquitto_sub systemd-analyze adduser; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (tools/deps.sh installs it)"
done
unshare --net true 2>/dev/null || die "unshare --net failed: a network namespace is needed"

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/cairn-package-XXXXXX")
RUNLOG=$TMPD/broker.log
export TMPD RUNLOG WAIT
had_user=0
had_data=0
getent passwd cairn >/dev/null && had_user=1
[ -e /var/lib/cairn ] && had_data=1
[ $had_data -eq 0 ] || die "/var/lib/cairn exists already: this test would mix its store with that one"
cleanup() {
    if dpkg-query -W -f='${Status}' cairn 2>/dev/null | grep -q installed; then
        dpkg --purge cairn >/dev/null 2>&1 || true
    fi
    [ $had_data -eq 1 ] || rm -rf /var/lib/cairn
    [ $had_user -eq 1 ] || ! getent passwd cairn >/dev/null || deluser --system cairn >/dev/null 2>&1 || true
    getent group cairn >/dev/null && [ $had_user -eq 0 ] && delgroup --system cairn >/dev/null 2>&1 || true
    rm -rf /run/cairn "$TMPD"
}
trap cleanup EXIT

# dpkg, retried while another dpkg or apt holds the lock
dpkg_do() {
    n=0
    until dpkg "$@" >"$TMPD/dpkg.log" 2>&1; do
        grep -q "lock" "$TMPD/dpkg.log" && [ $n -lt 60 ] || {
            cat "$TMPD/dpkg.log"
            die "dpkg $*"
        }
        n=$((n + 1))
        sleep 0.5
    done
}

# ---- 1. the .deb ----------------------------------------------------------------------------
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
(cd "$build" && cpack -G DEB -B "$TMPD/v1" >"$TMPD/cpack1.log" 2>&1) ||
    { cat "$TMPD/cpack1.log"; die "cpack"; }
deb=$(ls "$TMPD"/v1/cairn_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
# every library a program names (DT_NEEDED; not what those pull in), by the package holding it
for prog in broker/cairn tools/cairn-db tools/cairn-passwd; do
    for name in $(readelf -d "$build/$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        lib=$(ldd "$build/$prog" | awk -v n="$name" '$1 == n {print $3}')
        [ -n "$lib" ] || die "$prog: ldd does not find $name"
        pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null) ||
            die "no Debian package holds $lib"
        pkg=${pkg%%:*}
        echo "$depends" | grep -qE "(^|, )$pkg( |,|$)" ||
            die "Depends lacks $pkg (for $name of $prog): $depends"
    done
done
echo "$depends" | grep -qE "(^|, )adduser(,|$)" || die "Depends lacks adduser: $depends"
dpkg-deb -e "$deb" "$TMPD/control"
[ "$(cat "$TMPD/control/conffiles")" = "$(printf '/etc/cairn/cairn.conf\n/etc/logrotate.d/cairn')" ] ||
    die "conffiles: $(cat "$TMPD/control/conffiles")"
# (their commands, not their comments)
! grep -hvE '^[[:space:]]*#' "$TMPD"/control/post* "$TMPD"/control/pre* |
    grep -qE 'systemctl[^|;]*(enable|start|restart)|deb-systemd-(invoke|helper)' ||
    die "a maintainer script enables or starts the service"
say "built $(basename "$deb"); Depends: $depends"

# ---- 2. installed ---------------------------------------------------------------------------
dpkg_do -i "$deb"
for f in /usr/sbin/cairn /usr/bin/cairn-passwd /usr/bin/cairn-db; do
    [ "$(stat -c '%U:%G %a' "$f")" = "root:root 755" ] || die "$f: $(stat -c '%U:%G %a' "$f")"
done
for f in /etc/cairn/cairn.conf /etc/logrotate.d/cairn /lib/systemd/system/cairn.service; do
    [ "$(stat -c '%U:%G %a' "$f")" = "root:root 644" ] || die "$f: $(stat -c '%U:%G %a' "$f")"
done
# a machine whose dpkg leaves out man pages (path-exclude, as slim images have) reads the
# package's own
if grep -rqs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d; then
    dpkg-deb -x "$deb" "$TMPD/extracted"
    MANPATH=$TMPD/extracted/usr/share/man
    export MANPATH
    say "this dpkg excludes /usr/share/man: man pages checked in the .deb"
fi
for page in "8 cairn" "5 cairn.conf" "1 cairn-passwd" "1 cairn-db"; do
    # shellcheck disable=SC2086
    man -w $page >/dev/null 2>&1 || die "man $page not found"
done
dpkg-query -W -f='${Conffiles}\n' cairn | grep -q "/etc/cairn/cairn.conf " ||
    die "/etc/cairn/cairn.conf is not a conffile"
ent=$(getent passwd cairn) || die "no cairn user"
uid=$(echo "$ent" | cut -d: -f3)
[ "$uid" -lt 1000 ] || die "cairn is not a system user (uid $uid)"
[ "$(echo "$ent" | cut -d: -f6)" = /var/lib/cairn ] || die "cairn's home: $ent"
case $(echo "$ent" | cut -d: -f7) in */nologin | */false) ;; *) die "cairn has a login shell: $ent" ;; esac
getent group cairn >/dev/null || die "no cairn group"
[ "$(stat -c '%U:%G %a' /var/lib/cairn)" = "cairn:cairn 750" ] ||
    die "/var/lib/cairn: $(stat -c '%U:%G %a' /var/lib/cairn)"
[ ! -e /etc/systemd/system/multi-user.target.wants/cairn.service ] || die "the service was enabled"
for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" != /usr/sbin/cairn ] || die "the package started a broker"
done
out=$(cd "$TMPD" && systemd-analyze verify /lib/systemd/system/cairn.service 2>&1) ||
    die "systemd-analyze verify: $out"
[ -z "$out" ] || die "systemd-analyze verify: $out"
say "installed: files and modes, user cairn (uid $uid), /var/lib/cairn cairn:cairn 750, nothing enabled, systemd-analyze verify clean"

# ---- 3. run it ------------------------------------------------------------------------------
install -d -o cairn -g cairn -m 0750 /var/log/cairn # what LogsDirectory= makes
unshare --net sh "$0" --in-netns first || die "the installed broker (see above)"

# ---- 4. upgrade -----------------------------------------------------------------------------
(cd "$build" && cpack -G DEB -B "$TMPD/v2" -D CPACK_PACKAGE_VERSION="$version+1" \
    >"$TMPD/cpack2.log" 2>&1) || { cat "$TMPD/cpack2.log"; die "cpack (upgrade)"; }
dpkg_do -i "$TMPD"/v2/cairn_*.deb
[ "$(dpkg-query -W -f='${Version}' cairn)" = "$version+1" ] || die "not upgraded"
grep -q "^log_dest file /var/log/cairn/cairn.log$" /etc/cairn/cairn.conf ||
    die "the upgrade did not keep the changed /etc/cairn/cairn.conf"
[ ! -e /etc/cairn/cairn.conf.dpkg-dist ] && [ ! -e /etc/cairn/cairn.conf.dpkg-new ] ||
    die "the upgrade left a .dpkg-dist/.dpkg-new beside the conffile"
unshare --net sh "$0" --in-netns upgraded || die "the upgraded broker (see above)"
say "upgraded to $version+1: changed conffile and store kept"

# ---- 5. remove, purge -----------------------------------------------------------------------
dpkg_do -r cairn
[ ! -e /usr/sbin/cairn ] && [ ! -e /lib/systemd/system/cairn.service ] || die "dpkg -r left the programs or the unit"
[ -f /etc/cairn/cairn.conf ] || die "dpkg -r deleted the conffile"
[ -d /var/lib/cairn/cairn.db ] || die "dpkg -r deleted the store"
getent passwd cairn >/dev/null || die "dpkg -r deleted the user"
dpkg_do --purge cairn
[ ! -e /etc/cairn/cairn.conf ] && [ ! -e /etc/logrotate.d/cairn ] || die "purge left a conffile"
[ ! -e /etc/cairn ] || die "purge left /etc/cairn: $(ls -A /etc/cairn)"
[ ! -e /var/log/cairn ] || die "purge left /var/log/cairn"
[ -f /var/lib/cairn/cairn.db/CURRENT ] && [ -f /var/lib/cairn/backup/cairn.db/CURRENT ] ||
    die "purge deleted the store or its backup"
[ "$(stat -c %U /var/lib/cairn/cairn.db)" = cairn ] || die "purge changed the store's owner"
getent passwd cairn >/dev/null || die "purge deleted the user that owns /var/lib/cairn"
say "removed (conffile, store, user kept) and purged (conffiles and logs gone; /var/lib/cairn with store and backup, and user cairn, kept)"
say "ok"
