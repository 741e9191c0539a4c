// Command loadgen drives a UDP echo server and measures it.
//
// It keeps a fixed window of datagrams in flight on one connected kernel UDP
// socket, sending and receiving in batches with sendmmsg/recvmmsg (through
// golang.org/x/net/ipv4 WriteBatch/ReadBatch), from a single OS thread that
// can be pinned to one CPU. Every datagram carries a run tag and a sequence
// number; replies are matched by sequence number, and a datagram that has not
// come back within -timeout is counted lost and its window slot reused.
//
// After -warmup, it measures for -duration: pps is replies received in that
// interval divided by its length; loss is the share of datagrams sent in that
// interval that never came back (late replies, after -timeout, count as lost);
// RTT percentiles are over the datagrams sent in that interval (at window 1
// that is the unloaded round-trip time). The result is one line of JSON on
// stdout; progress and errors go to stderr.
//
// With -gso, every sendmsg carries up to 64 KiB of datagrams as one buffer
// that the kernel segments (UDP_SEGMENT, as quic-go sends on Linux); with
// -gro, the socket takes coalesced replies (UDP_GRO) and splits them by the
// segment size the kernel reports. With -flows N, N sockets (N source
// ports, so N flows for a multi-queue device to spread) each keep
// window/N datagrams in flight from their own thread, and the result sums
// them.
//
// With -probe, it instead sends one datagram every 100ms until one comes back
// (exit 0) or -probe-timeout passes (exit 1): run.sh uses it to wait for a
// subject to be ready.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	ringSize  = 1 << 17 // tracked sequence numbers; bounds datagrams in flight
	hdrLen    = 12      // tag (4) + seq (8)
	maxWindow = ringSize / 2
)

