#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real: prometheus and promtool,
# alertmanager and amtool, docker-compose (to validate the compose file), chromium (to
# load the status page as a browser does), kamailio and sip-tester (SIPp: test calls, and a
# SIP network on loopback for the tests).

# Does nothing when they are already there.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# SIP tests: Kamailio is the trunk (its base package has tm, auth and pv), SIPp the far ends.
[ -x /usr/sbin/kamailio ] || need+=(kamailio)
# Its tls module plays a TLS trunk (SIP over TLS, tests/test_probe_sip_tls.py).
compgen -G "/usr/lib/*/kamailio/modules/tls.so" >/dev/null || need+=(kamailio-tls-modules)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
if [ "${1:-}" = "--bench" ]; then  # the benchmark's targets and its point of comparison
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v curl >/dev/null 2>&1 || need+=(curl)  # times /metrics as a lean client would
  command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
  command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need+=(prometheus-blackbox-exporter)
fi

[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian packages: ${need[*]}" >&2
$sudo apt-get update -qq
# policy-rc.d 101: packages must not start their services on this machine; tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
