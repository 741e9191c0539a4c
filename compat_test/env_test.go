package compat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/tapnet/tapnet/gonet"
)

const (
	// safety bounds every call a scenario expects to return on its own; a
	// call still blocked after it is recorded as "blocked" and unblocked by
	// closing its conn at cleanup.
	safety = 2 * time.Second
	// quiet is how long a scenario waits to conclude nothing will arrive.
	quiet = 150 * time.Millisecond

	ephemeralLo, ephemeralHi = 32768, 60999
)

// env is one scenario's view of a subject: it opens conns, names addresses
// by role and records observations.
type env struct {
	t     *testing.T
	s     Subject
	obs   Observation
	roles map[netip.AddrPort]string
	hosts map[netip.Addr]string
	// reach holds where peers send to reach a conn whose LocalAddr is the
	// unspecified address ([::]:port of a dual-stack listener).
	reach map[UDPConn]netip.AddrPort
}

func newEnv(t *testing.T, s Subject) *env {
	return &env{t: t, s: s, roles: make(map[netip.AddrPort]string), hosts: make(map[netip.Addr]string),
		reach: make(map[UDPConn]netip.AddrPort)}
}

func (e *env) rec(format string, args ...any) {
	e.obs = append(e.obs, fmt.Sprintf(format, args...))
}

// register names an address; later observations print the role instead.
func (e *env) register(role string, a net.Addr) {
	ua, ok := a.(*net.UDPAddr)
	if !ok || ua == nil {
		e.t.Fatalf("register %s: LocalAddr is %T, not *net.UDPAddr", role, a)
	}
	ap := ua.AddrPort()
	e.nameAddrPort(role, ap)
}

func (e *env) nameAddrPort(role string, ap netip.AddrPort) {
	e.roles[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = role
}

func (e *env) udpA(port int) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.s.AddrA, uint16(port)))
}

func (e *env) udpB(port int) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.s.AddrB, uint16(port)))
}

// bindA is what A's listeners bind: A's address, or the unspecified one
// (a nil IP, as net users write it) when the subject's A listens on the
// wildcard.
func (e *env) bindA(port int) *net.UDPAddr {
	if e.s.Wildcard {
		return &net.UDPAddr{Port: port}
	}
	return e.udpA(port)
}

// opened takes a freshly opened conn on host, fails the scenario if
// opening failed (setup is not what the scenario observes), names its
// local address and where peers reach it, and closes it at cleanup.
func (e *env) opened(role string, host netip.Addr, c UDPConn, err error) UDPConn {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("open %s: %v", role, err)
	}
	e.t.Cleanup(func() { c.Close() })
	la := local(c)
	if la == nil || !la.IP.IsUnspecified() {
		e.register(role, c.LocalAddr())
		return c
	}
	// Bound to the wildcard: LocalAddr shows as "any:srv" for role
	// "A:srv", so that it cannot pass for the host's own address, which
	// peers see and which keeps the role.
	e.register(wildcardRole(role), c.LocalAddr())
	ap := netip.AddrPortFrom(host, uint16(la.Port))
	e.reach[c] = ap
	e.nameAddrPort(role, ap)
	return c
}

// wildcardRole names the unspecified address of a role's port: "any:srv"
// for "A:srv".
func wildcardRole(role string) string {
	if i := strings.IndexByte(role, ':'); i >= 0 {
		return "any" + role[i:]
	}
	return "any:" + role
}

// at is where a peer sends to reach c: its LocalAddr, or its host's
// address when it is bound to the unspecified address.
func (e *env) at(c UDPConn) *net.UDPAddr {
	if ap, ok := e.reach[c]; ok {
		return net.UDPAddrFromAddrPort(ap)
	}
	return local(c)
}

func (e *env) listenA(role string) UDPConn {
	e.t.Helper()
	c, err := e.s.ListenA(e.s.network(), e.bindA(0))
	return e.opened(role, e.s.AddrA, c, err)
}

func (e *env) listenB(role string) UDPConn {
	e.t.Helper()
	c, err := e.s.ListenB(e.s.network(), e.udpB(0))
	return e.opened(role, e.s.AddrB, c, err)
}

