// Command scale measures how tapnet's per-datagram and per-socket costs
// grow with what a stack holds: sockets of each binding kind, addresses on
// one NIC, neighbours in the ARP cache, fragmented datagrams in
// reassembly from many sources, concurrent socket churn and ephemeral
// ports in use. It needs no privileges: two stacks run in this
// process over an in-memory pipe (tap.Pipe), and no frame leaves it. It
// prints one markdown table, each rate with its ratio to the smallest case
// of its scenario (1.00 means no slowdown).
//
// In-memory only: 10,000 addresses, 10,000 neighbours and 1,000 sources do
// not fit the documentation ranges, so those rows take addresses from
// 198.18.0.0/15 (reserved for benchmarks, RFC 2544). That is why this
// program has no TAP mode; never point it at a real link.
//
// The cases of a scenario are all set up first and then take turns, ten
// slices each after a warm-up turn, rather than running one after the
// other, so that they share whatever else the machine runs and their
// ratios compare like with like. Each row also shows the process's CPU
// time per operation (unix only), which a busy machine disturbs less than
// the rate. The churn and ports rows open and close conns with
// gonet.ListenUDP and Close, as a user would.
//
//	go run ./cmd/scale                 # from bench/, about 30 seconds
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
	duration = flag.Duration("duration", time.Second, "measured time per row (in slices)")
	only     = flag.String("only", "", "run only the scenario groups whose name contains this (sockets, addresses, peers, reassembly, churn, ports)")
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

// trial is one case of a scenario, set up and ready to run in slices.
type trial struct {
	run   func(d time.Duration) (int, error) // runs for about d, returns operations done
	close func()
}

// slices is how many turns each case of a scenario gets, after one turn
// of warm-up.
const slices = 10

// interleave runs the trials in turns, each for duration/slices a turn,
// and measures each over its turns but the first.
func interleave(trials []trial) ([]measurement, error) {
	out := make([]measurement, len(trials))
	ops := make([]int, len(trials))
	wall := make([]time.Duration, len(trials))
	cpu := make([]time.Duration, len(trials))
	runtime.GC() // setup garbage is not the measurement's
	for turn := range slices + 1 {
		for i, t := range trials {
			w0, c0 := time.Now(), processCPU()
			n, err := t.run(*duration / slices)
			if err != nil {
				return out, err
			}
			if turn > 0 {
				ops[i] += n
				wall[i] += time.Since(w0)
				cpu[i] += processCPU() - c0
			}
		}
	}
	for i := range out {
		if ops[i] > 0 {
			out[i] = measurement{rate: float64(ops[i]) / wall[i].Seconds(), cpu: cpu[i] / time.Duration(ops[i])}
		}
	}
	return out, nil
}

// cleanups collects what a setup must undo, in reverse order.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c cleanups) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// fail undoes a setup that failed.
func (c cleanups) fail(err error) (trial, error) {
	c.run()
	return trial{}, err
}

// done hands a finished setup's cleanups to its trial.
func (c cleanups) done(run func(time.Duration) (int, error)) (trial, error) {
	return trial{run: run, close: c.run}, nil
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
	// scenario sets up every case of a scenario, measures them in turns and
	// adds their rows.
	scenario := func(group, name, unit string, ns []int, setup func(n int) (trial, error)) {
		trials := make([]trial, 0, len(ns))
		defer func() {
			for _, t := range trials {
				t.close()
			}
		}()
		for _, n := range ns {
			t, err := setup(n)
			if err != nil {
				add(result{group: group, scenario: name, unit: unit, n: n}, fmt.Errorf("setup: %w", err))
				return
			}
			trials = append(trials, t)
		}
		ms, err := interleave(trials)
		for i, n := range ns {
			add(result{group: group, scenario: name, unit: unit, n: n, measurement: ms[i]}, err)
		}
	}
	if want("sockets") {
		for _, kind := range []socketKind{unconnectedDistinct, connectedDistinct, connectedShared} {
			scenario("sockets", kind.String(), "datagrams", []int{1, 100, 10_000, 50_000},
				func(n int) (trial, error) { return setupSockets(kind, n) })
		}
	}
	if want("addresses") {
		scenario("addresses", "addresses on one NIC", "datagrams", []int{1, 100, 10_000}, setupAddresses)
	}
	if want("peers") {
		scenario("peers", "ARP neighbours, sending", "datagrams", []int{1, 100, 1_000, 10_000}, setupPeers)
	}
	if want("reassembly") {
		scenario("reassembly", "fragmented, sources in flight", "datagrams", []int{1, 100, 1_000}, setupReassembly)
	}
	if want("churn") {
		scenario("churn", "open+close, goroutines", "ops", []int{1, 2},
			func(g int) (trial, error) { return setupChurn(g, 0) })
	}
	if want("ports") {
		scenario("ports", "open+close, ephemeral ports held", "ops", []int{0, 20_000, 28_000},
			func(held int) (trial, error) { return setupChurn(1, held) })
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
// for about d, and returns how many it received.
func pump(rs []receiver, d time.Duration) (int, error) {
	payload := make([]byte, 64)
	buf := make([]byte, 256)
	// Reads give up a while after the end, should a datagram be lost.
	giveUp := make(chan struct{})
	timer := time.AfterFunc(d+10*time.Second, func() { close(giveUp) })
	defer timer.Stop()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n += len(rs) {
		for _, r := range rs {
			if _, err := r.from.WriteToUDPAddrPort(payload, r.dst); err != nil {
				return n, err
			}
		}
		for _, r := range rs {
			if _, err := r.ep.Read(buf, false, giveUp); err != nil {
				return n, fmt.Errorf("read: %w", err)
			}
		}
	}
	return n, nil
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

// setupSockets opens n server sockets of a kind, to measure delivery to
// 16 of them.
func setupSockets(kind socketKind, n int) (trial, error) {
	var c cleanups
	e, err := newEnv(stack.Options{})
	if err != nil {
		return c.fail(err)
	}
	c.add(e.close)
	eps := make([]*udpsock.Endpoint, 0, n)
	c.add(func() {
		for _, ep := range eps {
			ep.Close()
		}
	})
	for i := range n {
		ep := udpsock.New(e.server)
		eps = append(eps, ep)
		if err := openServerSocket(ep, kind, i); err != nil {
			return c.fail(fmt.Errorf("socket %d: %w", i, err))
		}
	}
	var shared *gonet.UDPConn
	if kind != connectedShared {
		if shared, err = gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: clientPort}); err != nil {
			return c.fail(err)
		}
		c.add(func() { shared.Close() })
	}
	peers := make(map[int]*gonet.UDPConn) // shared-port kind: the client socket of each target
	c.add(func() {
		for _, p := range peers {
			p.Close()
		}
	})
	var rs []receiver
	for _, i := range spread(n) {
		r := receiver{ep: eps[i], dst: netip.AddrPortFrom(serverIP, uint16(firstServerPort+i)), from: shared}
		if kind == connectedShared {
			r.dst = netip.AddrPortFrom(serverIP, sharedPort)
			if peers[i] == nil {
				if peers[i], err = gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: firstClientPort + i}); err != nil {
					return c.fail(err)
				}
			}
			r.from = peers[i]
		}
		rs = append(rs, r)
	}
	return c.done(func(d time.Duration) (int, error) { return pump(rs, d) })
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