type result struct {
	Label     string  `json:"label,omitempty"`
	Mode      string  `json:"mode,omitempty"` // gso, gro, flows: how the load was sent
	Target    string  `json:"target"`
	Size      int     `json:"size"`
	Window    int     `json:"window"`
	Duration  float64 `json:"duration_s"`
	Sent      uint64  `json:"sent"`
	Received  uint64  `json:"received"`
	Lost      uint64  `json:"lost"`
	LossPct   float64 `json:"loss_pct"`
	PPS       float64 `json:"pps"`
	Mbps      float64 `json:"mbps"`
	Late      uint64  `json:"late"` // replies to measured datagrams after -timeout
	Bad       uint64  `json:"bad"`
	SendErrs  uint64  `json:"send_errors"`
	Samples   int     `json:"rtt_samples"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	CPU       int     `json:"cpu"`
	TimeoutMs float64 `json:"timeout_ms"`
}

func main() {
	target := flag.String("target", "192.0.2.2:7", "echo server IP:port")
	local := flag.String("local", "", "local IP[:port] to bind (optional)")
	size := flag.Int("size", 64, "UDP payload bytes per datagram (>= 12)")
	window := flag.Int("window", 64, "datagrams in flight")
	batch := flag.Int("batch", 64, "max datagrams per sendmmsg/recvmmsg")
	duration := flag.Duration("duration", 5*time.Second, "measurement time")
	warmup := flag.Duration("warmup", time.Second, "warm-up time before measuring")
	timeout := flag.Duration("timeout", 200*time.Millisecond, "a datagram not answered within this is lost")
	cpu := flag.Int("cpu", -1, "pin every thread to this CPU (-1: no pinning)")
	label := flag.String("label", "", "label copied into the JSON result")
	maxSamples := flag.Int("max-samples", 4<<20, "max RTT samples kept")
	sockBuf := flag.Int("sockbuf", 4<<20, "SO_RCVBUF/SO_SNDBUF bytes (forced as root)")
	probe := flag.Bool("probe", false, "only wait until the target answers one datagram")
	probeTimeout := flag.Duration("probe-timeout", 10*time.Second, "how long -probe waits")
	gso := flag.Bool("gso", false, "send up to 64 KiB per sendmsg, segmented by the kernel (UDP_SEGMENT)")
	gro := flag.Bool("gro", false, "receive coalesced datagrams (UDP_GRO)")
	flows := flag.Int("flows", 1, "sockets (flows) sharing the window, each on its own thread")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("loadgen: ")

	switch {
	case *size < hdrLen || *size > 65507:
		log.Fatalf("-size %d: want %d..65507", *size, hdrLen)
	case *window < 1 || *window > maxWindow:
		log.Fatalf("-window %d: want 1..%d", *window, maxWindow)
	case *batch < 1 || *batch > 1024:
		log.Fatalf("-batch %d: want 1..1024", *batch)
	case *duration <= 0 || *duration > time.Hour || *warmup < 0 || *warmup > time.Hour:
		log.Fatalf("-duration/-warmup out of range")
	case *timeout <= 0 || *timeout > 10*time.Second:
		log.Fatalf("-timeout %v: want (0, 10s]", *timeout)
	case *flows < 1 || *flows > 64 || *flows > *window:
		log.Fatalf("-flows %d: want 1..64 and at most -window", *flows)
	}

	runtime.LockOSThread()
	if *cpu >= 0 {
		if err := pinAll(*cpu); err != nil {
			log.Fatalf("pin to cpu %d: %v", *cpu, err)
		}
	}

	raddr, err := net.ResolveUDPAddr("udp", *target)
	if err != nil {
		log.Fatalf("-target: %v", err)
	}
	var laddr *net.UDPAddr
	if *local != "" {
		l := *local
		if _, _, err := net.SplitHostPort(l); err != nil {
			l = net.JoinHostPort(l, "0")
		}
		if laddr, err = net.ResolveUDPAddr("udp", l); err != nil {
			log.Fatalf("-local: %v", err)
		}
	}
	conns := make([]*net.UDPConn, *flows)
	for i := range conns {
		if conns[i], err = net.DialUDP("udp", laddr, raddr); err != nil {
			log.Fatal(err)
		}
		defer conns[i].Close()
		setBuffers(conns[i], *sockBuf)
	}
	segs := 0
	if *gso {
		segs = max(1, min(65507 / *size, maxGSOSegments))
	}
	for _, conn := range conns {
		if err := setOffloads(conn, *gso, *gro, *size); err != nil {
			log.Fatal(err)
		}
	}

	tag := rand.Uint32()
	if *probe {
		os.Exit(runProbe(conns[0], tag, *size, *probeTimeout))
	}

	c := config{
		size: *size, window: *window / *flows, batch: *batch, duration: *duration,
		warmup: *warmup, timeout: *timeout, maxSamples: *maxSamples / *flows,
		segs: segs, gro: *gro,
	}
	r := runFlows(conns, tag, c, *cpu)
	r.Window = *window
	r.Label, r.Target, r.CPU = *label, raddr.String(), *cpu
	r.Mode = modeOf(*gso, *gro, *flows)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// modeOf names how the load was sent, for the report; "" is plain.
func modeOf(gso, gro bool, flows int) string {
	var parts []string
	if gso {
		parts = append(parts, "gso")
	}
	if gro {
		parts = append(parts, "gro")
	}
	if flows > 1 {
		parts = append(parts, fmt.Sprintf("%d flows", flows))
	}
	return strings.Join(parts, "+")
}

// pinAll sets the CPU affinity of every thread of the process; threads
// started later inherit it.
func pinAll(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return err
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("tid %d: %w", tid, err)
		}
	}
	return nil
}

func setBuffers(conn *net.UDPConn, n int) {
	if n <= 0 {
		return
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], n) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], n)
			}
		}
	})
}

func runProbe(conn *net.UDPConn, tag uint32, size int, limit time.Duration) int {
	buf := make([]byte, size)
	rbuf := make([]byte, 65536)
	deadline := time.Now().Add(limit)
	for seq := uint64(0); time.Now().Before(deadline) && seq < 1000; seq++ {
		binary.LittleEndian.PutUint32(buf[0:4], tag)
		binary.LittleEndian.PutUint64(buf[4:12], seq)
		_, _ = conn.Write(buf) // ECONNREFUSED etc: retry
		wait := time.Now().Add(100 * time.Millisecond)
		_ = conn.SetReadDeadline(wait)
		for time.Now().Before(wait) {
			n, err := conn.Read(rbuf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if n >= hdrLen && binary.LittleEndian.Uint32(rbuf[0:4]) == tag {
				return 0
			}
		}
	}
	fmt.Fprintf(os.Stderr, "loadgen: probe: no answer from %v within %v\n", conn.RemoteAddr(), limit)
	return 1
}

type config struct {
	segs                int  // datagrams per sendmsg with UDP_SEGMENT; 0: no GSO
	gro                 bool // UDP_GRO on receive
	size, window, batch int
	duration, warmup    time.Duration
	timeout             time.Duration
	maxSamples          int
}

const (
	slotFree    = 0
	slotPending = 1
)

// maxGSOSegments is the most datagrams one UDP_SEGMENT sendmsg may carry
// (UDP_MAX_SEGMENTS on older kernels).
const maxGSOSegments = 64

// setOffloads turns on UDP_SEGMENT (segments of size bytes) and UDP_GRO.
func setOffloads(conn *net.UDPConn, gso, gro bool, size int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if gso {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, size); serr != nil {
				serr = fmt.Errorf("UDP_SEGMENT: %w", serr)
				return
			}
		}
		if gro {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1); serr != nil {
				serr = fmt.Errorf("UDP_GRO: %w", serr)
			}
		}
	})
	return errors.Join(err, serr)
}

// groSize returns the segment size in a UDP_GRO control message, or 0.
func groSize(oob []byte) int {
	const hdr = unix.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= hdr+4 {
			return int(binary.NativeEndian.Uint32(oob[hdr:]))
		}
		oob = oob[min(unix.CmsgSpace(l-hdr), len(oob)):]
	}
	return 0
}

// runFlows runs one flow per conn, each on its own locked thread (the
// first on the caller's), and sums their results.
func runFlows(conns []*net.UDPConn, tag uint32, c config, cpu int) result {
	rs := make([]result, len(conns))
	ss := make([][]int64, len(conns))
	done := make(chan struct{}, len(conns))
	for i := 1; i < len(conns); i++ {
		go func() {
			runtime.LockOSThread()
			if cpu >= 0 {
				_ = pinAll(cpu)
			}
			rs[i], ss[i] = run(conns[i], tag, c)
			done <- struct{}{}
		}()
	}
	rs[0], ss[0] = run(conns[0], tag, c)
	for range len(conns) - 1 {
		<-done
	}
	r := rs[0]
	for _, x := range rs[1:] {
		r.Sent += x.Sent
		r.Received += x.Received
		r.Lost += x.Lost
		r.Late += x.Late
		r.Bad += x.Bad
		r.SendErrs += x.SendErrs
		r.PPS += x.PPS
		r.Mbps += x.Mbps
	}
	if r.Sent > 0 {
		r.LossPct = 100 * float64(r.Lost) / float64(r.Sent)
	}
	samples := slices.Concat(ss...)
	slices.Sort(samples)
	r.Samples = len(samples)
	r.P50us = pct(samples, 0.50)
	r.P90us = pct(samples, 0.90)
	r.P99us = pct(samples, 0.99)
	r.P999us = pct(samples, 0.999)
	if len(samples) > 0 {
		r.MaxUs = float64(samples[len(samples)-1]) / 1e3
	}
	return r
}

func run(conn *net.UDPConn, tag uint32, c config) (result, []int64) {
	pc := ipv4.NewPacketConn(conn)
	batch := min(c.batch, c.window)
	segs := max(c.segs, 1)

	wms := make([]ipv4.Message, batch)
	for i := range wms {
		wms[i].Buffers = [][]byte{make([]byte, c.size*segs)}
	}
	wcount := make([]int, batch) // datagrams in each message
	rms := make([]ipv4.Message, c.batch)
	rsize := max(c.size, 2048) + 64
	if c.gro {
		rsize = 65536
	}
	for i := range rms {
		rms[i].Buffers = [][]byte{make([]byte, rsize)}
		if c.gro {
			rms[i].OOB = make([]byte, unix.CmsgSpace(4))
		}
	}

	sentAt := make([]int64, ringSize) // ns since t0
	state := make([]uint8, ringSize)
	samples := make([]int64, 0, c.maxSamples)

	var (
		next, head  uint64 // next seq to send; oldest seq not yet resolved
		outstanding int
		late, bad   uint64
		sendErrs    uint64

		measuring, sending        = false, true
		measStart, measEnd uint64 = ^uint64(0), ^uint64(0) // seq range measured
		answered           uint64                          // replies for seqs in range
		recvInWindow       uint64                          // replies during the measured interval
		tMeasStart         int64
		tMeasEnd           int64
	)
	t0 := time.Now()
	now := func() int64 { return int64(time.Since(t0)) }
	warmupEnd := int64(c.warmup)
	measureEnd := int64(c.warmup + c.duration)
	drainEnd := measureEnd + int64(c.timeout) + int64(50*time.Millisecond)
	inMeas := func(seq uint64) bool { return seq >= measStart && seq < measEnd }
	timeoutNs := int64(c.timeout)

	// The loop allocates little; keep the GC out of the measurement unless
	// memory grows large.
	debug.SetMemoryLimit(1 << 30)
	debug.SetGCPercent(-1)
	defer debug.SetGCPercent(100)

	for iter := 0; ; iter++ {
		t := now()
		if !measuring && sending && t >= warmupEnd {
			measuring, measStart, tMeasStart = true, next, t
		}
		if measuring && t >= measureEnd {
			measuring, sending, measEnd, tMeasEnd = false, false, next, t
		}
		if !sending && (outstanding == 0 || t >= drainEnd) {
			break
		}
		if t >= drainEnd+int64(time.Second) { // hard stop, whatever happened
			break
		}

		// Expire the oldest datagrams that are overdue.
		for head < next {
			i := head % ringSize
			if state[i] == slotPending {
				if t-sentAt[i] < timeoutNs {
					break
				}
				state[i] = slotFree // lost
				outstanding--
			}
			head++
		}

		// Fill the window.
		if sending {
			k := min(c.window-outstanding, batch*segs, int(ringSize-(next-head)))
			if k > 0 {
				msgs := 0
				for d := 0; d < k; msgs++ {
					m := min(segs, k-d)
					b := wms[msgs].Buffers[0][:m*c.size]
					wms[msgs].Buffers[0] = b
					for j := range m {
						p := b[j*c.size:]
						binary.LittleEndian.PutUint32(p[0:4], tag)
						binary.LittleEndian.PutUint64(p[4:12], next+uint64(d+j))
					}
					wcount[msgs] = m
					d += m
				}
				n, err := pc.WriteBatch(wms[:msgs], 0)
				for j := range msgs {
					wms[j].Buffers[0] = wms[j].Buffers[0][:cap(wms[j].Buffers[0])]
				}
				if err != nil {
					sendErrs++
					if n <= 0 {
						// ECONNREFUSED from an ICMP error, ENOBUFS...: back off briefly.
						time.Sleep(time.Millisecond)
					}
				}
				sentN := 0
				for j := range max(n, 0) {
					sentN += wcount[j]
				}
				ts := now()
				for j := 0; j < sentN; j++ {
					i := (next + uint64(j)) % ringSize
					sentAt[i], state[i] = ts, slotPending
				}
				next += uint64(sentN)
				outstanding += sentN
			}
		}

		// Receive what is there, waiting at most until the oldest expires
		// or the phase changes.
		wait := timeoutNs
		if head < next {
			wait = sentAt[head%ringSize] + timeoutNs - t
		}
		for _, edge := range []int64{warmupEnd, measureEnd, drainEnd} {
			if edge > t && edge-t < wait {
				wait = edge - t
			}
		}
		wait = max(wait, int64(50*time.Microsecond))
		_ = conn.SetReadDeadline(t0.Add(time.Duration(t + wait)))
		n, err := pc.ReadBatch(rms, 0)
		tr := now()
		if err != nil {
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, unix.ECONNREFUSED) {
				log.Fatalf("read: %v", err)
			}
			if errors.Is(err, unix.ECONNREFUSED) {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		for j := 0; j < n; j++ {
			m := &rms[j]
			all := m.Buffers[0][:m.N]
			seg := m.N
			if c.gro {
				if g := groSize(m.OOB[:m.NN]); g > 0 {
					seg = g
				}
			}
			for off := 0; off < len(all); off += seg {
				b := all[off:min(off+seg, len(all))]
				if len(b) != c.size || binary.LittleEndian.Uint32(b[0:4]) != tag {
					bad++
					continue
				}
				seq := binary.LittleEndian.Uint64(b[4:12])
				if seq < head || seq >= next || state[seq%ringSize] != slotPending {
					if inMeas(seq) {
						late++ // already counted lost, or a duplicate
					}
					continue
				}
				i := seq % ringSize
				state[i] = slotFree
				outstanding--
				if measuring {
					recvInWindow++
				}
				if inMeas(seq) {
					answered++
					if len(samples) < cap(samples) {
						samples = append(samples, tr-sentAt[i])
					}
				}
			}
		}
		for head < next && state[head%ringSize] == slotFree {
			head++
		}
	}
	if measEnd == ^uint64(0) {
		measEnd = next
		tMeasEnd = now()
	}
	if measStart == ^uint64(0) {
		measStart = measEnd
	}

	sent := measEnd - measStart
	secs := float64(tMeasEnd-tMeasStart) / 1e9
	r := result{
		Size: c.size, Window: c.window, Duration: secs,
		Sent: sent, Received: answered, Lost: sent - answered,
		Late: late, Bad: bad, SendErrs: sendErrs, Samples: len(samples),
		TimeoutMs: float64(c.timeout) / 1e6,
	}
	if sent > 0 {
		r.LossPct = 100 * float64(r.Lost) / float64(sent)
	}
	if secs > 0 {
		r.PPS = float64(recvInWindow) / secs
		r.Mbps = r.PPS * float64(c.size) * 8 / 1e6
	}
	return r, samples
}

// pct returns the q-quantile (nearest rank) of sorted, in microseconds.
func pct(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / 1e3
}
