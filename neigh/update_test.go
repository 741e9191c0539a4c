package neigh

import (
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// Updates as the protocols send them (see Update).
var (
	naSO  = Update{MAC: mac(0xb), Solicited: true, Override: true}
	naS   = Update{MAC: mac(0xb), Solicited: true}
	naO   = Update{MAC: mac(0xb), Override: true}
	na    = Update{MAC: mac(0xb)}
	nsB   = Update{MAC: mac(0xb), Override: true, Create: true}
	arpUs = Update{MAC: mac(0xb), Solicited: true, Override: true, IgnoreLockTime: true, Create: true}
	garp  = Update{MAC: mac(0xb), Solicited: true, Override: true, IgnoreLockTime: true}
)

// withMAC returns u claiming m instead.
func withMAC(u Update, m ethernet.MAC) Update { u.MAC = m; return u }

// noMAC returns u without a link-layer address.
func noMAC(u Update) Update { u.MAC, u.NoMAC = ethernet.MAC{}, true; return u }

// TestUpdateRules is RFC 4861 §7.2.5 (advertisements: S, O, with or
// without a target address) and §7.2.3 (solicitations with a source
// address: create or update, stale) applied to an entry in every state,
// cached at MAC A (0xa); B (0xb) is another address. An incomplete entry
// holds two packets, so an unsolicited answer leaves it in Delay: its
// packets used the new address.
func TestUpdateRules(t *testing.T) {
	a, b := mac(0xa), mac(0xb)
	setups := map[string]func(*env){
		"none":       func(*env) {},
		"incomplete": func(e *env) { e.tab.Resolve(ip(1), newPkt(1)); e.tab.Resolve(ip(1), newPkt(2)) },
		"empty":      func(e *env) { e.tab.Resolve(ip(1), nil) }, // incomplete without packets
		"reachable":  func(e *env) { e.learn(ip(1), a) },
		"stale":      func(e *env) { e.learn(ip(1), a); e.clk.Advance(31 * time.Second) },
		"delay": func(e *env) {
			e.learn(ip(1), a)
			e.clk.Advance(31 * time.Second)
			e.tab.Resolve(ip(1), nil)
		},
		"probe": func(e *env) {
			e.learn(ip(1), a)
			e.clk.Advance(31 * time.Second)
			e.tab.Resolve(ip(1), nil)
			e.clk.Advance(5 * time.Second)
		},
	}
	for _, tc := range []struct {
		from    string
		name    string
		u       Update
		want    State // 0: no entry
		wantMAC ethernet.MAC
		flushed bool
	}{
		{"none", "NA", naSO, 0, ethernet.MAC{}, false},
		{"none", "NS", nsB, Stale, b, false},
		{"none", "NS without address", noMAC(nsB), 0, ethernet.MAC{}, false},
		{"none", "ARP request to us", arpUs, Reachable, b, false},
		{"none", "ARP reply", naSO, 0, ethernet.MAC{}, false},
		{"none", "gratuitous ARP", garp, 0, ethernet.MAC{}, false},

		{"incomplete", "NA S", naS, Reachable, b, true},
		{"incomplete", "NA SO", naSO, Reachable, b, true},
		{"incomplete", "NA O", naO, Delay, b, true},
		{"incomplete", "NA", na, Delay, b, true},
		{"incomplete", "NA S without address", noMAC(naS), Incomplete, ethernet.MAC{}, false},
		{"incomplete", "NS", nsB, Delay, b, true},
		{"empty", "NA O", naO, Stale, b, false},
		{"empty", "NA S", naS, Reachable, b, false},

		{"reachable", "NA SO same", withMAC(naSO, a), Reachable, a, false},
		{"reachable", "NA S same", withMAC(naS, a), Reachable, a, false},
		{"reachable", "NA O same", withMAC(naO, a), Reachable, a, false},
		{"reachable", "NA same", withMAC(na, a), Reachable, a, false},
		{"reachable", "NA SO new", naSO, Reachable, b, false},
		{"reachable", "NA O new", naO, Stale, b, false},
		{"reachable", "NA S new", naS, Stale, a, false},
		{"reachable", "NA new", na, Stale, a, false},
		{"reachable", "NA S without address", noMAC(naS), Reachable, a, false},
		{"reachable", "NA without address", noMAC(na), Reachable, a, false},
		{"reachable", "NS new", nsB, Stale, b, false},
		{"reachable", "NS same", withMAC(nsB, a), Reachable, a, false},
		{"reachable", "ARP request to us new", arpUs, Reachable, b, false},
		{"reachable", "gratuitous ARP new", garp, Reachable, b, false},
		{"incomplete", "ARP request to us", arpUs, Reachable, b, true},
		{"probe", "gratuitous ARP new", garp, Reachable, b, false},

		{"stale", "NA SO same", withMAC(naSO, a), Reachable, a, false},
		{"stale", "NA O same", withMAC(naO, a), Stale, a, false},
		{"stale", "NA S new", naS, Stale, a, false},
		{"stale", "NA new", na, Stale, a, false},
		{"stale", "NA O new", naO, Stale, b, false},
		{"stale", "NA SO new", naSO, Reachable, b, false},
		{"stale", "NA S without address", noMAC(naS), Reachable, a, false},

		{"delay", "NA S same", withMAC(naS, a), Reachable, a, false},
		{"delay", "NA O same", withMAC(naO, a), Delay, a, false},
		{"delay", "NA new", na, Delay, a, false},
		{"delay", "NA S new", naS, Delay, a, false},
		{"delay", "NA O new", naO, Stale, b, false},
		{"delay", "NS new", nsB, Stale, b, false},

		{"probe", "NA SO new", naSO, Reachable, b, false},
		{"probe", "NA S new", naS, Probe, a, false},
		{"probe", "NA O new", naO, Stale, b, false},
		{"probe", "NA without address", noMAC(na), Probe, a, false},
		{"probe", "NA S without address", noMAC(naS), Reachable, a, false},
	} {
		t.Run(tc.from+"/"+tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			setups[tc.from](e)
			e.tab.Update(ip(1), tc.u)
			en, ok := e.tab.Lookup(ip(1))
			if en.State != tc.want || ok != (tc.want != 0) || en.MAC != tc.wantMAC {
				t.Fatalf("%+v %v; want %v at %v", en, ok, tc.want, tc.wantMAC)
			}
			if flushed := len(e.rec.resolved[ip(1)]) == 2; flushed != tc.flushed {
				t.Fatalf("flushed %v, want %v", e.rec.resolved[ip(1)], tc.flushed)
			}
			checkTable(t, e.tab)
			// Whatever the state, the entry goes on by the machine's
			// rules: after a while it is reachable, stale or gone.
			e.clk.Advance(time.Minute)
			checkTable(t, e.tab)
		})
	}
}

