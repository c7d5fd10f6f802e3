#!/usr/bin/env bash
# sink.sh GATEWAY...: subscribes to e2c/sensors/# on the MQTT broker of
# every gateway (QoS 1); mosquitto_sub writes each reading as it arrives to
# received-GATEWAY.txt, after its time of arrival (%U: Unix seconds, to the
# nanosecond). Once a probe published to each gateway has come back, every
# subscription is up: it writes the file subscribed.
# sink.sh --stop: waits until no reading has arrived for 1 s (at most
# 10 s), stops the subscribers, and writes latency.csv: a line per reading,
# its gateway, sensor, sequence number, sent and received Unix times, and
# latency in milliseconds.
set -euo pipefail
export LC_ALL=C
if [ "${1:-}" = --stop ]; then
  for _ in $(seq 10); do
    before=$(cat received-*.txt | wc -l)
    sleep 1
    [ "$(cat received-*.txt | wc -l)" = "$before" ] && break
  done
  kill -TERM "$(cat sink.pid)"
  while kill -0 "$(cat sink.pid)" 2>/dev/null; do sleep 0.1; done
  echo gateway,sensor,seq,sent_unix,received_unix,latency_ms >latency.csv
  for f in received-*.txt; do
    gw=${f#received-}
    gw=${gw%.txt}
    # received SENSOR SEQ SENT; the probes are "_ probe".
    awk -v gw="$gw" '$2 != "_" && NF == 4 { printf "%s,%s,%s,%s,%s,%.3f\n", gw, $2, $3, $4, $1, ($1 - $4) * 1000 }' "$f" >>latency.csv
  done
  echo "$(($(wc -l <latency.csv) - 1)) readings received"
  exit 0
fi
rm -f subscribed received-*.txt
echo $$ >sink.pid
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM
for gw in "$@"; do
  mosquitto_sub -h "$gw" -t 'e2c/sensors/#' -q 1 -F '%U %p' -i "sink-$gw" >"received-$gw.txt" &
done
for gw in "$@"; do
  for _ in $(seq 100); do
    grep -q ' _ probe$' "received-$gw.txt" && break
    mosquitto_pub -h "$gw" -t e2c/sensors/_probe -q 1 -m "_ probe" || true
    sleep 0.2
  done
  grep -q ' _ probe$' "received-$gw.txt" || { echo "no probe back from $gw"; exit 1; }
done
echo "subscribed to $*"
touch subscribed
wait
