#!/usr/bin/env bash
# install.sh: install onecloud (Debian packages, a Python venv, the OpenNebula file layout).
#
# NOTE: keeps OpenNebula 1.4's interface: `./install.sh -d $ONE_LOCATION` makes a self-contained
# install, no -d a system-wide one (reference §2 and §12.4).
set -euo pipefail

# The Debian packages the project needs: building libvirt-python; SSH to hosts (and sshd for the
# namespace test hosts); libvirt with QEMU for real guests; ISO and initramfs tools for CONTEXT
# and the test guest; iproute2 for test hosts in network namespaces; Chromium and its driver for
# the dashboard's browser tests.
DEBIAN_PACKAGES="libvirt-dev pkg-config gcc python3-dev python3-venv openssh-client openssh-server
iproute2 libvirt-daemon-system qemu-system-x86 qemu-utils dnsmasq-base genisoimage cpio
e2fsprogs man-db logrotate chromium chromium-driver"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROGRESS_START=$SECONDS

usage() {
    cat <<'EOF'
Usage: install.sh [-d DIR] [--start]
       install.sh --dev
       install.sh --deps-only
       install.sh -h

Install onecloud: the Debian packages it needs (only the missing ones), a Python venv with the
project in it, and OpenNebula's file layout. Re-running is fast: nothing is reinstalled unless
it changed, and an existing etc/oned.conf is never overwritten.

Options:
  -d DIR       self-contained install under DIR (the ONE_LOCATION): DIR/bin, DIR/etc/oned.conf,
               DIR/var (database, logs, pid files), DIR/lib/venv, DIR/lib/mads, DIR/share.
               Without -d: system-wide (/usr/lib/one, /etc/one, /var/lib/one, /var/log/one,
               /var/run/one, /usr/share/one, links in /usr/bin); needs root. It creates the
               system user and group oneadmin if missing (home /var/lib/one, shell /bin/bash:
               the drivers log in to the hosts over SSH as oneadmin, as OpenNebula's do) and
               gives it etc, var, log and run; oned runs as oneadmin, never as root (`one
               start` refuses root in a system-wide install: sudo -u oneadmin one start).
  --dev        development set-up only: the repository's .venv with the project installed
               editable, with its test tools (.[test]); no layout.
  --deps-only  install the Debian packages only.
  --start      after installing, make sure an ONE_AUTH file exists ($ONE_AUTH or
               ~/.one/one_auth, oneadmin's /var/lib/one/.one/one_auth system-wide; created
               0600 as oneadmin:<random password> if missing) and run `one start` (as oneadmin
               system-wide).
  -h, --help   show this help.

Files and modes: etc/oned.conf (it may hold the DB password) is created 0600; etc, var (the
database, VM folders), the log, run and lock folders are made 0700; oned itself creates its files with oned.conf's
UMASK (077: 0600 files, 0700 folders; 027 lets the oneadmin group read). The drivers need root
for a few commands on the hosts (xl, ebtables): an example sudoers file for them is installed
as share/etc/sudoers.d/onecloud (/usr/share/one/etc/sudoers.d/onecloud); copy it to each host's
/etc/sudoers.d/ after reading it.

Environment:
  PYTHON       the Python (3.11 or later) to build the venv with; default: the first of
               python3.11, python3 that is recent enough.

Examples:
  ./install.sh -d ~/one --start     set up and start a cloud in ~/one (SQLite)
  ./install.sh --dev                set up the development venv (tests/run does this)
EOF
}

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------

missing_debian_packages() {
    local pkg status
    for pkg in $DEBIAN_PACKAGES; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || printf '%s ' "$pkg"
    done
}

install_debian_packages() {
    command -v dpkg-query >/dev/null || { say "not a Debian system: skipping Debian packages"; return; }
    local missing
    missing=$(missing_debian_packages)
    if [ -z "$missing" ]; then
        say "Debian packages already installed"
        return
    fi
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing}(run as root to install them)"
    say "installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt_get_waiting update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt_get_waiting -o Dpkg::Options::=--force-confnew install -y -qq $missing </dev/null
}

# apt_get_waiting ARGS...: apt-get ARGS; while another apt or dpkg holds its lock (a fresh Debian
# machine often runs unattended-upgrades at boot), wait and retry, saying so, for at most
# $APT_LOCK_WAIT seconds (600 by default); then fail naming the lock's holder.
apt_get_waiting() {
    local deadline=$((SECONDS + ${APT_LOCK_WAIT:-600})) err said=false
    err=$(mktemp)
    while true; do
        if apt-get "$@" 2>"$err"; then
            rm -f "$err"
            return 0
        fi
        if ! grep -qE "$APT_LOCKED" "$err" || [ "$SECONDS" -ge "$deadline" ]; then
            cat "$err" >&2
            rm -f "$err"
            die "apt-get $1 failed"
        fi
        $said || say "waiting (at most ${APT_LOCK_WAIT:-600} s) for another apt/dpkg to finish: $(lock_holder "$err")"
        said=true
        sleep "${APT_LOCK_POLL:-5}"
    done
}

