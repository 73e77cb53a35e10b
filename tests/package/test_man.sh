#!/bin/sh
# The man pages stay true to what they describe:
#   - each renders without a groff warning;
#   - cairn.conf(5) names every option of README.md's option table and every option
#     broker/ops/config.c accepts, and conf/cairn.conf (the installed config's source) names every
#     option of the table;
#   - each program's usage text (cairn -h, cairn-db -h, cairn-passwd) has no flag its page lacks.
# Usage: test_man.sh SOURCE_DIR BUILD_DIR
set -u
src=$1
build=$2
fail=0
bad() { echo "test_man: $*"; fail=1; }

for page in cairn.8 cairn.conf.5 cairn-passwd.1 cairn-db.1; do
    f="$build/man/$page"
    [ -f "$f" ] || { bad "$f missing (build the cairn_man target)"; continue; }
    out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$f" 2>&1)
    [ -z "$out" ] || bad "$page: groff warns: $out"
done

conf5="$build/man/cairn.conf.5"
# the first column of README's table under "## Configuration": `option` names
table=$(awk '/^## Configuration/ {on = 1} /^## / && !/Configuration/ {on = 0}
             on && /^\| `/ {split($0, c, "|"); print c[2]}' "$src/README.md" |
        grep -o '`[a-z0-9_]*' | tr -d '`' | sort -u)
[ -n "$table" ] || bad "no option table found in README.md"
accepted=$(grep -o '^    {"[a-z0-9_]*", K_' "$src/broker/ops/config.c" | cut -d'"' -f2 | sort -u)
[ -n "$accepted" ] || bad "no option table found in broker/ops/config.c"
for o in $(printf "%s\n" $table $accepted | sort -u); do
    grep -qw -- "$o" "$conf5" || bad "cairn.conf.5 does not describe option $o"
done
for o in $table; do
    grep -qw -- "$o" "$src/conf/cairn.conf" || bad "conf/cairn.conf does not describe option $o"
done

# flags of a usage text ("-c", "--summary"): each must appear in the page (as \-c, \-\-summary)
check_flags() { # page, usage text
    for flag in $(printf '%s\n' "$2" | grep -oE '(^|[ [,])--?[a-zA-Z][a-zA-Z-]*' |
                  sed 's/^[ [,]//' | sort -u); do
        roff=$(printf '%s' "$flag" | sed 's/-/\\\\-/g')
        grep -q -- "$roff" "$build/man/$1" || bad "$1 does not describe $flag (in its usage)"
    done
}
check_flags cairn.8 "$("$build/broker/cairn" -h)"
check_flags cairn-db.1 "$("$build/tools/cairn-db" -h)"
check_flags cairn-passwd.1 "$("$build/tools/cairn-passwd" 2>&1)"

[ $fail -eq 0 ] && echo "test_man: ok"
exit $fail
