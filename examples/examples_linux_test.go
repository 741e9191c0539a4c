//go:build linux

// Package examples_test runs the built example binaries on real TAP and
// TUN devices, each in a network namespace the test creates, and checks
// them from the kernel side of the device: ping and a kernel UDP socket
// for echo, dig for dns, a kernel-side quic-go client and server for quic.
// As root only (and always under CI=true); addresses from 192.0.2.0/24
// and 2001:db8::/64 only.
package examples_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/tap"
)

const (
	kernelCIDR = "192.0.2.1/24" // the kernel side of every device
	stackCIDR  = "192.0.2.2/24" // the example's stack
	alpn       = "quic-echo-example"

	startTimeout = 10 * time.Second // until a server prints its banner
	stopTimeout  = 10 * time.Second // from SIGTERM to exit
)

var (
	kernelAddr = netip.MustParseAddr("192.0.2.1")
	stackAddr  = netip.MustParseAddr("192.0.2.2")
)

// device is the link an example attaches to, named by its flag: a TAP, or
// a TUN (a point-to-point IP link with no ARP). Each lives in a namespace
// of its own, so the names never collide.
type device struct {
	mode string // "tap" or "tun": the flag and `ip tuntap add mode`
	name string
}

var devices = []device{{"tap", "tap0"}, {"tun", "tun0"}}

// flags are the example's arguments naming the device.
func (d device) flags() []string { return []string{"-" + d.mode, d.name} }

// TestExamplesOnTAP builds the example binaries once and runs each on a
// TAP, then on a TUN, whose kernel side lives in a fresh namespace.
func TestExamplesOnTAP(t *testing.T) {
	netns.RequireRoot(t)
	bins := buildExamples(t)
	// Each in its own namespace, so they can run side by side; much of
	// their time is waiting (ARP, ping intervals, a TAP's link coming up).
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, string, device)
	}{
		{"Echo", testEcho},
		{"DNS", testDNS},
		{"QUICServer", testQUICServer},
		{"QUICClient", testQUICClient},
		{"Echo6", testEcho6},
		{"DNS6", testDNS6},
		{"QUICServer6", testQUICServer6},
		{"QUICClient6", testQUICClient6},
	} {
		for _, d := range devices {
			t.Run(d.mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, bins, d)
			})
		}
	}
}

// buildExamples builds examples/{echo,dns,quic} into a temporary directory
// and returns it. When the test binary has the race detector, so do the
// examples: a race in them makes them exit with status 66, which stop and
// runToExit report.
func buildExamples(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("go tool: %v", err)
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "./echo", "./dns", "./quic")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return dir
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// newDeviceNamespace creates a namespace holding a persistent TAP or TUN,
// d, with the kernel side at 192.0.2.1/24 and up, for an example binary
// started in the namespace to attach to by name. The device goes with the
// namespace.
func newDeviceNamespace(t *testing.T, d device) *netns.NS {
	t.Helper()
	ns := netns.New(t)
	ns.IP(t, "tuntap", "add", "dev", d.name, "mode", d.mode)
	ns.IP(t, "addr", "add", kernelCIDR, "dev", d.name)
	ns.IP(t, "link", "set", "dev", d.name, "up")
	return ns
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is an example binary running in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer // stdout and stderr
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, once done is closed
}

// start runs bin with args inside ns. Cleanup kills it if it still runs
// and waits for it (before the namespace's own cleanup runs).
func start(t *testing.T, ns *netns.NS, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name: filepath.Base(bin) + " " + strings.Join(args, " "),
		cmd:  ns.Command(t, append([]string{bin}, args...)...),
		out:  new(lockedBuffer),
		done: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		// `ip netns exec` execs the binary in place: the pid is the
		// binary's, and so is the process group.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			t.Errorf("%s: still running after SIGKILL", p.name)
		}
	})
	return p
}

