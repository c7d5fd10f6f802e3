#!/usr/bin/env bash
# Builds the test image e2c-test/mosquitto from Debian's packages, without a
# registry and without a Docker daemon: a minbase rootfs made by debootstrap
# with Debian's mosquitto and mosquitto-clients, written as a `docker save`
# archive (one layer) that `docker load` and the Engine API's image load take.
#
# Usage: build-image.sh   (as root; prints the archive's path)
#
# The archive is cached in $E2C_IMAGE_CACHE (default /var/cache/e2c-test-images),
# named by a key: the SHA-256 of this script, the machine's architecture and
# the mirror, so that a change to any of them builds anew. A build holds a
# lock, so concurrent tests wait for one build instead of racing.
set -euo pipefail

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
out=$cache/mosquitto-$key.tar
tag=e2c-test/mosquitto:$key

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -s "$out" ]; then echo "$out"; exit 0; fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
debootstrap --variant=minbase --arch="$arch" --include=mosquitto,mosquitto-clients \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

# A broker any host may reach, logging to stderr (unbuffered) for `docker logs`.
cat >"$root/etc/mosquitto/e2c-test.conf" <<'CONF'
listener 1883
allow_anonymous true
log_dest stderr
CONF
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
  "Cmd":["/usr/sbin/mosquitto","-c","/etc/mosquitto/e2c-test.conf"],
  "ExposedPorts":{"1883/tcp":{}}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff"]}}
JSON
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' "$cfg" "$tag" "$diff" >"$img/manifest.json"
tar --numeric-owner -C "$img" -cf "$out.part" manifest.json "$cfg.json" "$diff"
mv "$out.part" "$out"
# Archives of older keys are of no more use.
find "$cache" -maxdepth 1 -name 'mosquitto-*.tar' ! -path "$out" -delete
echo "$out"
