#!/bin/sh
# xen.sh: HYPERVISOR=xen; capacity and free memory from `xl info` (or `xm info` on Xen < 4.1);
# CPU use from the domains' CPU seconds in `xl list` (or `xm list`), as the delta since the
# previous run kept in $ONE_STATE/xen (the first run averages since boot). As oneadmin the
# toolstack is run through `sudo -n`, as in OpenNebula's Xen probes.
PROC=${ONE_PROC:-/proc}
STATE=${ONE_STATE:-${TMPDIR:-/tmp}}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
if info=$(as_root xl info 2>/dev/null); then
    list=$(as_root xl list 2>/dev/null)
elif info=$(as_root xm info 2>/dev/null); then
    list=$(as_root xm list 2>/dev/null)
else
    echo "xen.sh: neither 'xl info' nor 'xm info' answers on $(uname -n)" >&2
    exit 1
fi
echo HYPERVISOR=xen

eval "$(printf '%s\n' "$info" | awk -F' *: *' '
    $1 == "nr_cpus"         { printf "totalcpu=%d\n", $2 * 100 }
    $1 == "cpu_mhz"         { printf "cpuspeed=%d\n", $2 }
    $1 == "total_memory"    { printf "totalmemory=%d\n", $2 * 1024 }
    $1 == "free_memory"     { printf "freememory=%d\n", $2 * 1024 }
    $1 == "max_free_memory" { printf "maxfree=%d\n", $2 * 1024 }')"
freememory=${maxfree:-${freememory:-0}}
echo "TOTALCPU=${totalcpu:-0}"
echo "CPUSPEED=${cpuspeed:-0}"
echo "TOTALMEMORY=${totalmemory:-0}"
echo "USEDMEMORY=$((${totalmemory:-0} - freememory))"
echo "FREEMEMORY=$freememory"

# deciseconds of CPU used by all domains, and centiseconds of wall clock since boot
busy=$(printf '%s\n' "$list" | awk 'NR > 1 && NF >= 6 { t += $NF } END { printf "%.0f", t * 10 }')
now="$busy $(awk '{ printf "%.0f", $1 * 100 }' "$PROC/uptime")"
before=$(cat "$STATE/xen" 2>/dev/null)
[ -d "$STATE" ] || mkdir -p "$STATE"
printf '%s\n' "$now" >"$STATE/xen.$$" && mv -f "$STATE/xen.$$" "$STATE/xen"
awk -v now="$now" -v before="$before" -v cpus="${totalcpu:-0}" 'BEGIN {
    split(now, n, " "); split(before, b, " ")
    db = n[1] - b[1]; dw = n[2] - b[2]
    if (b[1] == "" || dw <= 0 || db < 0) { db = n[1]; dw = n[2] }
    used = (dw > 0) ? int(db * 1000 / dw + 0.5) : 0
    if (used > cpus) used = cpus
    printf "USEDCPU=%d\nFREECPU=%d\n", used, cpus - used
}'
