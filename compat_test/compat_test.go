package compat

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// UDPConn is the method set user code relies on when it holds a *net.UDPConn.
// Every subject hands out values of this interface, so one scenario body
// drives the kernel and tapnet alike.
type UDPConn interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	ReadFromUDP(b []byte) (int, *net.UDPAddr, error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
	Close() error
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
}

var _ UDPConn = (*net.UDPConn)(nil)

// ---- tapnet: add the gonet assertion here once gonet exists ----

// Subject is a pair of hosts: A runs the implementation under test, B is the
// peer it talks to. Scenarios observe A; B only sends and receives for it.
type Subject struct {
	Name         string
	AddrA, AddrB netip.Addr

	ListenA func(network string, laddr *net.UDPAddr) (UDPConn, error)
	DialA   func(network string, laddr, raddr *net.UDPAddr) (UDPConn, error)
	ListenB func(network string, laddr *net.UDPAddr) (UDPConn, error)
	DialB   func(network string, laddr, raddr *net.UDPAddr) (UDPConn, error)

	// Setup, if set, runs at the start of every scenario, before any
	// Listen/Dial call; it may build fresh hosts and register their teardown
	// with t.Cleanup. Scenarios run one at a time, so Setup may swap state
	// that the Listen/Dial funcs close over.
	Setup func(t *testing.T)

	// Diag, if set, describes the hosts' state (counters, neighbours) for
	// the log when a scenario's observation differs: the clue to a failure
	// that does not come again when rerun.
	Diag func(t *testing.T) string

	// Settle is how long a scenario waits for datagrams already sent to be
	// queued at the receiver before it checks queue contents without reading
	// (an asynchronous link needs longer than kernel loopback).
	Settle time.Duration

	// Skip maps a scenario name or tag to the reason the subject cannot run
	// it (yet).
	Skip map[string]string

	// Want maps a scenario name to the observation this subject produces on
	// purpose instead of the kernel's. Each entry is a deliberate difference
	// and must be listed in doc.go.
	Want map[string]Observation

	// Network is what the env's helpers open ("udp" when empty): the
	// family dimension of the table (see family).
	Network string

	// Wildcard makes A's listeners bind the unspecified address (a
	// dual-stack [::]:port for "udp"); peers then send to AddrA.
	Wildcard bool

	// AltA and AltB are the hosts' addresses of the other IP version,
	// which scenarios tagged "dual" use to reach a dual-stack A both ways.
	AltA, AltB netip.Addr
}

func (s *Subject) network() string {
	if s.Network == "" {
		return "udp"
	}
	return s.Network
}

// family is one way to run the whole table: the network the helpers open
// and the subjects' addresses of that family. The IPv4 family's kernel run
// is checked against the table; another family's kernel run is the
// baseline of its other subjects.
type family struct {
	name    string            // subject name suffix: "" for IPv4
	network string            // what the helpers open
	v6      bool              // the hosts talk over IPv6
	dual    bool              // A listens on the wildcard: a dual-stack socket
	skip    map[string]string // scenarios or tags the family cannot run
}

var ipv4Only = map[string]string{"ipv4": "the scenario asks for IPv4 addresses"}

// The dual-stack families open "udp" on the unspecified address for A's
// listeners, as net.ListenUDP("udp", &net.UDPAddr{Port: p}) does: one
// AF_INET6 socket without IPV6_V6ONLY, whose IPv4 peers (dual-v4) show as
// IPv4-mapped addresses and IPv6 peers (dual-v6) as themselves.
var families = []family{
	{name: "", network: "udp"},
	{name: "-udp6", network: "udp6", v6: true, skip: ipv4Only},
	{name: "-dual-v4", network: "udp", dual: true},
	{name: "-dual-v6", network: "udp", v6: true, dual: true, skip: ipv4Only},
}

// Observation is what user code could see during one scenario: one fact per
// line, in the order the scenario made it, with addresses replaced by roles
// ("A:srv", "B:peer", "A:eph") so that observations compare across subjects.
type Observation []string

func kernelListen(network string, laddr *net.UDPAddr) (UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err // a nil interface, not a typed nil *net.UDPConn
	}
	return c, nil
}

