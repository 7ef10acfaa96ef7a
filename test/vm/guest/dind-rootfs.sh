#!/usr/bin/env bash
# The root filesystem of the DinD stand-in image (what docker:dind is to a real job), as a tar:
#   dind-rootfs.sh GUEST_ROOTFS OUT_TAR
# dockerd, the docker CLI, containerd and its runc shim, runc, tini (docker-init), iptables (nft) with its
# plugins, the shared libraries they load (resolved inside the guest's root filesystem, so they match its
# Debian packages), and busybox for a shell and the usual tools. dockerd-entrypoint.sh starts dockerd the
# way docker:dind does when DOCKER_TLS_CERTDIR is empty: on the unix socket and tcp://0.0.0.0:2375.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=$(cd "${1:?guest rootfs}" && pwd)
out=${2:?output tar}
S=$(mktemp -d "${TMPDIR:-/tmp}/fr-dind-rootfs.XXXXXX")
trap 'rm -rf "$S"' EXIT

mkdir -p "$S"/usr/bin "$S"/usr/sbin "$S"/usr/local/bin "$S"/usr/lib/x86_64-linux-gnu "$S"/usr/lib64 \
  "$S"/etc "$S"/var/lib/docker "$S"/run "$S"/proc "$S"/sys "$S"/dev "$S"/root "$S"/tmp
chmod 1777 "$S/tmp"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$S/$l"; done
ln -s ../run "$S/var/run"

bins=(usr/sbin/dockerd usr/bin/docker usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/sbin/runc
  usr/bin/tini-static usr/sbin/xtables-nft-multi)
[ -e "$R/usr/sbin/docker-proxy" ] && bins+=(usr/sbin/docker-proxy)
for b in "${bins[@]}"; do
  [ -e "$R/$b" ] || { echo "dind-rootfs: $b is not in the guest (is docker.io installed?)" >&2; exit 1; }
  cp -a "$R/$b" "$S/$b"
done
ln -s tini-static "$S/usr/bin/docker-init"
for a in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -s xtables-nft-multi "$S/usr/sbin/$a"
done

# busybox: one static binary, every applet a link (mount, modprobe, xargs, sed, chown, ...).
cp "$R/bin/busybox" "$S/usr/bin/busybox"
for a in $("$S/usr/bin/busybox" --list); do
  [ -e "$S/usr/bin/$a" ] || [ -e "$S/usr/sbin/$a" ] || ln -s busybox "$S/usr/bin/$a"
done

# Shared libraries, resolved inside the guest's root filesystem (its ld.so and library path).
libs=$(for b in "${bins[@]}" $(cd "$R" && ls usr/lib/x86_64-linux-gnu/xtables/*.so); do
  chroot "$R" /usr/bin/ldd "/$b" 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*' || true
done | sort -u)
for l in $libs $(cd "$R" && ls usr/lib/x86_64-linux-gnu/xtables/*.so | sed 's|^|/|'); do
  mkdir -p "$S$(dirname "$l")"
  cp -L "$R$l" "$S$l"
done
cp -a "$R/etc/xtables" "$S/etc/" 2>/dev/null || true
mkdir -p "$S/etc/ssl/certs"
cp -L "$R/etc/ssl/certs/ca-certificates.crt" "$S/etc/ssl/certs/"

printf 'root:x:0:0:root:/root:/bin/sh\n' > "$S/etc/passwd"
printf 'root:x:0:\ndocker:x:999:\n' > "$S/etc/group"
# Registry names an extra_hosts entry maps (the ECR stand-in) must win over DNS.
printf 'hosts: files dns\n' > "$S/etc/nsswitch.conf"
install -m 755 "$here/dockerd-entrypoint.sh" "$S/usr/local/bin/dockerd-entrypoint.sh"

tar -C "$S" --numeric-owner --owner=0 --group=0 -cf "$out" .