// waitFor waits until the output contains s, failing if the process exits
// first or the wait exceeds startTimeout.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q; output:\n%s", p.name, p.err, s, p.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after %v; output:\n%s", p.name, s, startTimeout, p.out)
		}
	}
}

// stop sends SIGTERM and checks that the process exits cleanly in time,
// with no race report. It returns the output.
func (p *proc) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("%s: SIGTERM: %v", p.name, err)
	}
	return p.wait(t, stopTimeout)
}

// wait waits (at most timeout) for the process to exit and checks that it
// exited with status 0 and no race report. It returns the output.
func (p *proc) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s: did not exit within %v; output:\n%s", p.name, timeout, p.out)
	}
	out := p.out.String()
	if p.err != nil || strings.Contains(out, "DATA RACE") {
		t.Errorf("%s: exit %v; output:\n%s", p.name, p.err, out)
	}
	return out
}

// kernelUDP opens a kernel UDP socket inside ns bound to 192.0.2.1:port
// (0 for an ephemeral port); cleanup closes it.
func kernelUDP(t *testing.T, ns *netns.NS, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr, uint16(port))))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testEcho: ping the example's stack from the kernel side, then echo a
// small and two fragmented datagrams, the largest UDP allows, through a
// kernel UDP socket.
func testEcho(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace(t, d)
	p := start(t, ns, filepath.Join(bins, "echo"), append(d.flags(), "-addr", stackCIDR, "-port", "7", "-stats")...)
	p.waitFor(t, "echo: serving UDP on 192.0.2.2:7")

	if out := ns.Exec(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", stackAddr.String()); !strings.Contains(out, "2 received") {
		t.Errorf("ping 192.0.2.2:\n%s", out)
	}
	c := kernelUDP(t, ns, 0)
	to := netip.AddrPortFrom(stackAddr, 7)
	buf := make([]byte, 64<<10)
	for _, size := range []int{5, 8000, 65507} { // fragmented both ways from 1473
		msg := make([]byte, size)
		crand.Read(msg)
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%d-byte echo: %v", size, err)
		}
		if from != to || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%d-byte echo: %d bytes from %v", size, n, from)
		}
	}

	// -stats prints the stack's non-zero counters on exit.
	out := p.stop(t)
	stats := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		var name string
		var v int
		if n, _ := fmt.Sscanf(line, "%s %d", &name, &v); n == 2 {
			stats[name] = v
		}
	}
	if stats["ICMP.EchoReplies"] != 2 || stats["UDP.Delivered"] < 3 || stats["IP.Reassembled"] < 2 {
		t.Errorf("counters: %d echo replies (want 2), %d datagrams delivered (want 3), %d reassembled (want 2); output:\n%s",
			stats["ICMP.EchoReplies"], stats["UDP.Delivered"], stats["IP.Reassembled"], out)
	}
}

// testDNS queries the dns example with dig from the kernel side, and checks
// the pcap file it wrote.
func testDNS(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace(t, d)
	pcap := filepath.Join(t.TempDir(), "dns.pcap")
	startTime := time.Now()
	p := start(t, ns, filepath.Join(bins, "dns"), append(d.flags(), "-addr", stackCIDR,
		"-record", "example.test=192.0.2.53", "-record", "www.example.test=192.0.2.80", "-pcap", pcap)...)
	p.waitFor(t, "serving 2 names on udp 192.0.2.2:53")

	dig := func(args ...string) string {
		return ns.Exec(t, append([]string{"dig", "@" + stackAddr.String(), "+time=2", "+tries=2"}, args...)...)
	}
	if out := dig("example.test", "A", "+short"); strings.TrimSpace(out) != "192.0.2.53" {
		t.Errorf("dig example.test A +short: %q, want 192.0.2.53", out)
	}
	out := dig("nosuch.example.test", "A")
	if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, " aa") {
		t.Errorf("dig nosuch.example.test A: want an authoritative NXDOMAIN:\n%s", out)
	}
	if out := dig("example.org", "A"); !strings.Contains(out, "status: REFUSED") {
		t.Errorf("dig example.org A: want REFUSED:\n%s", out)
	}
	p.stop(t) // flushes and closes the capture
	checkPcap(t, pcap, startTime, 3, d.mode == "tun")
}

