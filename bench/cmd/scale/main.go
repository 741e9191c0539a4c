// Command scale measures how tapnet's per-datagram and per-socket costs
// grow with what a stack holds: sockets of each binding kind, addresses on
// one NIC, neighbours in the ARP cache, concurrent socket churn and
// ephemeral ports in use. It needs no privileges: two stacks run in this
// process over an in-memory pipe (tap.Pipe), and no frame leaves it. It
// prints one markdown table, each rate with its ratio to the smallest case
// of its scenario (1.00 means no slowdown).
//
// In-memory only: 10,000 addresses and 10,000 neighbours do not fit the
// documentation ranges, so those rows take addresses from 198.18.0.0/15
// (reserved for benchmarks, RFC 2544). That is why this program has no TAP
// mode; never point it at a real link.
//
// The churn and ports rows open and close conns with gonet.ListenUDP and
// Close, as a user would. Their cases take turns in short slices rather
// than running one after the other, so that all of them share whatever
// else the machine runs; on a busy machine the goroutines=2 row still
// shows how much CPU the process got more than how the stack scales
// (BenchmarkListenClose's CPU profile tells the latter).
//
//	go run ./cmd/scale                 # from bench/, about a minute
//	go run ./cmd/scale -duration 300ms # quicker, noisier
//	go run ./cmd/scale -only sockets   # one scenario group
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var (
	duration = flag.Duration("duration", time.Second, "measured time per row")
	only     = flag.String("only", "", "run only the scenario groups whose name contains this (sockets, addresses, peers, churn, ports)")
)

// Addresses. The two stacks share 192.0.2.0/24. Scenarios needing more
// addresses than the documentation ranges hold take them from 198.18.0.0/15
// (see the package doc): frames only travel the in-memory pipe.
var (
	serverIP = netip.MustParseAddr("192.0.2.1")
	clientIP = netip.MustParseAddr("192.0.2.2")
	benchNet = netip.MustParseAddr("198.18.0.0")
)

// targets is how many sockets (or peers) a measurement spreads its
// datagrams over, evenly placed among all of them.
const targets = 16

// result is one row of the table.
type result struct {
	group, scenario, unit string
	n                     int
	measurement
	note string // why the row failed
}

// measurement is what a row measured: operations per second, and the
// process's CPU time per operation (0 where the OS does not tell), which a
// busy machine disturbs less than the rate.
type measurement struct {
	rate float64
	cpu  time.Duration
}

// meter measures a stretch of operations.
type meter struct {
	wall time.Time
	cpu  time.Duration
}

func startMeter() meter { return meter{time.Now(), processCPU()} }

// stop returns the measurement of n operations since the meter started.
func (m meter) stop(n int) measurement {
	wall, cpu := time.Since(m.wall), processCPU()-m.cpu
	if n == 0 {
		return measurement{}
	}
	return measurement{rate: float64(n) / wall.Seconds(), cpu: cpu / time.Duration(n)}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("scale: ")
	start := time.Now()
	var rows []result
	add := func(r result, err error) {
		if err != nil {
			r.note = err.Error()
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "%-12s %-32s %7d  %12.0f %s/s %8v CPU/op %s\n", r.group, r.scenario, r.n, r.rate, r.unit, r.cpu, r.note)
	}
	if want("sockets") {
		for _, kind := range []socketKind{unconnectedDistinct, connectedDistinct, connectedShared} {
			for _, n := range []int{1, 100, 10_000, 50_000} {
				m, err := measureSockets(kind, n)
				add(result{group: "sockets", scenario: kind.String(), unit: "datagrams", n: n, measurement: m}, err)
			}
		}
	}
	if want("addresses") {
		for _, n := range []int{1, 100, 10_000} {
			m, err := measureAddresses(n)
			add(result{group: "addresses", scenario: "addresses on one NIC", unit: "datagrams", n: n, measurement: m}, err)
		}
	}
	if want("peers") {
		for _, n := range []int{1, 100, 1_000, 10_000} {
			m, err := measurePeers(n)
			add(result{group: "peers", scenario: "ARP neighbours, sending", unit: "datagrams", n: n, measurement: m}, err)
		}
	}
	if want("churn") {
		gs := []int{1, 2}
		ms, err := measureChurn(gs, []int{0, 0})
		for i, g := range gs {
			add(result{group: "churn", scenario: "open+close, goroutines", unit: "ops", n: g, measurement: ms[i]}, err)
		}
	}
	if want("ports") {
		held := []int{0, 20_000, 28_000}
		ms, err := measureChurn([]int{1, 1, 1}, held)
		for i, h := range held {
			add(result{group: "ports", scenario: "open+close, ephemeral ports held", unit: "ops", n: h, measurement: ms[i]}, err)
		}
	}
	printTable(rows)
	fmt.Printf("\n%s, GOMAXPROCS=%d, %v per row, total %v.\n", runtime.Version(), runtime.GOMAXPROCS(0), *duration, time.Since(start).Round(time.Second))
}

