#!/usr/bin/env bash
# 17-binary-data.sh - experiment 17: received bytes are not a C string.
#
# lab/bug_strlen_client is an echo client that reads every byte of each
# echo back, then prints it with printf("%s", ...).  Against one
# select_server (echo), next to select_client with the same input: the
# echo of "hello\0world\n" stops at the NUL, a short line's echo drags in
# the tail of an earlier, longer one, and of the 256 byte values only 245
# come out.  select_client writes exactly the bytes it received, every
# time.
#
# Run from anywhere once the programs are built (make all
# lab/bug_strlen_client).  Takes well under a second, uses 127.0.0.1 only,
# needs no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=17-binary-data.sh
require_built "make all lab/bug_strlen_client" select_server select_client lab/bug_strlen_client

lab_setup

# through INPUT SHOWN COMMAND... - send the file INPUT to the echo server
# through COMMAND (a client, given 127.0.0.1 and the port after the rest);
# what it printed goes to $tmp/out.  SHOWN is INPUT as printf's argument.
through() {
    local input=$1 shown=$2
    shift 2
    cmd "printf $shown | $* 127.0.0.1 $port"
    "$@" 127.0.0.1 "$port" <"$input" >"$tmp/out"
}

# bytes FILE - "N bytes", the size of FILE.
bytes() { echo "$(wc -c <"$1") bytes"; }

step "1. The flaw, in lab/bug_strlen_client.c"
cmd "grep -n -E '= recv\\(|printf\\(\"%s\", reply\\) <' lab/bug_strlen_client.c"
grep -n -E '= recv\(|printf\("%s", reply\) <' lab/bug_strlen_client.c | indent
say "recv() says how many bytes arrived and adds no NUL after them.  printf's"
say "%s does not know that count: it prints until it meets a NUL byte."

step "2. Start select_server, which echoes every byte it receives"
cmd "./select_server -p 0 -b 127.0.0.1 -q &"
spawn ./select_server -p 0 -b 127.0.0.1 -q </dev/null >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_5s "the server's listening line" says "$tmp/server.log" '^listening on '
port=$(listening_port "$tmp/server.log")
head -n 1 "$tmp/server.log" | sed 's/^/    server | /'

step "3. A NUL byte in the middle of a line"
printf 'hello\0world\n' >"$tmp/nul.in"
through "$tmp/nul.in" "'hello\\0world\\n'" ./select_client -q
say "    $(bytes "$tmp/out"):$(od -An -c "$tmp/out")"
through "$tmp/nul.in" "'hello\\0world\\n'" lab/bug_strlen_client
say "    $(bytes "$tmp/out"):$(od -An -c "$tmp/out")"
look "the same 12 bytes came back to both; bug_strlen_client printed the 5"
look "before the NUL, and not even the newline."

step "4. A long line, then a short one"
printf 'message number one\ntwo\n' >"$tmp/lines.in"
through "$tmp/lines.in" "'message number one\\ntwo\\n'" ./select_client -q
indent <"$tmp/out"
through "$tmp/lines.in" "'message number one\\ntwo\\n'" lab/bug_strlen_client
indent <"$tmp/out"
look "a third line nobody sent: 'two\\n' overwrote the first 4 bytes of the"
look "buffer, and printf went on into what was left of the first echo."

step "5. All 256 byte values, 0 to 255, in one file"
for ((i = 0; i < 256; i++)); do
    printf -v octal '%03o' "$i"
    printf '%b' "\\0$octal"     # %b: \0NNN is the byte NNN (octal)
done >"$tmp/all256"
cmd "./select_client -q 127.0.0.1 $port <all256 >echo; cmp all256 echo"
./select_client -q 127.0.0.1 "$port" <"$tmp/all256" >"$tmp/echo"
(cd "$tmp" && cmp all256 echo && echo "identical: $(bytes echo)") | indent || true
cmd "lab/bug_strlen_client 127.0.0.1 $port <all256 >echo; cmp all256 echo"
lab/bug_strlen_client 127.0.0.1 "$port" <"$tmp/all256" >"$tmp/echo"
(cd "$tmp" && cmp all256 echo 2>&1) | indent || true
say "    $(bytes "$tmp/echo"), the first four:$(od -An -tu1 -N 4 "$tmp/echo" | tr -s " ")"
look "byte 10 is '\\n', so the client sent two lines: bytes 0-10, then 11-255."
look "The first begins with a NUL and printed as nothing; the second has no NUL."

step "What it shows"
say "Bytes from a socket come with a count, and the count is their only"
say "length.  A C string's length is wherever the first NUL happens to be:"
say "a NUL in the data cuts it short, and a missing NUL lets it run on into"
say "whatever the buffer held before.  Any client can put a NUL into a text"
say "protocol, and binary data (a length, an image) is full of them.  Keep"
say "the count recv() returns and write exactly that many bytes:"
say "fwrite(buf, 1, n, stdout) or write(fd, buf, n).  strlen(), strcpy() and"
say "printf(\"%s\") are for strings you have built yourself."
