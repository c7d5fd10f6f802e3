#!/usr/bin/env bash
# Builds a test image from Debian's packages, without a registry and without
# a Docker daemon: a minbase rootfs made by debootstrap with the image's
# packages, written as a `docker save` archive (one layer) that `docker load`
# and the Engine API's image load take.
#
# Usage: build-image.sh [IMAGE]   (as root; prints the archive's path)
#   mosquitto (default)  Debian's mosquitto and its clients; listens on 1883,
#                        also with eclipse-mosquitto's command and file
#   zookeeper            Debian's ZooKeeper on a headless JRE, standalone,
#                        on 2181, answering the srvr and ruok commands
#
# The archive is cached in $E2C_IMAGE_CACHE (default /var/cache/e2c-test-images)
# as IMAGE-KEY.tar holding e2c-test/IMAGE:KEY, KEY being the SHA-256 of this
# script, the machine's architecture and the mirror, so that a change to any
# of them builds anew (and removes the older archives of IMAGE). A build
# holds a lock, so concurrent tests wait for one build instead of racing.
set -euo pipefail

image=${1:-mosquitto}
case $image in
mosquitto)
  include=mosquitto,mosquitto-clients
  cmd='"/usr/sbin/mosquitto","-c","/etc/mosquitto/e2c-test.conf"'
  port=1883 ;;
zookeeper)
  # libzookeeper-java and a headless JRE, not Debian's zookeeper package,
  # which pulls a whole desktop JRE. SLF4J's log4j binding and log4j come
  # first on the class path (the other bindings are removed below).
  include=default-jre-headless,libzookeeper-java
  j=/usr/share/java
  cmd='"java","-Xmx256m","-Dlog4j.configuration=file:/etc/zookeeper/e2c-log4j.properties","-cp","'$j/slf4j-api.jar:$j/slf4j-log4j12.jar:$j/log4j-1.2.jar:$j/*'","org.apache.zookeeper.server.quorum.QuorumPeerMain","/etc/zookeeper/e2c-test.cfg"'
  port=2181 ;;
*) echo "build-image.sh: unknown image $image (mosquitto, zookeeper)" >&2; exit 2 ;;
esac

suite=bookworm
arch=$(dpkg --print-architecture)
# The mirror this machine's apt already uses (deb822 or one-line sources).
mirror=${E2C_DEBIAN_MIRROR:-$(
  { sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null
    sed -n 's/^deb  *\(\[[^]]*\] *\)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null
  } | grep -v security | head -n1 || true)}
[ -n "$mirror" ] || { echo "build-image.sh: no Debian mirror in /etc/apt sources; set E2C_DEBIAN_MIRROR" >&2; exit 1; }

cache=${E2C_IMAGE_CACHE:-/var/cache/e2c-test-images}
key=$( { cat "$0"; echo "$arch $mirror"; } | sha256sum | cut -c1-12)
out=$cache/$image-$key.tar
tag=e2c-test/$image:$key

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -s "$out" ]; then echo "$out"; exit 0; fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work" "$out.part"' EXIT
root=$work/rootfs
debootstrap --variant=minbase --arch="$arch" --include="$include" \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

case $image in
mosquitto)
  # A broker any host may reach, logging to stderr (unbuffered) for `docker logs`;
  # also where eclipse-mosquitto's image has it, whose command (`mosquitto -c
  # /mosquitto-no-auth.conf`, e2c's built-in definition) this image then runs.
  cat >"$root/etc/mosquitto/e2c-test.conf" <<'CONF'
listener 1883
allow_anonymous true
log_dest stderr
CONF
  cp "$root/etc/mosquitto/e2c-test.conf" "$root/mosquitto-no-auth.conf"
  ;;
zookeeper)
  # Other SLF4J bindings and bridges, which would swallow the log or
  # refuse to start beside slf4j-log4j12.
  rm -f "$root"/usr/share/java/{log4j-over-slf4j,slf4j-nop,slf4j-jdk14,slf4j-jcl,slf4j-simple}*.jar
  mkdir -p "$root/etc/zookeeper" "$root/var/lib/zookeeper"
  cat >"$root/etc/zookeeper/e2c-test.cfg" <<'CONF'
tickTime=2000
dataDir=/var/lib/zookeeper
clientPort=2181
4lw.commands.whitelist=srvr,ruok
admin.enableServer=false
CONF
  cat >"$root/etc/zookeeper/e2c-log4j.properties" <<'CONF'
log4j.rootLogger=INFO, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%d{ISO8601} %-5p %c{1}: %m%n
CONF
  ;;
esac
# What an image needs not carry: documentation, apt's lists and cache.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
  "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log

# The archive `docker save` would write: the layer, its config, the manifest.
img=$work/image
mkdir -p "$img"
tar --numeric-owner --xattrs -C "$root" -cf "$work/layer.tar" .
diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$img/$diff"
mv "$work/layer.tar" "$img/$diff/layer.tar"
cat >"$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","created":"1970-01-01T00:00:00Z",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
  "Cmd":[$cmd],
  "ExposedPorts":{"$port/tcp":{}}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff"]}}
JSON
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' "$cfg" "$tag" "$diff" >"$img/manifest.json"
tar --numeric-owner -C "$img" -cf "$out.part" manifest.json "$cfg.json" "$diff"
mv "$out.part" "$out"
# Archives of older keys are of no more use.
find "$cache" -maxdepth 1 -name "$image-*.tar" ! -path "$out" -delete
echo "$out"