func want(group string) bool { return *only == "" || strings.Contains(group, *only) }

// printTable writes the rows as markdown, each rate divided by the first
// (smallest) case of the same scenario.
func printTable(rows []result) {
	fmt.Println("| group | scenario | n | rate | ratio to smallest n | CPU per op |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	var base float64
	for i, r := range rows {
		if i == 0 || rows[i-1].scenario != r.scenario {
			base = r.rate
		}
		ratio := "–"
		if base > 0 && r.note == "" {
			ratio = fmt.Sprintf("%.2f×", r.rate/base)
		}
		rate := fmt.Sprintf("%s %s/s", human(r.rate), r.unit)
		if r.note != "" {
			rate = "failed: " + r.note
		}
		cpu := "–"
		if r.cpu > 0 && r.note == "" {
			cpu = fmt.Sprintf("%.2f µs", r.cpu.Seconds()*1e6)
		}
		fmt.Printf("| %s | %s | %d | %s | %s | %s |\n", r.group, r.scenario, r.n, rate, ratio, cpu)
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// env is a server stack and a client stack on one in-memory pipe.
type env struct {
	server, client       *stack.Stack
	serverNIC, clientNIC *stack.NIC
}

func newEnv(serverOpts stack.Options) (*env, error) {
	ls, lc := tap.Pipe(tap.PipeOptions{QueueLen: 4096})
	e := &env{server: stack.New(serverOpts), client: stack.New(stack.Options{})}
	var err error
	if e.serverNIC, err = e.server.AddNIC(ls, stack.NICOptions{Addresses: []netip.Prefix{netip.PrefixFrom(serverIP, 24)}}); err != nil {
		e.close()
		return nil, err
	}
	if e.clientNIC, err = e.client.AddNIC(lc, stack.NICOptions{Addresses: []netip.Prefix{netip.PrefixFrom(clientIP, 24)}}); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	e.client.Close()
	e.server.Close()
}

// receiver is one server socket datagrams are aimed at, and where they
// come from.
type receiver struct {
	ep   *udpsock.Endpoint
	dst  netip.AddrPort // where the client sends
	from *gonet.UDPConn // the client socket that sends
}

// pump sends one datagram to each receiver in turn and reads them back,
// for the measured duration after a short warm-up, and measures the
// datagrams received.
func pump(rs []receiver) (measurement, error) {
	runtime.GC() // setup garbage is not the measurement's
	payload := make([]byte, 64)
	buf := make([]byte, 256)
	// Reads give up a while after the end, should a datagram be lost.
	giveUp := make(chan struct{})
	timer := time.AfterFunc(*duration+*duration/4+10*time.Second, func() { close(giveUp) })
	defer timer.Stop()
	round := func() error {
		for _, r := range rs {
			if _, err := r.from.WriteToUDPAddrPort(payload, r.dst); err != nil {
				return err
			}
		}
		for _, r := range rs {
			if _, err := r.ep.Read(buf, false, giveUp); err != nil {
				return fmt.Errorf("read: %w", err)
			}
		}
		return nil
	}
	for end := time.Now().Add(*duration / 4); time.Now().Before(end); {
		if err := round(); err != nil {
			return measurement{}, err
		}
	}
	n := 0
	m := startMeter()
	for time.Since(m.wall) < *duration {
		if err := round(); err != nil {
			return measurement{}, err
		}
		n += len(rs)
	}
	return m.stop(n), nil
}

// spread returns targets indices spread evenly over [0, n), repeating
// some when n is smaller, so that every case sends the same bursts.
func spread(n int) []int {
	out := make([]int, targets)
	for i := range out {
		out[i] = i * n / targets
	}
	return out
}

type socketKind int

const (
	unconnectedDistinct socketKind = iota // a server socket per port
	connectedDistinct                     // a server socket per port, connected to the client
	connectedShared                       // all on one port (SO_REUSEADDR), each connected to its own client port
)

func (k socketKind) String() string {
	return [...]string{"unconnected, distinct ports", "connected, distinct ports", "connected, sharing one port"}[k]
}

const (
	firstServerPort = 10_000 // distinct-port sockets take 10000, 10001, ...
	sharedPort      = 9000
	clientPort      = 7000 // the client's socket for distinct-port kinds
	firstClientPort = 1024 // shared-port kind: socket i is connected to client port 1024+i
)

// measureSockets opens n server sockets of a kind and measures delivery to
// 16 of them.
func measureSockets(kind socketKind, n int) (measurement, error) {
	e, err := newEnv(stack.Options{})
	if err != nil {
		return measurement{}, err
	}
	defer e.close()
	eps := make([]*udpsock.Endpoint, 0, n)
	defer func() {
		for _, ep := range eps {
			ep.Close()
		}
	}()
	for i := range n {
		ep := udpsock.New(e.server)
		eps = append(eps, ep)
		if err := openServerSocket(ep, kind, i); err != nil {
			return measurement{}, fmt.Errorf("socket %d: %w", i, err)
		}
	}
	var shared *gonet.UDPConn
	if kind != connectedShared {
		if shared, err = gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: clientPort}); err != nil {
			return measurement{}, err
		}
		defer shared.Close()
	}
	peers := make(map[int]*gonet.UDPConn) // shared-port kind: the client socket of each target
	defer func() {
		for _, c := range peers {
			c.Close()
		}
	}()
	var rs []receiver
	for _, i := range spread(n) {
		r := receiver{ep: eps[i], dst: netip.AddrPortFrom(serverIP, uint16(firstServerPort+i)), from: shared}
		if kind == connectedShared {
			r.dst = netip.AddrPortFrom(serverIP, sharedPort)
			if peers[i] == nil {
				if peers[i], err = gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: firstClientPort + i}); err != nil {
					return measurement{}, err
				}
			}
			r.from = peers[i]
		}
		rs = append(rs, r)
	}
	return pump(rs)
}

