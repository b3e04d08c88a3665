#!/bin/sh
# architecture.sh: the machine architecture (uname -m).
echo "ARCH=$(uname -m)"
