#!/usr/bin/env bash
# provision.sh - make a Debian 12 machine ready for the select lab: install
# the compilers, the test tools and the network tools the lab uses, then
# build the programs.  Both lab VMs run it (see the Vagrantfile), and so
# does CI, so the VMs have exactly the tools the tests were run with.
#
#   sudo lab/provision.sh
#
# Running it again is fine and quick: when every package is already there
# it does not touch apt-get at all, and make rebuilds only what changed.
# It builds in the project that holds this script (in a VM, /vagrant), as
# the user who owns that directory, so that user's own `make` can replace
# what was built.
set -euo pipefail

PROG=provision.sh

# What the lab needs, by purpose.  Debian package names.
PACKAGES=(
    build-essential clang make          # compilers and make (make CC=clang)
    bats bats-support bats-assert       # make test
    netcat-openbsd                      # nc, a second client and server
    iproute2 net-tools procps           # ip and ss; netstat; ps and sysctl
    tcpdump tshark                      # watch the packets on the wire
    nftables                            # firewall experiments
    python3 strace                      # make bench; tests of its servers
    tmux                                # make test: a terminal to type in
    libclang-rt-dev                     # make fuzz: libFuzzer's runtime
)

# Seconds apt-get waits for a lock held by someone else (on a VM's first
# boot, the daily apt timer may be updating the lists at the same moment).
APT_LOCK_WAIT=300

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# installed PACKAGE - dpkg says PACKAGE is fully installed (not merely
# known, removed with its configuration left, or half set up).
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' ok installed$'
}

# install_missing - apt-get install whatever in PACKAGES is not installed;
# do nothing at all (no apt-get update either) when all of it is.
install_missing() {
    local package missing=()
    for package in "${PACKAGES[@]}"; do
        installed "$package" || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        echo "$PROG: all ${#PACKAGES[@]} packages are installed; apt-get not needed"
        return 0
    fi
    echo "$PROG: installing ${missing[*]}"

    # No questions on a terminal nobody watches.  tshark's one question is
    # whether to let non-root users capture packets (a setuid dumpcap):
    # no; in the lab, capture with sudo.
    export DEBIAN_FRONTEND=noninteractive
    echo 'wireshark-common wireshark-common/install-setuid boolean false' |
        debconf-set-selections

    apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" update -qq
    apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    for package in "${missing[@]}"; do
        installed "$package" || die "apt-get did not install $package"
    done
}

# build ROOT - make the programs in ROOT, as the owner of ROOT.
build() {
    local root=$1 owner
    owner=$(stat -c %U "$root")
    echo "$PROG: building in $root as $owner"
    if [[ $owner == root || $owner == UNKNOWN ]]; then
        make -C "$root" all
    else
        runuser -u "$owner" -- make -C "$root" all
    fi
}

main() {
    local root
    (($# == 0)) || die "takes no arguments (usage: sudo $0)"
    # Installing packages needs root; say so before doing anything.
    [[ $(id -u) == 0 ]] || die "must run as root: sudo $0"

    # The project is the directory above the one holding this script.
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    [[ -f $root/Makefile && -f $root/select_server.c ]] ||
        die "no select lab project in $root (run the script from inside it)"

    install_missing
    build "$root"
    echo "$PROG: done"
}

main "$@"
