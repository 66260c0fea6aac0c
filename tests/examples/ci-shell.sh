#!/usr/bin/env bash
# Use mdelab in your CI (shell). The test suite runs this very file.
# Brings the lab up on the standard ports of a loopback address of its own (needs root or the
# bind capability), points unmodified tools at it, checks them, and stops it.
set -euo pipefail
MDELAB=${MDELAB:-mdelab}          # path to the mdelab binary
IP=${MDELAB_IP:-127.0.0.2}         # any loopback address
dir=$(mktemp -d)

"$MDELAB" up --bind "$IP" --https-port 443 --http-port 80 --dns-port 53 \
             --manifest "$dir/lab.json" >"$dir/up.log" 2>&1 &
lab=$!
trap 'kill "$lab" 2>/dev/null || true; wait "$lab" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$MDELAB" wait --manifest "$dir/lab.json" --timeout 60

# The lab's trust bundle (never the inspection CA), from the lab's own exports.
bundle=$(eval "$("$MDELAB" env --manifest "$dir/lab.json")"; echo "$CURL_CA_BUNDLE")

# 1. An unmodified tool, helped only to resolve the name: the real URL on port 443.
status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$bundle" \
  --resolve "winatp-gw-cus.microsoft.com:443:$IP" https://winatp-gw-cus.microsoft.com/test)
[ "$status" = 200 ] || { echo "direct: got $status"; exit 1; }

# 2. The lab DNS answers catalog names with the lab address.
[ "$(dig @"$IP" +short us-v20.events.data.microsoft.com)" = "$IP" ] || { echo "dns"; exit 1; }

# 3. Through the lab proxy, with no name help at all: plain curl after one eval.
eval "$("$MDELAB" env --manifest "$dir/lab.json")"
status=$(curl -sS -o /dev/null -w '%{http_code}' https://us-v20.events.data.microsoft.com/ping)
[ "$status" = 200 ] || { echo "via proxy: got $status"; exit 1; }

echo "mdelab CI example: ok"
