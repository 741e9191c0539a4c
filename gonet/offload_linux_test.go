package gonet

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// offloadStack is tapStack with the TAP opened with opts.
func offloadStack(t *testing.T, opts tap.Options) (*netns.NS, *stack.Stack, *tap.Device) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", opts)
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	if opts.Mode == tap.ModeTAP {
		// A known neighbour: bursts sent while the kernel resolves it
		// would overflow its queue of unresolved packets.
		ns.IP(t, "neigh", "replace", "192.0.2.2", "lladdr", dev.MAC().String(), "dev", dev.Name())
	}
	return ns, s, dev
}

// gsoSender opens a kernel UDP socket in ns connected to raddr that sends
// each write as segments of seg bytes (UDP_SEGMENT).
func gsoSender(t *testing.T, ns *netns.NS, raddr string, seg int) int {
	var fd int
	err := ns.Do(func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, seg); err != nil {
			return err
		}
		ap := netip.MustParseAddrPort(raddr)
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// udpCsumErrors reads Udp InCsumErrors from ns's /proc/net/snmp.
func udpCsumErrors(t *testing.T, ns *netns.NS) int {
	lines := strings.Split(ns.Exec(t, "cat", "/proc/net/snmp"), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "Udp: ") || !strings.HasPrefix(lines[i+1], "Udp: ") {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == "InCsumErrors" && j < len(vals) {
				v, _ := strconv.Atoi(vals[j])
				return v
			}
		}
	}
	t.Fatal("no Udp InCsumErrors in /proc/net/snmp")
	return 0
}

// pattern returns n bytes that differ per segment, so that reordered or
// misplaced segments show.
func pattern(n, salt int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/1400*31 + i + salt)
	}
	return b
}

var offloadModes = []struct {
	name string
	opts tap.Options
	uso  bool
}{
	{"uso", tap.Options{Offload: true}, true},
	{"no-uso", tap.Options{Offload: true, NoUSO: true}, false},
	{"plain", tap.Options{}, false},
	{"tun-uso", tap.Options{Mode: tap.ModeTUN, Offload: true}, true},
	{"tun-plain", tap.Options{Mode: tap.ModeTUN}, false},
}

