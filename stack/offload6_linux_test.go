package stack_test

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// udp6CsumErrors reads Udp6InCsumErrors from ns's /proc/net/snmp6.
func udp6CsumErrors(t *testing.T, h *kernelV6Host) int {
	t.Helper()
	for line := range strings.Lines(h.ns.Exec(t, "cat", "/proc/net/snmp6")) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Udp6InCsumErrors" {
			v, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatal("no Udp6InCsumErrors in /proc/net/snmp6")
	return 0
}

// TestIPv6WriteBatchToKernel: WriteUDPBatch of 48 datagrams (the last
// short) to a kernel socket on 2001:db8::1 leaves as super-frames on a
// TAP or TUN with UDP segmentation offload, as partial checksums with
// checksum offload alone, as plain datagrams otherwise; every way the
// kernel socket receives each datagram intact, in order, and counts no
// checksum error.
func TestIPv6WriteBatchToKernel(t *testing.T) {
	for _, m := range []struct {
		name string
		opts tap.Options
		uso  bool
	}{
		{"uso", tap.Options{Offload: true}, true},
		{"no-uso", tap.Options{Offload: true, NoUSO: true}, false},
		{"plain", tap.Options{}, false},
		{"tun-uso", tap.Options{Mode: tap.ModeTUN, Offload: true}, true},
		{"tun-plain", tap.Options{Mode: tap.ModeTUN}, false},
	} {
		t.Run(m.name, func(t *testing.T) {
			h := newKernelV6HostWith(t, m.opts, v6Quick, tapnetV6)
			dev := h.nic.Link().(*tap.Device)
			if got := h.nic.Offloads().MaxGSOSize != 0; got != m.uso {
				t.Fatalf("USO %v, want %v (offloads %+v)", got, m.uso, dev.Stats().Offloads)
			}
			kaddr := netip.AddrPortFrom(kernelV6.Addr(), 9)
			var kc *net.UDPConn
			if err := h.ns.Do(func() (err error) {
				kc, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(kaddr))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			kc.SetReadBuffer(4 << 20)
			r, err := h.s.FindRoute(0, netip.Addr{}, kaddr.Addr())
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2000)
			read := func(i int, want []byte) {
				t.Helper()
				kc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, err := kc.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("kernel read %d: %v (device stats %+v)", i, err, dev.Stats())
				}
				if !bytes.Equal(buf[:n], want) || from.Addr() != tapnetV6.Addr() || from.Port() != 4000 {
					t.Fatalf("kernel datagram %d from %v: %d bytes, want %d, or content differs", i, from, n, len(want))
				}
			}
			// The first datagram resolves the kernel's address.
			hello := []byte("hello")
			if err := h.s.WriteUDP(&r, 4000, 9, hello, stack.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			read(-1, hello)
			before, superBefore := udp6CsumErrors(t, h), dev.Stats().TxSuperFrames
			var want [][]byte
			for round := range 3 {
				ps := payloads6(48, 1400, 333)
				for i := range ps {
					ps[i][0] = byte(round) // each round differs
				}
				if n, err := h.s.WriteUDPBatch(&r, 4000, 9, ps, stack.WriteOptions{}); n != len(ps) || err != nil {
					t.Fatalf("WriteUDPBatch: %d, %v", n, err)
				}
				want = append(want, ps...)
			}
			for i, w := range want {
				read(i, w)
			}
			if got := udp6CsumErrors(t, h); got != before {
				t.Errorf("Udp6InCsumErrors went from %d to %d", before, got)
			}
			if supers := dev.Stats().TxSuperFrames - superBefore; m.uso != (supers > 0) {
				t.Errorf("USO %v: %d super-frames written", m.uso, supers)
			}
		})
	}
}
