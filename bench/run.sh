#!/usr/bin/env bash
# bench/run.sh: UDP echo benchmark of tapnet against gVisor's netstack, the
# TAP floor and the kernel, plus an optional quic-go bulk transfer.
# Run as root from anywhere; see bench/README.md.
#
# Environment (defaults in brackets):
#   SUBJECTS       subjects to run, in order; empty: no UDP runs
#                  [tapnet tapnet6 tapnet-batch tapnet-offload gvisor floor floor6 kernel]
#                  tapnet: examples/echo one datagram at a time; -batch: with
#                  -batch 64; -offload: with -batch 64 -offload (virtio-net
#                  headers: checksum and UDP segmentation offload);
#                  tapnet6: tapnet over IPv6, its echo
#                  at [2001:db8::2]:7 on the same TAP; floor6: the floor
#                  bouncing IPv6 at that address
#   SIZES          UDP payload sizes in bytes       [64 1400]
#   WINDOWS        datagrams in flight              [1 64]
#   GSO            1: add a row per subject with a GSO sender (UDP_SEGMENT,
#                  64 KiB per sendmsg) receiving with UDP_GRO   [1]
#   GSO_SIZE       its payload size                 [1400]
#   GSO_WINDOW     its datagrams in flight          [256]
#   MQ             1: add multi-queue rows: tapnet-offload on a TAP with 1
#                  and 2 queues, MQ_FLOWS flows     [1]
#   MQ_FLOWS       flows (sockets) of those rows    [4]
#   DURATION       measured time per run            [5s]
#   WARMUP         warm-up time per run             [1s]
#   SETTLE         pause before the first subject   [10s] (a fresh namespace
#                  is busy for a while: the first subject measured at once
#                  showed millisecond stalls that later subjects did not)
#   GEN_CPU        CPU for the load generator       [0]   (empty: no pinning)
#   SUBJ_CPU       CPU for the subject              [1]   (empty: no pinning)
#   QUIC           1: also run the QUIC transfer    [0]
#   QUIC_SUBJECTS  QUIC servers to run              [tapnet gvisor kernel]
#   QUIC_BYTES     bytes sent on the one stream     [64MiB]
#   QUIC_RUNS      transfers per QUIC server        [3]
#   RCVBUF         echo servers' receive buffer     [4194304] (0: each one's default;
#                  passed to tapnet only if examples/echo has -rcvbuf)
#   TAPNET_FLAGS   extra flags for examples/echo    []
#   OUT            also write the report here       []
#   KEEP_BIN       1: keep the build/log directory  [0]
#
# Topology (namespaces are per run, suffixed with this script's PID):
#   tnb-gen-PID: load generator; the TAP device (192.0.2.1/24 on the kernel
#                side) and one end of a veth pair (198.51.100.1/24). The
#                userspace subjects run in this namespace too, only so they
#                can open the TAP by name: they use no kernel socket. Their
#                stack answers as 192.0.2.2 / 02:00:00:00:00:02.
#   tnb-krn-PID: the kernel subject, on the veth peer (198.51.100.2/24).
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
	echo "run.sh: must run as root (network namespaces, TAP devices)" >&2
	exit 1
fi

log() { echo "run.sh: $*" >&2; }

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

SUBJECTS=${SUBJECTS-"tapnet tapnet6 tapnet-batch tapnet-offload gvisor floor floor6 kernel"}
SIZES=${SIZES:-"64 1400"}
WINDOWS=${WINDOWS:-"1 64"}
GSO=${GSO:-1}
GSO_SIZE=${GSO_SIZE:-1400}
GSO_WINDOW=${GSO_WINDOW:-256}
MQ=${MQ:-1}
MQ_FLOWS=${MQ_FLOWS:-4}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
SETTLE=${SETTLE:-10s}
GEN_CPU=${GEN_CPU-0}
SUBJ_CPU=${SUBJ_CPU-1}
QUIC=${QUIC:-0}
QUIC_SUBJECTS=${QUIC_SUBJECTS:-"tapnet gvisor kernel"}
QUIC_BYTES=${QUIC_BYTES:-64MiB}
QUIC_RUNS=${QUIC_RUNS:-3}
RCVBUF=${RCVBUF:-4194304}
TAPNET_FLAGS=${TAPNET_FLAGS:-}
OUT=${OUT:-}
KEEP_BIN=${KEEP_BIN:-0}

