# Sourced by the install scripts and _services.sh: `apt_install_no_start PKG...` installs Debian
# packages quietly without starting their services, as root or through sudo.
#
# Debian's postinst scripts would start the packaged servers on their default ports; a policy-rc.d
# that exits 101 tells invoke-rc.d not to. It is removed afterwards, if this function created it,
# whether or not the install succeeded; the function returns apt-get's status.

_apt_sudo() {
  if [ "$(id -u)" = "0" ]; then "$@"; else sudo "$@"; fi
}

apt_install_no_start() {
  local created=0 status=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | _apt_sudo tee /usr/sbin/policy-rc.d >/dev/null
    _apt_sudo chmod +x /usr/sbin/policy-rc.d
    created=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  {
    _apt_sudo apt-get update -qq >/dev/null \
      && _apt_sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  } || status=$?
  if [ "$created" = "1" ]; then
    _apt_sudo rm -f /usr/sbin/policy-rc.d
  fi
  return "$status"
}
