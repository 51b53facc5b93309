#!/usr/bin/env bash
# Install the reference tools -- CRIU 4.1.1's `criu` and `crit`, as packaged by
# Debian 13 (trixie) -- into a private folder, without installing anything on
# the system:
#
#   scripts/reference-tools.sh [--force] [--verbose]
#
# Folder: ${CRIT_REFERENCE_DIR:-<repo>/.reference}.  After a successful run it
# holds
#   bin/criu       runs trixie's criu through trixie's own ld-linux and libs
#   bin/crit       runs trixie's crit (python3-pycriu) with the system
#                  /usr/bin/python3 and bookworm's python3-protobuf (cpp backend)
#   root/          trixie packages (criu, its dependency closure, pycriu), dpkg -x'ed
#   host-root/     python3-protobuf (+ libprotobuf32) of the machine's own release
#   criu-check.txt output of `criu check` (and `criu check --all`)
#   install.log    apt output of the last install
#
# Nothing is written outside the folder: apt runs with its own sources list,
# state, lists and cache dirs under <folder>/apt/, and packages are only
# downloaded (`apt-get download`) and unpacked (`dpkg -x`), never installed.
#
# Exit status 0 when the tools are usable (one line "reference tools ready in
# DIR" on stdout); otherwise 1 with a one-line reason on stderr, so that tests
# can skip with that message.  A second run with everything present only
# checks the stamp file and `criu --version`, and is fast.
#
# Environment:
#   CRIT_REFERENCE_DIR     the folder (default <repo>/.reference)
#   CRIT_REFERENCE_MIRROR  Debian mirror URI to use instead of the one the
#                          machine's apt sources use
set -uo pipefail

SUITE=trixie             # the Debian release that ships CRIU 4.1.1
SUITE_KEY_UID='13/trixie' # how that release's keys are named in the keyring
WANT_VERSION=4.1.1
RECIPE=1                 # bump to force a reinstall when this script changes

force=0 verbose=0
for a in "$@"; do
    case $a in
    --force) force=1 ;;
    --verbose | -v) verbose=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "reference-tools: unknown argument $a" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${CRIT_REFERENCE_DIR:-$repo/.reference}

die() { echo "reference-tools: $*" >&2; exit 1; }
say() { [ "$verbose" = 1 ] && echo "reference-tools: $*" >&2; return 0; }

case $(dpkg --print-architecture 2>/dev/null) in
amd64) triplet=x86_64-linux-gnu ldso=usr/lib64/ld-linux-x86-64.so.2 ;;
arm64) triplet=aarch64-linux-gnu ldso=usr/lib/ld-linux-aarch64.so.1 ;;
*) die "unsupported architecture (need a Debian amd64 or arm64 machine with dpkg)" ;;
esac

ready() { # the quick check used for the fast path and after an install
    [ -f "$DIR/.ready" ] && [ "$(head -n 1 "$DIR/.ready")" = "recipe $RECIPE" ] &&
        [ -x "$DIR/bin/criu" ] && [ -x "$DIR/bin/crit" ] &&
        [ -f "$DIR/root/usr/lib/python3/dist-packages/crit/__main__.py" ] &&
        "$DIR/bin/criu" --version 2>/dev/null | grep -q "^Version: $WANT_VERSION\$"
}

if [ "$force" = 0 ] && ready; then
    echo "reference tools ready in $DIR"
    exit 0
fi

mkdir -p "$DIR" 2>/dev/null || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
for t in apt-get apt-cache dpkg; do
    command -v $t >/dev/null || die "$t not found (need a Debian machine)"
done
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 not found (crit needs the system python3)"

# One install at a time (tests may call this in parallel).
if command -v flock >/dev/null; then
    exec 9>"$DIR/.lock"
    flock 9
    if [ "$force" = 0 ] && ready; then
        echo "reference tools ready in $DIR"
        exit 0
    fi
fi
rm -f "$DIR/.ready"
log=$DIR/install.log
: >"$log"
export GNUPGHOME=$DIR/tmp/gnupg
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"

# ---------------------------------------------------------------- mirror ---
# The URI of the machine's own Debian archive: the first "deb" source whose
# suite is a plain release name (no "-security"/"-updates"), from deb822
# .sources files first, then one-line .list files.
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled !~ /^no$/ && uris != "") {
                    n = split(suites, s, " ")
                    for (i = 1; i <= n; i++) if (s[i] !~ /[-\/]/) {
                        split(uris, u, " "); print u[1]; found = 1; exit
                    }
                }
                types = uris = suites = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
              if (key == "types") types = $0; else if (key == "uris") uris = $0
              else if (key == "suites") suites = $0; else if (key == "enabled") enabled = tolower($0) }
            END { if (!found) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk '$1 == "deb" && $3 !~ /[-\/]/ && $2 !~ /^cdrom:/ { print $2 }'
    done
}
MIRROR=${CRIT_REFERENCE_MIRROR:-$(host_mirror | head -n 1)}
MIRROR=${MIRROR%/}
[ -n "$MIRROR" ] || die "cannot find a Debian mirror in the machine's apt sources"
say "mirror $MIRROR"

