#!/bin/sh
# accel.sh: whether KVM can accelerate guests here, as a hint for `onehost show`:
# KVM_ACCEL=yes, or KVM_ACCEL=no with KVM_ACCEL_REASON (no /dev/kvm, not usable, or a CPU
# without the vmx/svm flag, as under nested virtualisation that is off). one_vmm_kvm's own probe
# (a test boot at the first deploy) is the verdict: with --domain-type auto it then runs guests
# under QEMU emulation (TCG) and says so in oned.log.
PROC=${ONE_PROC:-/proc}
DEVICE=${ONE_KVM_DEVICE:-/dev/kvm}
reason=
if [ ! -e "$DEVICE" ]; then
    reason="$DEVICE does not exist"
elif [ ! -r "$DEVICE" ] || [ ! -w "$DEVICE" ]; then
    reason="$DEVICE is not usable by $(id -un 2>/dev/null || echo this user)"
elif ! grep -qE '^flags.*[[:space:]](vmx|svm)([[:space:]]|$)' "$PROC/cpuinfo" 2>/dev/null; then
    reason="the CPU has no vmx/svm flag (nested virtualisation off?)"
fi
if [ -z "$reason" ]; then
    echo KVM_ACCEL=yes
else
    echo KVM_ACCEL=no
    echo "KVM_ACCEL_REASON=\"$reason: guests run under QEMU emulation (TCG)\""
fi
