#!/usr/bin/env bash
# Installs tansu, a Kafka-protocol broker in Rust (the Kafka ingest and Kafka channel tests
# start one on a free port), into a cache outside the checkout, so that a fresh clone on the
# same machine does not build it again (about 15 minutes on 2 cores); prints its path. Does
# nothing when it is there already. FLOWWATCH_TOOLS moves the cache.
set -euo pipefail
root="${FLOWWATCH_TOOLS:-$HOME/.cache/flowwatch}/tansu"
if [ ! -x "$root/bin/tansu" ]; then
  cargo install --quiet --locked tansu --version 0.6.0 --features dynostore --root "$root" >&2
fi
echo "$root/bin/tansu"
