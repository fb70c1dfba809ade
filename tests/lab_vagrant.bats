# lab_vagrant.bats - the lab's two VMs, checked without booting them (CI
# has no hardware virtualisation).  The Vagrantfile must validate and define
# exactly lnxserver 192.168.56.10 and lnxclient 192.168.56.11, as README.md
# says; lab/provision.sh, which both VMs and CI run, must refuse to run
# without root, and must be quick and harmless the second time.

load test_helper

ROOT=$BATS_TEST_DIRNAME/..
CHECK=$ROOT/lab/check-vagrantfile.sh
PROVISION=$ROOT/lab/provision.sh

# need_vagrant - skip the test unless vagrant is installed.
need_vagrant() {
    command -v vagrant >/dev/null ||
        skip "vagrant is not installed (apt-get install --no-install-recommends vagrant)"
}

# copy_project DIR - the files `make all` builds from, and the lab scripts,
# copied to DIR: a project to provision or check without touching ours.
copy_project() {
    mkdir -p "$1/lab"
    cp "$ROOT"/Makefile "$ROOT"/*.c "$ROOT"/*.h "$ROOT"/Vagrantfile "$ROOT"/.gitignore \
        "$ROOT"/README.md "$1"
    cp "$PROVISION" "$CHECK" "$1/lab"
}

# millis - a clock in milliseconds, for timing a run.
millis() {
    echo $(($(date +%s%N) / 1000000))
}

@test "the Vagrantfile validates and defines lnxserver and lnxclient as README.md says" {
    need_vagrant

    run --separate-stderr timeout 60 "$CHECK"

    assert_success
    assert_line "pass  vagrant validate -p: Vagrantfile validated successfully."
    assert_line "pass  machine lnxserver: private network address 192.168.56.10"
    assert_line "pass  machine lnxclient: private network address 192.168.56.11"
    assert_line "pass  all machines are on one network: 192.168.56.0/255.255.255.0"
    refute_line --partial FAIL
}

@test "the check fails, naming the machine, when an address in the Vagrantfile changes" {
    need_vagrant
    local project=$BATS_TEST_TMPDIR/project
    copy_project "$project"
    sed -i 's/"192\.168\.56\.11"/"192.168.57.11"/' "$project/Vagrantfile"

    run --separate-stderr timeout 60 "$project/lab/check-vagrantfile.sh"

    assert_failure 1
    assert_line "FAIL  machine lnxclient: private network address is 192.168.57.11, expected 192.168.56.11"
    assert_line --partial "FAIL  the machines are on different networks"
}

@test "without vagrant, the check says how to install it and fails" {
    # A PATH with only what the script needs before it looks for vagrant.
    local bin=$BATS_TEST_TMPDIR/bin
    mkdir "$bin"
    ln -s "$(command -v bash)" "$(command -v dirname)" "$bin"

    run --separate-stderr env PATH="$bin" "$CHECK"

    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "check-vagrantfile.sh: vagrant is not installed; install it with:
  apt-get install --no-install-recommends vagrant"
}

@test "provision.sh refuses to run without root, before touching anything" {
    if [[ $(id -u) != 0 ]]; then
        run --separate-stderr "$PROVISION"
    else
        command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
        id nobody >/dev/null 2>&1 || skip "there is no user nobody to run it as"
        setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$PROVISION" ||
            skip "nobody cannot read $PROVISION"
        run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups \
            bash "$PROVISION"
    fi

    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "provision.sh: must run as root: sudo $PROVISION"
}

@test "provision.sh, with every package installed, builds without apt-get and is quick the second time" {
    [[ $(id -u) == 0 ]] || skip "provision.sh needs root"
    local project=$BATS_TEST_TMPDIR/project
    copy_project "$project"
    # An apt-get or debconf-set-selections that fails loudly: provisioning
    # must not call them when nothing is missing.
    local fake=$BATS_TEST_TMPDIR/fakebin name
    mkdir "$fake"
    for name in apt-get debconf-set-selections; do
        printf '#!/bin/sh\necho "%s was called" >&2\nexit 99\n' "$name" >"$fake/$name"
        chmod +x "$fake/$name"
    done
    PATH=$fake:$PATH run --separate-stderr "$project/lab/provision.sh"
    if [[ $output == *"provision.sh: installing "* ]]; then
        skip "not every package is installed yet: run lab/provision.sh once as root"
    fi

    # The first run built the programs...
    assert_success
    assert_line "provision.sh: building in $project as root"
    [ -x "$project/select_server" ]
    [ -x "$project/select_client" ]

    # ...and a second run finds nothing to do, and does it fast.
    local start elapsed
    start=$(millis)
    PATH=$fake:$PATH run --separate-stderr "$project/lab/provision.sh"
    elapsed=$(($(millis) - start))
    assert_success
    assert_line --partial "packages are installed; apt-get not needed"
    # make[N] when make runs these tests (`make test`).
    assert_line --regexp "^make(\[[0-9]+\])?: Nothing to be done for 'all'\.$"
    assert_line "provision.sh: done"
    refute_output --partial "was called"
    echo "# second run took ${elapsed} ms"
    ((elapsed < 5000))
}