APT_LOCKED='Could not get lock|Unable to acquire the dpkg frontend lock|another process using it'

# lock_holder FILE: the "held by process N (name)" part of apt's message, or its first line.
lock_holder() {
    local holder
    holder=$(grep -oE 'held by process [0-9]+( \([^)]*\))?' "$1" | head -n 1) || true
    printf '%s' "${holder:-$(head -n 1 "$1")}"
}

# --- Python venv -----------------------------------------------------------------------------

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3 /usr/bin/python3.11 /usr/bin/python3; do
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            printf '%s\n' "$candidate"
            return
        fi
    done
    die "no Python 3.11 or later with the venv module found (set PYTHON=/path/to/python3.11)"
}

# A fingerprint of what the venv was built from: when it is unchanged, pip is skipped.
source_fingerprint() {
    local mode=$1
    {
        printf 'mode=%s\n' "$mode"
        cat "$REPO/setup.cfg" "$REPO/pyproject.toml"
        if [ "$mode" = install ]; then
            # A non-editable install copies the code: any source change needs a reinstall.
            (cd "$REPO" && find oned drivers scheduler econe dashboard cli -type f \
                -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 2>/dev/null \
                | sort -z | xargs -0 -r sha256sum)
        fi
    } | sha256sum | cut -d' ' -f1
}

# make_venv VENV MODE: MODE is "dev" (editable, with test extras) or "install".
make_venv() {
    local venv=$1 mode=$2 stamp fingerprint python
    stamp="$venv/.onecloud-fingerprint"
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c '' 2>/dev/null; then
        say "venv $venv is broken (its Python is gone): recreating it"
        rm -rf "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        python=$(find_python)
        say "creating venv $venv with $python"
        "$python" -m venv "$venv"
    fi
    fingerprint=$(source_fingerprint "$mode")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] \
        && "$venv/bin/python" -c 'import importlib.metadata as m; m.version("onecloud")' 2>/dev/null
    then
        say "venv $venv is up to date"
        return
    fi
    rm -f "$stamp"
    local pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
    if [ "$mode" = dev ]; then
        say "installing onecloud (editable, with test tools) into $venv"
        (cd "$REPO" && "${pip[@]}" -e '.[test]')
    else
        say "installing onecloud into $venv"
        # Built from a clean copy: an in-tree build/ would keep shipping modules since deleted.
        local tree
        tree=$(mktemp -d)
        tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./var \
            --exclude='*.egg-info' --exclude=__pycache__ --exclude='.*_cache' -cf - . \
            | tar -C "$tree" -xf -
        "${pip[@]}" "$tree" || { rm -rf "$tree"; return 1; }
        rm -rf "$tree"
    fi
    printf '%s\n' "$fingerprint" >"$stamp"
}

# --- layout ----------------------------------------------------------------------------------

# Sets ETC VAR LOG RUN LOCK MADS SHARE from oned/locations.py, the one definition of the layout.
read_locations() {
    local venv=$1 code
    code='
import shlex
from oned.locations import locations
loc = locations()
for key in ("etc", "var", "log", "run", "lock", "mads", "share"):
    print(f"{key.upper()}={shlex.quote(getattr(loc, key))}")
'
    eval "$("$venv/bin/python" -c "$code")"
}

console_scripts() {
    "$1/bin/python" -c '
import importlib.metadata as m
for ep in m.distribution("onecloud").entry_points:
    if ep.group == "console_scripts":
        print(ep.name)
'
}

# link TARGET LINK: a symlink, never replacing a file that is not one of ours.
link() {
    if [ -e "$2" ] && [ ! -L "$2" ]; then
        printf 'install.sh: warning: %s exists and is not a link: left alone\n' "$2" >&2
        return
    fi
    ln -sfn "$1" "$2"
}

