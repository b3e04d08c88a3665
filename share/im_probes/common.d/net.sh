#!/bin/sh
# net.sh: NETRX and NETTX, bytes received and sent since boot on every interface but lo.
PROC=${ONE_PROC:-/proc}
awk 'NR > 2 {
        sub(/^[ \t]+/, "")
        split($0, part, ":")
        if (part[1] == "lo") next
        split(part[2], f, " ")
        rx += f[1]; tx += f[9]
    }
    END { printf "NETRX=%.0f\nNETTX=%.0f\n", rx, tx }' "$PROC/net/dev"
