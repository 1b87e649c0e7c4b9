# Sourced by scripts/test: the system packages the test suite needs.
# Debian's chromium drives the browser tests (through Playwright's
# executable_path; Playwright's own browser download cannot work here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
  echo "Installing chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# Debian's postgresql: the delivery-log tests start a throwaway cluster with
# its initdb and pg_ctl (tests/postgres.py); no service is enabled.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The delivery-log tests need Debian's postgresql: sudo apt-get install postgresql" >&2
    exit 1
  fi
  echo "Installing postgresql for the delivery-log tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# Debian's Postfix and OpenDKIM verify our DKIM signatures as a real MTA would
# (tests/outbound/test_dkim_mta.py starts its own instance on loopback; the system's
# Postfix is installed unconfigured and never started).
if [ ! -x /usr/sbin/postfix ] || [ ! -x /usr/sbin/opendkim ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The DKIM MTA tests need Debian's postfix and opendkim:" >&2
    echo "  sudo apt-get install postfix opendkim" >&2
    exit 1
  fi
  echo "Installing postfix and opendkim for the DKIM MTA tests..."
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix opendkim >/dev/null
fi
# Debian's redis-server: the shared-limits tests (tests/backends/test_limits.py) start
# their own instance on loopback, without persistence; no service is enabled.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The shared-limits tests need Debian's redis-server: sudo apt-get install redis-server" >&2
    exit 1
  fi
  echo "Installing redis-server for the shared-limits tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