func (e *env) dialA(role string, raddr *net.UDPAddr) UDPConn {
	e.t.Helper()
	c, err := e.s.DialA(e.s.network(), nil, raddr)
	return e.opened(role, e.s.AddrA, c, err)
}

func (e *env) dialB(role string, raddr *net.UDPAddr) UDPConn {
	e.t.Helper()
	c, err := e.s.DialB(e.s.network(), nil, raddr)
	return e.opened(role, e.s.AddrB, c, err)
}

// closedB returns an address on B where nothing listens, so that sending
// there draws an ICMP port unreachable.
func (e *env) closedB(role string) *net.UDPAddr {
	e.t.Helper()
	c, err := e.s.ListenB(e.s.network(), e.udpB(0))
	if err != nil {
		e.t.Fatalf("open %s: %v", role, err)
	}
	a := local(c)
	e.register(role, a)
	c.Close()
	return a
}

func local(c UDPConn) *net.UDPAddr {
	a, _ := c.LocalAddr().(*net.UDPAddr)
	return a
}

// send is a helper write whose failure breaks the scenario's premise.
func (e *env) send(c UDPConn, to *net.UDPAddr, msg string) {
	e.t.Helper()
	var err error
	if to == nil {
		_, err = c.Write([]byte(msg))
	} else {
		_, err = c.WriteToUDP([]byte(msg), to)
	}
	if err != nil {
		e.t.Fatalf("send %q: %v", msg, err)
	}
}

// settle lets datagrams already sent reach the receiver's queue.
func (e *env) settle() { time.Sleep(e.s.Settle) }

// recv reads one datagram with ReadFromUDP, waiting at most wait, records
// what came back and clears the deadline again.
func (e *env) recv(label string, c UDPConn, size int, wait time.Duration) *net.UDPAddr {
	b := make([]byte, size)
	c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := c.ReadFromUDP(b)
	c.SetReadDeadline(time.Time{})
	e.rec("%s: n=%d data=%q from=%s err=%s", label, n, b[:n], e.addr(from), e.err(err))
	return from
}

// read is recv for Read, which has no sender address.
func (e *env) read(label string, c UDPConn, size int, wait time.Duration) {
	b := make([]byte, size)
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(b)
	c.SetReadDeadline(time.Time{})
	e.rec("%s: n=%d data=%q err=%s", label, n, b[:n], e.err(err))
}

// outcome is the result of a call run in the background.
type outcome struct {
	n    int
	from any
	err  error
	took time.Duration
}

func background(f func() (int, any, error)) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		start := time.Now()
		n, from, err := f()
		ch <- outcome{n, from, err, time.Since(start)}
	}()
	return ch
}

// await waits for a background call for at most the safety bound and
// records whether it returned in time.
func (e *env) await(label string, ch <-chan outcome) outcome {
	select {
	case o := <-ch:
		e.rec("%s: returned before %v", label, safety)
		return o
	case <-time.After(safety):
		e.rec("%s: still blocked after %v", label, safety)
		return outcome{err: errors.New("blocked")}
	}
}

// addr renders an address by role. Unnamed addresses render by class: the
// host (A, B, any) and whether the port is ephemeral. Representation
// details user code can see are kept: the dynamic type, typed nils, IPv4
// addresses stored in 16 bytes, IPv4-mapped netip addresses.
func (e *env) addr(a any) string {
	switch v := a.(type) {
	case nil:
		return "nil"
	case *net.UDPAddr:
		if v == nil {
			return "(*net.UDPAddr)(nil)"
		}
		ap := v.AddrPort()
		s := e.role(ap)
		if len(v.IP) != 4 {
			s += fmt.Sprintf("/iplen=%d", len(v.IP))
		}
		if v.Zone != "" {
			s += "%" + v.Zone
		}
		return s
	case netip.AddrPort:
		if !v.IsValid() {
			return "invalid"
		}
		s := e.role(v)
		if v.Addr().Is4In6() {
			s += "/4in6"
		}
		return s
	case net.Addr:
		// Other types show by name, except unexported ones (net's
		// addrPortUDPAddr in errors from the AddrPort methods), which
		// another package can only imitate, not name.
		name := fmt.Sprintf("%T", v)
		if i := strings.LastIndexByte(name, '.'); i >= 0 && unicode.IsLower(rune(name[i+1])) {
			name = "unexported"
		}
		return fmt.Sprintf("%s(%s %s)", name, v.Network(), e.msg(v.String()))
	}
	return fmt.Sprintf("%T(%v)", a, a)
}