NS_GEN=tnb-gen-$$
NS_KRN=tnb-krn-$$
TAP=tnbtap0
VETH_GEN=tnbv0
VETH_KRN=tnbv1
GEN_TAP_IP=192.0.2.1
SUBJ_IP=192.0.2.2
SUBJ_PREFIX=$SUBJ_IP/24
SUBJ_MAC=02:00:00:00:00:02
GEN_VETH_IP=198.51.100.1
KRN_IP=198.51.100.2
PORT=7
QUIC_PORT=4433

# secs DURATION: a Go-style duration (5s, 1.5s, 500ms, 1m30s) in whole
# seconds, rounded up; for the time limits around every command.
secs() {
	local v=$1 total=0 part
	if [[ ! $v =~ ^([0-9.]+(h|ms|m|s))+$ ]]; then
		log "bad duration $v (want e.g. 5s, 500ms, 1m30s)"
		exit 2
	fi
	for part in $(grep -oE '[0-9.]+(h|ms|m|s)' <<<"$v"); do
		case $part in
		*ms) total=$(awk -v a="$total" -v b="${part%ms}" 'BEGIN{print a + b / 1000}') ;;
		*h) total=$(awk -v a="$total" -v b="${part%h}" 'BEGIN{print a + b * 3600}') ;;
		*m) total=$(awk -v a="$total" -v b="${part%m}" 'BEGIN{print a + b * 60}') ;;
		*s) total=$(awk -v a="$total" -v b="${part%s}" 'BEGIN{print a + b}') ;;
		esac
	done
	awk -v t="$total" 'BEGIN{printf "%d", t + 0.999}'
}
RUN_LIMIT=$(($(secs "$DURATION") + $(secs "$WARMUP") + 20))

BIN=$(mktemp -d /tmp/tnb-bench.XXXXXX)
SUBJ_PID=""
CREATED_NS=()

stop_subject() {
	[[ -n $SUBJ_PID ]] || return 0
	local pid=$SUBJ_PID
	SUBJ_PID=""
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 20); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_subject
	local ns
	for ns in "${CREATED_NS[@]}"; do
		ip -n "$ns" link del "$TAP" 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
	done
	if [[ $KEEP_BIN == 1 ]]; then
		log "binaries and logs kept in $BIN"
	else
		rm -rf "$BIN"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# ---------------------------------------------------------------- build
log "building into $BIN"
(cd "$BENCH_DIR" && go build -o "$BIN/" ./cmd/...)

TAPNET_SKIP=""
if [[ " $SUBJECTS " == *" tapnet"* || $MQ == 1 ]]; then
	if ! (cd "$REPO_DIR" && go build -o "$BIN/tapnet-echo" ./examples/echo) >"$BIN/tapnet-echo-build.log" 2>&1; then
		TAPNET_SKIP="go build ./examples/echo failed: $(head -c 300 "$BIN/tapnet-echo-build.log" | tr '\n"\\' '  /')"
		log "tapnet echo: $TAPNET_SKIP"
	fi
fi
# TAPNET_RCVBUF: the -rcvbuf value examples/echo runs with, or empty when
# it keeps its default (RCVBUF=0, or an echo without the flag). The help
# text is captured before it is searched: "echo -h | grep -q" under
# pipefail failed about one run in ten, when grep quit at its match and
# echo, still writing, died of SIGPIPE.
TAPNET_RCVBUF=""
if [[ -z $TAPNET_SKIP && " $SUBJECTS " == *" tapnet"* && $RCVBUF != 0 ]]; then
	echo_help=$("$BIN/tapnet-echo" -h 2>&1 || true)
	if [[ $echo_help == *-rcvbuf* ]]; then
		TAPNET_RCVBUF=$RCVBUF
	else
		log "tapnet: examples/echo has no -rcvbuf flag; it runs with its default receive buffer"
	fi
