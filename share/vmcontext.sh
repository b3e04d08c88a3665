#!/bin/sh
# vmcontext.sh: configure a guest from its OpenNebula CONTEXT cdrom.
#
# Put this script in the boot process of a guest image (as OpenNebula's sample `vmcontext.sh`):
#
#   sysvinit        cp vmcontext.sh /etc/init.d/vmcontext && update-rc.d vmcontext defaults
#   systemd         a oneshot unit: ExecStart=/usr/local/sbin/vmcontext.sh start,
#                   Before=network-pre.target, WantedBy=multi-user.target
#   anything else   call `/path/to/vmcontext.sh start` early from rc.local or the init script
#
# The VM template gives the guest its CONTEXT cdrom, for example
#   CONTEXT = [ hostname = "$NAME", ip = "$NIC[IP]", files = "/srv/cloud/init.sh" ]
#
# At `start` it
#   1. finds the CONTEXT cdrom: $CONTEXT_DEV, or else the first ISO 9660 device among /dev/sr*,
#      /dev/hd*, /dev/vd*, /dev/sd*, /dev/xvd* (waiting up to $CONTEXT_WAIT seconds, default 10,
#      for it to appear), and mounts it read-only on $CONTEXT_MNT (default /mnt);
#   2. sources context.sh from it (the CONTEXT section of the VM template, one KEY="value" per line,
#      keys upper-cased), exporting every variable;
#   3. sets the hostname from HOSTNAME (else leaves it);
#   4. configures every ethN interface (with `ip`): the address is ETHN_IP, or for eth0 also IP;
#      without one it is derived from the last 4 bytes of the interface's MAC, as OpenNebula's
#      leases build MACs (MAC 02:00:0a:00:01:02 gives 10.0.1.2; a MAC whose third byte is 0, such
#      as libvirt's random 52:54:00:..., gives none). The mask is ETHN_MASK, or for eth0 also
#      NETMASK or MASK (default 255.255.255.0); the default route ETHN_GATEWAY or GATEWAY; the name
#      servers ETHN_DNS or DNS (space-separated, written to /etc/resolv.conf);
#   5. runs init.sh from the cdrom when the CONTEXT put one there (CONTEXT = [FILES = ".../init.sh"]),
#      with the context variables in its environment;
#   6. unmounts the cdrom, unless CONTEXT_UMOUNT=no.
# `stop` does nothing. Every action is reported on stdout as a `vmcontext:` line; a missing cdrom
# or context.sh is reported and is not an error (exit 0). Needs only a POSIX sh, mount, dd and
# ip (busybox is enough).

### BEGIN INIT INFO
# Provides:          vmcontext
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    networking
# Default-Start:     S
# Default-Stop:
# Short-Description: Configure the guest from its OpenNebula CONTEXT cdrom
### END INIT INFO

CONTEXT_MNT=${CONTEXT_MNT:-/mnt}
CONTEXT_WAIT=${CONTEXT_WAIT:-10}
CONTEXT_UMOUNT=${CONTEXT_UMOUNT:-yes}

say() { echo "vmcontext: $*"; }

# is_iso9660 DEV: the device holds an ISO 9660 file system ("CD001" at byte 32769).
is_iso9660() {
    [ -b "$1" ] || return 1
    [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ]
}

# find_context_device: print the CONTEXT cdrom's device, waiting up to CONTEXT_WAIT seconds.
find_context_device() {
    if [ -n "${CONTEXT_DEV:-}" ]; then
        echo "$CONTEXT_DEV"
        return 0
    fi
    tries=$((CONTEXT_WAIT * 4))
    while :; do
        for dev in /dev/sr* /dev/hd? /dev/vd? /dev/sd? /dev/xvd?; do
            if is_iso9660 "$dev"; then
                echo "$dev"
                return 0
            fi
        done
        [ "$tries" -gt 0 ] || return 1
        tries=$((tries - 1))
        sleep 0.25
    done
}

