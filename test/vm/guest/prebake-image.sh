#!/usr/bin/env bash
# Imports an image into the Docker store of a guest root filesystem, as baking docker:dind into an AMI
# would: the guest's own dockerd runs chrooted into the root filesystem (private mounts, no networking, no
# iptables) just long enough for `docker import`.
#   prebake-image.sh GUEST_ROOTFS IMAGE_TAR CHANGES_FILE      (CHANGES_FILE: one Dockerfile instruction a line)
# The image is tagged with the name in dind-image.name beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=$(cd "${1:?guest rootfs}" && pwd)
tar=$(cd "$(dirname "${2:?image tar}")" && pwd)/$(basename "$2")
changes=${3:?changes file}
name=$(cat "$here/dind-image.name")
args=()
while IFS= read -r line; do [ -n "$line" ] && args+=(-c "$line"); done < "$changes"
cp "$tar" "$R/tmp/image.tar"

unshare --mount --fork -- bash -s "$R" "$name" "${args[@]}" <<'INNER'
set -euo pipefail
R=$1 name=$2; shift 2
mount --make-rprivate /
# dockerd unpacks layers in a private mount namespace and remounts "/" there: "/" must be a mount point.
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
chroot "$R" /usr/sbin/dockerd --data-root /var/lib/docker --host unix:///run/prebake.sock --pidfile /run/prebake.pid \
  --bridge=none --iptables=false --ip-masq=false --storage-driver=overlay2 >"$R/tmp/prebake-dockerd.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do chroot "$R" docker -H unix:///run/prebake.sock version >/dev/null 2>&1 && break; sleep 0.5; done
if ! chroot "$R" docker -H unix:///run/prebake.sock import "$@" /tmp/image.tar "$name" >/dev/null; then
  tail -n 30 "$R/tmp/prebake-dockerd.log" >&2; kill "$pid"; exit 1
fi
chroot "$R" docker -H unix:///run/prebake.sock image inspect --format '{{.Id}} {{.Size}}' "$name" >&2
kill "$pid"
wait "$pid" || true
INNER
# What the guest's own dockerd must make afresh: networks (this one had none), containerd's state.
rm -rf "$R/var/lib/docker/network" "$R/var/lib/docker/containerd" "$R/var/lib/docker/tmp" "$R/var/lib/docker/runtimes"
rm -f "$R/tmp/image.tar" "$R/tmp/prebake-dockerd.log"