fi
TAPNET_QUIC_SKIP=""
if [[ $QUIC == 1 && " $QUIC_SUBJECTS " == *" tapnet "* ]]; then
	if ! (cd "$REPO_DIR" && go build -o "$BIN/tapnet-quic" ./examples/quic) >"$BIN/tapnet-quic-build.log" 2>&1; then
		TAPNET_QUIC_SKIP="go build ./examples/quic failed: $(head -c 300 "$BIN/tapnet-quic-build.log" | tr '\n"\\' '  /')"
		log "tapnet quic: $TAPNET_QUIC_SKIP"
	fi
fi

# ---------------------------------------------------------------- network
for ns in "$NS_GEN" "$NS_KRN"; do
	if ip netns list | grep -qw "$ns"; then
		log "namespace $ns already exists; refusing to touch it"
		exit 1
	fi
done
ip netns add "$NS_GEN"
CREATED_NS+=("$NS_GEN")
ip netns add "$NS_KRN"
CREATED_NS+=("$NS_KRN")
ip -n "$NS_GEN" link set lo up
ip -n "$NS_KRN" link set lo up
# No IPv6 chatter (router/neighbour solicitations, MLD) on the links.
for ns in "$NS_GEN" "$NS_KRN"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
done

# fresh_tap [multi_queue]: (re)creates the TAP, so that no subject inherits
# the offloads (TUNSETOFFLOAD) another negotiated; a multi-queue device only
# takes multi-queue attachments, and the others only single-queue ones.
fresh_tap() {
	ip -n "$NS_GEN" link del "$TAP" 2>/dev/null || true
	ip -n "$NS_GEN" tuntap add dev "$TAP" mode tap "$@"
	ip -n "$NS_GEN" addr add "$GEN_TAP_IP/24" dev "$TAP"
	ip -n "$NS_GEN" link set "$TAP" mtu 1500 up
}
fresh_tap

# tap_ipv6: IPv6 on the TAP alone (the tapnet6 subject), with no DAD and
# no router advertisements taken, at 2001:db8::1/64 facing tapnet's ::2.
GEN_TAP_IP6=2001:db8::1
SUBJ_IP6=2001:db8::2
tap_ipv6() {
	ip netns exec "$NS_GEN" sysctl -qw "net.ipv6.conf.$TAP.accept_dad=0" "net.ipv6.conf.$TAP.accept_ra=0" "net.ipv6.conf.$TAP.disable_ipv6=0"
	ip -n "$NS_GEN" addr add "$GEN_TAP_IP6/64" dev "$TAP" nodad
}

ip link add "$VETH_GEN" netns "$NS_GEN" type veth peer name "$VETH_KRN" netns "$NS_KRN"
ip -n "$NS_GEN" addr add "$GEN_VETH_IP/24" dev "$VETH_GEN"
ip -n "$NS_KRN" addr add "$KRN_IP/24" dev "$VETH_KRN"
ip -n "$NS_GEN" link set "$VETH_GEN" up
ip -n "$NS_KRN" link set "$VETH_KRN" up

# in_gen SECONDS cmd...: run cmd in the generator namespace with a time
# limit. --foreground keeps it in our process group, so a Ctrl-C reaches it
# and bash then runs the INT trap.
in_gen() {
	local limit=$1
	shift
	timeout --foreground -k 5 "$limit" ip netns exec "$NS_GEN" "$@"
}

# check_interrupt RC: a command killed by SIGINT/SIGTERM means the user
# interrupted the run (bash may not run the trap if the child handled it).
check_interrupt() {
	case $1 in
	130 | 143)
		log "interrupted"
		exit "$1"
		;;
	esac
}

# start_subject NAME NS CMD...: starts the subject in NS, logs to $BIN/NAME.log
start_subject() {
	local name=$1 ns=$2
	shift 2
	local -a pinning=()
	[[ -n $SUBJ_CPU ]] && pinning=(taskset -c "$SUBJ_CPU")
	# ip netns exec and taskset exec in place: $! is the subject's own PID.
	ip netns exec "$ns" "${pinning[@]}" "$@" >"$BIN/$name.log" 2>&1 &
	SUBJ_PID=$!
}