// checkPcap checks the capture of a dns run that answered queries
// queries: a classic Ethernet pcap with the kernel's ARP request, the
// stack's reply, and each query and its answer; from a TUN (rawIP), a
// raw-IP pcap with only the queries and answers.
func checkPcap(t *testing.T, path string, notBefore time.Time, queries int, rawIP bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := tap.ReadPcap(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	linkType, hdrLen := uint32(tap.LinkTypeEthernet), 14
	if rawIP {
		linkType, hdrLen = tap.LinkTypeRaw, 0
	}
	if c.VersionMajor != 2 || c.VersionMinor != 4 || c.LinkType != linkType || c.SnapLen == 0 {
		t.Errorf("pcap header: version %d.%d, link type %d, snaplen %d; want 2.4, link type %d",
			c.VersionMajor, c.VersionMinor, c.LinkType, c.SnapLen, linkType)
	}
	var arpRequests, arpReplies, toDNS, fromDNS int
	last := notBefore.Add(-time.Second) // pcap times have microseconds
	for i, r := range c.Records {
		if r.Time.Before(last) || r.Time.After(time.Now()) {
			t.Errorf("record %d: time %v out of order or range (previous %v)", i, r.Time, last)
		}
		last = r.Time
		if len(r.Data) != r.OrigLen || len(r.Data) < max(hdrLen, 1) {
			t.Errorf("record %d: %d bytes captured of %d", i, len(r.Data), r.OrigLen)
			continue
		}
		etherType := uint16(0x0800)
		if !rawIP {
			etherType = binary.BigEndian.Uint16(r.Data[12:])
		}
		switch etherType {
		case 0x0806: // ARP: operation at 14+6
			if len(r.Data) >= 14+28 {
				switch binary.BigEndian.Uint16(r.Data[20:]) {
				case 1:
					arpRequests++
				case 2:
					arpReplies++
				}
			}
		case 0x0800:
			ip := r.Data[hdrLen:]
			if len(ip) < 20 || ip[9] != 17 {
				continue
			}
			ihl := int(ip[0]&0xf) * 4
			if len(ip) < ihl+8 {
				continue
			}
			src, _ := netip.AddrFromSlice(ip[12:16])
			dst, _ := netip.AddrFromSlice(ip[16:20])
			sport, dport := binary.BigEndian.Uint16(ip[ihl:]), binary.BigEndian.Uint16(ip[ihl+2:])
			switch {
			case src == kernelAddr && dst == stackAddr && dport == 53:
				toDNS++
			case src == stackAddr && dst == kernelAddr && sport == 53:
				fromDNS++
			}
		}
	}
	t.Logf("%s: %d frames: ARP %d requests, %d replies; %d queries, %d answers",
		filepath.Base(path), len(c.Records), arpRequests, arpReplies, toDNS, fromDNS)
	arpWanted := 1
	if rawIP {
		arpWanted = 0
	}
	if arpRequests < arpWanted || arpReplies < arpWanted || toDNS < queries || fromDNS < queries || len(c.Records) < 2*arpWanted+2*queries {
		t.Errorf("capture has %d frames (ARP %d requests, %d replies; %d queries, %d answers), want ARP both ways (on a TAP) and %d queries answered",
			len(c.Records), arpRequests, arpReplies, toDNS, fromDNS, queries)
	}
}

// testQUICServer runs the quic example as a server and a quic-go client
// on a kernel UDP socket in the namespace: 1 MiB echoed on each of 4
// concurrent streams.
func testQUICServer(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace(t, d)
	p := start(t, ns, filepath.Join(bins, "quic"), append(d.flags(), "-addr", stackCIDR, "-listen", ":4433")...)
	p.waitFor(t, `QUIC echo server (ALPN "quic-echo-example") on udp 192.0.2.2:4433`)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &quic.Transport{Conn: kernelUDP(t, ns, 0)}
	defer tr.Close()
	began := time.Now()
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackAddr, 4433)),
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}, &quic.Config{})
	if err != nil {
		t.Fatalf("dial: %v; server output:\n%s", err, p.out)
	}
	handshake := time.Since(began)
	if got := conn.ConnectionState().TLS.NegotiatedProtocol; got != alpn {
		t.Errorf("ALPN %q, want %q", got, alpn)
	}
	stopAfter := context.AfterFunc(ctx, func() { conn.CloseWithError(1, "test timed out") })
	defer stopAfter()

	const streams, size = 4, 1 << 20
	began = time.Now()
	errs := make(chan error, streams)
	for range streams {
		go func() { errs <- echoStream(ctx, conn, size) }()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("handshake %v; %d streams of %d bytes echoed in %v", handshake.Round(time.Microsecond),
		streams, size, time.Since(began).Round(time.Millisecond))
	conn.CloseWithError(0, "done")
	p.stop(t)
}

