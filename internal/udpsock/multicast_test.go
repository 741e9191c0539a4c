package udpsock

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var (
	mGroup  = netip.MustParseAddr("239.1.2.3")
	mGroup2 = netip.MustParseAddr("239.1.2.4")
	mS1     = netip.MustParseAddr("192.0.2.7")
	mS2     = netip.MustParseAddr("192.0.2.8")
)

// mcastHosts returns two stacks on a hub: a at 192.0.2.2, b at 192.0.2.1.
func mcastHosts(t *testing.T) (a, b *stack.Stack, na, nb *stack.NIC) {
	t.Helper()
	hub := tap.NewHub()
	a, b = stack.New(stack.Options{}), stack.New(stack.Options{})
	t.Cleanup(func() { a.Close(); b.Close(); hub.Close() })
	var err error
	na, err = a.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	nb, err = b.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	return a, b, na, nb
}

func bound(t *testing.T, s *stack.Stack, addr string, reuse bool) *Endpoint {
	t.Helper()
	e := New(s)
	e.SetReuseAddr(reuse)
	if err := e.Bind(netip.MustParseAddrPort(addr)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func errName(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return map[syscall.Errno]string{syscall.EINVAL: "EINVAL", syscall.EADDRINUSE: "EADDRINUSE",
			syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL", syscall.ENOBUFS: "ENOBUFS", syscall.ENODEV: "ENODEV"}[errno]
	}
	return err.Error()
}

// TestMembershipErrors replays, step by step, the sequences whose results
// were taken from Linux 6.x (x/net ipv4 on a veth in a namespace).
func TestMembershipErrors(t *testing.T) {
	s, _, n, _ := mcastHosts(t)
	type step struct {
		op   string
		g, s netip.Addr
		want string
	}
	unicast := netip.MustParseAddr("192.0.2.99")
	steps := []step{
		{"join", mGroup, netip.Addr{}, "ok"},
		{"join", mGroup, netip.Addr{}, "EADDRINUSE"},
		{"leave", mGroup2, netip.Addr{}, "EADDRNOTAVAIL"},
		{"join", unicast, netip.Addr{}, "EINVAL"},
		{"block", mGroup2, mS1, "EINVAL"},
		{"unblock", mGroup2, mS1, "EINVAL"},
		{"leavesrc", mGroup2, mS1, "EINVAL"},
		{"block", mGroup, mS1, "ok"},
		{"block", mGroup, mS1, "EADDRNOTAVAIL"},
		{"unblock", mGroup, mS2, "EADDRNOTAVAIL"},
		{"joinsrc", mGroup, mS2, "EINVAL"}, // EXCLUDE{S1} cannot take an INCLUDE source
		{"leavesrc", mGroup, mS1, "EINVAL"},
		{"unblock", mGroup, mS1, "ok"},
		{"leave", mGroup, netip.Addr{}, "ok"},
		// An any-source membership with nothing blocked switches to
		// INCLUDE on a source-specific join.
		{"join", mGroup, netip.Addr{}, "ok"},
		{"joinsrc", mGroup, mS1, "ok"},
		{"block", mGroup, mS2, "EINVAL"},
		{"unblock", mGroup, mS2, "EINVAL"},
		{"joinsrc", mGroup, mS1, "EADDRNOTAVAIL"},
		{"leavesrc", mGroup, mS2, "EADDRNOTAVAIL"},
		{"join", mGroup, netip.Addr{}, "EADDRINUSE"},
		{"joinsrc", mGroup, mS2, "ok"},
		{"leavesrc", mGroup, mS1, "ok"},
		{"leavesrc", mGroup, mS2, "ok"}, // the last source: leaves the group
		{"leave", mGroup, netip.Addr{}, "EADDRNOTAVAIL"},
		{"joinsrc", mGroup, mS1, "ok"},
		{"leave", mGroup, netip.Addr{}, "ok"},
		{"joinsrc", unicast, mS1, "EINVAL"},
		{"joinsrc", mGroup2, mGroup, "ok"}, // Linux takes a multicast source
		{"leave", mGroup2, netip.Addr{}, "ok"},
	}
	ep := bound(t, s, "0.0.0.0:5000", false)
	for i, st := range steps {
		var err error
		switch st.op {
		case "join":
			err = ep.JoinGroup(n, st.g)
		case "leave":
			err = ep.LeaveGroup(n, st.g)
		case "joinsrc":
			err = ep.JoinSourceGroup(n, st.g, st.s)
		case "leavesrc":
			err = ep.LeaveSourceGroup(n, st.g, st.s)
		case "block":
			err = ep.BlockSource(n, st.g, st.s)
		case "unblock":
			err = ep.UnblockSource(n, st.g, st.s)
		}
		if got := errName(err); got != st.want {
			t.Fatalf("step %d %s %v %v: %s, want %s", i, st.op, st.g, st.s, got, st.want)
		}
	}
	if m := ep.Memberships(); len(m) != 0 {
		t.Fatalf("memberships left: %v", m)
	}
	if g := n.MulticastGroups(); len(g) != 0 {
		t.Fatalf("NIC groups left: %v", g)
	}
}

func TestMembershipLimits(t *testing.T) {
	s, _, n, _ := mcastHosts(t)
	ep := bound(t, s, "0.0.0.0:5000", false)
	for i := range MaxMemberships + 1 {
		err := ep.JoinGroup(n, netip.AddrFrom4([4]byte{239, 9, 0, byte(i)}))
		if want := i < MaxMemberships; (err == nil) != want || !want && err != syscall.ENOBUFS {
			t.Fatalf("join #%d: %v", i, err)
		}
	}
	ep2 := bound(t, s, "0.0.0.0:5001", false)
	for i := range MaxSourceFilter + 1 {
		err := ep2.JoinSourceGroup(n, mGroup, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
		if want := i < MaxSourceFilter; (err == nil) != want || !want && err != syscall.ENOBUFS {
			t.Fatalf("source #%d: %v", i, err)
		}
	}
	// Closing leaves everything.
	ep.Close()
	ep2.Close()
	if g := n.MulticastGroups(); len(g) != 0 {
		t.Fatalf("NIC groups left after close: %v", g)
	}
	if err := ep.JoinGroup(n, mGroup); err != ErrClosed {
		t.Fatalf("join after close: %v", err)
	}
}

func TestMembershipDefaultNIC(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	ep := New(s)
	defer ep.Close()
	// Only lo: no default NIC, as Linux without a route.
	if err := ep.JoinGroup(nil, mGroup); err != syscall.ENODEV {
		t.Fatalf("join without NIC: %v", err)
	}
	if err := ep.LeaveGroup(nil, mGroup); err != syscall.ENODEV {
		t.Fatalf("leave without NIC: %v", err)
	}
	s2, _, n2, _ := mcastHosts(t)
	ep2 := bound(t, s2, "0.0.0.0:5000", false)
	if err := ep2.JoinGroup(nil, mGroup); err != nil {
		t.Fatal(err)
	}
	if m := ep2.Memberships(); len(m) != 1 || m[0].NIC != n2.ID() {
		t.Fatalf("joined on %v, want NIC %d", m, n2.ID())
	}
	// Joining on lo works too (no reports).
	if err := ep2.JoinGroup(s2.NIC(1), mGroup); err != nil {
		t.Fatal(err)
	}
	if err := ep2.LeaveGroup(nil, mGroup); err != nil { // the first membership
		t.Fatal(err)
	}
	if m := ep2.Memberships(); len(m) != 1 || m[0].NIC != 1 {
		t.Fatalf("left the wrong one: %v", m)
	}
}

// recv reads one datagram within d, "none" when nothing came.
func recv(e *Endpoint, d time.Duration) string {
	cancel := make(chan struct{})
	timer := time.AfterFunc(d, func() { close(cancel) })
	defer timer.Stop()
	buf := make([]byte, 100)
	info, err := e.Read(buf, false, cancel)
	if err != nil {
		return "none"
	}
	return fmt.Sprintf("%s from %v ttl=%d", buf[:info.N], info.Src.Addr(), info.TTL)
}

const wait = 2 * time.Second
const quiet = 150 * time.Millisecond

func send(t *testing.T, e *Endpoint, msg string, to string) {
	t.Helper()
	if _, err := e.Write([]byte(msg), netip.MustParseAddrPort(to), nil); err != nil {
		t.Fatal(err)
	}
}

func TestMulticastAllAndBinding(t *testing.T) {
	a, b, na, _ := mcastHosts(t)
	joined := bound(t, a, "0.0.0.0:5000", true)
	if err := joined.JoinGroup(na, mGroup); err != nil {
		t.Fatal(err)
	}
	others := bound(t, a, "0.0.0.0:5000", true)     // same port, joined nothing
	otherPort := bound(t, a, "0.0.0.0:6000", false) // another port, joined nothing
	noAll := bound(t, a, "0.0.0.0:7000", false)
	noAll.UpdateOptions(func(o *Options) { o.MulticastAll = false })
	onGroup := bound(t, a, "239.1.2.3:8000", false) // bound to the group address
	onOther := bound(t, a, "239.1.2.4:8000", false)
	onUnicast := bound(t, a, "192.0.2.2:8000", false)

	sender := bound(t, b, "0.0.0.0:4000", false)
	send(t, sender, "p5000", "239.1.2.3:5000")
	send(t, sender, "p6000", "239.1.2.3:6000")
	send(t, sender, "p7000", "239.1.2.3:7000")
	send(t, sender, "p8000", "239.1.2.3:8000")
	send(t, sender, "unjoined", "239.1.2.4:5000")
	for _, c := range []struct {
		name string
		e    *Endpoint
		want string
	}{
		{"joined", joined, "p5000 from 192.0.2.1 ttl=1"},
		{"same port, IP_MULTICAST_ALL", others, "p5000 from 192.0.2.1 ttl=1"},
		{"other port, IP_MULTICAST_ALL", otherPort, "p6000 from 192.0.2.1 ttl=1"},
		{"IP_MULTICAST_ALL off", noAll, "none"},
		{"bound to the group", onGroup, "p8000 from 192.0.2.1 ttl=1"},
		{"bound to another group", onOther, "none"},
		{"bound to a unicast address", onUnicast, "none"},
	} {
		if got := recv(c.e, quiet); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if got := recv(c.e, 10*time.Millisecond); got != "none" {
			t.Errorf("%s: second datagram %s", c.name, got)
		}
	}
}

func TestMulticastLoopbackAndTTL(t *testing.T) {
	a, b, na, nb := mcastHosts(t)
	rx := bound(t, a, "0.0.0.0:5000", true)
	if err := rx.JoinGroup(na, mGroup); err != nil {
		t.Fatal(err)
	}
	remote := bound(t, b, "0.0.0.0:5000", true)
	if err := remote.JoinGroup(nb, mGroup); err != nil {
		t.Fatal(err)
	}
	tx := bound(t, a, "0.0.0.0:4000", false)

	// Loopback on (the default): our own socket and the remote host.
	send(t, tx, "loop", "239.1.2.3:5000")
	if got := recv(rx, wait); got != "loop from 192.0.2.2 ttl=1" {
		t.Fatalf("looped: %s", got)
	}
	if got := recv(remote, wait); got != "loop from 192.0.2.2 ttl=1" {
		t.Fatalf("remote: %s", got)
	}
	// Loopback off: only the wire.
	tx.UpdateOptions(func(o *Options) { o.MulticastLoop = false; o.MulticastTTL = 7 })
	send(t, tx, "noloop", "239.1.2.3:5000")
	if got := recv(remote, wait); got != "noloop from 192.0.2.2 ttl=7" {
		t.Fatalf("remote: %s", got)
	}
	if got := recv(rx, quiet); got != "none" {
		t.Fatalf("looped with loopback off: %s", got)
	}
	// TTL 0: host only.
	tx.UpdateOptions(func(o *Options) { o.MulticastLoop = true; o.MulticastTTL = 0 })
	send(t, tx, "ttl0", "239.1.2.3:5000")
	if got := recv(rx, wait); got != "ttl0 from 192.0.2.2 ttl=0" {
		t.Fatalf("looped ttl 0: %s", got)
	}
	if got := recv(remote, quiet); got != "none" {
		t.Fatalf("TTL 0 left the host: %s", got)
	}
	// A per-datagram TTL overrides.
	if _, err := tx.Write([]byte("wo"), netip.MustParseAddrPort("239.1.2.3:5000"), &WriteOptions{TTL: 9}); err != nil {
		t.Fatal(err)
	}
	if got := recv(remote, wait); got != "wo from 192.0.2.2 ttl=9" {
		t.Fatalf("remote: %s", got)
	}
	if got := recv(rx, wait); got != "wo from 192.0.2.2 ttl=9" {
		t.Fatalf("looped: %s", got)
	}
	// Out of lo: delivered once, never on the wire.
	lo := a.NIC(1)
	if err := rx.JoinGroup(lo, mGroup2); err != nil {
		t.Fatal(err)
	}
	tx.UpdateOptions(func(o *Options) { o.MulticastNIC = lo.ID(); o.MulticastTTL = 1; o.MulticastLoop = false })
	send(t, tx, "lo", "239.1.2.4:5000")
	if got := recv(rx, wait); got != "lo from 127.0.0.1 ttl=1" {
		t.Fatalf("via lo: %s", got)
	}
	if got := recv(rx, quiet); got != "none" {
		t.Fatalf("twice via lo: %s", got)
	}
}

// TestMembershipsMadeAfterClose checks the lazily made membership set: an
// endpoint closed before its first multicast call refuses joins, and a
// join racing Close never leaves the NIC in a group.
func TestMembershipsMadeAfterClose(t *testing.T) {
	s, _, n, _ := mcastHosts(t)
	ep := bound(t, s, "0.0.0.0:5000", false)
	if m := ep.Memberships(); m == nil || len(m) != 0 {
		t.Fatalf("fresh endpoint's memberships: %#v, want empty", m)
	}
	ep.Close()
	if err := ep.JoinGroup(n, mGroup); err != ErrClosed {
		t.Fatalf("first join after close: %v, want ErrClosed", err)
	}
	if err := ep.JoinSourceGroup(n, mGroup, netip.MustParseAddr("192.0.2.1")); err != ErrClosed {
		t.Fatalf("first source join after close: %v, want ErrClosed", err)
	}
	for range 200 {
		ep := New(s)
		done := make(chan struct{})
		go func() {
			defer close(done)
			ep.JoinGroup(n, mGroup)
		}()
		ep.Close()
		<-done
		if g := n.MulticastGroups(); len(g) != 0 {
			t.Fatalf("NIC groups left by a join racing Close: %v", g)
		}
	}
}