func openServerSocket(ep *udpsock.Endpoint, kind socketKind, i int) error {
	switch kind {
	case unconnectedDistinct:
		return ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(firstServerPort+i)))
	case connectedDistinct:
		if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(firstServerPort+i))); err != nil {
			return err
		}
		return ep.Connect(netip.AddrPortFrom(clientIP, clientPort))
	default:
		ep.SetReuseAddr(true)
		if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), sharedPort)); err != nil {
			return err
		}
		return ep.Connect(netip.AddrPortFrom(clientIP, uint16(firstClientPort+i)))
	}
}

// benchAddr is the i-th address of 198.18.0.0/15 after its first 256.
func benchAddr(i int) netip.Addr {
	a := benchNet.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(256 + i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// measureAddresses gives the server's NIC n addresses (its own and n-1
// more) and measures delivery to a socket on any address, with datagrams
// aimed at the addresses added last, through the server as the client's
// gateway.
func measureAddresses(n int) (measurement, error) {
	e, err := newEnv(stack.Options{})
	if err != nil {
		return measurement{}, err
	}
	defer e.close()
	var dsts []netip.Addr
	for i := range n - 1 {
		a := benchAddr(i)
		if err := e.serverNIC.AddAddress(netip.PrefixFrom(a, 32)); err != nil {
			return measurement{}, fmt.Errorf("address %d: %w", i, err)
		}
		dsts = append(dsts, a)
	}
	if len(dsts) == 0 {
		dsts = []netip.Addr{serverIP}
	}
	if err := e.client.SetDefaultGateway(e.clientNIC.ID(), serverIP); err != nil {
		return measurement{}, err
	}
	ep := udpsock.New(e.server)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		return measurement{}, err
	}
	from, err := gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: clientPort})
	if err != nil {
		return measurement{}, err
	}
	defer from.Close()
	var rs []receiver
	for _, i := range spread(min(targets, len(dsts))) {
		rs = append(rs, receiver{ep: ep, dst: netip.AddrPortFrom(dsts[len(dsts)-1-i], 7), from: from})
	}
	return pump(rs)
}

