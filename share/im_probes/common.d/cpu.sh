#!/bin/sh
# cpu.sh: MODELNAME, the first CPU model named in cpuinfo, double-quoted for the template parser
# (blanks squeezed, \ and " escaped); the architecture when cpuinfo names none.
PROC=${ONE_PROC:-/proc}
awk -F'[ \t]*:[ \t]*' '
    function quote(s,    out, i, c) {
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            out = out ((c == "\\" || c == "\"") ? "\\" c : c)
        }
        return "\"" out "\""
    }
    /^(model name|cpu model|Processor|Hardware)[ \t]*:/ && model == "" { model = $2 }
    END {
        gsub(/[ \t]+/, " ", model); sub(/^ /, "", model); sub(/ $/, "", model)
        if (model == "") exit 1
        print "MODELNAME=" quote(model)
    }' "$PROC/cpuinfo" 2>/dev/null || echo "MODELNAME=\"$(uname -m)\""
