#!/bin/sh
# name.sh: the host's own name (uname -n).
echo "HOSTNAME=$(uname -n)"