# ------------------------------------------------------- private apt configs
# Two configurations, each with its own sources list, state, lists and cache
# under $DIR/apt/NAME, so the system's /var/lib/apt is never touched:
# "suite" reads only $SUITE main from $MIRROR; "host" reads the machine's own
# release (and its -updates) main from the same mirror, for python3-protobuf.
apt_opts() { # apt_opts NAME SOURCELIST SOURCEPARTS -> sets global array OPTS
    local s=$DIR/apt/$1
    mkdir -p "$s/state/lists/partial" "$s/cache/archives/partial"
    [ -f "$s/state/status" ] || : >"$s/state/status"
    OPTS=(-o "Dir::Etc::SourceList=$2" -o "Dir::Etc::SourceParts=$3"
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
        -o "Dir::State=$s/state" -o "Dir::State::status=$s/state/status"
        -o "Dir::Cache=$s/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o APT::Sandbox::User=root -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::Retries=1 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
        -o APT::Update::Error-Mode=any -o APT::Get::AllowUnauthenticated=false -q)
}
mkdir -p "$DIR/apt/etc"
write_suite_sources() { # write_suite_sources OPTIONS
    echo "deb [$1] $MIRROR $SUITE main" >"$DIR/apt/etc/$SUITE.list"
}
HOST_CODENAME=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
[ -n "$HOST_CODENAME" ] || die "cannot tell the machine's Debian release (no VERSION_CODENAME in /etc/os-release)"
{
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $HOST_CODENAME main"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $HOST_CODENAME-updates main"
} >"$DIR/apt/etc/host.list"
apt_opts host "$DIR/apt/etc/host.list" /dev/null
HOST_OPTS=("${OPTS[@]}")
apt_opts "$SUITE" "$DIR/apt/etc/$SUITE.list" /dev/null
SUITE_OPTS=("${OPTS[@]}")