// TestUpdateCounts checks the counters of the update paths: an answer
// without an entry is unsolicited and makes none.
func TestUpdateCounts(t *testing.T) {
	e := newEnv(t, Config{})
	e.tab.Update(ip(1), naSO)
	e.tab.Update(ip(2), nsB)
	e.tab.Resolve(ip(3), nil)
	e.tab.Update(ip(3), naSO)
	st := e.tab.Stats()
	if st.UnsolicitedSeen.Load() != 1 || st.Updates.Load() != 2 || st.Resolved.Load() != 1 || e.tab.Len() != 2 {
		t.Fatalf("unsolicited %d, updates %d, resolved %d, entries %d; want 1, 2, 1, 2",
			st.UnsolicitedSeen.Load(), st.Updates.Load(), st.Resolved.Load(), e.tab.Len())
	}
}

// TestRouterFlag checks the IsRouter flag: an advertisement's R sets or
// clears it, a solicitation keeps it, a router advertisement makes a
// router entry, and a router turning host is reported once (RFC 4861
// §7.2.5). An advertisement that is ignored changes nothing.
func TestRouterFlag(t *testing.T) {
	e := newEnv(t, Config{})
	router := func() bool { en, _ := e.tab.Lookup(ip(1)); return en.Router }
	ra := Update{MAC: mac(1), Override: true, Create: true, Router: IsRouter}
	e.tab.Update(ip(1), ra)
	if en, _ := e.tab.Lookup(ip(1)); en.State != Stale || !en.Router {
		t.Fatalf("router advertisement made %+v, want a stale router", en)
	}
	e.tab.Update(ip(1), withMAC(nsB, mac(1)))
	if !router() {
		t.Fatal("a solicitation cleared IsRouter")
	}
	e.tab.Update(ip(1), Update{MAC: mac(2), Solicited: true, Router: NotRouter})
	if !router() || len(e.rec.routerLost) != 0 {
		t.Fatal("an ignored advertisement (new MAC, no Override) changed IsRouter")
	}
	e.tab.Update(ip(1), Update{MAC: mac(1), Solicited: true, Router: NotRouter})
	e.tab.Update(ip(1), Update{MAC: mac(1), Solicited: true, Router: NotRouter})
	if router() || len(e.rec.routerLost) != 1 || e.rec.routerLost[0] != ip(1) {
		t.Fatalf("router turning host: router %v, reported %v; want false, once", router(), e.rec.routerLost)
	}
	e.tab.Update(ip(1), Update{NoMAC: true, Router: IsRouter})
	if !router() {
		t.Fatal("an advertisement without address did not set IsRouter")
	}
}