subject_alive() { [[ -n $SUBJ_PID ]] && kill -0 "$SUBJ_PID" 2>/dev/null; }

UDP_JSON=$BIN/udp.jsonl
QUIC_JSON=$BIN/quic.jsonl
: >"$UDP_JSON"
: >"$QUIC_JSON"

json_note() { # json_note FILE LABEL KEY MESSAGE [size window]
	local msg=${4//\\/\/}
	msg=${msg//\"/\'}
	if [[ $# -ge 6 ]]; then
		printf '{"label":"%s","size":%d,"window":%d,"%s":"%s"}\n' "$2" "$5" "$6" "$3" "$msg" >>"$1"
	else
		printf '{"label":"%s","%s":"%s"}\n' "$2" "$3" "$msg" >>"$1"
	fi
}

# ---------------------------------------------------------------- UDP echo
# udp_subject NAME ROW...: runs the subject with each row, "SIZE WINDOW
# [loadgen flags]" (default: SIZES x WINDOWS, and the GSO row).
udp_subject() {
	local s=$1 target ns=$NS_GEN
	shift
	local -a rows=("$@")
	if [[ ${#rows[@]} == 0 ]]; then
		local sz w
		for sz in $SIZES; do for w in $WINDOWS; do rows+=("$sz $w"); done; done
		[[ $GSO == 1 ]] && rows+=("$GSO_SIZE $GSO_WINDOW -gso -gro")
	fi
	local -a cmd extra=()
	local mq=()
	case $s in
	tapnet-batch) extra=(-batch 64) ;;
	tapnet-offload) extra=(-batch 64 -offload) ;;
	tapnet-mq1) extra=(-batch 64 -offload -queues 1) ;;
	tapnet-mq2)
		extra=(-batch 64 -offload -queues 2)
		mq=(multi_queue)
		;;
	esac
	fresh_tap "${mq[@]}"
	[[ $s == tapnet6 || $s == floor6 ]] && tap_ipv6
	case $s in
	tapnet | tapnet-* | tapnet6)
		if [[ -n $TAPNET_SKIP ]]; then
			json_note "$UDP_JSON" "$s" skipped "$TAPNET_SKIP"
			return
		fi
		# shellcheck disable=SC2206
		cmd=("$BIN/tapnet-echo" -tap "$TAP" -addr "$SUBJ_PREFIX" -port "$PORT" -mac "$SUBJ_MAC" "${extra[@]}" $TAPNET_FLAGS)
		if [[ -n $TAPNET_RCVBUF ]]; then
			cmd+=(-rcvbuf "$TAPNET_RCVBUF")
		fi
		target=$SUBJ_IP:$PORT
		if [[ $s == tapnet6 ]]; then
			cmd+=(-addr "$SUBJ_IP6/64")
			target=[$SUBJ_IP6]:$PORT
		fi
		;;
	gvisor)
		cmd=("$BIN/gvisor-echo" -tap "$TAP" -addr "$SUBJ_PREFIX" -port "$PORT" -mac "$SUBJ_MAC" -bufsize "$RCVBUF")
		target=$SUBJ_IP:$PORT
		;;
	floor)
		cmd=("$BIN/floor" -tap "$TAP" -addr "$SUBJ_PREFIX" -mac "$SUBJ_MAC")
		target=$SUBJ_IP:$PORT
		;;
	floor6)
		cmd=("$BIN/floor" -tap "$TAP" -addr "$SUBJ_PREFIX" -addr6 "$SUBJ_IP6" -mac "$SUBJ_MAC")
		target=[$SUBJ_IP6]:$PORT
		;;
	kernel)
		cmd=("$BIN/kernel-echo" -addr "$KRN_IP" -port "$PORT" -rcvbuf "$RCVBUF")
		ns=$NS_KRN
		target=$KRN_IP:$PORT
		;;
	*)
		log "unknown subject $s (want tapnet, tapnet-batch, tapnet-offload, tapnet6, gvisor, floor, floor6, kernel)"
		json_note "$UDP_JSON" "$s" skipped "unknown subject"
		return
		;;
	esac

	ip -n "$NS_GEN" neigh flush dev "$TAP" 2>/dev/null || true
	log "$s: starting ${cmd[*]}"
	start_subject "$s" "$ns" "${cmd[@]}"
	local rc=0
	in_gen 20 "$BIN/loadgen" -probe -target "$target" -probe-timeout 10s || rc=$?
	check_interrupt $rc
	if [[ $rc != 0 ]]; then
		log "$s: not answering; its log:"
		tail -n 20 "$BIN/$s.log" >&2 || true
		local why="no echo within 10s"
		subject_alive || why="exited: $(tail -n 1 "$BIN/$s.log" | head -c 200)"
		local row
		for row in "${rows[@]}"; do
			read -r sz w _ <<<"$row"
			json_note "$UDP_JSON" "$s" error "$why" "$sz" "$w"
		done
		stop_subject
		return
	fi
	local sz w flags out rc row
	for row in "${rows[@]}"; do
		read -r sz w flags <<<"$row"
		if ! subject_alive; then
			json_note "$UDP_JSON" "$s" error "exited: $(tail -n 1 "$BIN/$s.log" | head -c 200)" "$sz" "$w"
			continue
		fi
		log "$s: size $sz window $w $flags"
		local cpuflag=()
		[[ -n $GEN_CPU ]] && cpuflag=(-cpu "$GEN_CPU")
		rc=0
		# shellcheck disable=SC2086
		out=$(in_gen "$RUN_LIMIT" "$BIN/loadgen" -target "$target" -size "$sz" -window "$w" $flags \
			-duration "$DURATION" -warmup "$WARMUP" "${cpuflag[@]}" -label "$s") || rc=$?
		check_interrupt $rc
		if [[ $rc == 0 ]]; then
			echo "$out" >>"$UDP_JSON"
			log "  $out"
		else
			json_note "$UDP_JSON" "$s" error "loadgen failed" "$sz" "$w"
		fi
	done
	stop_subject
	log "$s: $(tail -n 1 "$BIN/$s.log")"
}

