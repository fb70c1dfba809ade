#!/usr/bin/env bash
# check-vagrantfile.sh - check the lab's Vagrantfile without booting it.
# CI has no hardware virtualisation, so instead of `vagrant up` it runs
# this, which needs neither VirtualBox nor the box nor the network:
#
#   1. `vagrant validate -p` loads the Vagrantfile and validates it,
#      ignoring the provider (VirtualBox is not installed);
#   2. the machines and private addresses Vagrant reads from it are exactly
#      those in EXPECTED below: distinct, on one network, inside the range
#      VirtualBox allows for host-only networks, each hostname its name;
#   3. README.md's table of the lab's machines states the same.
#
#   lab/check-vagrantfile.sh
#
# Prints one line per check, "pass" or "FAIL".  Exit status: 0 when every
# check passes, 1 when one fails or vagrant is not installed.
set -euo pipefail

PROG=check-vagrantfile.sh

# The lab's machines: name and address on the host-only network.  The
# Vagrantfile, README.md and lab/README.md all say the same.
EXPECTED=(
    "lnxserver 192.168.56.10"
    "lnxclient 192.168.56.11"
)

# VirtualBox 6.1.28 and later allow host-only networks only inside this
# range unless /etc/vbox/networks.conf on the host says otherwise.
HOSTONLY_NET=192.168.56.0
HOSTONLY_BITS=21

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FAILURES=0

pass() {
    echo "pass  $*"
}

fail() {
    echo "FAIL  $*"
    FAILURES=$((FAILURES + 1))
}

# indent - show a command's own output under a FAIL line.
indent() {
    sed 's/^/      /'
}

# ip_number A.B.C.D - the IPv4 address as one integer; fails on anything
# that is not four numbers 0-255.
ip_number() {
    local IFS=. a b c d
    [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
    read -r a b c d <<<"$1"
    ((a < 256 && b < 256 && c < 256 && d < 256)) || return 1
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# in_network ADDRESS NETWORK BITS - ADDRESS lies inside NETWORK/BITS.
in_network() {
    local address network mask
    address=$(ip_number "$1") || return 1
    network=$(ip_number "$2")
    mask=$(((0xffffffff << (32 - $3)) & 0xffffffff))
    (((address & mask) == (network & mask)))
}

# network_of ADDRESS NETMASK - the network part, as a dotted address.
network_of() {
    local n
    n=$(($(ip_number "$1") & $(ip_number "$2")))
    echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))"
}

# read_machines - one line per private network of each machine, as Vagrant
# itself reads the Vagrantfile: NAME ADDRESS NETMASK HOSTNAME ("-" where
# unset).  Uses the Ruby library of Debian's vagrant package.
read_machines() {
    ruby -e '
        require "vagrant"
        env = Vagrant::Environment.new(
            cwd: ENV["VAGRANT_CWD"], home_path: ENV["VAGRANT_HOME"],
            local_data_path: ENV["VAGRANT_DOTFILE_PATH"])
        vagrantfile = env.vagrantfile
        vagrantfile.machine_names.each do |name|
            vm = vagrantfile.machine_config(name, nil, nil, nil, false)[:config].vm
            nets = vm.networks.select { |type, _| type == :private_network }
            nets = [[:private_network, {}]] if nets.empty?
            nets.each do |_, opts|
                puts [name, opts[:ip] || "-", opts[:netmask] || "255.255.255.0",
                      vm.hostname || "-"].join(" ")
            end
        end
    '
}

# check_validate - step 1; fails if the Vagrantfile does not validate.
check_validate() {
    local output
    if output=$(vagrant validate -p 2>&1); then
        pass "vagrant validate -p: $(tail -n 1 <<<"$output")"
    else
        fail "vagrant validate -p:"
        indent <<<"$output"
        return 1
    fi
}