func kernelDial(network string, laddr, raddr *net.UDPAddr) (UDPConn, error) {
	c, err := net.DialUDP(network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func kernelSubject(f family) Subject {
	lo, alt := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	if f.v6 {
		lo, alt = alt, lo
	}
	if !f.dual {
		alt = netip.Addr{}
	}
	return Subject{
		AltA:     alt,
		AltB:     alt,
		Name:     "kernel" + f.name,
		Network:  f.network,
		Wildcard: f.dual,
		AddrA:    lo,
		AddrB:    lo,
		ListenA:  kernelListen,
		DialA:    kernelDial,
		ListenB:  kernelListen,
		DialB:    kernelDial,
		Settle:   20 * time.Millisecond,
	}
}

// subjects returns every subject to test; the kernel must come first because
// it produces the baseline the others are compared with.
func subjects(f family) []Subject {
	subs := []Subject{kernelSubject(f)}
	if *selfCheck {
		again := kernelSubject(f)
		again.Name = "kernel-again" + f.name
		subs = append(subs, again)
	}
	subs = append(subs, tapnetPipeSubject(f), tapnetTAPSubject(f))
	for i := range subs {
		if subs[i].Skip == nil {
			subs[i].Skip = make(map[string]string)
		}
		for k, v := range f.skip {
			subs[i].Skip[k] = v
		}
		if !f.dual {
			subs[i].Skip["dual"] = "the scenario needs a dual-stack A"
		}
	}
	return subs
}

// skipUnlessLinux skips a table test where gonet's errors cannot be
// compared with the tables, which record Linux's kernel: on Windows gonet
// returns Winsock's errnos and call names, as net does there. Elsewhere
// only the wording of an errno differs, and the renderers undo that
// (linuxWording).
func skipUnlessLinux(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the tables record Linux's errnos; gonet's on Windows are Winsock's, as net's are")
	}
}

// printObs helps write the table: go test ./compat_test -run TestCompat/kernel -compat.print
var printObs = flag.Bool("compat.print", false, "print each observation as a Go literal")

// selfCheck runs the kernel a second time as if it were a new subject, which
// exercises the baseline comparison and shows whether observations are stable.
var selfCheck = flag.Bool("compat.selfcheck", false, "compare a second kernel run with the first")

func TestCompat(t *testing.T) {
	skipUnlessLinux(t)
	// When -run filters the kernel out, the baseline stays nil and every
	// subject is checked against the table instead.
	for fi, f := range families {
		var baseline map[string]Observation
		for i, s := range subjects(f) {
			t.Run(s.Name, func(t *testing.T) {
				if i == 0 && runtime.GOOS != "linux" {
					// Then tapnet meets the IPv4 table itself.
					t.Skipf("the tables record Linux's kernel, not %s's", runtime.GOOS)
				}
				// Only the IPv4 kernel run has a table to meet; another
				// family's kernel run is just its baseline.
				got := runAll(t, s, baseline, fi == 0)
				if i == 0 {
					baseline = got
				}
			})
		}
	}
}

// runAll runs every scenario against s and returns the observations. With a
// nil baseline (the kernel run) each observation is checked against the
// table's expectation when table is set; otherwise against the baseline, which is the kernel's
// actual observation, unless s.Want declares a deliberate difference.
func runAll(t *testing.T, s Subject, baseline map[string]Observation, table bool) map[string]Observation {
	if s.Settle == 0 {
		s.Settle = 20 * time.Millisecond
	}
	got := make(map[string]Observation)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if why := skipReason(s, sc); why != "" {
				t.Skip(why)
			}
			if s.Setup != nil {
				s.Setup(t)
			}
			e := newEnv(t, s)
			sc.run(e)
			got[sc.name] = e.obs
			if *printObs {
				var b strings.Builder
				for _, l := range e.obs {
					fmt.Fprintf(&b, "\t`%s`,\n", l)
				}
				t.Logf("observation:\n%s", b.String())
			}

			want, from := sc.want, "table"
			if w, ok := s.Want[sc.name]; ok {
				want, from = w, "subject's deliberate difference"
			} else if baseline == nil && !table {
				return
			} else if baseline != nil {
				b, ok := baseline[sc.name]
				if !ok {
					t.Skip("no kernel baseline for this scenario")
				}
				want, from = b, "kernel"
			}
			if !slices.Equal(e.obs, want) {
				t.Errorf("observation differs from %s:\n%s", from, diff(want, e.obs))
				if s.Diag != nil {
					t.Logf("state after the scenario:\n%s", s.Diag(t))
				}
			}
		})
	}
	return got
}

func skipReason(s Subject, sc scenario) string {
	if why, ok := s.Skip[sc.name]; ok {
		return why
	}
	for _, tag := range sc.tags {
		if why, ok := s.Skip[tag]; ok {
			return why
		}
	}
	return ""
}

// diff lists both observations line by line, marking lines that differ, so
// that a mismatch can be read without rerunning.
func diff(want, got Observation) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w == g {
			b.WriteString("    " + w + "\n")
			continue
		}
		if i < len(want) {
			b.WriteString("  - " + w + "\n")
		}
		if i < len(got) {
			b.WriteString("  + " + g + "\n")
		}
	}
	return b.String()
}
