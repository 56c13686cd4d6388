#!/usr/bin/env bash
# Installs Debian's Dovecot IMAP server, which the e-mail integration tests start on a
# loopback port of their own (tests/integration/dovecot.py). Idempotent: does nothing when
# the binaries are there. The system's own Dovecot service is not started or enabled: the
# tests run a private instance with a throwaway configuration.
#
# Usage: deploy/local/install-dovecot.sh
# Environment:
#   HELPDESK_DOVECOT_BIN   a dovecot binary to use instead (then nothing is installed)
set -euo pipefail

die() { echo "install-dovecot: error: $*" >&2; exit 1; }
say() { echo "install-dovecot: $*"; }

installed() {
  if [[ -n "${HELPDESK_DOVECOT_BIN:-}" ]]; then
    [[ -x "$HELPDESK_DOVECOT_BIN" ]] || die "HELPDESK_DOVECOT_BIN=$HELPDESK_DOVECOT_BIN is not an executable"
    return 0
  fi
  # dovecot-imapd brings the imap binary; dovecot-core the master process.
  command -v dovecot >/dev/null 2>&1 || [[ -x /usr/sbin/dovecot ]] || return 1
  [[ -x /usr/lib/dovecot/imap ]] || return 1
}

if installed; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 \
  || die "Dovecot is missing and this is not a Debian-like system: install Dovecot's IMAP server (dovecot + imap) by hand, or set HELPDESK_DOVECOT_BIN"
[[ "$(id -u)" -eq 0 ]] \
  || die "Dovecot is missing: run 'apt-get install -y dovecot-imapd' as root (or this script with sudo)"

# Keep the package's maintainer scripts from starting the system-wide service (port 143):
# a policy-rc.d that refuses, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [[ -n "$own_policy" ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

say "installing dovecot-imapd from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends dovecot-imapd >/tmp/install-dovecot.log 2>&1; then
  # A machine whose package lists were never fetched knows no dovecot-imapd yet.
  apt-get update >>/tmp/install-dovecot.log 2>&1 \
    || die "apt-get update failed (see /tmp/install-dovecot.log): are Debian's package mirrors reachable?"
  apt-get install -y --no-install-recommends dovecot-imapd >>/tmp/install-dovecot.log 2>&1 \
    || die "apt-get install dovecot-imapd failed (see /tmp/install-dovecot.log)"
fi
installed || die "dovecot-imapd was installed but /usr/sbin/dovecot or /usr/lib/dovecot/imap is missing"
say "installed $(dovecot --version 2>/dev/null || echo dovecot)"
