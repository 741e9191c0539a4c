package tap_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

var _ link.Device = (*tap.Device)(nil)

func openIn(t *testing.T, ns *netns.NS, name string, opts tap.Options) *tap.Device {
	t.Helper()
	var d *tap.Device
	if err := ns.Do(func() (err error) { d, err = tap.Open(name, opts); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func linkExists(t *testing.T, ns *netns.NS, name string) bool {
	t.Helper()
	return exec.Command("ip", "-n", ns.Name(), "link", "show", "dev", name).Run() == nil
}

// kernelUDP opens a kernel UDP socket in ns on kernelIP:5000, closed when
// the test ends.
func kernelUDP(t *testing.T, ns *netns.NS) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	if err := ns.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelIP, 5000)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// kernelMAC returns the MAC of the kernel side of a device in ns.
func kernelMAC(t *testing.T, ns *netns.NS, name string) ethernet.MAC {
	t.Helper()
	var m ethernet.MAC
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			m, _ = ethernet.MACFrom(ifi.HardwareAddr)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpenCreatesDevice(t *testing.T) {
	ns := netns.New(t)
	name := netns.UniqueIfName("tc")
	d := openIn(t, ns, name, tap.Options{})
	if d.Name() != name || !linkExists(t, ns, name) {
		t.Fatalf("device %q not created", name)
	}
	if d.Info().MTU != 1500 {
		t.Errorf("MTU read from the interface = %d, want 1500", d.Info().MTU)
	}
	m := d.MAC()
	if m[0]&1 != 0 || m[0]&2 == 0 || m == kernelMAC(t, ns, name) {
		t.Errorf("stack MAC %v: want a random locally administered one, not the kernel's", m)
	}
	if out := ns.IP(t, "-d", "link", "show", "dev", name); !strings.Contains(out, "tun type tap") || !strings.Contains(out, "pi off") {
		t.Errorf("not a TAP without packet info:\n%s", out)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, ns, name) {
		t.Error("non-persistent device survived Close")
	}

	mac := ethernet.MAC{2, 1, 2, 3, 4, 5}
	d = openIn(t, ns, "", tap.Options{MAC: mac, MTU: 9000})
	if !strings.HasPrefix(d.Name(), "tap") || d.Info().MTU != 9000 || d.MAC() != mac {
		t.Errorf("kernel-named device %q MTU %d MAC %v", d.Name(), d.Info().MTU, d.MAC())
	}
	if _, err := tap.Open("name-longer-than-15", tap.Options{}); err == nil {
		t.Error("overlong name accepted")
	}
}

func TestOpenPersistent(t *testing.T) {
	ns := netns.New(t)
	name := netns.UniqueIfName("tp")
	ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap")
	for range 2 { // attaching must not clear the persist flag
		d := openIn(t, ns, name, tap.Options{})
		if d.Name() != name {
			t.Fatalf("attached to %q, want %q", d.Name(), name)
		}
		ns.IP(t, "addr", "replace", "192.0.2.1/24", "dev", name)
		ns.IP(t, "link", "set", "dev", name, "up")
		exchangeARP(t, ns, d)
		d.Close()
		if !linkExists(t, ns, name) {
			t.Fatal("persistent device deleted by Close")
		}
	}
}

// exchangeARP asks the kernel for 192.0.2.1 and checks its reply.
func exchangeARP(t *testing.T, ns *netns.NS, d *tap.Device) {
	t.Helper()
	r := newRx(64)
	r.attach(d)
	if err := write(d, arpRequest(d.MAC(), stackIP, kernelIP)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		f := r.next(t)
		eth := ethernet.Header(f)
		sha, spa, ok := arpReply(f)
		dst := eth.Dst()
		if !ok {
			continue // unrelated traffic
		}
		if spa != kernelIP || sha != kernelMAC(t, ns, d.Name()) || dst != d.MAC() {
			t.Fatalf("ARP reply from %v/%v to %v", spa, sha, dst)
		}
		return
	}
	t.Fatal("no ARP reply")
}

func TestTAPKernelExchange(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	kmac := kernelMAC(t, ns, d.Name())

	conn := kernelUDP(t, ns)

	// Stack → kernel.
	r := newRx(64)
	r.attach(d)
	stackEP := netip.AddrPortFrom(stackIP, 6000)
	payload := []byte("hello kernel")
	if err := write(d, udpFrame(kmac, d.MAC(), stackEP, netip.AddrPortFrom(kernelIP, 5000), payload)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("kernel socket: %v", err)
	}
	if !bytes.Equal(buf[:n], payload) || from != stackEP {
		t.Errorf("kernel got %q from %v", buf[:n], from)
	}

	// Kernel → stack, with our address pinned so no ARP is needed.
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	if _, err := conn.WriteToUDPAddrPort([]byte("hello stack"), stackEP); err != nil {
		t.Fatal(err)
	}
	for {
		f := r.next(t)
		src, dst, got, ok := parseUDP(f)
		eth := ethernet.Header(f)
		if !ok {
			continue
		}
		if string(got) != "hello stack" || src != netip.AddrPortFrom(kernelIP, 5000) || dst != stackEP ||
			eth.Src() != kmac || eth.Dst() != d.MAC() {
			t.Errorf("stack got %q %v→%v (%v→%v)", got, src, dst, eth.Src(), eth.Dst())
		}
		break
	}
	if s := d.Stats(); s.TxFrames != 1 || s.RxFrames < 1 || s.TxErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestTAPDropsOversizedFrames(t *testing.T) {
	ns := netns.New(t)
	name := netns.UniqueIfName("to")
	d := openIn(t, ns, name, tap.Options{MTU: 576}) // kernel side keeps 1500
	ns.IP(t, "addr", "add", "192.0.2.1/24", "dev", name)
	ns.IP(t, "link", "set", "dev", name, "up")
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", name)
	r := newRx(64)
	r.attach(d)
	var conn *net.UDPConn
	if err := ns.Do(func() (err error) { conn, err = net.ListenUDP("udp4", nil); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackIP, 7))
	conn.WriteToUDP(make([]byte, 1000), to)
	conn.WriteToUDP([]byte("small"), to)
	for {
		f := r.next(t)
		_, _, p, ok := parseUDP(f)
		if !ok {
			continue
		}
		if string(p) != "small" {
			t.Fatalf("got a %d-byte payload past a 576 MTU", len(p))
		}
		break
	}
	if s := d.Stats(); s.RxDrops != 1 {
		t.Errorf("oversized frame not counted as a drop: %+v", s)
	}
	if err := write(d, udpFrame(ethernet.Broadcast, d.MAC(), netip.AddrPortFrom(stackIP, 7), to.AddrPort(), make([]byte, 600))); !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("oversized write: %v, want EMSGSIZE", err)
	}
}

func TestTAPCloseUnblocksReader(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	r := newRx(64)
	r.attach(d)
	time.Sleep(20 * time.Millisecond) // let the reader block in read
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the blocked reader")
	}
	if err := r.stopped(t); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrames after Close: %v, want net.ErrClosed", err)
	}
	if err := write(d, arpRequest(d.MAC(), stackIP, kernelIP)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestTAPDeviceDeleted(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	r := newRx(64)
	r.attach(d)
	ns.IP(t, "link", "del", "dev", d.Name())
	if err := r.stopped(t); !errors.Is(err, unix.EBADFD) {
		t.Errorf("ReadFrames after the device vanished: %v, want EBADFD", err)
	}
	if s := d.Stats(); s.RxErrors != 1 {
		t.Errorf("stats %+v", s)
	}
	if err := write(d, arpRequest(d.MAC(), stackIP, kernelIP)); err == nil {
		t.Error("write to a deleted device succeeded")
	}
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung after the device vanished")
	}
}

// A device opened in the host namespace keeps working after being moved
// into another one; NewTAP creates it inside instead so it never shows up
// in the host's namespace.
func TestTAPMovedIntoNamespace(t *testing.T) {
	ns := netns.New(t)
	name := netns.UniqueIfName("tm")
	d, err := tap.Open(name, tap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if out, err := exec.Command("ip", "link", "set", "dev", name, "netns", ns.Name()).CombinedOutput(); err != nil {
		t.Fatalf("moving the device: %v %s", err, out)
	}
	ns.IP(t, "addr", "add", "192.0.2.1/24", "dev", name)
	ns.IP(t, "link", "set", "dev", name, "up")
	exchangeARP(t, ns, d)
}

// ReadFrames returns frames the kernel queued before anyone read.
func TestTAPReadsQueuedFrames(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	if err := write(d, arpRequest(d.MAC(), stackIP, kernelIP)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the reply waits in the device's queue
	r := newRx(64)
	r.attach(d)
	for {
		f := r.next(t)
		_, spa, ok := arpReply(f)
		if ok && spa == kernelIP {
			return
		}
	}
}

// TestTAPMultiQueueSteering: the kernel answers a flow on the queue its
// last packet was written on (tun's flow table), so each queue, written to
// with flows of its own, reads their replies and no others'.
func TestTAPMultiQueueSteering(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Queues: 2})
	conn := kernelUDP(t, ns)
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	kmac := kernelMAC(t, ns, d.Name())
	rxs := [2]*rx{newRx(64), newRx(64)}
	for q, r := range rxs {
		r.attach(d.Queue(q))
	}
	buf := make([]byte, 100)
	for i := range 8 {
		q := i % 2
		ep := netip.AddrPortFrom(stackIP, uint16(6000+i))
		if err := write(d.Queue(q), udpFrame(kmac, d.MAC(), ep, netip.AddrPortFrom(kernelIP, 5000), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil || n != 1 || buf[0] != byte(i) || from != ep {
			t.Fatalf("flow %d: kernel got %x from %v: %v", i, buf[:n], from, err)
		}
		if _, err := conn.WriteToUDPAddrPort(buf[:1], ep); err != nil {
			t.Fatal(err)
		}
		// On the wrong queue, the reply leaves rxs[q] empty and next fails.
		for j := 0; ; j++ {
			_, to, p, ok := parseUDP(rxs[q].next(t))
			if ok && to == ep && len(p) == 1 && p[0] == byte(i) {
				break
			}
			if j == 100 { // skip unrelated frames, but not forever
				t.Fatalf("flow %d: no reply on queue %d", i, q)
			}
		}
	}
	for q := range rxs {
		if s := d.QueueStats(q); s.TxFrames != 4 || s.RxFrames < 4 {
			t.Errorf("queue %d: %+v", q, s)
		}
	}
}
