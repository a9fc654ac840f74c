# Helpers for the NBD tests: NBD servers started by the test itself, on
# unix sockets or loopback TCP, killed by PID at the end.  Sourced after
# lib.sh (and data_lib.sh).

SERVERS=()

# The daemon stops (its arrays still reaching their servers), then the
# servers go, then lib.sh's cleanup.
trap 'rc=$?; set +e; stop_daemon; kill_servers; (exit $rc); cleanup' EXIT

kill_servers() {
	local p
	for p in "${SERVERS[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	SERVERS=()
}

need_nbd_tools() {
	local t missing=()
	for t in qemu-nbd qemu-img qemu-io nbdkit nbdinfo; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	((${#missing[@]} == 0)) && return 0
	if [ -n "${MDFUSE_TEST_STRICT:-}" ]; then fail "missing: ${missing[*]} (scripts/setup installs them)"; fi
	log "SKIP: missing ${missing[*]}"
	exit 0
}

# wait_uri URI: until an NBD server answers at URI
wait_uri() {
	for _ in $(seq 200); do
		nbdinfo --size "$1" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "no NBD server at $1"
}

# qemu_serve IMG SOCK NAME: qemu-nbd serves IMG (raw) as export NAME on the
# unix socket SOCK, persistently, several clients at once; $SERVER_PID.
qemu_serve() {
	rm -f "$2"
	qemu-nbd -f raw -x "$3" -k "$2" -t -e 8 "$1" 2>>"$T/qemu-nbd.log" &
	SERVER_PID=$!
	SERVERS+=("$SERVER_PID")
	wait_uri "nbd+unix:///$3?socket=$2"
}

# free_port: a loopback TCP port nobody listens on now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nbdkit_serve PORT IMG [FILTER ARGS...]: nbdkit's file plugin serves IMG
# on 127.0.0.1:PORT; $SERVER_PID.
nbdkit_serve() {
	local port=$1 img=$2
	shift 2
	nbdkit -f -i 127.0.0.1 -p "$port" "$@" file file="$img" 2>>"$T/nbdkit.log" &
	SERVER_PID=$!
	SERVERS+=("$SERVER_PID")
	wait_uri "nbd://127.0.0.1:$port/"
}

# server_kill PID: kill -9 one server of ours
server_kill() {
	kill -KILL "$1"
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${SERVERS[@]}"; do [ "$p" == "$1" ] || keep+=("$p"); done
	SERVERS=("${keep[@]}")
}

# ms_since START_NS: milliseconds since START_NS (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# wait_attr_ms PATH VALUE MS: until PATH reads VALUE, at most MS
# milliseconds; prints how long it took.
wait_attr_ms() {
	local t0
	t0=$(date +%s%N)
	until [ "$(timeout 5 cat "$MNT/$1")" == "$2" ]; do
		[ "$(ms_since "$t0")" -lt "$3" ] || fail "$1 is '$(timeout 5 cat "$MNT/$1")' after $3 ms, wanted '$2'"
		sleep 0.02
	done
	ms_since "$t0"
}
