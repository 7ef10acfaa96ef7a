#!/usr/bin/env bash
# Builds the EC2 stand-in guest: a Debian bookworm disk image that plays a baked AMI (Docker installed,
# the DinD stand-in image already in Docker's store), booted by QEMU straight from its kernel and initrd.
#
#   build.sh OUT_DIR        writes OUT_DIR/{vmlinuz,initrd.img,disk.raw}; needs root, mmdebstrap, e2fsprogs
#
# Called by test/vm/guest-image.ts, which caches the result under /var/cache/fleetrunner-vm/<hash of the
# files in this directory> and builds into a temporary directory first. Progress lines go to stderr with the
# prefix "[vm-image]".
#
# What differs from an AL2023 AMI on purpose (the template's #install section is skipped: bakedAmi: true):
#   - Debian, so apt instead of dnf, and no amazon-ecr-credential-helper (the template copes with its absence)
#   - cloud-init reads its user data from a NoCloud seed (an ISO labelled "cidata") instead of IMDS
#   - cloud-init's default user is ec2-user, as on Amazon Linux
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
suite=bookworm
mirror=${FLEETRUNNER_VM_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
t0=$(date +%s)
say() { echo "[vm-image] $(( $(date +%s) - t0 ))s $*" >&2; }
rootfs=$out/rootfs
rm -rf "$rootfs"

# Packages of the "AMI": what the template's #install section would dnf install (docker, git, zip, unzip;
# curl), plus cloud-init, sshd and a kernel for virtio disks and network. busybox-static is a source for the
# DinD image. The cloud kernel flavour has the virtio drivers and nothing for real hardware. apparmor: Debian's
# kernel enables AppArmor, and Docker then refuses every unprivileged container without apparmor_parser
# (docker.io only recommends it); AL2023 has no AppArmor.
packages=systemd-sysv,udev,dbus,linux-image-cloud-amd64,cloud-init,openssh-server,sudo,netbase,iproute2,ca-certificates
packages=$packages,docker.io,apparmor,git,curl,zip,unzip,busybox-static

say "mmdebstrap $suite from $mirror"
# cloud.cfg.d: NoCloud only (no IMDS to probe), networking by systemd-networkd (DHCP from QEMU), no
# locale module (minbase has no locales: it would end cloud-init in an error), ec2-user as on Amazon Linux.
mmdebstrap --variant=minbase --mode=root --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='force-unsafe-io' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$packages" \
  --customize-hook='echo ec2-standin > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1 localhost\n" > "$1/etc/hosts"' \
  --customize-hook='printf "/dev/vda / ext4 defaults,noatime 0 1\n" > "$1/etc/fstab"' \
  --customize-hook='printf "[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n" > "$1/etc/systemd/network/10-dhcp.network"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='printf "nameserver 10.0.2.3\n" > "$1/etc/resolv.conf"' \
  --customize-hook='cp "'"$here"'/cloud.cfg" "$1/etc/cloud/cloud.cfg.d/90-fleetrunner-vm.cfg"' \
  --customize-hook='for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer; do chroot "$1" systemctl mask "$u" >/dev/null 2>&1 || true; done' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='rm -f "$1/etc/machine-id"; touch "$1/etc/machine-id"' \
  "$suite" "$rootfs" "$mirror"
say "rootfs done ($(du -sh "$rootfs" | cut -f1))"

# The DinD stand-in: the guest's own dockerd, containerd, runc and their libraries, imported into the
# guest's Docker store now, as a baked AMI would have docker:dind pulled already.
bash "$here/dind-rootfs.sh" "$rootfs" "$out/dind.tar"
say "dind image tar $(du -h "$out/dind.tar" | cut -f1)"
bash "$here/prebake-image.sh" "$rootfs" "$out/dind.tar" "$here/dind-image.changes"
rm -f "$out/dind.tar"
say "dind image imported into the guest's Docker store"

cp "$rootfs"/boot/vmlinuz-* "$out/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$out/initrd.img"
rm -f "$out/disk.raw"
truncate -s 8G "$out/disk.raw"
mkfs.ext4 -q -F -L root -d "$rootfs" "$out/disk.raw"
rm -rf "$rootfs"
say "disk.raw $(du -h "$out/disk.raw" | cut -f1) allocated; done"