// echoStream sends size random bytes on a new stream while reading the
// echo, and compares.
func echoStream(ctx context.Context, conn *quic.Conn, size int) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	msg := make([]byte, size)
	crand.Read(msg)
	written := make(chan error, 1)
	go func() {
		_, err := str.Write(msg)
		written <- errors.Join(err, str.Close())
	}()
	got, err := io.ReadAll(str)
	if werr := <-written; werr != nil {
		return fmt.Errorf("stream %d: write: %w", str.StreamID(), werr)
	}
	if err != nil {
		return fmt.Errorf("stream %d: read after %d bytes: %w", str.StreamID(), len(got), err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("stream %d: echo of %d bytes differs (%d bytes back)", str.StreamID(), size, len(got))
	}
	return nil
}

// testQUICClient runs a quic-go echo server on a kernel UDP socket at
// 192.0.2.1:4433 in the namespace and the quic example against it in
// -connect mode: one message, then the bulk echo.
func testQUICClient(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace(t, d)
	peers := serveKernelQUIC(t, kernelUDP(t, ns, 4433))

	quicBin := filepath.Join(bins, "quic")
	common := append(d.flags(), "-addr", stackCIDR, "-connect", "192.0.2.1:4433", "-timeout", "15s")
	const runTimeout = 20 * time.Second // the client gives up after 15s
	out := start(t, ns, quicBin, append(common, "-message", "hello")...).wait(t, runTimeout)
	if !strings.Contains(out, `echo: "hello"`) {
		t.Errorf("-connect -message hello printed:\n%s", out)
	}
	out = start(t, ns, quicBin, append(common, "-streams", "4", "-size", "65536")...).wait(t, runTimeout)
	if !strings.Contains(out, "4 streams, 262144 bytes echoed and verified") {
		t.Errorf("-connect bulk echo printed:\n%s", out)
	}
	t.Log(strings.TrimSpace(out))
	for _, a := range peers() {
		if a.Addr() != stackAddr {
			t.Errorf("the kernel-side server had a connection from %v, want 192.0.2.2", a)
		}
	}
	if n := len(peers()); n != 2 {
		t.Errorf("the kernel-side server had %d connections, want 2", n)
	}
}