// setupAddresses gives the server's NIC n addresses (its own and n-1
// more), to measure delivery to a socket on any address, with datagrams
// aimed at the addresses added last, through the server as the client's
// gateway.
func setupAddresses(n int) (trial, error) {
	var c cleanups
	e, err := newEnv(stack.Options{})
	if err != nil {
		return c.fail(err)
	}
	c.add(e.close)
	var dsts []netip.Addr
	for i := range n - 1 {
		a := benchAddr(i)
		if err := e.serverNIC.AddAddress(netip.PrefixFrom(a, 32)); err != nil {
			return c.fail(fmt.Errorf("address %d: %w", i, err))
		}
		dsts = append(dsts, a)
	}
	if len(dsts) == 0 {
		dsts = []netip.Addr{serverIP}
	}
	if err := e.client.SetDefaultGateway(e.clientNIC.ID(), serverIP); err != nil {
		return c.fail(err)
	}
	ep := udpsock.New(e.server)
	c.add(func() { ep.Close() })
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		return c.fail(err)
	}
	from, err := gonet.ListenUDP(e.client, "udp4", &net.UDPAddr{IP: clientIP.AsSlice(), Port: clientPort})
	if err != nil {
		return c.fail(err)
	}
	c.add(func() { from.Close() })
	var rs []receiver
	for _, i := range spread(min(targets, len(dsts))) {
		rs = append(rs, receiver{ep: ep, dst: netip.AddrPortFrom(dsts[len(dsts)-1-i], 7), from: from})
	}
	return c.done(func(d time.Duration) (int, error) { return pump(rs, d) })
}

// setupPeers puts n neighbours in the server's ARP cache (all behind the
// client's MAC, on an extra on-link prefix), to measure sending to 16 of
// them; the client drops what it receives, not being those hosts. The
// cache is sized for the largest case, so that only its fill varies.
func setupPeers(n int) (trial, error) {
	var c cleanups
	e, err := newEnv(stack.Options{ARP: arp.Config{MaxEntries: 16384}})
	if err != nil {
		return c.fail(err)
	}
	c.add(e.close)
	if err := e.serverNIC.AddAddress(netip.PrefixFrom(benchAddr(-255), 16)); err != nil {
		return c.fail(err)
	}
	cache := e.serverNIC.ARP()
	peers := make([]netip.Addr, n)
	for i := range peers {
		peers[i] = benchAddr(i)
		cache.Learn(peers[i], e.clientNIC.MAC(), arp.Heard{Op: arp.OpRequest, ForUs: true})
	}
	conn, err := gonet.ListenUDP(e.server, "udp4", nil)
	if err != nil {
		return c.fail(err)
	}
	c.add(func() { conn.Close() })
	var dsts []netip.AddrPort
	for _, i := range spread(n) {
		dsts = append(dsts, netip.AddrPortFrom(peers[i], 9))
	}
	payload := make([]byte, 64)
	return c.done(func(d time.Duration) (int, error) {
		sent := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			for _, dst := range dsts {
				if _, err := conn.WriteToUDPAddrPort(payload, dst); err != nil {
					return sent, err
				}
			}
			sent += len(dsts)
		}
		if held := cache.Len(); held < n {
			return sent, fmt.Errorf("the cache kept %d of %d neighbours", held, n)
		}
		return sent, nil
	})
}

// setupChurn makes a stack with held ephemeral ports taken, to measure
// opening and closing conns on ephemeral ports there (gonet.ListenUDP and
// Close, as a user does) from g goroutines together.
func setupChurn(g, held int) (trial, error) {
	var c cleanups
	s := stack.New(stack.Options{})
	c.add(func() { s.Close() })
	conns := make([]*gonet.UDPConn, 0, held)
	c.add(func() {
		for _, conn := range conns {
			conn.Close()
		}
	})
	for i := range held {
		conn, err := gonet.ListenUDP(s, "udp4", nil)
		if err != nil {
			return c.fail(fmt.Errorf("holding port %d: %w", i, err))
		}
		conns = append(conns, conn)
	}
	return c.done(func(d time.Duration) (int, error) { return churn(s, g, d) })
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
