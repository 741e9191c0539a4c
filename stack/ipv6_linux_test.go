package stack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// These tests run IPv6 between tapnet and the Linux kernel over a TAP and,
// where the feature exists on IP links, over a TUN, each as a subtest
// named after the mode. The kernel side is 2001:db8::1/64, tapnet
// 2001:db8::2/64; both also have link-local addresses.

var (
	kernelV6 = netip.MustParsePrefix("2001:db8::1/64")
	tapnetV6 = netip.MustParsePrefix("2001:db8::2/64")
)

// kernelV6Host is a tapnet stack facing the kernel over a device in a
// namespace of its own.
type kernelV6Host struct {
	ns  *netns.NS
	dev string // the device's name on the kernel side
	s   *stack.Stack
	nic *stack.NIC

	mu      sync.Mutex
	echoes  map[uint32][]byte // echo replies by identifier<<16 | sequence
	echoC   chan struct{}
	adverts chan []byte // neighbour advertisements received
}

// forEachMode6 runs test once per device mode.
func forEachMode6(t *testing.T, test func(t *testing.T, mode tap.Mode)) {
	for _, mode := range []tap.Mode{tap.ModeTAP, tap.ModeTUN} {
		t.Run(mode.String(), func(t *testing.T) { test(t, mode) })
	}
}

// newKernelV6Host makes a namespace with IPv6 on, a device whose kernel
// side has 2001:db8::1/64, and a tapnet stack on it with addrs (DAD done).
func newKernelV6Host(t *testing.T, mode tap.Mode, o stack.IPv6Options, addrs ...netip.Prefix) *kernelV6Host {
	t.Helper()
	return newKernelV6HostWith(t, tap.Options{Mode: mode}, o, addrs...)
}