// TestLockTime checks Linux's locktime: once an entry changed, an
// overriding update claiming another address is ignored (and counted)
// until LockTime has passed, unless it ignores the lock; the same address
// still confirms; going stale is a change.
func TestLockTime(t *testing.T) {
	e := newEnv(t, Config{LockTime: time.Second})
	macOf := func() ethernet.MAC { en, _ := e.tab.Lookup(ip(1)); return en.MAC }
	st := e.tab.Stats()
	e.tab.Resolve(ip(1), nil)
	e.reply(ip(1), mac(1))
	e.clk.Advance(time.Second)
	e.reply(ip(1), mac(2))
	if macOf() != mac(1) || st.LockTimeIgnored.Load() != 1 {
		t.Fatalf("reply at LockTime: %v, ignored %d; want 1, 1", macOf(), st.LockTimeIgnored.Load())
	}
	e.reply(ip(1), mac(1))
	if st.LockTimeIgnored.Load() != 1 || e.state(ip(1)) != Reachable {
		t.Fatal("the same address did not confirm the entry")
	}
	e.tab.Update(ip(1), Update{MAC: mac(3), Solicited: true, Override: true, IgnoreLockTime: true})
	if macOf() != mac(3) {
		t.Fatal("IgnoreLockTime did not pass the lock")
	}
	e.clk.Advance(time.Second + time.Nanosecond)
	e.reply(ip(1), mac(4))
	if macOf() != mac(4) {
		t.Fatal("reply after LockTime ignored")
	}
	// Stale at 30s after the last confirmation: locked until 31s.
	e.clk.Advance(30*time.Second + 500*time.Millisecond)
	e.reply(ip(1), mac(5))
	if macOf() != mac(4) || e.state(ip(1)) != Stale {
		t.Fatalf("reply 0.5s after going stale: %v %v, want 4 stale", macOf(), e.state(ip(1)))
	}
	e.clk.Advance(time.Second)
	e.reply(ip(1), mac(5))
	if macOf() != mac(5) || e.state(ip(1)) != Reachable {
		t.Fatalf("reply 1.5s after going stale: %v %v, want 5 reachable", macOf(), e.state(ip(1)))
	}
}