# ---------------------------------------------------------------- QUIC
quic_subject() {
	local s=$1 target ns=$NS_GEN
	local -a cmd
	case $s in
	tapnet)
		if [[ -n $TAPNET_QUIC_SKIP ]]; then
			json_note "$QUIC_JSON" tapnet skipped "$TAPNET_QUIC_SKIP"
			return
		fi
		cmd=("$BIN/tapnet-quic" -tap "$TAP" -addr "$SUBJ_PREFIX" -mac "$SUBJ_MAC" -listen ":$QUIC_PORT" -offload)
		target=$SUBJ_IP:$QUIC_PORT
		;;
	gvisor)
		cmd=("$BIN/gvisor-quic" -tap "$TAP" -addr "$SUBJ_PREFIX" -mac "$SUBJ_MAC" -listen ":$QUIC_PORT")
		target=$SUBJ_IP:$QUIC_PORT
		;;
	kernel)
		cmd=("$BIN/kernel-quic" -listen "$KRN_IP:$QUIC_PORT")
		ns=$NS_KRN
		target=$KRN_IP:$QUIC_PORT
		;;
	*)
		json_note "$QUIC_JSON" "$s" skipped "unknown quic subject (want tapnet, gvisor, kernel)"
		return
		;;
	esac
	fresh_tap
	log "quic $s: starting ${cmd[*]}"
	start_subject "quic-$s" "$ns" "${cmd[@]}"
	# A small transfer first: waits for the server and warms it up.
	local ok=0
	for _ in 1 2 3; do
		local rc=0
		in_gen 15 "$BIN/quic-client" -addr "$target" -bytes 64KiB -timeout 10s >/dev/null 2>>"$BIN/quic-$s.client.log" || rc=$?
		check_interrupt $rc
		if [[ $rc == 0 ]]; then
			ok=1
			break
		fi
		subject_alive || break
		sleep 0.5
	done
	if [[ $ok != 1 ]]; then
		log "quic $s: server not answering; its log:"
		tail -n 20 "$BIN/quic-$s.log" >&2 || true
		tail -n 5 "$BIN/quic-$s.client.log" >&2 || true
		local why="no answer"
		subject_alive || why="exited: $(tail -n 1 "$BIN/quic-$s.log" | head -c 200)"
		json_note "$QUIC_JSON" "$s" error "$why"
		stop_subject
		return
	fi
	local i out rc
	for i in $(seq 1 "$QUIC_RUNS"); do
		log "quic $s: transfer $i of $QUIC_RUNS ($QUIC_BYTES)"
		local -a pinning=()
		[[ -n $GEN_CPU ]] && pinning=(taskset -c "$GEN_CPU")
		rc=0
		out=$(in_gen 90 "${pinning[@]}" "$BIN/quic-client" -addr "$target" -bytes "$QUIC_BYTES" -timeout 80s -label "$s" 2>>"$BIN/quic-$s.client.log") || rc=$?
		check_interrupt $rc
		if [[ $rc == 0 ]]; then
			echo "$out" >>"$QUIC_JSON"
			log "  $out"
		else
			echo "$out" | grep '^{' >>"$QUIC_JSON" || json_note "$QUIC_JSON" "$s" error "quic-client failed"
		fi
	done
	stop_subject
}

