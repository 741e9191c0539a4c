package dhcpclient_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapnet/tapnet/dhcpclient"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// fastClock runs speed times faster than real time, so that dnsmasq's
// shortest lease (2 minutes) passes its renewal, rebinding and expiry times
// within seconds on the client's side. dnsmasq keeps real time: for it the
// lease is younger than for the client, which only makes it more willing
// to renew.
type fastClock struct {
	start time.Time
	speed time.Duration
}

func (c fastClock) Now() time.Time {
	return c.start.Add(time.Since(c.start) * c.speed)
}

func (c fastClock) After(d time.Duration) <-chan time.Time { return time.After(d / c.speed) }

// dnsmasqEnv is a TAP whose kernel side runs dnsmasq in a namespace, and a
// tapnet stack on it without an address.
type dnsmasqEnv struct {
	t      *testing.T
	ns     *netns.NS
	dev    *tap.Device
	s      *stack.Stack
	nic    *stack.NIC
	leases string
	srv    *exec.Cmd
	events chan dhcpclient.Event
	stderr bytes.Buffer
}

func newDnsmasqEnv(t *testing.T) *dnsmasqEnv {
	netns.RequireRoot(t)
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		if testing.Short() {
			t.Skip("no dnsmasq")
		}
		t.Fatal("dnsmasq (Debian's dnsmasq-base) is needed: ", err)
	}
	ns := netns.New(t)
	e := &dnsmasqEnv{t: t, ns: ns, dev: netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{}),
		leases: filepath.Join(t.TempDir(), "leases"), events: make(chan dhcpclient.Event, 64)}
	e.s = stack.New(stack.Options{})
	t.Cleanup(func() { e.s.Close() })
	var err error
	if e.nic, err = e.s.AddNIC(e.dev, stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// startServer runs dnsmasq on the kernel side with extra options.
func (e *dnsmasqEnv) startServer(extra ...string) {
	args := netns.DnsmasqDHCP(e.dev.Name(), e.leases, "--dhcp-authoritative", "--no-ping",
		"--host-record=printer.tapnet.test,192.0.2.77")
	e.srv = e.ns.Command(e.t, append(args, extra...)...)
	e.srv.Stderr = &e.stderr
	if err := e.srv.Start(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dnsmasqEnv) stopServer() {
	e.srv.Process.Kill()
	e.srv.Wait()
	if e.stderr.Len() > 0 {
		e.t.Logf("dnsmasq: %s", e.stderr.String())
		e.stderr.Reset()
	}
}

func (e *dnsmasqEnv) start(cfg dhcpclient.Config) *dhcpclient.Client {
	cfg.OnEvent = func(ev dhcpclient.Event) { e.events <- ev }
	c, err := dhcpclient.Start(e.s, e.nic, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// await waits (bounded) for an event of kind, failing on any other but
// the ones listed in skip.
func (e *dnsmasqEnv) await(kind dhcpclient.EventKind, within time.Duration) dhcpclient.Lease {
	e.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-e.events:
			if ev.Kind == kind {
				return ev.Lease
			}
			e.t.Logf("event %v %v", ev.Kind, ev.Lease.Addr)
		case <-deadline:
			e.t.Fatalf("no %v event within %v", kind, within)
		}
	}
}

// TestDnsmasqLeaseRenewRebindExpire walks a lease through its life against
// dnsmasq: obtained (the kernel pings tapnet at it, names resolve through
// dnsmasq's DNS), renewed at T1, rebound at T2 when the server comes back
// with another address, expired when the server is gone. Its interface MTU
// (option 26) holds while it lasts.
func TestDnsmasqLeaseRenewRebindExpire(t *testing.T) {
	e := newDnsmasqEnv(t)
	e.startServer("--dhcp-option=option:router,192.0.2.1", "--dhcp-option=26,1400", "--dhcp-option=option:domain-search,nope.test,tapnet.test")
	c := e.start(dhcpclient.Config{Clock: fastClock{time.Now(), 10}, Timing: dhcpclient.Timing{MinRenewRetry: 20 * time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.await(dhcpclient.EventBound, time.Second)
	if l.Addr.Bits() != 24 || !netip.MustParsePrefix("192.0.2.48/28").Contains(l.Addr.Addr()) || l.Server != netip.MustParseAddr("192.0.2.1") ||
		len(l.Routers) != 1 || len(l.DNS) != 1 || l.DNS[0] != l.Server || l.Duration != 2*time.Minute {
		t.Fatalf("lease %+v", l)
	}
	if got := e.nic.Addresses(); len(got) != 1 || got[0] != l.Addr {
		t.Fatalf("NIC addresses %v, want %v", got, l.Addr)
	}
	if l.MTU != 1400 || e.nic.MTU() != 1400 {
		t.Fatalf("lease MTU %d, NIC MTU %d, want 1400", l.MTU, e.nic.MTU())
	}
	if rs := e.s.Routes(); len(rs) != 2 || rs[1].Gateway != l.Routers[0] {
		t.Fatalf("routes %v, want the subnet's and a default route via %v", rs, l.Routers[0])
	}
	e.ns.Exec(t, "ping", "-c", "1", "-W", "5", l.Addr.Addr().String())
	ips, err := c.Resolver().LookupNetIP(ctx, "ip4", "printer.tapnet.test.")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("192.0.2.77") {
		t.Fatalf("resolving through dnsmasq: %v, %v", ips, err)
	}
	// A relative name through the lease's search list (option 119).
	ips, err = c.LookupNetIP(ctx, "ip4", "printer")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("192.0.2.77") || !slices.Equal(l.Search, []string{"nope.test", "tapnet.test"}) {
		t.Fatalf("resolving printer with search list %q: %v, %v", l.Search, ips, err)
	}

	// T1 is a minute of lease time: 6 s here.
	if r := e.await(dhcpclient.EventRenewed, 30*time.Second); r.Addr != l.Addr {
		t.Fatalf("renewed %v, want %v", r.Addr, l.Addr)
	}

	// The server comes back at another address: renewals to the old one
	// go unanswered, and at T2 the broadcast REBINDING reaches the new.
	e.stopServer()
	e.ns.IP(t, "addr", "del", "192.0.2.1/24", "dev", e.dev.Name()) // first: it would take its secondaries along
	e.ns.IP(t, "addr", "add", "192.0.2.2/24", "dev", e.dev.Name())
	e.startServer("--dhcp-option=option:router,192.0.2.2", "--dhcp-option=26,1400")
	r := e.await(dhcpclient.EventRebound, 60*time.Second)
	if r.Addr != l.Addr || r.Server != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("rebound %v from %v, want %v from 192.0.2.2", r.Addr, r.Server, l.Addr)
	}
	if rs := e.s.Routes(); len(rs) != 2 || rs[1].Gateway != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("routes after rebinding %v", rs)
	}

	// Without a server the lease runs out: address and routes go.
	e.stopServer()
	e.await(dhcpclient.EventExpired, 60*time.Second)
	if got := e.nic.Addresses(); len(got) != 0 {
		t.Fatalf("addresses after expiry: %v", got)
	}
	if got, link := e.nic.MTU(), e.dev.Info().MTU; got != link {
		t.Fatalf("MTU %d after expiry, want the link's %d", got, link)
	}
	if rs := e.s.Routes(); len(rs) != 0 {
		t.Fatalf("routes after expiry: %v", rs)
	}
	st := c.Stats()
	t.Logf("discovers %d requests %d acks %d renewed %d rebound %d expired %d ignored %d",
		st.Discovers.Load(), st.Requests.Load(), st.Acks.Load(), st.Renewed.Load(), st.Rebound.Load(), st.Expired.Load(), st.Ignored())
}

// TestDnsmasqDeclineAndRelease: dnsmasq is told to give this MAC an address
// the kernel already has; the client's probe finds it taken, DECLINEs it,
// and takes the next offer. Close releases that lease.
func TestDnsmasqDeclineAndRelease(t *testing.T) {
	e := newDnsmasqEnv(t)
	taken := netip.MustParseAddr("192.0.2.50")
	e.ns.IP(t, "addr", "add", taken.String()+"/24", "dev", e.dev.Name())
	e.startServer(fmt.Sprintf("--dhcp-host=%s,%s", e.nic.MAC(), taken))
	fastProbe := stack.ACDConfig{ProbeWait: 10 * time.Millisecond, ProbeMin: 50 * time.Millisecond, ProbeMax: 100 * time.Millisecond,
		AnnounceWait: 200 * time.Millisecond, AnnounceInterval: 100 * time.Millisecond}
	// The kernel owns the address on offer, so replies to it would stay
	// in the kernel: ask for broadcasts.
	c := e.start(dhcpclient.Config{BroadcastReplies: true, CheckAddress: true, Probe: fastProbe, Clock: fastClock{time.Now(), 10}})
	if d := e.await(dhcpclient.EventDeclined, 30*time.Second); d.Addr.Addr() != taken {
		t.Fatalf("declined %v, want %v", d.Addr, taken)
	}
	l := e.await(dhcpclient.EventBound, 30*time.Second)
	if l.Addr.Addr() == taken {
		t.Fatal("bound to the declined address")
	}
	if c.Stats().Declines.Load() != 1 {
		t.Fatalf("%d declines", c.Stats().Declines.Load())
	}
	c.Close()
	if got := e.nic.Addresses(); len(got) != 0 {
		t.Fatalf("addresses after Close: %v", got)
	}
	if c.Stats().Releases.Load() != 1 {
		t.Fatal("no RELEASE sent")
	}
}