func (e *env) role(ap netip.AddrPort) string {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if r, ok := e.roles[ap]; ok {
		return r
	}
	host := e.host(ap.Addr())
	var port string
	switch p := int(ap.Port()); {
	case p == 0:
		port = "0"
	case p >= ephemeralLo && p <= ephemeralHi:
		port = "eph"
	default:
		port = "fixed"
	}
	return host + ":" + port
}

// host names an IP without a port. The kernel subject gives A and B the
// same IP, so a scenario that shows an unnamed address of B must say so
// with hostIs; otherwise A wins.
func (e *env) host(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "" // a nil net.IP prints as ":port" too
	case e.hosts[ip] != "":
		return e.hosts[ip]
	case ip == e.s.AddrA:
		return "A"
	case ip == e.s.AddrB:
		return "B"
	case ip.IsUnspecified():
		return "any"
	}
	return "other"
}

func (e *env) hostIs(name string, ip netip.Addr) { e.hosts[ip] = name }

var (
	// IPv4 addresses (with a port), and the IPv6 ones subjects use:
	// bracketed with a port, or bare.
	ipInText   = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+(:\d+)?|\[[0-9a-f:.]+(%\w+)?\]:\d+|\b2001:db8::[0-9a-f]+\b|(^|[^\w:])::1\b`)
	portInText = regexp.MustCompile(`(^|[ >]):\d+\b`)
)

// msg replaces addresses in an error string by roles: ip:port, bare IPs,
// and ":port" (the form of a *net.UDPAddr with a nil IP).
func (e *env) msg(s string) string {
	s = ipInText.ReplaceAllStringFunc(s, func(m string) string {
		if ap, err := netip.ParseAddrPort(m); err == nil {
			return e.role(ap)
		}
		if ip, err := netip.ParseAddr(m); err == nil {
			return e.host(ip)
		}
		if i := strings.Index(m, "::1"); i > 0 { // ::1 after a separator
			return m[:i] + e.host(netip.IPv6Loopback())
		}
		return m
	})
	return portInText.ReplaceAllStringFunc(s, func(m string) string {
		i := strings.IndexByte(m, ':')
		p, err := strconv.Atoi(m[i+1:])
		if err != nil {
			return m
		}
		return m[:i] + e.role(netip.AddrPortFrom(netip.Addr{}, uint16(p)))
	})
}

var sentinels = []struct {
	name string
	err  error
}{
	{"ErrClosed", net.ErrClosed},
	{"ErrDeadlineExceeded", os.ErrDeadlineExceeded},
	{"ErrWriteToConnected", net.ErrWriteToConnected},
}

// err renders everything user code can inspect about an error: its
// structure (types, OpError fields, wrapped sentinels and errnos),
// Timeout(), what errors.Is reports for the common sentinels, and the
// message with addresses replaced by roles.
func (e *env) err(err error) string {
	if err == nil {
		return "nil"
	}
	var b strings.Builder
	b.WriteString(e.shape(err))
	var ne net.Error
	if errors.As(err, &ne) {
		fmt.Fprintf(&b, " timeout=%v", ne.Timeout())
	}
	var is []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			is = append(is, s.name)
		}
	}
	if len(is) > 0 {
		fmt.Fprintf(&b, " is=%s", strings.Join(is, ","))
	}
	fmt.Fprintf(&b, " msg=%q", e.msg(linuxWording(err)))
	return b.String()
}

// linuxText is what Linux's strerror says for the errnos the tables meet.
// The tables record Linux; on another POSIX system net words the same
// errno its own way ("Connection refused" on js), which linuxWording undoes
// so that the rest of the observation can still be compared there.
var linuxText = map[syscall.Errno]string{
	syscall.EADDRINUSE:    "address already in use",
	syscall.EADDRNOTAVAIL: "cannot assign requested address",
	syscall.EAFNOSUPPORT:  "address family not supported by protocol",
	syscall.EAGAIN:        "resource temporarily unavailable",
	syscall.EBADF:         "bad file descriptor",
	syscall.ECONNREFUSED:  "connection refused",
	syscall.EDESTADDRREQ:  "destination address required",
	syscall.EHOSTUNREACH:  "no route to host",
	syscall.EINVAL:        "invalid argument",
	syscall.EMSGSIZE:      "message too long",
	syscall.ENETUNREACH:   "network is unreachable",
	syscall.ENOBUFS:       "no buffer space available",
	syscall.ENODEV:        "no such device",
	syscall.ENOPROTOOPT:   "protocol not available",
	syscall.ENOTCONN:      "transport endpoint is not connected",
	syscall.EPERM:         "operation not permitted",
}

// linuxWording is err's message with its errno worded as Linux words it.
func linuxWording(err error) string {
	msg := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if text, ok := linuxText[errno]; ok {
			if own := errno.Error(); own != text {
				msg = strings.Replace(msg, own, text, 1)
			}
		}
	}
	return msg
}

// opOnly renders just the outer *net.OpError, for errors whose cause may
// legitimately differ.
func (e *env) opOnly(err error) string {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return e.err(err)
	}
	e.t.Logf("full error: %v", err)
	return fmt.Sprintf("OpError{%s %s src=%s addr=%s err=...}", oe.Op, oe.Net, e.addr(oe.Source), e.addr(oe.Addr))
}

func (e *env) shape(err error) string {
	switch x := err.(type) {
	case nil:
		return "nil"
	case *net.OpError:
		return fmt.Sprintf("OpError{%s %s src=%s addr=%s err=%s}",
			x.Op, x.Net, e.addr(x.Source), e.addr(x.Addr), e.shape(x.Err))
	case *os.SyscallError:
		return fmt.Sprintf("SyscallError{%s %s}", x.Syscall, e.shape(x.Err))
	case syscall.Errno:
		if name, ok := errnoNames[x]; ok {
			return name
		}
		return fmt.Sprintf("Errno(%d)", int(x))
	case net.UnknownNetworkError:
		return fmt.Sprintf("UnknownNetworkError(%q)", string(x))
	case *net.AddrError:
		return fmt.Sprintf("AddrError{%q %q}", x.Err, e.msg(x.Addr))
	}
	// Sentinels by identity: gonet must return these very values.
	for _, s := range sentinels {
		if err == s.err {
			return s.name
		}
	}
	return fmt.Sprintf("%T(%q)", err, e.msg(err.Error()))
}

var errnoNames = map[syscall.Errno]string{
	syscall.EADDRINUSE:    "EADDRINUSE",
	syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.EAFNOSUPPORT:  "EAFNOSUPPORT",
	syscall.EAGAIN:        "EAGAIN",
	syscall.EBADF:         "EBADF",
	syscall.ECONNREFUSED:  "ECONNREFUSED",
	syscall.EDESTADDRREQ:  "EDESTADDRREQ",
	syscall.EHOSTUNREACH:  "EHOSTUNREACH",
	syscall.EINVAL:        "EINVAL",
	syscall.EMSGSIZE:      "EMSGSIZE",
	syscall.ENETUNREACH:   "ENETUNREACH",
	syscall.ENOBUFS:       "ENOBUFS",
	syscall.ENODEV:        "ENODEV",
	syscall.ENOTCONN:      "ENOTCONN",
	syscall.EPERM:         "EPERM",
}

// flagNames renders recvmsg flags symbolically.
func flagNames(f int) string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, fl := range []struct {
		bit  int
		name string
	}{{gonet.MsgTrunc, "MSG_TRUNC"}, {gonet.MsgCtrunc, "MSG_CTRUNC"}} {
		if f&fl.bit != 0 {
			parts = append(parts, fl.name)
			f &^= fl.bit
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, "|")
}