// newKernelV6HostWith is newKernelV6Host with the device opened with opts.
func newKernelV6HostWith(t *testing.T, opts tap.Options, o stack.IPv6Options, addrs ...netip.Prefix) *kernelV6Host {
	t.Helper()
	ns := netns.NewIPv6(t)
	dev := netns.NewTAP(t, ns, kernelV6.String(), opts)
	h := &kernelV6Host{ns: ns, dev: dev.Name(), s: stack.New(stack.Options{}),
		echoes: map[uint32][]byte{}, echoC: make(chan struct{}, 1), adverts: make(chan []byte, 16)}
	t.Cleanup(func() { h.s.Close() })
	stack.HookICMPv6Input(h.s, h.recordEcho)
	var err error
	if h.nic, err = h.s.AddNIC(dev, stack.NICOptions{Addresses: addrs, IPv6: o}); err != nil {
		t.Fatal(err)
	}
	for _, p := range addrs {
		h.wait(t, p.Addr())
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, ok := h.nic.LinkLocalAddress(); !ok; _, ok = h.nic.LinkLocalAddress() {
		if time.Now().After(deadline) {
			t.Fatal("no link-local address")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The kernel drops what it sends until the device's link is up on its
	// side (a linkwatch event, run later): one echo both ways first, so
	// that the tests count only their own packets.
	h.ping(t, h.kernelLinkLocal(t), 0xffff, []byte("link up?"))
	return h
}

// wait waits for duplicate address detection on a.
func (h *kernelV6Host) wait(t *testing.T, a netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.nic.WaitAddress(ctx, a); err != nil {
		t.Fatalf("address %v: %v", a, err)
	}
}

func (h *kernelV6Host) recordEcho(_ netip.Addr, m []byte) {
	if len(m) > 0 && m[0] == ipv6.ICMPNeighborAdvert {
		select {
		case h.adverts <- bytes.Clone(m):
		default:
		}
		return
	}
	if len(m) < ipv6.ICMPHeaderLen || m[0] != ipv6.ICMPEchoReply {
		return
	}
	h.mu.Lock()
	h.echoes[binary.BigEndian.Uint32(m[4:8])] = bytes.Clone(m[8:])
	h.mu.Unlock()
	select {
	case h.echoC <- struct{}{}:
	default:
	}
}

// ping sends an echo request with body to dst and waits up to 5s for its
// reply, resending once a second (the first may wait on neighbour
// discovery, or be lost while the kernel brings the link up).
func (h *kernelV6Host) ping(t *testing.T, dst netip.Addr, id uint16, body []byte) {
	t.Helper()
	for seq := uint16(1); seq <= 5; seq++ {
		key := uint32(id)<<16 | uint32(seq)
		if err := stack.SendICMPv6(h.s, h.nic.ID(), dst, ipv6.ICMPEchoRequest, key, body); err != nil {
			t.Fatalf("echo request to %v: %v", dst, err)
		}
		timeout := time.After(time.Second)
		for {
			h.mu.Lock()
			got, ok := h.echoes[key]
			h.mu.Unlock()
			if ok {
				if !bytes.Equal(got, body) {
					t.Fatalf("echo reply from %v: %d bytes differ from the %d sent", dst, len(got), len(body))
				}
				return
			}
			select {
			case <-h.echoC:
				continue
			case <-timeout:
			}
			break
		}
	}
	t.Fatalf("no echo reply from %v to a %d-byte request", dst, len(body))
}

// kernelLinkLocal returns the kernel side's link-local address.
func (h *kernelV6Host) kernelLinkLocal(t *testing.T) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := h.ns.IP(t, "-6", "-o", "addr", "show", "dev", h.dev, "scope", "link")
		for f := range strings.FieldsSeq(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel has no link-local address on %s: %s", h.dev, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// v6Quick runs DAD with one short probe: the kernel answers solicitations
// at once.
var v6Quick = stack.IPv6Options{RetransTimer: 200 * time.Millisecond}

// TestIPv6KernelPingsTapnet: the kernel's ping -6 reaches tapnet's global
// address and its link-local address (with %dev), and pings larger than
// the MTU, which the kernel fragments and tapnet must reassemble and
// fragment again for the reply.
func TestIPv6KernelPingsTapnet(t *testing.T) {
	forEachMode6(t, func(t *testing.T, mode tap.Mode) {
		h := newKernelV6Host(t, mode, v6Quick, tapnetV6)
		ll, _ := h.nic.LinkLocalAddress()
		for _, dst := range []string{tapnetV6.Addr().String(), ll.String() + "%" + h.dev} {
			out := h.ns.Exec(t, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", dst)
			if !strings.Contains(out, "3 received") {
				t.Fatalf("ping -6 %s:\n%s", dst, out)
			}
		}
		for _, size := range []string{"2000", "8000"} {
			out := h.ns.Exec(t, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", size, tapnetV6.Addr().String())
			if !strings.Contains(out, "2 received") {
				t.Fatalf("ping -6 -s %s:\n%s", size, out)
			}
		}
		st := h.s.Stats()
		if got := st.ICMPv6.EchoReplies.Load(); got != 10 {
			t.Errorf("echo replies sent: %d, want 10", got)
		}
		if got := st.IPv6.Reassembled.Load(); got != 4 {
			t.Errorf("reassembled: %d, want 4 (the large requests)", got)
		}
		if st.IPv6.FragmentsOut.Load() == 0 {
			t.Error("large replies not fragmented")
		}
	})
}

// TestIPv6TapnetPingsKernel: tapnet's echo requests reach the kernel's
// global and link-local addresses and come back, a request larger than
// the MTU too (fragmented both ways).
func TestIPv6TapnetPingsKernel(t *testing.T) {
	forEachMode6(t, func(t *testing.T, mode tap.Mode) {
		h := newKernelV6Host(t, mode, v6Quick, tapnetV6)
		kll := h.kernelLinkLocal(t)
		r := rand.New(rand.NewSource(6))
		for i, c := range []struct {
			dst  netip.Addr
			size int
		}{
			{kernelV6.Addr(), 56},
			{kll, 56},
			{kernelV6.Addr(), 2000},
			{kernelV6.Addr(), 8000},
		} {
			body := make([]byte, c.size)
			r.Read(body)
			h.ping(t, c.dst, uint16(i+1), body)
		}
		if got := h.s.Stats().IPv6.Reassembled.Load(); got < 2 {
			t.Errorf("reassembled %d replies, want at least 2", got)
		}
	})
}

// TestIPv6DADSeesKernel: tapnet given the kernel's address finds it in
// use: the kernel answers the probe and the address is never assigned.
// TAP only: IP links run no DAD (as Linux skips NOARP devices).
func TestIPv6DADSeesKernel(t *testing.T) {
	h := newKernelV6Host(t, tap.ModeTAP, v6Quick, tapnetV6)
	if err := h.nic.AddAddress(kernelV6); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.nic.WaitAddress(ctx, kernelV6.Addr()); !errors.Is(err, stack.ErrDuplicateAddress) {
		t.Fatalf("WaitAddress(%v) = %v, want ErrDuplicateAddress", kernelV6.Addr(), err)
	}
	if h.s.IsLocalAddress(kernelV6.Addr()) {
		t.Fatal("duplicate address assigned")
	}
	if got := h.s.Stats().NDP.DADConflicts.Load(); got != 1 {
		t.Fatalf("DADConflicts = %d, want 1", got)
	}
	// The kernel keeps its address and tapnet still reaches it.
	h.ping(t, kernelV6.Addr(), 1, []byte("still yours"))
}

// TestIPv6RouterAdvertFromKernel: radvd on the kernel side advertises
// 2001:db8:1::/64; tapnet, accepting advertisements, forms a SLAAC address
// in it and a default route through the kernel's link-local address, and
// the kernel reaches that address. Over a TUN too, where the advertisement
// carries no link-layer address and tapnet's solicitations none either.
func TestIPv6RouterAdvertFromKernel(t *testing.T) {
	radvd, err := exec.LookPath("radvd")
	if err != nil {
		radvd = "/usr/sbin/radvd"
		if _, err := os.Stat(radvd); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("radvd is not installed (CI=true requires it)")
			}
			t.Skip("radvd is not installed")
		}
	}
	forEachMode6(t, func(t *testing.T, mode tap.Mode) {
		o := v6Quick
		o.AcceptRA = true
		h := newKernelV6Host(t, mode, o)
		h.ns.IP(t, "addr", "add", "2001:db8:1::1/64", "dev", h.dev)
		h.ns.Exec(t, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1") // radvd wants a router
		startRadvd(t, h.ns, radvd, h.dev)

		prefix := netip.MustParsePrefix("2001:db8:1::/64")
		slaac := waitSLAAC(t, h.nic, prefix)
		h.wait(t, slaac)
		kll := h.kernelLinkLocal(t)
		var def bool
		for _, r := range h.s.Routes() {
			def = def || r.Dst == netip.MustParsePrefix("::/0") && r.Gateway == kll && r.NIC == h.nic.ID()
		}
		if !def {
			t.Fatalf("no default route via %v: %v", kll, h.s.Routes())
		}
		st := h.s.Stats()
		if st.NDP.RouterAdverts.Load() == 0 || st.NDP.SLAACAddresses.Load() != 1 {
			t.Fatalf("NDP stats: %+v", st.Snapshot())
		}
		far := netip.MustParseAddr("2001:db8:2::1")
		if r, err := h.s.FindRoute(0, netip.Addr{}, far); err != nil || r.NextHop != kll || r.MaxPayload() != radvdMTU-ipv6.HeaderLen {
			t.Errorf("route to %v: %+v %v (max payload %d, want radvd's MTU %d less the header)", far, r, err, r.MaxPayload(), radvdMTU)
		}
		out := h.ns.Exec(t, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", slaac.String())
		if !strings.Contains(out, "2 received") {
			t.Fatalf("ping -6 %s:\n%s", slaac, out)
		}
		// Off-link, through the router: the kernel (forwarding, with the
		// address on its loopback) answers for 2001:db8:2::1.
		h.ns.IP(t, "addr", "add", "2001:db8:2::1/128", "dev", "lo")
		h.ping(t, far, 2, []byte("via the default route"))
	})
}

// radvdMTU is the link MTU startRadvd advertises.
const radvdMTU = 1400

// startRadvd runs radvd in ns advertising 2001:db8:1::/64 and the link
// MTU radvdMTU on dev, every few seconds and in answer to solicitations;
// cleanup stops it.
func startRadvd(t *testing.T, ns *netns.NS, radvd, dev string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	cfg := fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	IgnoreIfMissing on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvLinkMTU %d;
	prefix 2001:db8:1::/64 {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
`, dev, radvdMTU)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	cmd := ns.Command(t, radvd, "--nodaemon", "--config", conf, "--pidfile", filepath.Join(dir, "radvd.pid"), "--logmethod", "stderr")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("radvd:\n%s", logs)
		}
	})
}

// waitSLAAC waits up to 20s for the NIC to form an address in prefix.
func waitSLAAC(t *testing.T, nic *stack.NIC, prefix netip.Prefix) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range nic.Addresses() {
			if prefix.Contains(p.Addr()) {
				return p.Addr()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no SLAAC address in %v: %v", prefix, nic.Addresses())
	return netip.Addr{}
}

// syncWriter serializes writes from a process's output copier and reads
// at cleanup.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// TestIPv6KernelAnswersSolicits pins down the reference tapnet's answers
// follow (TestNeighborAdvertForUnicastSolicit): the kernel answers a
// unicast solicitation with Solicited alone and no target link-layer
// address, a multicast one with Solicited, Override and the option.
func TestIPv6KernelAnswersSolicits(t *testing.T) {
	h := newKernelV6Host(t, tap.ModeTAP, v6Quick)
	kernel := h.kernelLinkLocal(t)
	for _, tc := range []struct {
		dst       netip.Addr
		wantFlags uint8
		wantTLLA  bool
	}{
		{kernel, ipv6.NAFlagSolicited, false},
		{ipv6.SolicitedNode(kernel), ipv6.NAFlagSolicited | ipv6.NAFlagOverride, true},
	} {
		for len(h.adverts) > 0 {
			<-h.adverts
		}
		msg := make([]byte, 32)
		l := ipv6.PutNeighborSolicit(msg, kernel)
		l += ipv6.PutLinkAddrOption(msg[l:], ipv6.OptSourceLinkAddr, h.nic.MAC())
		if err := stack.SendNDP(h.s, h.nic.ID(), tc.dst, msg[:l]); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-h.adverts:
			na := ipv6.NDP(m)
			_, hasTLLA := linkAddr(na, ipv6.OptTargetLinkAddr)
			if na.Target() != kernel || na.Flags() != tc.wantFlags || hasTLLA != tc.wantTLLA {
				t.Errorf("solicitation to %v: kernel answered for %v, flags %#x, option %v; want flags %#x, option %v",
					tc.dst, na.Target(), na.Flags(), hasTLLA, tc.wantFlags, tc.wantTLLA)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no advertisement from the kernel for a solicitation to %v", tc.dst)
		}
	}
}