// TestTAPReceivesGSOBursts: a kernel socket sends 64 KiB per sendmsg in
// 1400-byte segments; with USO the TAP gets super-frames and splits them,
// without it the kernel segments first. Either way tapnet's socket reads
// every datagram, whole and in order.
func TestTAPReceivesGSOBursts(t *testing.T) {
	for _, m := range offloadModes {
		t.Run(m.name, func(t *testing.T) {
			ns, s, dev := offloadStack(t, m.opts)
			srv, err := ListenUDP(s, "udp", &net.UDPAddr{Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.SetReadBuffer(4 << 20)
			fd := gsoSender(t, ns, "192.0.2.2:7", 1400)
			const bursts, seg = 4, 1400
			burst := 46 * seg
			var want [][]byte
			for i := range bursts {
				p := pattern(burst, i)
				if _, err := unix.Write(fd, p); err != nil {
					t.Fatalf("sendmsg with UDP_SEGMENT: %v", err)
				}
				for off := 0; off < len(p); off += seg {
					want = append(want, p[off:min(off+seg, len(p))])
				}
			}
			pc := NewPacketConn(srv)
			ms := make([]ipv4.Message, 64)
			for i := range ms {
				ms[i].Buffers = [][]byte{make([]byte, 2000)}
			}
			srv.SetReadDeadline(time.Now().Add(10 * time.Second))
			for got := 0; got < len(want); {
				n, err := pc.ReadBatch(ms, 0)
				if err != nil {
					t.Fatalf("after %d of %d datagrams: %v (stats %+v)", got, len(want), err, dev.Stats())
				}
				for _, msg := range ms[:n] {
					if !bytes.Equal(msg.Buffers[0][:msg.N], want[got]) {
						at := -1
						for j := range want {
							if bytes.Equal(msg.Buffers[0][:msg.N], want[j]) {
								at = j
							}
						}
						t.Fatalf("datagram %d: %d bytes differ from the %d sent (it is datagram %d), stats %+v", got, msg.N, len(want[got]), at, dev.Stats())
					}
					got++
				}
			}
			st := dev.Stats()
			if m.uso != (st.RxSuperFrames > 0) || st.RxBadHeaders != 0 {
				t.Errorf("USO %v: %d super-frames, %d bad headers", m.uso, st.RxSuperFrames, st.RxBadHeaders)
			}
			if m.uso != st.Offloads.USO || m.opts.Offload != st.Offloads.VnetHdr ||
				(m.opts.NoUSO && st.Offloads.Fallback == "") {
				t.Errorf("offload status %+v for options %+v", st.Offloads, m.opts)
			}
		})
	}
}

// TestTAPSendsGSOBatches: WriteBatch of 1400-byte datagrams to one kernel
// socket leaves as super-frames with USO, as one link batch otherwise, and
// the kernel socket receives every datagram intact with no checksum error.
// The first batch fits one super-frame (40 datagrams, 54 KiB) and must
// leave as exactly one; the next ones (48 datagrams) need more.
func TestTAPSendsGSOBatches(t *testing.T) {
	for _, m := range offloadModes {
		t.Run(m.name, func(t *testing.T) {
			ns, s, dev := offloadStack(t, m.opts)
			var kc *net.UDPConn
			if err := ns.Do(func() (err error) {
				kc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			kc.SetReadBuffer(4 << 20)
			c, err := ListenUDP(s, "udp", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pc := NewPacketConn(c)
			to := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}
			before := udpCsumErrors(t, ns)
			buf := make([]byte, 2000)
			for round, count := range []int{40, 48, 48} {
				supersBefore := dev.Stats().TxSuperFrames
				ms := make([]ipv4.Message, count)
				for i := range ms {
					size := 1400
					if i == len(ms)-1 {
						size = 333 // a short last segment
					}
					ms[i] = ipv4.Message{Buffers: [][]byte{pattern(size, round*100+i)}, Addr: to}
				}
				if n, err := pc.WriteBatch(ms, 0); n != len(ms) || err != nil {
					t.Fatalf("WriteBatch: %d, %v", n, err)
				}
				for i := range ms {
					if ms[i].N != len(ms[i].Buffers[0]) {
						t.Fatalf("message %d: N = %d", i, ms[i].N)
					}
				}
				for i := range ms {
					kc.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, _, err := kc.ReadFromUDP(buf)
					if err != nil {
						t.Fatalf("round %d: kernel read %d of %d: %v (stats %+v)", round, i, count, err, dev.Stats())
					}
					if !bytes.Equal(buf[:n], ms[i].Buffers[0]) {
						t.Fatalf("round %d: kernel datagram %d: %d bytes, want %d, content differs", round, i, n, len(ms[i].Buffers[0]))
					}
				}
				// Counted once the kernel has every datagram: on a TAP the
				// first batch waits for ARP before it is written.
				supers := dev.Stats().TxSuperFrames - supersBefore
				if m.uso && (supers == 0 || round == 0 && supers != 1) || !m.uso && supers != 0 {
					t.Errorf("USO %v: a batch of %d datagrams left as %d super-frames", m.uso, count, supers)
				}
			}
			if got := udpCsumErrors(t, ns); got != before {
				t.Errorf("Udp InCsumErrors went from %d to %d", before, got)
			}
		})
	}
}

// TestTAPMultiQueueEcho: with two queues, flows from several kernel
// sockets are answered whichever queue they arrive on, and both queues
// carry some: the kernel puts a flow's first packet on the queue its
// 4-tuple hashes to, so 32 flows all landing on one queue would take odds
// of 2 in 2^32.
func TestTAPMultiQueueEcho(t *testing.T) {
	ns, s, dev := offloadStack(t, tap.Options{Queues: 2, Offload: true})
	if q := dev.Info().Queues; q != 2 || dev.Queue(1) == nil || dev.Queue(2) != nil {
		t.Fatalf("Info().Queues = %d, Queue(1) = %v", q, dev.Queue(1))
	}
	serveEcho(t, s, 7)
	const flows = 32
	for i := range flows {
		c := kernelDial(t, ns, "192.0.2.2:7")
		msg := pattern(100+i, i)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2000)
		n, err := c.Read(got)
		if err != nil || !bytes.Equal(got[:n], msg) {
			t.Fatalf("flow %d: %d bytes, %v", i, n, err)
		}
	}
	q0, q1 := dev.QueueStats(0), dev.QueueStats(1)
	if q0.RxFrames == 0 || q1.RxFrames == 0 || q0.RxFrames+q1.RxFrames != dev.Stats().RxFrames ||
		q0.TxFrames+q1.TxFrames < flows {
		t.Errorf("%d flows: queue 0 read %d and wrote %d frames, queue 1 read %d and wrote %d; device %+v",
			flows, q0.RxFrames, q0.TxFrames, q1.RxFrames, q1.TxFrames, dev.Stats())
	}
	t.Logf("queue 0 read %d frames, queue 1 %d", q0.RxFrames, q1.RxFrames)
	if dev.QueueStats(2) != (tap.Stats{}) {
		t.Errorf("QueueStats(2) = %+v, want zero", dev.QueueStats(2))
	}
}

// TestTAPOffloadsResetOnClose: a persistent device keeps its offloads
// after the descriptor closes unless tapnet turns them off; a plain user
// attaching next would otherwise read partial checksums it cannot know of.
func TestTAPOffloadsResetOnClose(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	name := netns.UniqueIfName("tr")
	ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(t, "addr", "add", "192.0.2.1/24", "dev", name)
	ns.IP(t, "link", "set", "dev", name, "up")
	open := func(opts tap.Options) *tap.Device {
		var d *tap.Device
		if err := ns.Do(func() (err error) { d, err = tap.Open(name, opts); return err }); err != nil {
			t.Fatal(err)
		}
		return d
	}
	open(tap.Options{Offload: true}).Close()
	dev := open(tap.Options{})
	s := stack.New(stack.Options{})
	defer s.Close()
	if _, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	ns.IP(t, "neigh", "replace", "192.0.2.2", "lladdr", dev.MAC().String(), "dev", name)
	srv, err := ListenUDP(s, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := kernelDial(t, ns, "192.0.2.2:7")
	if _, err := c.Write([]byte("after offloads")); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, _, err := srv.ReadFromUDP(buf); err != nil || string(buf[:n]) != "after offloads" {
		t.Fatalf("read %q, %v; UDP checksum errors %d", buf[:n], err, s.Stats().UDP.ChecksumErrors.Load())
	}
}
