# The fargate executor's helper image: the agent bundle at /bundle and nothing else. Each job's task runs it
# first; its entry point (set in the task definition: /bundle/libexec/busybox cp -a /bundle/. /fleetrunner/)
# copies the bundle into the task's shared volume, and the job's own image then runs the agent from there
# (docs/architecture.md, "Fargate: driving any image"). Build from the repository root:
#   docker build -f docker/helper.Dockerfile -t fleetrunner-helper .
# and push it where the task execution role can pull it (fargate.helperImage).
FROM node:24-bookworm-slim AS build
# bash, setsid (util-linux), tail (coreutils) are in the base image; busybox-static is the wrappers' shell.
RUN apt-get update && apt-get install -y --no-install-recommends busybox-static && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY bin ./bin
RUN npm run build && node bin/fleetrunner.js agent-bundle /bundle

FROM scratch
COPY --from=build /bundle /bundle
