# Sourced by the debuginfod guest's scripts (test.sh, bench.sh; run in the Debian root by
# initramfs.sh): the environment, and Debian's debuginfod on 127.0.0.1 serving /srv/debuginfod,
# the directory that holds the cloud kernel's -dbg .deb (-U: debuginfod reads .deb archives).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PYTHONDONTWRITEBYTECODE=1
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH  # each call below names its own
T=/sys/kernel/tracing K=/kasalias PORT=8002
URL=http://127.0.0.1:$PORT
SERVER_WORK=/var/tmp/debuginfod  # its database and fdcache (TMPDIR): on the disk, not in RAM
SERVER_PID=
echo 0 >/proc/sys/kernel/kptr_restrict
cd /tmp

out() { sed "s/^/$1 /"; }  # prefix every line of stdin
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# metrics NAME-REGEX: the server's own counters (GET /metrics), "name value" lines
metrics() {
	python3 - "$URL/metrics" "$1" <<'PY'
import re, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    for line in r.read().decode().splitlines():
        if not line.startswith("#") and re.search(sys.argv[2], line):
            print(line)
PY
}

# start_server: debuginfod in the background; returns once it answers and has scanned every
# .deb of /srv/debuginfod (its metrics: that many archives scanned, no scan pending or running;
# "traversal done" alone comes before the scan thread takes the archive), within 1800 s;
# prints E2E-SERVER ready SECONDS
start_server() {
	mkdir -p "$SERVER_WORK/tmp"
	local t0
	t0=$(now)
	# no DEBUGINFOD_URLS: a server with it would forward what it lacks
	TMPDIR=$SERVER_WORK/tmp debuginfod -p "$PORT" -d "$SERVER_WORK/db.sqlite" -t 0 -g 0 --disable-source-scan \
		--fdcache-mintmp=0 -U /srv/debuginfod >"$SERVER_WORK/log" 2>&1 &
	SERVER_PID=$!
	python3 - "$URL/metrics" "$SERVER_PID" "$(ls /srv/debuginfod/*.deb | wc -l)" <<'PY' || { echo "E2E-ERROR debuginfod not ready"; tail -n 20 "$SERVER_WORK/log" | out E2E-SERVER-LOG; return 1; }
import os, sys, time, urllib.request
deadline = time.monotonic() + 1800
while time.monotonic() < deadline:
    try:
        os.kill(int(sys.argv[2]), 0)
    except ProcessLookupError:
        sys.exit("debuginfod exited")
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
            m = dict(l.rsplit(" ", 1) for l in r.read().decode().splitlines() if l and l[0] != "#")
        if m.get('scanned_files_total{source=".deb archive"}') == sys.argv[3] \
                and m.get('thread_work_pending{role="scan"}') == "0" and m.get('thread_busy{role="scan"}') == "0":
            sys.exit(0)
    except OSError:
        pass  # not listening yet
    time.sleep(0.2)
sys.exit("timeout")
PY
	echo "E2E-SERVER ready $(since "$t0")"
	metrics 'found_debuginfo_total|scanned_bytes_total' | out E2E-SERVER-METRICS
}

stop_server() {
	kill "$SERVER_PID" && wait "$SERVER_PID"
	SERVER_PID=
	# proof that nothing answers on the port any more
	if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)" "$PORT" 2>/dev/null; then
		echo "E2E-SERVER still-listening"
	else
		echo "E2E-SERVER down"
	fi
}
