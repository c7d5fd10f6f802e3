#!/usr/bin/env bash
# sink.sh GATEWAY...: subscribes to e2c/sensors/# on the MQTT broker of
# every gateway (QoS 1) and appends to latency.csv a line per reading
# received: its gateway, sensor, sequence number, sent and received Unix
# times (mosquitto_sub's %U, nanoseconds) and latency in milliseconds.
# Once a probe published to each gateway has come back, every subscription
# is up: it writes the file subscribed.
# sink.sh --stop: waits until no reading has arrived for 1 s (at most 10 s),
# then stops the subscribers.
set -euo pipefail
export LC_ALL=C
if [ "${1:-}" = --stop ]; then
  for _ in $(seq 10); do
    before=$(wc -l <latency.csv)
    sleep 1
    [ "$(wc -l <latency.csv)" = "$before" ] && break
  done
  kill -TERM "$(cat sink.pid)"
  while kill -0 "$(cat sink.pid)" 2>/dev/null; do sleep 0.1; done
  echo "$(($(wc -l <latency.csv) - 1)) readings received"
  exit 0
fi
rm -f subscribed ready-*
echo $$ >sink.pid
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM
echo gateway,sensor,seq,sent_unix,received_unix,latency_ms >latency.csv
for gw in "$@"; do
  mosquitto_sub -h "$gw" -t 'e2c/sensors/#' -q 1 -F '%U %p' -i "sink-$gw" |
    awk -v gw="$gw" '
      $2 == "_" { print "" > ("ready-" gw); close("ready-" gw); next }
      { printf "%s,%s,%s,%s,%s,%.3f\n", gw, $2, $3, $4, $1, ($1 - $4) * 1000; fflush() }
    ' >>latency.csv &
done
for gw in "$@"; do
  for _ in $(seq 100); do
    [ -e "ready-$gw" ] && break
    mosquitto_pub -h "$gw" -t e2c/sensors/_probe -q 1 -m "_ probe" || true
    sleep 0.2
  done
  [ -e "ready-$gw" ] || { echo "no probe back from $gw"; exit 1; }
done
echo "subscribed to $*"
touch subscribed
wait
