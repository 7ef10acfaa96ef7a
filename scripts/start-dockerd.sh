#!/usr/bin/env bash
# Makes sure a Docker daemon answers on this machine (for the docker-style integration tests).
# Idempotent: exits 0 at once when `docker info` works; otherwise starts dockerd in the background
# (log: /tmp/dockerd.log) and waits up to 30 s for it. Needs root and the docker.io package.
set -euo pipefail

# A daemon whose default bridge went missing (an interface deleted under it) answers `docker info` but
# cannot start a container on the bridge network: restart it, which recreates docker0.
if docker info >/dev/null 2>&1; then
  if ! command -v ip >/dev/null 2>&1 || ip link show docker0 >/dev/null 2>&1; then exit 0; fi
  echo "start-dockerd: the docker0 bridge is missing; restarting dockerd" >&2
  pkill -x dockerd || true
  for _ in $(seq 1 40); do pgrep -x dockerd >/dev/null 2>&1 || break; sleep 0.25; done
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: dockerd is not installed (apt-get install docker.io busybox-static)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: dockerd must be started as root" >&2
  exit 1
fi

# A socket left by a daemon that died would make the new one refuse to start.
if [ -S /var/run/docker.sock ] && ! pgrep -x dockerd >/dev/null 2>&1; then rm -f /var/run/docker.sock /var/run/docker.pid; fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  # Default bridge networking works here (user-defined networks with DNS aliases need it). Set
  # DOCKERD_FLAGS, e.g. "--iptables=false", on a machine where iptables cannot be used.
  # shellcheck disable=SC2086
  nohup dockerd ${DOCKERD_FLAGS:-} >/tmp/dockerd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; last lines of /tmp/dockerd.log:" >&2
tail -n 20 /tmp/dockerd.log >&2 || true
exit 1
