#!/bin/bash
# Members whose state holds several flags, as md prints them joined by
# commas ("in_sync,write_mostly", "in_sync,want_replacement",
# "faulty,write_mostly"): detail, detail --test, manage and monitor read
# each flag, as mdadm 4.2 does on Linux 6.1 (checked in the oracle: a
# write-mostly member is "active sync writemostly" in a clean array, the
# array with only it left is degraded, not failed, and takes a new
# member; a member marked for replacement with no spare stays "active
# sync"; failing a write-mostly member is a Fail event).
. "$(dirname "$0")/lib.sh"

start_daemon
mdf() { timeout 60 "$MDFUSE" "$@" --tree "$MNT"; }
MP=
trap 'rc=$?; set +e; [ -z "$MP" ] || kill "$MP" 2>/dev/null; (exit $rc); cleanup' EXIT

"$MDFUSE" create -l1 -n2 --assume-clean --image-size 16M "$T/a.img" -W "$T/b.img" >/dev/null 2>&1 ||
	fail "create with a write-mostly member"
truncate -s 16M "$T/c.img"
mdf assemble md0 "$T/a.img" "$T/b.img" >/dev/null 2>&1 || fail "assemble md0"
expect_eq "$(attr md0/md/dev-b.img/state)" "in_sync,write_mostly" "the write-mostly member's state"

log "detail: a healthy array with a write-mostly member"
out=$(mdf detail md0) || fail "detail md0"
grep_q -E "State : clean *$" <<<"$out" || fail "state: $(grep 'State :' <<<"$out")"
grep_q -E "active sync writemostly +/.*b\.img" <<<"$out" || fail "member line: $(grep b.img <<<"$out")"
mdf detail --test md0 >/dev/null || fail "detail --test of a healthy array exits $?"

log "monitor: failing the write-mostly member is a Fail event"
"$MDFUSE" monitor --tree "$MNT" -d 1 md0 >"$T/mon.txt" 2>&1 &
MP=$!
sleep 2
mdf manage md0 --fail "$T/b.img" >/dev/null 2>&1 || fail "--fail b"
[[ $(attr md0/md/dev-b.img/state) == faulty,write_mostly* ]] || fail "the failed member: $(attr md0/md/dev-b.img/state)"
for _ in $(seq 20); do grep_q "Fail" "$T/mon.txt" && break; sleep 0.5; done
kill "$MP"
wait "$MP" 2>/dev/null || true
MP=
grep_q -E ": Fail on /dev/md0 .*b\.img" "$T/mon.txt" || fail "monitor said: $(cat "$T/mon.txt")"
mdf manage md0 --remove "$T/b.img" >/dev/null 2>&1 || fail "--remove b"
mdf manage md0 --add "$T/b.img" >/dev/null 2>&1 || fail "--add b back"
wait_idle md0

log "only the write-mostly member left: degraded, not failed, and it takes a new member"
mdf manage md0 --fail "$T/a.img" --remove "$T/a.img" >/dev/null 2>&1 || fail "--fail --remove a"
out=$(mdf detail md0)
grep_q FAILED <<<"$out" && fail "reported failed: $(grep 'State :' <<<"$out")"
grep_q -E "State : clean, degraded *$" <<<"$out" || fail "state: $(grep 'State :' <<<"$out")"
mdf manage md0 --add "$T/c.img" >"$T/o" 2>&1 || fail "--add c: $(cat "$T/o")"
wait_idle md0
mdf stop md0 >/dev/null 2>&1 || fail "stop md0"

log "a member marked for replacement with no spare is still active sync"
"$MDFUSE" create -l1 -n2 --assume-clean --force --image-size 16M "$T/d.img" "$T/e.img" >/dev/null 2>&1 ||
	fail "create md1"
mdf assemble md1 "$T/d.img" "$T/e.img" >/dev/null 2>&1 || fail "assemble md1"
mdf manage md1 --replace "$T/e.img" >/dev/null 2>&1 || fail "--replace e"
expect_eq "$(attr md1/md/dev-e.img/state)" "in_sync,want_replacement" "the marked member's state"
out=$(mdf detail md1)
grep_q -E "State : clean *$" <<<"$out" || fail "state: $(grep 'State :' <<<"$out")"
grep_q -E "active sync +/.*e\.img" <<<"$out" || fail "member line: $(grep e.img <<<"$out")"
mdf detail --test md1 >/dev/null || fail "detail --test after --replace without a spare exits $?"
mdf stop md1 >/dev/null 2>&1 || fail "stop md1"

stop_daemon
log "ok"
