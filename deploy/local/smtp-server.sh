#!/usr/bin/env bash
# Installs an SMTP server for the notification tests (Python's aiosmtpd from PyPI) into
# target/smtp-venv; prints the path of its Python. Does nothing when it is there already.
# The tests (`SmtpServer` in worker/src/testkit.rs) run aiosmtpd's controller with a Maildir,
# STARTTLS and AUTH; by hand, `$python -m aiosmtpd -n -l 127.0.0.1:2525 -c
# aiosmtpd.handlers.Mailbox DIR` keeps every mail it takes in the Maildir DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/smtp-venv
if ! "$venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd==1.4.6
fi
echo "$PWD/$venv/bin/python"