// serveKernelQUIC runs a quic-go echo server on pc until the test ends. The
// returned function lists the remote addresses of the connections so far.
func serveKernelQUIC(t *testing.T, pc net.PacketConn) (peers func() []netip.AddrPort) {
	t.Helper()
	tr := &quic.Transport{Conn: pc}
	ln, err := tr.Listen(serverTLS(t), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		addrs []netip.AddrPort
	)
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			addrs = append(addrs, conn.RemoteAddr().(*net.UDPAddr).AddrPort())
			mu.Unlock()
			wg.Go(func() {
				for {
					str, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					wg.Go(func() {
						if _, err := io.Copy(str, str); err != nil {
							str.CancelRead(1)
							str.CancelWrite(1)
							return
						}
						str.Close()
					})
				}
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		tr.Close() // closes the connections, which ends their streams
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			t.Error("kernel-side QUIC server did not stop")
		}
	})
	return func() []netip.AddrPort {
		mu.Lock()
		defer mu.Unlock()
		return append([]netip.AddrPort(nil), addrs...)
	}
}

// serverTLS is a TLS 1.3 configuration with a fresh self-signed certificate.
func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kernel-side quic-go server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{alpn},
		MinVersion:   tls.VersionTLS13,
	}
}

// IPv6: the kernel side also has 2001:db8::1/64, the example 2001:db8::2/64
// beside its IPv4 address.
const (
	kernelCIDR6 = "2001:db8::1/64"
	stackCIDR6  = "2001:db8::2/64"
)

var (
	kernelAddr6 = netip.MustParseAddr("2001:db8::1")
	stackAddr6  = netip.MustParseAddr("2001:db8::2")
)

// newDeviceNamespace6 is newDeviceNamespace with IPv6 on and the kernel
// side at 2001:db8::1/64 too.
func newDeviceNamespace6(t *testing.T, d device) *netns.NS {
	t.Helper()
	ns := netns.NewIPv6(t)
	ns.IP(t, "tuntap", "add", "dev", d.name, "mode", d.mode)
	ns.IP(t, "addr", "add", kernelCIDR, "dev", d.name)
	ns.IP(t, "addr", "add", kernelCIDR6, "dev", d.name)
	ns.IP(t, "link", "set", "dev", d.name, "up")
	return ns
}

// dualStackFlags are the example's -addr flags for both families.
func dualStackFlags(d device) []string {
	return append(d.flags(), "-addr", stackCIDR, "-addr", stackCIDR6)
}

// kernelUDP6 opens a kernel UDP socket inside ns bound to
// [2001:db8::1]:port; cleanup closes it.
func kernelUDP6(t *testing.T, ns *netns.NS, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr6, uint16(port))))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testEcho6: the echo example with an IPv4 and an IPv6 address answers
// ping -6 (fragmented too) and echoes UDP over IPv6 up to the largest
// payload, fragmented both ways, from one dual-stack socket.
func testEcho6(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace6(t, d)
	p := start(t, ns, filepath.Join(bins, "echo"), append(dualStackFlags(d), "-port", "7", "-stats")...)
	p.waitFor(t, "echo: serving UDP on 192.0.2.2:7 [2001:db8::2]:7")

	for _, size := range []string{"56", "2000", "8000"} {
		out := ns.Exec(t, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", size, stackAddr6.String())
		if !strings.Contains(out, "2 received") {
			t.Errorf("ping -6 -s %s 2001:db8::2:\n%s", size, out)
		}
	}
	// One more v4 ping: the same socket and stack serve both families.
	if out := ns.Exec(t, "ping", "-c", "1", "-W", "2", stackAddr.String()); !strings.Contains(out, "1 received") {
		t.Errorf("ping 192.0.2.2:\n%s", out)
	}
	c := kernelUDP6(t, ns, 0)
	to := netip.AddrPortFrom(stackAddr6, 7)
	buf := make([]byte, 64<<10)
	for _, size := range []int{5, 8000, 65527} { // the largest IPv6 UDP payload
		msg := make([]byte, size)
		crand.Read(msg)
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%d-byte echo over IPv6: %v", size, err)
		}
		if from != to || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%d-byte echo over IPv6: %d bytes from %v", size, n, from)
		}
	}
	out := p.stop(t)
	if !strings.Contains(out, "ICMPv6.EchoReplies") || !strings.Contains(out, "IPv6.Reassembled") {
		t.Errorf("counters show no ICMPv6 echo replies or IPv6 reassembly:\n%s", out)
	}
}