# mac2ip MAC: OpenNebula's MAC-to-IP rule (the last 4 bytes); nothing when the first is 0.
mac2ip() {
    old_ifs=$IFS
    IFS=:
    # shellcheck disable=SC2086  # split the MAC on ':' on purpose
    set -- $1
    IFS=$old_ifs
    [ $# -eq 6 ] || return 0
    [ "$((0x$3))" -ne 0 ] || return 0
    printf '%d.%d.%d.%d\n' "0x$3" "0x$4" "0x$5" "0x$6"
}

# mask2prefix MASK: 255.255.255.0 -> 24; a number is taken as a prefix already.
mask2prefix() {
    case $1 in
        *.*.*.*) ;;
        *) echo "$1"; return 0 ;;
    esac
    old_ifs=$IFS
    IFS=.
    # shellcheck disable=SC2086  # split the mask on '.' on purpose
    set -- $1
    IFS=$old_ifs
    bits=0
    for octet in "$@"; do
        while [ "$octet" -gt 0 ]; do
            bits=$((bits + (octet & 1)))
            octet=$((octet >> 1))
        done
    done
    echo "$bits"
}

# var NAME: the value of the shell variable NAME (empty when unset).
var() { eval "printf '%s' \"\${$1:-}\""; }

configure_interface() {
    iface=$1
    n=${iface#eth}
    case $n in '' | *[!0-9]*) return 0 ;; esac # eth0.100 and the like: not ours
    ip_addr=$(var "ETH${n}_IP")
    mask=$(var "ETH${n}_MASK")
    gateway=$(var "ETH${n}_GATEWAY")
    dns=$(var "ETH${n}_DNS")
    if [ "$n" = 0 ]; then
        ip_addr=${ip_addr:-${IP:-}}
        mask=${mask:-${NETMASK:-${MASK:-}}}
    fi
    gateway=${gateway:-${GATEWAY:-}}
    dns=${dns:-${DNS:-}}
    if [ -z "$ip_addr" ] && [ -r "/sys/class/net/$iface/address" ]; then
        ip_addr=$(mac2ip "$(cat "/sys/class/net/$iface/address")")
    fi
    if [ -z "$ip_addr" ]; then
        say "$iface: no address in the context nor in the MAC, left alone"
        return 0
    fi
    prefix=$(mask2prefix "${mask:-255.255.255.0}")
    ip link set dev "$iface" up
    ip addr flush dev "$iface" 2>/dev/null
    if ip addr add "$ip_addr/$prefix" dev "$iface"; then
        say "$iface $ip_addr/$prefix"
    else
        say "$iface: could not set $ip_addr/$prefix"
    fi
    if [ -n "$gateway" ] && ip route replace default via "$gateway" dev "$iface"; then
        say "default route via $gateway"
    fi
    if [ -n "$dns" ] && : 2>/dev/null >>/etc/resolv.conf; then
        for server in $dns; do echo "nameserver $server"; done >/etc/resolv.conf
        say "name servers $dns"
    fi
}

start() {
    if ! dev=$(find_context_device); then
        say "no CONTEXT cdrom found"
        return 0
    fi
    mkdir -p "$CONTEXT_MNT"
    if ! mount -t iso9660 -o ro "$dev" "$CONTEXT_MNT"; then
        say "could not mount $dev on $CONTEXT_MNT"
        return 0
    fi
    say "CONTEXT cdrom $dev on $CONTEXT_MNT"
    if [ -f "$CONTEXT_MNT/context.sh" ]; then
        set -a
        # shellcheck disable=SC1091  # written by OpenNebula at deploy time
        . "$CONTEXT_MNT/context.sh"
        set +a
        if [ -n "${HOSTNAME:-}" ]; then
            hostname "$HOSTNAME" && say "hostname $HOSTNAME"
            if : 2>/dev/null >>/etc/hostname; then echo "$HOSTNAME" >/etc/hostname; fi
        fi
        for path in /sys/class/net/eth*; do
            [ -e "$path" ] && configure_interface "${path##*/}"
        done
        if [ -f "$CONTEXT_MNT/init.sh" ]; then
            say "running init.sh"
            (cd "$CONTEXT_MNT" && sh ./init.sh) || say "init.sh exited with $?"
        fi
    else
        say "no context.sh on $dev"
    fi
    if [ "$CONTEXT_UMOUNT" != no ]; then
        umount "$CONTEXT_MNT"
    fi
    return 0
}

case "${1:-start}" in
    start) start ;;
    stop) ;;
    -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