// measurePeers puts n neighbours in the server's ARP cache (all behind the
// client's MAC, on an extra on-link prefix) and measures sending to 16 of
// them; the client drops what it receives, not being those hosts. The
// cache is sized for the largest case, so that only its fill varies.
func measurePeers(n int) (measurement, error) {
	e, err := newEnv(stack.Options{ARP: arp.Config{MaxEntries: 16384}})
	if err != nil {
		return measurement{}, err
	}
	defer e.close()
	if err := e.serverNIC.AddAddress(netip.PrefixFrom(benchAddr(-255), 16)); err != nil {
		return measurement{}, err
	}
	cache := e.serverNIC.ARP()
	peers := make([]netip.Addr, n)
	for i := range peers {
		peers[i] = benchAddr(i)
		cache.Learn(peers[i], e.clientNIC.MAC(), true)
	}
	c, err := gonet.ListenUDP(e.server, "udp4", nil)
	if err != nil {
		return measurement{}, err
	}
	defer c.Close()
	var dsts []netip.AddrPort
	for _, i := range spread(n) {
		dsts = append(dsts, netip.AddrPortFrom(peers[i], 9))
	}
	runtime.GC()
	payload := make([]byte, 64)
	sent := 0
	send := func() error {
		for _, d := range dsts {
			if _, err := c.WriteToUDPAddrPort(payload, d); err != nil {
				return err
			}
		}
		sent += len(dsts)
		return nil
	}
	for end := time.Now().Add(*duration / 4); time.Now().Before(end); {
		if err := send(); err != nil {
			return measurement{}, err
		}
	}
	sent = 0
	m := startMeter()
	for time.Since(m.wall) < *duration {
		if err := send(); err != nil {
			return measurement{}, err
		}
	}
	res := m.stop(sent)
	if held := cache.Len(); held < n {
		return res, fmt.Errorf("the cache kept %d of %d neighbours", held, n)
	}
	return res, nil
}

// churnSlices is how many turns each case of a churn comparison gets:
// the cases take turns, so that they share whatever else the machine is
// running, and each rate sums its case's turns.
const churnSlices = 10

// measureChurn opens and closes conns on ephemeral ports (gonet.ListenUDP
// and Close, as a user does) in len(goroutines) cases, case i from
// goroutines[i] goroutines on its own stack with held[i] ephemeral ports
// already taken, and measures each case's open+close pairs (all its
// goroutines together).
func measureChurn(goroutines, held []int) ([]measurement, error) {
	out := make([]measurement, len(goroutines))
	stacks := make([]*stack.Stack, len(goroutines))
	var conns []*gonet.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		for _, s := range stacks {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i := range stacks {
		stacks[i] = stack.New(stack.Options{})
		for j := range held[i] {
			c, err := gonet.ListenUDP(stacks[i], "udp4", nil)
			if err != nil {
				return out, fmt.Errorf("holding port %d: %w", j, err)
			}
			conns = append(conns, c)
		}
	}
	counts := make([]int, len(stacks))
	wall := make([]time.Duration, len(stacks))
	cpu := make([]time.Duration, len(stacks))
	runtime.GC()
	for turn := range churnSlices + 1 {
		for i, s := range stacks {
			m := startMeter()
			n, err := churn(s, goroutines[i], *duration/churnSlices)
			if err != nil {
				return out, err
			}
			if turn > 0 { // the first turn warms up
				counts[i] += n
				wall[i] += time.Since(m.wall)
				cpu[i] += processCPU() - m.cpu
			}
		}
	}
	for i := range out {
		out[i] = measurement{rate: float64(counts[i]) / wall[i].Seconds(), cpu: cpu[i] / time.Duration(max(counts[i], 1))}
	}
	return out, nil
}

// churn opens and closes conns on s from g goroutines for about d and
// returns how many pairs they completed.
func churn(s *stack.Stack, g int, d time.Duration) (int, error) {
	var wg sync.WaitGroup
	counts := make([]int, g)
	errs := make([]error, g)
	end := time.Now().Add(d)
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				for range 64 {
					c, err := gonet.ListenUDP(s, "udp4", nil)
					if err != nil {
						errs[w] = err
						return
					}
					c.Close()
				}
				counts[w] += 64
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, errors.Join(errs...)
}
