#!/bin/sh
# dockerd-entrypoint.sh of the DinD stand-in image, shaped like docker:dind's: with no arguments, or only
# flags (a service `command:` such as --insecure-registry=...), it starts dockerd with them; with a command
# (the image used as a job image: `sh -c ...`), it runs that command.
set -e
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then exec "$@"; fi

# cgroup v2: containers may only be created in a cgroup without processes, so move this container's
# processes to a child cgroup and hand every controller down (what docker:dind's `dind` script does).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
  sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control || :
fi
# A restarted container keeps /run: stale pid files would stop dockerd and containerd from starting.
find /run /var/run -name '*.pid' -delete 2>/dev/null || :

exec dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 --tls=false "$@"