// testDNS6: the dns example with an IPv4 and an IPv6 address answers AAAA
// (and A) queries from dig -6 over IPv6 and dig over IPv4.
func testDNS6(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace6(t, d)
	p := start(t, ns, filepath.Join(bins, "dns"), append(dualStackFlags(d),
		"-record", "example.test=192.0.2.53", "-record", "example.test=2001:db8::53",
		"-record", "www.example.test=2001:db8::80")...)
	p.waitFor(t, "serving 2 names on udp 192.0.2.2:53 [2001:db8::2]:53")

	dig := func(server string, args ...string) string {
		return strings.TrimSpace(ns.Exec(t, append([]string{"dig", "@" + server, "+time=2", "+tries=2", "+short"}, args...)...))
	}
	for _, c := range []struct {
		server string
		args   []string
		want   string
	}{
		{stackAddr6.String(), []string{"-6", "example.test", "AAAA"}, "2001:db8::53"},
		{stackAddr6.String(), []string{"-6", "www.example.test", "AAAA"}, "2001:db8::80"},
		{stackAddr6.String(), []string{"-6", "example.test", "A"}, "192.0.2.53"},
		{stackAddr.String(), []string{"example.test", "AAAA"}, "2001:db8::53"},
		{stackAddr6.String(), []string{"-6", "www.example.test", "A"}, ""}, // NODATA
	} {
		if out := dig(c.server, c.args...); out != c.want {
			t.Errorf("dig @%s %s: %q, want %q", c.server, strings.Join(c.args, " "), out, c.want)
		}
	}
	p.stop(t)
}

// testQUICServer6 runs the quic example as a server on 2001:db8::2 and a
// quic-go client on a kernel udp6 socket: 1 MiB echoed on each of 4
// streams.
func testQUICServer6(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace6(t, d)
	p := start(t, ns, filepath.Join(bins, "quic"), append(d.flags(), "-addr", stackCIDR6, "-listen", ":4433")...)
	p.waitFor(t, `QUIC echo server (ALPN "quic-echo-example") on udp [2001:db8::2]:4433`)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &quic.Transport{Conn: kernelUDP6(t, ns, 0)}
	defer tr.Close()
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackAddr6, 4433)),
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}, &quic.Config{})
	if err != nil {
		t.Fatalf("dial: %v; server output:\n%s", err, p.out)
	}
	stopAfter := context.AfterFunc(ctx, func() { conn.CloseWithError(1, "test timed out") })
	defer stopAfter()
	const streams, size = 4, 1 << 20
	errs := make(chan error, streams)
	for range streams {
		go func() { errs <- echoStream(ctx, conn, size) }()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	conn.CloseWithError(0, "done")
	p.stop(t)
}

// testQUICClient6 runs a quic-go echo server on a kernel socket at
// [2001:db8::1]:4433 and the quic example, with both families' addresses,
// connecting to it over IPv6.
func testQUICClient6(t *testing.T, bins string, d device) {
	ns := newDeviceNamespace6(t, d)
	peers := serveKernelQUIC(t, kernelUDP6(t, ns, 4433))
	args := append(dualStackFlags(d), "-connect", "[2001:db8::1]:4433", "-timeout", "15s", "-streams", "4", "-size", "65536")
	out := start(t, ns, filepath.Join(bins, "quic"), args...).wait(t, 20*time.Second)
	if !strings.Contains(out, "4 streams, 262144 bytes echoed and verified") {
		t.Errorf("-connect [2001:db8::1]:4433 printed:\n%s", out)
	}
	if got := peers(); len(got) != 1 || got[0].Addr() != stackAddr6 {
		t.Errorf("the kernel-side server had connections from %v, want one from 2001:db8::2", got)
	}
}
