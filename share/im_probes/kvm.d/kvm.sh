#!/bin/sh
# kvm.sh: HYPERVISOR=kvm and the host's capacity and use.
# - TOTALCPU (cores x 100) and CPUSPEED (MHz) from libvirt (`virsh nodeinfo`) when it answers,
#   else from /proc. virsh costs more than everything else together, so its answer is kept in
#   $ONE_STATE/nodeinfo and asked again every 20th run.
# - TOTALMEMORY, USEDMEMORY, FREEMEMORY (KB) from meminfo. libvirt's "Memory size" comes from
#   NUMA sysfs, which can miss hot-plugged memory, and must agree with USED and FREE.
# - USEDCPU, FREECPU (percent, like TOTALCPU) from the /proc/stat delta since the previous run,
#   whose counters are kept in $ONE_STATE/cpu: no sampling sleep; the first run averages since
#   boot.
PROC=${ONE_PROC:-/proc}
STATE=${ONE_STATE:-${TMPDIR:-/tmp}}
[ -d "$STATE" ] || mkdir -p "$STATE"
echo HYPERVISOR=kvm

runs=0
[ -r "$STATE/cpu" ] && read -r _ _ runs <"$STATE/cpu"
case "$runs" in '' | *[!0-9]*) runs=0 ;; esac
if [ $((runs % 20)) -eq 0 ] || [ ! -f "$STATE/nodeinfo" ]; then
    if command -v virsh >/dev/null 2>&1 &&
        timeout 5 virsh -c qemu:///system nodeinfo >"$STATE/nodeinfo.$$" 2>/dev/null; then
        mv -f "$STATE/nodeinfo.$$" "$STATE/nodeinfo"
    else
        rm -f "$STATE/nodeinfo.$$"
        : >"$STATE/nodeinfo"
    fi
fi

set -- "$PROC/stat" "$PROC/cpuinfo" "$PROC/meminfo"
[ -s "$STATE/cpu" ] && set -- "$STATE/cpu" "$@"
[ -s "$STATE/nodeinfo" ] && set -- "$STATE/nodeinfo" "$@"
awk -v nodeinfo="$STATE/nodeinfo" -v stat="$PROC/stat" -v cpuinfo="$PROC/cpuinfo" \
    -v meminfo="$PROC/meminfo" -v state="$STATE/cpu" -v newstate="$STATE/cpu.$$" -v runs="$runs" '
    FILENAME == nodeinfo && /^CPU\(s\):/     { lv_cpus = $2 }
    FILENAME == nodeinfo && /^CPU frequency:/ { lv_mhz = $3 }
    FILENAME == state   { before_total = $1; before_idle = $2; seen = 1 }
    FILENAME == stat && /^cpu /    { for (i = 2; i <= 9; i++) total += $i; idle = $5 + $6 }
    FILENAME == stat && /^cpu[0-9]/ { ncpu++ }
    FILENAME == cpuinfo && /^cpu MHz/ && mhz == "" { mhz = $NF }
    FILENAME == meminfo && $1 == "MemTotal:"     { memtotal = $2 }
    FILENAME == meminfo && $1 == "MemAvailable:" { avail = $2 }
    FILENAME == meminfo && ($1 == "MemFree:" || $1 == "Buffers:" || $1 == "Cached:") { legacy += $2 }
    END {
        cpus = (lv_cpus != "" ? lv_cpus : ncpu) * 100
        speed = (lv_mhz != "" ? lv_mhz : mhz) + 0
        free = (avail != "" ? avail : legacy) + 0
        if (free > memtotal) free = memtotal
        dt = total - before_total; di = idle - before_idle
        if (!seen || dt <= 0 || di < 0) { dt = total; di = idle }
        freecpu = (dt > 0) ? int(di * cpus / dt + 0.5) : cpus
        if (freecpu > cpus) freecpu = cpus
        printf "TOTALCPU=%d\nCPUSPEED=%d\nTOTALMEMORY=%d\n", cpus, speed, memtotal
        printf "USEDMEMORY=%d\nFREEMEMORY=%d\n", memtotal - free, free
        printf "USEDCPU=%d\nFREECPU=%d\n", cpus - freecpu, freecpu
        printf "%.0f %.0f %d\n", total, idle, runs + 1 > newstate
    }' "$@" &&
    mv -f "$STATE/cpu.$$" "$STATE/cpu"