# check_machines - step 2.
check_machines() {
    local machines entry name address found got netmask hostname
    local names=() networks=() addresses duplicates distinct

    if ! machines=$(read_machines 2>"$SCRATCH/ruby.err"); then
        fail "cannot read the machines through Vagrant's Ruby library (Debian's vagrant package has it):"
        head -n 3 "$SCRATCH/ruby.err" | indent
        return
    fi

    # Each expected machine: defined, with its address and hostname.
    for entry in "${EXPECTED[@]}"; do
        read -r name address <<<"$entry"
        names+=("$name")
        found=$(awk -v n="$name" '$1 == n' <<<"$machines")
        if [[ -z $found ]]; then
            fail "machine $name: not defined in the Vagrantfile"
            continue
        fi
        if (($(wc -l <<<"$found") > 1)); then
            fail "machine $name: more than one private network: $(cut -d' ' -f2 <<<"$found" | xargs)"
            continue
        fi
        read -r _ got _ hostname <<<"$found"
        if [[ $got == "$address" ]]; then
            pass "machine $name: private network address $address"
        else
            fail "machine $name: private network address is $got, expected $address"
        fi
        if [[ $hostname == "$name" ]]; then
            pass "machine $name: hostname $name"
        else
            fail "machine $name: hostname is $hostname, expected $name"
        fi
    done

    # No machine beyond the lab's.
    while read -r name _; do
        [[ -n $name ]] || continue
        if [[ " ${names[*]} " != *" $name "* ]]; then
            fail "machine $name: defined in the Vagrantfile but not one of: ${names[*]}"
        fi
    done < <(sort -u -k1,1 <<<"$machines")

    # Every address: distinct, inside VirtualBox's host-only range, and on
    # the same network as the others, or the machines cannot reach each
    # other.
    addresses=$(awk '$2 != "-" { print $2 }' <<<"$machines")
    [[ -n $addresses ]] || return 0
    duplicates=$(sort <<<"$addresses" | uniq -d | xargs)
    if [[ -z $duplicates ]]; then
        pass "addresses are distinct: $(xargs <<<"$addresses")"
    else
        fail "addresses used twice: $duplicates"
    fi
    while read -r name address netmask _; do
        [[ $address != - ]] || continue
        if ! in_network "$address" "$HOSTONLY_NET" "$HOSTONLY_BITS"; then
            fail "machine $name: $address is outside $HOSTONLY_NET/$HOSTONLY_BITS, the range VirtualBox 6.1.28+ allows for host-only networks"
        elif ! ip_number "$netmask" >/dev/null; then
            fail "machine $name: netmask $netmask is not an IPv4 netmask"
        else
            pass "machine $name: $address is inside $HOSTONLY_NET/$HOSTONLY_BITS"
            networks+=("$(network_of "$address" "$netmask")/$netmask")
        fi
    done <<<"$machines"
    ((${#networks[@]})) || return 0
    distinct=$(printf '%s\n' "${networks[@]}" | sort -u)
    if (($(wc -l <<<"$distinct") == 1)); then
        pass "all machines are on one network: $distinct"
    else
        fail "the machines are on different networks: $(xargs <<<"$distinct")"
    fi
}

# check_readme - step 3: README.md has a table row `name` | `address` for
# each machine (more columns may follow).
check_readme() {
    local entry name address row
    for entry in "${EXPECTED[@]}"; do
        read -r name address <<<"$entry"
        row="| \`$name\` | \`$address\` |"
        if awk -v row="$row" 'index($0, row) == 1 { found = 1 } END { exit !found }' \
            "$ROOT/README.md"; then
            pass "README.md has the row: $row"
        else
            fail "README.md lacks the row: $row (its table of the lab's machines must list each machine and its address)"
        fi
    done
}

if ! command -v vagrant >/dev/null; then
    echo "$PROG: vagrant is not installed; install it with:" >&2
    echo "  apt-get install --no-install-recommends vagrant" >&2
    exit 1
fi

# Keep vagrant offline and out of the project and the user's home: no
# version check, no box update check, its state in a scratch directory.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
export VAGRANT_CWD=$ROOT
export VAGRANT_HOME=$SCRATCH/vagrant.d
export VAGRANT_DOTFILE_PATH=$SCRATCH/dot-vagrant
export VAGRANT_CHECKPOINT_DISABLE=1
export VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
export VAGRANT_NO_PLUGINS=1

echo "checking $ROOT/Vagrantfile with $(vagrant --version)"
if check_validate; then
    check_machines
else
    echo "      (machines and addresses not checked: the Vagrantfile must validate first)"
fi
check_readme

if ((FAILURES)); then
    echo "$PROG: $FAILURES check(s) failed" >&2
    exit 1
fi
echo "$PROG: all checks passed"