# ---------------------------------------------------------------- keyring --
# The suite's Release file is checked with the system keyring when that has
# the $SUITE keys (debian-archive-keyring of bookworm, 2023.3+deb12u2 or
# later, has them).  If it does not, we bootstrap: the $SUITE index is read
# once with [trusted=yes], only to fetch $SUITE's own debian-archive-keyring
# package, and that package's keyring then verifies everything else.  This
# bootstrap trusts the mirror for that one package (no better anchor exists
# on such a machine); it is never used when the system keyring suffices.
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
keyring_has_suite() { # keyring_has_suite FILE: 0 yes, 1 no, 2 cannot tell
    [ -r "$1" ] || return 1
    command -v gpg >/dev/null || return 2
    gpg --no-default-keyring --with-colons --show-keys "$1" 2>/dev/null |
        grep -q "^uid:.*($SUITE_KEY_UID)"
}
bootstrap_keyring() {
    say "bootstrapping $SUITE's keyring"
    write_suite_sources "trusted=yes"
    apt-get "${SUITE_OPTS[@]}" update >>"$log" 2>&1 ||
        die "apt-get update of $SUITE failed (no network?); see $log"
    rm -rf "$DIR/keyring" "$DIR/tmp/keyring-deb"
    mkdir -p "$DIR/tmp/keyring-deb"
    (cd "$DIR/tmp/keyring-deb" && apt-get "${SUITE_OPTS[@]}" download debian-archive-keyring) >>"$log" 2>&1 ||
        die "cannot download $SUITE's debian-archive-keyring; see $log"
    dpkg -x "$DIR"/tmp/keyring-deb/*.deb "$DIR/keyring" || die "cannot unpack debian-archive-keyring"
    rm -rf "$DIR/apt/$SUITE/state/lists" # forget the unverified index
    mkdir -p "$DIR/apt/$SUITE/state/lists/partial"
    KEYRING=$(ls "$DIR"/keyring/usr/share/keyrings/debian-archive-keyring.{gpg,pgp} 2>/dev/null | head -n 1)
    [ -n "$KEYRING" ] || die "$SUITE's debian-archive-keyring package has no keyring"
}
keyring_has_suite "$KEYRING"
case $? in
1) bootstrap_keyring ;;
esac

suite_update() {
    write_suite_sources "signed-by=$KEYRING"
    apt-get "${SUITE_OPTS[@]}" update >>"$log" 2>&1
}
if ! suite_update; then
    if grep -qE 'NO_PUBKEY|not signed|Missing key|signature' "$log" &&
        [ "$KEYRING" = /usr/share/keyrings/debian-archive-keyring.gpg ]; then
        bootstrap_keyring
        suite_update || die "apt-get update of $SUITE failed; see $log"
    else
        die "apt-get update of $SUITE from $MIRROR failed (no network?); see $log"
    fi
fi
apt-get "${HOST_OPTS[@]}" update >>"$log" 2>&1 ||
    die "apt-get update of $HOST_CODENAME from $MIRROR failed (no network?); see $log"

# ------------------------------------------------------ dependency closure --
# deps_of CONFIG PKG...: the direct Depends and PreDepends of the packages
# (first alternative of each group; a virtual package resolved to its first
# provider).
deps_of() {
    local cfg=$1
    shift
    local -n o=${cfg}_OPTS
    apt-cache "${o[@]}" depends --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$@" 2>>"$log" | awk '
        /^[^ ]/ { skip = 0; want = 0; next }             # a package header
        /^    / { if (want) { n = $1; sub(/:.*/, "", n); print n; want = 0 }; next }
        {
            line = $0; alt = (substr(line, 2, 1) == "|")
            sub(/^ *\|?/, "", line); split(line, a, ": ")
            want = 0
            if (skip) { skip = alt; next }               # a later alternative
            skip = alt
            if (a[1] != "Depends" && a[1] != "PreDepends") next
            if (a[2] ~ /^</) { want = 1; next }          # virtual: take a provider
            n = a[2]; sub(/:.*/, "", n); print n
        }'
}
# closure CONFIG SKIPFN ROOT...: ROOT and everything it needs, except the
# packages SKIPFN accepts (the roots are never skipped) and what they need.
closure() {
    local cfg=$1 skipfn=$2
    shift 2
    local -A seen=() root=()
    local p queue=("$@") new out=()
    for p in "$@"; do root[$p]=1; done
    while ((${#queue[@]})); do
        new=()
        for p in "${queue[@]}"; do
            [ -n "${seen[$p]:-}" ] && continue
            seen[$p]=1
            if [ -z "${root[$p]:-}" ] && $skipfn "$p"; then continue; fi
            out+=("$p") new+=("$p")
        done
        ((${#new[@]})) || break
        mapfile -t queue < <(deps_of "$cfg" "${new[@]}" | sort -u)
    done
    printf '%s\n' "${out[@]}"
}
# Packages not needed to run criu or crit from the folder: the maintainer
# script machinery and the interpreter itself (crit runs on the system's
# python3; trixie's python3-protobuf is built for python 3.13, so it is
# replaced by the machine's own).
skip_suite() {
    [[ $1 =~ ^(debconf|dpkg|install-info|perl-base|perl|python3|python3-minimal|python3\.[0-9]+(-minimal)?|libpython3.*|python3-protobuf)$ ]]
}
# From the machine's own release: whatever python3-protobuf needs that the
# machine does not already have (besides the interpreter).
skip_host() {
    [[ $1 =~ ^(python3|python3-minimal|python3\.[0-9]+(-minimal)?|libpython3.*)$ ]] && return 0
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

mapfile -t suite_pkgs < <(closure SUITE skip_suite criu python3-pycriu)
mapfile -t host_pkgs < <(closure HOST skip_host python3-protobuf libprotobuf32)
say "$SUITE packages: ${suite_pkgs[*]}"
say "host packages: ${host_pkgs[*]}"
[ "${#suite_pkgs[@]}" -gt 2 ] || die "cannot resolve criu's dependencies in $SUITE; see $log"

# ------------------------------------------------------- download, unpack --
fetch_unpack() { # fetch_unpack CONFIG DEST PKG...
    local cfg=$1 dest=$2
    shift 2
    local -n o=${cfg}_OPTS
    local debs=$DIR/debs/${cfg,,}
    rm -rf "$debs" "$dest.new"
    mkdir -p "$debs" "$dest.new"
    (cd "$debs" && apt-get "${o[@]}" download "$@") >>"$log" 2>&1 ||
        die "apt-get download failed ($cfg: $*); see $log"
    local d
    for d in "$debs"/*.deb; do
        dpkg -x "$d" "$dest.new" || die "dpkg -x $(basename "$d") failed"
        dpkg-deb -W --showformat='${Package} ${Version}\n' "$d" >>"$dest.new/.packages"
    done
    rm -rf "$dest"
    mv "$dest.new" "$dest"
}
fetch_unpack SUITE "$DIR/root" "${suite_pkgs[@]}"
fetch_unpack HOST "$DIR/host-root" "${host_pkgs[@]}"
rm -rf "$DIR/debs" "$DIR/tmp/keyring-deb"

[ -x "$DIR/root/$ldso" ] || die "$SUITE's libc6 has no $ldso"
[ -x "$DIR/root/usr/sbin/criu" ] || die "the criu package has no usr/sbin/criu"

# ----------------------------------------------------------------- wrappers -
mkdir -p "$DIR/bin"
cat >"$DIR/bin/criu" <<EOF
#!/bin/sh
# CRIU $WANT_VERSION from Debian $SUITE, run through its own ld-linux and libraries.
# Made by scripts/reference-tools.sh.
d=\$(cd "\$(dirname "\$0")/.." && pwd)
r=\$d/root
exec "\$r/$ldso" --library-path "\$r/usr/lib/$triplet:\$r/lib/$triplet:\$r/usr/lib" "\$r/usr/sbin/criu" "\$@"
EOF
cat >"$DIR/bin/crit" <<EOF
#!/bin/sh
# crit $WANT_VERSION (python3-pycriu of Debian $SUITE) on the system python3 with
# python3-protobuf of the machine's own release.  Made by scripts/reference-tools.sh.
d=\$(cd "\$(dirname "\$0")/.." && pwd)
PYTHONPATH=\$d/root/usr/lib/python3/dist-packages:\$d/host-root/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH}
LD_LIBRARY_PATH=\$d/host-root/usr/lib/$triplet\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PYTHONPATH LD_LIBRARY_PATH
exec /usr/bin/python3 -s -m crit "\$@"
EOF
chmod +x "$DIR/bin/criu" "$DIR/bin/crit"

# ------------------------------------------------------------------- checks -
cv=$("$DIR/bin/criu" --version 2>&1) || die "bin/criu does not run: $(echo "$cv" | tail -n 1)"
echo "$cv" | grep -q "^Version: $WANT_VERSION\$" || die "bin/criu is not $WANT_VERSION: $(echo "$cv" | head -n 1)"
tv=$("$DIR/bin/crit" --version 2>&1) || die "bin/crit does not run: $(echo "$tv" | tail -n 1)"
case $tv in "$WANT_VERSION"*) ;; *) die "bin/crit --version says '$tv', not $WANT_VERSION" ;; esac
impl=$("$DIR/bin/crit" --version >/dev/null && PYTHONPATH=$DIR/host-root/usr/lib/python3/dist-packages \
    LD_LIBRARY_PATH=$DIR/host-root/usr/lib/$triplet /usr/bin/python3 -s -c \
    'from google.protobuf.internal import api_implementation as a; import google.protobuf as p; print(p.__version__, a.Type())' 2>&1)

# `criu check` needs root.  It is run in a private mount namespace with a
# tmpfs on /run, so that its kdat cache (/run/criu.kdat) is not left on the
# system.  Its verdict is recorded, never fatal.
check="not run (needs root)"
if [ "$(id -u)" = 0 ]; then
    {
        echo "# criu check"
        if command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
            unshare -m sh -c 'mount -t tmpfs none /run 2>/dev/null; "$0" check; echo "rc=$?"; echo "# criu check --all"; "$0" check --all; echo "rc=$?"' "$DIR/bin/criu" 2>&1
        else
            "$DIR/bin/criu" check 2>&1; echo "rc=$?"
            echo "# criu check --all"
            "$DIR/bin/criu" check --all 2>&1; echo "rc=$?"
        fi
    } >"$DIR/criu-check.txt"
    first=$(sed -n '2,/^rc=/p' "$DIR/criu-check.txt")
    if echo "$first" | grep -q 'Looks good'; then
        check="looks good"
    else
        check="$(echo "$first" | grep -ciE 'warn|error') warnings/errors"
    fi
    nall=$(sed -n '/^# criu check --all/,$p' "$DIR/criu-check.txt" | grep -ciE '^(warn|error)|not supported')
    check="$check; --all: $nall warnings/errors"
    [ "$verbose" = 1 ] && cat "$DIR/criu-check.txt" >&2
fi

{
    echo "recipe $RECIPE"
    echo "mirror $MIRROR $SUITE"
    echo "keyring $KEYRING"
    echo "criu $(echo "$cv" | head -n 1)"
    echo "crit $tv"
    echo "protobuf $impl"
    echo "criu-check $check"
} >"$DIR/.ready"
echo "reference tools ready in $DIR (criu $WANT_VERSION, crit $tv, protobuf $impl; criu check: $check)"
