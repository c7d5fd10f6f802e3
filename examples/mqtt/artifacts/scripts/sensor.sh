#!/usr/bin/env bash
# sensor.sh GATEWAY ID COUNT RATE: publishes COUNT readings, RATE a second,
# to the topic e2c/sensors/ID of the MQTT broker at GATEWAY, over one
# connection with QoS 1. Each reading is "ID SEQ SENT", SENT its Unix time
# in seconds (bash's EPOCHREALTIME, microseconds); sent.csv lists them. It
# writes the file done once the broker has acknowledged every reading.
set -euo pipefail
gw=$1 id=$2 count=$3 rate=$4
export LC_ALL=C # EPOCHREALTIME's decimal point
rm -f done
interval=$(awk -v r="$rate" 'BEGIN { printf "%.6f", 1 / r }')
echo sensor,seq,sent_unix >sent.csv
# The first second lets the client connect: a reading stamped before
# would count the connection in its latency.
{
  sleep 1
  for ((i = 1; i <= count; i++)); do
    t=$EPOCHREALTIME
    echo "$id,$i,$t" >>sent.csv
    echo "$id $i $t"
    sleep "$interval"
  done
} | mosquitto_pub -h "$gw" -t "e2c/sensors/$id" -q 1 -l -i "sensor-$id"
echo "$count readings sent to $gw"
touch done