# Links in DIR that point into the venv at a script that no longer exists are removed.
remove_dangling_links() {
    local dir=$1 venv=$2 entry
    for entry in "$dir"/*; do
        if [ -L "$entry" ] && [ ! -e "$entry" ]; then
            case "$(readlink "$entry")" in "$venv"/bin/*) rm -f "$entry" ;; esac
        fi
    done
}

# --- the oneadmin user and private folders -----------------------------------------------------

ONEADMIN=oneadmin
ONEADMIN_HOME=/var/lib/one

# The system user oned runs as. NOTE: as OpenNebula's packages: user and group oneadmin, home
# /var/lib/one, a login shell (/bin/bash) because the drivers reach the hosts with
# `ssh oneadmin@host`, and the hosts' oneadmin runs the remote scripts.
ensure_oneadmin() {
    if ! getent group "$ONEADMIN" >/dev/null; then
        groupadd --system "$ONEADMIN"
        say "created the system group $ONEADMIN"
    fi
    if ! getent passwd "$ONEADMIN" >/dev/null; then
        useradd --system --gid "$ONEADMIN" --home-dir "$ONEADMIN_HOME" --no-create-home \
            --shell /bin/bash --comment "onecloud (oned and its drivers)" "$ONEADMIN"
        say "created the system user $ONEADMIN (home $ONEADMIN_HOME)"
    fi
}

# private_dir MODE OWNER DIR...: make each DIR with MODE (also when it exists: an older install
# left 0755), owned by OWNER unless OWNER is empty (a self-contained install: the user's own).
private_dir() {
    local mode=$1 owner=$2 dir
    shift 2
    for dir in "$@"; do
        mkdir -p "$dir"
        chmod "$mode" "$dir"
        if [ -n "$owner" ]; then chown "$owner:$owner" "$dir"; fi
    done
}

lay_out() {
    local venv=$1 bin=$2 owner=${3:-} name
    read_locations "$venv"
    say "laying out bin=$bin etc=$ETC var=$VAR mads=$MADS share=$SHARE"
    mkdir -p "$bin" "$MADS" "$SHARE"
    # In a self-contained install var, log, run and the lock's folder are one folder.
    private_dir 700 "$owner" "$ETC" "$VAR" "$LOG" "$RUN" "$(dirname "$LOCK")"
    for name in $(console_scripts "$venv"); do
        link "$venv/bin/$name" "$bin/$name"
        case "$name" in one_*) link "$venv/bin/$name" "$MADS/$name" ;; esac
    done
    remove_dangling_links "$bin" "$venv"
    remove_dangling_links "$MADS" "$venv"
    if [ -f "$ETC/oned.conf" ]; then
        say "keeping the existing $ETC/oned.conf"
    elif [ -f "$REPO/oned.conf.example" ]; then
        install -m 600 "$REPO/oned.conf.example" "$ETC/oned.conf"
        if [ -n "$owner" ]; then chown "$owner:$owner" "$ETC/oned.conf"; fi
        say "created $ETC/oned.conf (mode 600) from oned.conf.example"
    else
        printf 'install.sh: warning: no oned.conf.example in %s: %s not created\n' \
            "$REPO" "$ETC/oned.conf" >&2
    fi
    if [ -d "$REPO/share" ] && [ -n "$(ls -A "$REPO/share")" ]; then
        cp -R "$REPO/share/." "$SHARE/"
    fi
    install_etc_files "$owner"
}

# install_etc_files [OWNER]: the files an operator edits, copied into etc/ once: the top-level
# ones (share/etc/sched.conf, defaultrc), the drivers' configuration (share/etc/<driver>/, not
# the hosts' sudoers rules) and the example templates (templates/ -> etc/templates/). An
# existing file is the operator's and is never overwritten.
install_etc_files() {
    local owner=${1:-} dir file
    for file in "$REPO"/share/etc/*; do
        [ -f "$file" ] || continue
        [ -e "$ETC/$(basename "$file")" ] && continue
        install -m 644 "$file" "$ETC/$(basename "$file")"
        if [ -n "$owner" ]; then chown "$owner:$owner" "$ETC/$(basename "$file")"; fi
    done
    for dir in "$REPO"/share/etc/*/ "$REPO/templates/"; do
        [ -d "$dir" ] || continue
        case "$dir" in */sudoers.d/) continue ;; esac
        local target
        target="$ETC/$(basename "$dir")"
        mkdir -p "$target"
        cp -Rn "$dir." "$target/"
        if [ -n "$owner" ]; then chown -R "$owner:$owner" "$target"; fi
    done
}

# --- man pages, systemd units, log rotation ----------------------------------------------------

UNIT_DIR=/etc/systemd/system
LOGROTATE_DIR=/etc/logrotate.d
SYSTEM_MAN_DIR=/usr/local/share/man/man1