# ---------------------------------------------------------------- run
log "settling for $SETTLE before the first subject"
sleep "$SETTLE"
for s in $SUBJECTS; do
	udp_subject "$s"
done
if [[ $MQ == 1 ]]; then
	for s in tapnet-mq1 tapnet-mq2; do
		udp_subject "$s" "64 64 -flows $MQ_FLOWS" "$GSO_SIZE $GSO_WINDOW -gso -gro -flows $MQ_FLOWS"
	done
fi
fresh_tap
if [[ $QUIC != 1 && $MQ != 1 && -z ${SUBJECTS// /} ]]; then
	log "nothing to run: SUBJECTS is empty and QUIC is not 1"
fi
if [[ $QUIC == 1 ]]; then
	for s in $QUIC_SUBJECTS; do
		quic_subject "$s"
	done
fi

# ---------------------------------------------------------------- report
# rcvbuf_note: the receive buffers the echo servers really ran with.
rcvbuf_note() {
	if [[ $RCVBUF == 0 ]]; then
		echo "each subject's default"
	elif [[ " $SUBJECTS " == *" tapnet"* && -z $TAPNET_SKIP && -z $TAPNET_RCVBUF ]]; then
		echo "$RCVBUF bytes, except tapnet: its default (examples/echo has no -rcvbuf)"
	else
		echo "$RCVBUF bytes"
	fi
}

REPORT=$BIN/report.md
{
	echo "## tapnet bench: UDP echo over TAP ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
	echo "- $(go version | cut -d' ' -f3-), load average before report: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- duration $DURATION after $WARMUP warm-up per row; loadgen on CPU ${GEN_CPU:-any}, subject on CPU ${SUBJ_CPU:-any}; echo receive buffers: $(rcvbuf_note)"
	echo "- load: plain is one datagram per sendmmsg entry; gso+gro sends 64 KiB per sendmsg with UDP_SEGMENT and receives with UDP_GRO; N flows spreads the window over N sockets"
	echo "- pps: echoed datagrams per second; Gbit/s: echoed payload; loss: share of datagrams sent in the measured interval not back within 200 ms; RTT percentiles over those datagrams (window 1: unloaded RTT)"
	echo
	if [[ -n ${SUBJECTS// /} || $MQ == 1 ]]; then
		"$BIN/report" -udp "$UDP_JSON"
	fi
	if [[ $QUIC == 1 ]]; then
		echo
		echo "### quic-go bulk transfer: one stream, $QUIC_BYTES sent and echoed back, $QUIC_RUNS runs per server"
		"$BIN/report" -quic "$QUIC_JSON"
	fi
} >"$REPORT"
echo
cat "$REPORT"
if [[ -n $OUT ]]; then
	cp "$REPORT" "$OUT"
	log "report written to $OUT"
fi