# install_man_and_units VENV SYSTEM: the man pages, rendered from each command's own parser
# (share/scripts/make-man-pages), into the install's share/man/man1 (man finds them through
# $ONE_LOCATION/bin on PATH) or, SYSTEM=true, into SYSTEM_MAN_DIR; system-wide also the systemd
# units (share/systemd: installed, neither enabled nor started) and the logrotate snippet.
install_man_and_units() {
    local venv=$1 system=$2 man_dir=$SHARE/man/man1
    if [ "$system" = true ]; then man_dir=$SYSTEM_MAN_DIR; fi
    "$venv/bin/python" "$REPO/share/scripts/make-man-pages" "$man_dir" >/dev/null ||
        die "cannot write the man pages into $man_dir"
    say "man pages in $man_dir"
    [ "$system" = true ] || return 0
    mkdir -p "$UNIT_DIR" "$LOGROTATE_DIR"
    install -m 644 "$REPO"/share/systemd/*.service "$UNIT_DIR/"
    install -m 644 "$REPO/share/logrotate/onecloud" "$LOGROTATE_DIR/onecloud"
    if [ "$UNIT_DIR" = /etc/systemd/system ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
    say "systemd units in $UNIT_DIR (not started: systemctl enable --now oned mm_sched)," \
        "log rotation in $LOGROTATE_DIR/onecloud"
}

# --- start -----------------------------------------------------------------------------------

# ensure_one_auth VENV [OWNER]: system-wide, OWNER is oneadmin and the file is in its home.
ensure_one_auth() {
    local venv=$1 owner=${2:-} auth=${ONE_AUTH:-$HOME/.one/one_auth} password
    if [ -n "$owner" ]; then auth=$ONEADMIN_HOME/.one/one_auth; fi
    if [ -f "$auth" ]; then
        say "using the ONE_AUTH file $auth"
        return
    fi
    password=$("$venv/bin/python" -c '
import secrets, string
print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16)))')
    # Only a directory made here is made private: never chmod a shared one such as /tmp.
    if [ ! -d "$(dirname "$auth")" ]; then
        mkdir -p "$(dirname "$auth")"
        chmod 700 "$(dirname "$auth")"
    fi
    (umask 077 && printf 'oneadmin:%s\n' "$password" >"$auth")
    chmod 600 "$auth"
    if [ -n "$owner" ]; then chown -R "$owner:$owner" "$(dirname "$auth")"; fi
    say "created the ONE_AUTH file $auth (oneadmin and a random password)"
}

start_cloud() {
    local venv=$1 bin=$2 location=$3
    if [ -n "$location" ]; then
        ensure_one_auth "$venv"
        say "starting: ONE_LOCATION=$location $bin/one start"
        ONE_LOCATION=$location "$bin/one" start
    else
        ensure_one_auth "$venv" "$ONEADMIN"
        say "starting as $ONEADMIN: $bin/one start"
        runuser -u "$ONEADMIN" -- env -u ONE_LOCATION -u ONE_AUTH HOME="$ONEADMIN_HOME" \
            "$bin/one" start
    fi
}

# --- main ------------------------------------------------------------------------------------

main() {
    local location="" dev=false deps_only=false start=false system=true
    while [ $# -gt 0 ]; do
        case "$1" in
            -d) [ $# -ge 2 ] || die "-d needs a directory"; location=$2; system=false; shift ;;
            --dev) dev=true ;;
            --deps-only) deps_only=true ;;
            --start) start=true ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    if $dev && { [ -n "$location" ] || $start; }; then
        die "--dev sets up the development venv only: it takes neither -d nor --start"
    fi

    install_debian_packages
    if $deps_only; then return; fi

    if $dev; then
        make_venv "$REPO/.venv" dev
        say "done in $((SECONDS - PROGRESS_START)) s: activate with 'source $REPO/.venv/bin/activate'"
        return
    fi

    local venv bin
    if $system; then
        [ "$(id -u)" = 0 ] || die "a system-wide install needs root (or use -d DIR)"
        venv=/usr/lib/one/venv bin=/usr/bin
        unset ONE_LOCATION
    else
        mkdir -p "$location"
        location=$(cd "$location" && pwd)
        venv=$location/lib/venv bin=$location/bin
        export ONE_LOCATION=$location
    fi
    make_venv "$venv" install
    if $system; then
        ensure_oneadmin
        lay_out "$venv" "$bin" "$ONEADMIN"
    else
        lay_out "$venv" "$bin"
    fi
    install_man_and_units "$venv" "$system"
    if $start; then start_cloud "$venv" "$bin" "$location"; fi
    say "done in $((SECONDS - PROGRESS_START)) s"
    if ! $system; then
        # shellcheck disable=SC2016  # $PATH is printed for the user's shell to expand
        printf '    export ONE_LOCATION=%s PATH=%s/bin:$PATH\n' "$location" "$location"
    fi
}

# Sourced by the tests (tests/unit/test_install_script.py) to try the layout in a temporary
# directory; run, it installs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
