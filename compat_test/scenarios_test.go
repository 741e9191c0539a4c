package compat

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one row of the table. run performs operations on the
// subject's hosts and records what user code sees; want is what Linux
// shows, which the kernel run checks.
type scenario struct {
	name string
	// tags name features a subject may lack, for Subject.Skip:
	//   frag: needs IP fragmentation and reassembly both ways.
	//   udp6: asks for the "udp6" network.
	//   ipv4: asks for IPv4 addresses ("udp4"), so the IPv6 family skips it.
	//   dual: talks to a dual-stack A over IPv4 and IPv6 (AltA, AltB).
	tags []string
	run  func(e *env)
	want Observation
}

// sameAddrPort compares addresses as a peer would: an IPv4-mapped
// address (as a dual-stack socket reports IPv4 peers) equals its IPv4 form.
func sameAddrPort(a, b *net.UDPAddr) bool {
	x, y := a.AddrPort(), b.AddrPort()
	return x.Addr().Unmap() == y.Addr().Unmap() && x.Port() == y.Port()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// past is a deadline that has already expired.
func past() time.Time { return time.Now().Add(-time.Second) }

// soon is a deadline that bounds a call expected to succeed.
func soon() time.Time { return time.Now().Add(safety) }

var scenarios = []scenario{
	// ---- basic I/O ----
	{
		name: "echo/A-listens",
		run: func(e *env) {
			a := e.listenA("A:srv")
			b := e.dialB("B:cli", e.at(a))
			e.send(b, nil, "ping")
			from := e.recv("A ReadFromUDP", a, 64, safety)
			n, err := a.WriteToUDP([]byte("pong"), from)
			e.rec("A WriteToUDP: n=%d err=%s", n, e.err(err))
			e.read("B Read", b, 64, safety)
		},
		want: Observation{
			`A ReadFromUDP: n=4 data="ping" from=B:cli err=nil`,
			`A WriteToUDP: n=4 err=nil`,
			`B Read: n=4 data="pong" err=nil`,
		},
	},
	{
		name: "echo/A-dials",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			n, err := a.Write([]byte("ping"))
			e.rec("A Write: n=%d err=%s", n, e.err(err))
			from := e.recv("B ReadFromUDP", b, 64, safety)
			e.send(b, from, "pong")
			e.read("A Read", a, 64, safety)
		},
		want: Observation{
			`A Write: n=4 err=nil`,
			`B ReadFromUDP: n=4 data="ping" from=A:cli err=nil`,
			`A Read: n=4 data="pong" err=nil`,
		},
	},
	{
		name: "read/ReadFrom",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, from, err := a.ReadFrom(buf)
			e.rec("ReadFrom: n=%d data=%q from=%s type=%T err=%s", n, buf[:n], e.addr(from), from, e.err(err))
		},
		want: Observation{
			`ReadFrom: n=5 data="hello" from=B:peer type=*net.UDPAddr err=nil`,
		},
	},
	{
		name: "read/ReadFromUDP",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, from, err := a.ReadFromUDP(buf)
			// addr renders a 16-byte IP as "/iplen=16": the kernel gives 4.
			e.rec("ReadFromUDP: n=%d data=%q from=%s err=%s", n, buf[:n], e.addr(from), e.err(err))
		},
		want: Observation{
			`ReadFromUDP: n=5 data="hello" from=B:peer err=nil`,
		},
	},
	{
		name: "read/ReadFromUDPAddrPort",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, from, err := a.ReadFromUDPAddrPort(buf)
			e.rec("ReadFromUDPAddrPort: n=%d data=%q from=%s is4=%v err=%s", n, buf[:n], e.addr(from), from.Addr().Is4(), e.err(err))
		},
		want: Observation{
			`ReadFromUDPAddrPort: n=5 data="hello" from=B:peer is4=true err=nil`,
		},
	},
	{
		name: "read/ReadMsgUDP",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, oobn, flags, from, err := a.ReadMsgUDP(buf, nil)
			e.rec("ReadMsgUDP: n=%d data=%q oobn=%d flags=%s from=%s err=%s", n, buf[:n], oobn, flagNames(flags), e.addr(from), e.err(err))
		},
		want: Observation{
			`ReadMsgUDP: n=5 data="hello" oobn=0 flags=0 from=B:peer err=nil`,
		},
	},
	{
		name: "read/ReadMsgUDPAddrPort",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, oobn, flags, from, err := a.ReadMsgUDPAddrPort(buf, nil)
			e.rec("ReadMsgUDPAddrPort: n=%d data=%q oobn=%d flags=%s from=%s err=%s", n, buf[:n], oobn, flagNames(flags), e.addr(from), e.err(err))
		},
		want: Observation{
			`ReadMsgUDPAddrPort: n=5 data="hello" oobn=0 flags=0 from=B:peer err=nil`,
		},
	},
	{
		name: "read/ReadMsgUDP-oob-buffer",
		run: func(e *env) {
			// No socket option asks for control messages, so none come back
			// even with room for them.
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "hello")
			buf, oob := make([]byte, 64), make([]byte, 128)
			a.SetReadDeadline(soon())
			n, oobn, flags, from, err := a.ReadMsgUDP(buf, oob)
			e.rec("ReadMsgUDP: n=%d data=%q oobn=%d flags=%s from=%s err=%s", n, buf[:n], oobn, flagNames(flags), e.addr(from), e.err(err))
		},
		want: Observation{
			`ReadMsgUDP: n=5 data="hello" oobn=0 flags=0 from=B:peer err=nil`,
		},
	},
	{
		name: "read/multiple-senders",
		run: func(e *env) {
			a := e.listenA("A:srv")
			b1, b2 := e.listenB("B:one"), e.listenB("B:two")
			e.send(b1, e.at(a), "1a")
			e.send(b2, e.at(a), "2a")
			e.send(b1, e.at(a), "1b")
			for range 3 {
				e.recv("A", a, 64, safety)
			}
		},
		want: Observation{
			`A: n=2 data="1a" from=B:one err=nil`,
			`A: n=2 data="2a" from=B:two err=nil`,
			`A: n=2 data="1b" from=B:one err=nil`,
		},
	},
	{
		name: "write/WriteTo-WriteToUDPAddrPort",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			n, err := a.WriteTo([]byte("one"), e.at(b))
			e.rec("WriteTo: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDPAddrPort([]byte("two"), e.at(b).AddrPort())
			e.rec("WriteToUDPAddrPort: n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B", b, 64, safety)
		},
		want: Observation{
			`WriteTo: n=3 err=nil`,
			`WriteToUDPAddrPort: n=3 err=nil`,
			`B: n=3 data="one" from=A:srv err=nil`,
			`B: n=3 data="two" from=A:srv err=nil`,
		},
	},
	{
		name: "write/WriteMsgUDP-WriteMsgUDPAddrPort",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			n, oobn, err := a.WriteMsgUDP([]byte("one"), nil, e.at(b))
			e.rec("WriteMsgUDP: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			n, oobn, err = a.WriteMsgUDPAddrPort([]byte("two"), nil, e.at(b).AddrPort())
			e.rec("WriteMsgUDPAddrPort: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B", b, 64, safety)
		},
		want: Observation{
			`WriteMsgUDP: n=3 oobn=0 err=nil`,
			`WriteMsgUDPAddrPort: n=3 oobn=0 err=nil`,
			`B: n=3 data="one" from=A:srv err=nil`,
			`B: n=3 data="two" from=A:srv err=nil`,
		},
	},
	{
		name: "write/IPv4-mapped-destinations",
		run: func(e *env) {
			// Destinations in IPv6 form (16-byte net.IP, ::ffff:a.b.c.d
			// netip) are unmapped and sent over IPv4.
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			to := e.at(b)
			ip16 := &net.UDPAddr{IP: to.IP.To16(), Port: to.Port}
			n, err := a.WriteToUDP([]byte("ip16"), ip16)
			e.rec("WriteToUDP 16-byte IP: n=%d err=%s", n, e.err(err))
			mapped := netip.AddrPortFrom(netip.AddrFrom16(e.s.AddrB.As16()), uint16(to.Port))
			n, err = a.WriteToUDPAddrPort([]byte("4in6"), mapped)
			e.rec("WriteToUDPAddrPort ::ffff: form: n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B", b, 64, safety)
		},
		want: Observation{
			`WriteToUDP 16-byte IP: n=4 err=nil`,
			`WriteToUDPAddrPort ::ffff: form: n=4 err=nil`,
			`B: n=4 data="ip16" from=A:srv err=nil`,
			`B: n=4 data="4in6" from=A:srv err=nil`,
		},
	},

	{
		name: "read/ReadMsg-results-on-error",
		run: func(e *env) {
			// net's ReadMsgUDP family returns addr 0.0.0.0:0 (valid, not
			// nil) on every error, and n=-1 when the error ends a wait
			// (internal/poll passes recvmsg's -1 through); n is 0 when the
			// call fails before trying.
			a := e.listenA("A:srv")
			a.SetReadDeadline(past())
			n, oobn, flags, from, err := a.ReadMsgUDP(make([]byte, 64), nil)
			e.rec("past deadline ReadMsgUDP: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from), e.err(err))
			n, oobn, flags, ap, err := a.ReadMsgUDPAddrPort(make([]byte, 64), nil)
			e.rec("past deadline ReadMsgUDPAddrPort: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(ap), e.err(err))
			a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			n, oobn, flags, from, err = a.ReadMsgUDP(make([]byte, 64), nil)
			e.rec("deadline fires ReadMsgUDP: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from), e.err(err))
			a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			n, oobn, flags, ap, err = a.ReadMsgUDPAddrPort(make([]byte, 64), nil)
			e.rec("deadline fires ReadMsgUDPAddrPort: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(ap), e.err(err))
			a.SetReadDeadline(time.Time{})
			ch := background(func() (int, any, error) {
				n, _, _, from, err := a.ReadMsgUDP(make([]byte, 64), nil)
				return n, from, err
			})
			time.Sleep(50 * time.Millisecond)
			a.Close()
			o := e.await("blocked ReadMsgUDP", ch)
			e.rec("closed while blocked ReadMsgUDP: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
			n, _, _, from, err = a.ReadMsgUDP(make([]byte, 64), nil)
			e.rec("after close ReadMsgUDP: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
		},
		want: Observation{
			`past deadline ReadMsgUDP: n=0 oobn=0 flags=0 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`past deadline ReadMsgUDPAddrPort: n=0 oobn=0 flags=0 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`deadline fires ReadMsgUDP: n=-1 oobn=0 flags=0 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`deadline fires ReadMsgUDPAddrPort: n=-1 oobn=0 flags=0 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`blocked ReadMsgUDP: returned before 2s`,
			`closed while blocked ReadMsgUDP: n=-1 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:srv: use of closed network connection"`,
			`after close ReadMsgUDP: n=0 from=any:0 err=OpError{read udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:srv: use of closed network connection"`,
		},
	},

	// ---- truncation and empty datagrams ----
	{
		name: "truncate/ReadFromUDP",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "0123456789")
			e.send(b, e.at(a), "next")
			e.recv("A 4-byte buffer", a, 4, safety)
			e.recv("A", a, 64, safety)
			e.recv("A nothing left", a, 64, quiet)
		},
		want: Observation{
			`A 4-byte buffer: n=4 data="0123" from=B:peer err=nil`,
			`A: n=4 data="next" from=B:peer err=nil`,
			`A nothing left: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
		},
	},
	{
		name: "truncate/ReadMsgUDP-MSG_TRUNC",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "0123456789")
			e.send(b, e.at(a), "next")
			for _, size := range []int{4, 64} {
				buf := make([]byte, size)
				a.SetReadDeadline(soon())
				n, oobn, flags, from, err := a.ReadMsgUDP(buf, nil)
				e.rec("ReadMsgUDP %d-byte buffer: n=%d data=%q oobn=%d flags=%s from=%s err=%s", size, n, buf[:n], oobn, flagNames(flags), e.addr(from), e.err(err))
			}
		},
		want: Observation{
			`ReadMsgUDP 4-byte buffer: n=4 data="0123" oobn=0 flags=MSG_TRUNC from=B:peer err=nil`,
			`ReadMsgUDP 64-byte buffer: n=4 data="next" oobn=0 flags=0 from=B:peer err=nil`,
		},
	},
	{
		name: "truncate/Read-dialed",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			e.send(b, e.at(a), "0123456789")
			e.send(b, e.at(a), "next")
			e.read("A Read 4-byte buffer", a, 4, safety)
			e.read("A Read", a, 64, safety)
		},
		want: Observation{
			`A Read 4-byte buffer: n=4 data="0123" err=nil`,
			`A Read: n=4 data="next" err=nil`,
		},
	},
	{
		name: "empty/datagram",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "")
			e.send(b, e.at(a), "")
			e.recv("A ReadFromUDP", a, 64, safety)
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, oobn, flags, from, err := a.ReadMsgUDP(buf, nil)
			e.rec("A ReadMsgUDP: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from), e.err(err))
		},
		want: Observation{
			`A ReadFromUDP: n=0 data="" from=B:peer err=nil`,
			`A ReadMsgUDP: n=0 oobn=0 flags=0 from=B:peer err=nil`,
		},
	},
	{
		name: "empty/zero-length-read-buffer",
		run: func(e *env) {
			// A zero-length buffer still receives (and so consumes) a
			// whole datagram; only ReadMsgUDP says it was truncated.
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "one")
			e.send(b, e.at(a), "two")
			e.send(b, e.at(a), "three")
			a.SetReadDeadline(soon())
			n, from, err := a.ReadFrom(nil)
			e.rec("ReadFrom(nil): n=%d from=%s err=%s", n, e.addr(from), e.err(err))
			n, oobn, flags, from2, err := a.ReadMsgUDP([]byte{}, nil)
			e.rec("ReadMsgUDP(empty): n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from2), e.err(err))
			e.recv("A", a, 64, safety)
		},
		want: Observation{
			`ReadFrom(nil): n=0 from=B:peer err=nil`,
			`ReadMsgUDP(empty): n=0 oobn=0 flags=MSG_TRUNC from=B:peer err=nil`,
			`A: n=5 data="three" from=B:peer err=nil`,
		},
	},
	{
		name: "empty/Read-zero-length-buffer-dialed",
		run: func(e *env) {
			// net's Read returns 0, nil at once for an empty buffer without
			// waiting or consuming anything (internal/poll short-circuits).
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			o := e.await("Read(nil) with nothing queued", background(func() (int, any, error) {
				n, err := a.Read(nil)
				return n, nil, err
			}))
			e.rec("Read(nil): n=%d err=%s", o.n, e.err(o.err))
			e.send(b, e.at(a), "x")
			e.settle()
			n, err := a.Read(nil)
			e.rec("Read(nil) with a datagram queued: n=%d err=%s", n, e.err(err))
			e.read("A Read", a, 64, safety)
		},
		want: Observation{
			`Read(nil) with nothing queued: returned before 2s`,
			`Read(nil): n=0 err=nil`,
			`Read(nil) with a datagram queued: n=0 err=nil`,
			`A Read: n=1 data="x" err=nil`,
		},
	},
	{
		name: "empty/zero-length-writes",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			n, err := a.Write(nil)
			e.rec("dialed Write(nil): n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			l := e.listenA("A:srv")
			n, err = l.WriteToUDP(nil, e.at(b))
			e.rec("WriteToUDP(nil, B): n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
		},
		want: Observation{
			`dialed Write(nil): n=0 err=nil`,
			`B: n=0 data="" from=A:cli err=nil`,
			`WriteToUDP(nil, B): n=0 err=nil`,
			`B: n=0 data="" from=A:srv err=nil`,
		},
	},

	// ---- ordering and concurrency ----
	{
		name: "order/burst-of-100",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			// Resolve addresses first: the kernel may reorder datagrams it
			// flushes from its neighbour queue, which is not what this
			// scenario is about.
			e.send(b, e.at(a), "warm-up")
			a.SetReadDeadline(time.Now().Add(safety))
			a.ReadFromUDP(make([]byte, 16))
			const count = 100
			for i := range count {
				e.send(b, e.at(a), fmt.Sprintf("%03d", i))
			}
			got, inOrder := 0, true
			buf := make([]byte, 64)
			for got < count {
				a.SetReadDeadline(time.Now().Add(quiet + e.s.Settle))
				n, _, err := a.ReadFromUDP(buf)
				if err != nil {
					break
				}
				inOrder = inOrder && string(buf[:n]) == fmt.Sprintf("%03d", got)
				got++
			}
			e.rec("received=%d in order=%v", got, inOrder)
		},
		want: Observation{
			`received=100 in order=true`,
		},
	},
	{
		name: "concurrent/readers-and-writers-on-one-conn",
		run:  concurrentReadersWriters,
		want: Observation{
			`A writers: errors=0`,
			`A readers: distinct=100 duplicates=0 wrong sender=0`,
			`A readers: all woken by the past deadline=true`,
			`B sink: distinct=100 duplicates=0 wrong sender=0`,
		},
	},

	// ---- deadlines ----
	{
		name: "deadline/read-past",
		run: func(e *env) {
			a := e.listenA("A:srv")
			e.rec("SetReadDeadline(past): %s", e.err(a.SetReadDeadline(past())))
			o := e.await("ReadFrom", background(func() (int, any, error) { return a.ReadFrom(make([]byte, 64)) }))
			e.rec("ReadFrom: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
		},
		want: Observation{
			`SetReadDeadline(past): nil`,
			`ReadFrom: returned before 2s`,
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
		},
	},
	{
		name: "deadline/read-past-with-data-queued",
		run: func(e *env) {
			// An expired deadline fails reads even when a datagram waits;
			// the datagram stays queued.
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "queued")
			e.settle()
			a.SetReadDeadline(past())
			n, from, err := a.ReadFromUDP(make([]byte, 64))
			e.rec("ReadFromUDP: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
			e.recv("after a new deadline", a, 64, safety)
		},
		want: Observation{
			`ReadFromUDP: n=0 from=(*net.UDPAddr)(nil) err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`after a new deadline: n=6 data="queued" from=B:peer err=nil`,
		},
	},
	{
		name: "deadline/read-fires",
		run: func(e *env) {
			a := e.listenA("A:srv")
			const d = 100 * time.Millisecond
			start := time.Now()
			a.SetReadDeadline(start.Add(d))
			o := e.await("ReadFromUDPAddrPort", background(func() (int, any, error) {
				return a.ReadFromUDPAddrPort(make([]byte, 64))
			}))
			e.rec("ReadFromUDPAddrPort: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
			// Loose: never early, with 10ms for clock granularity.
			e.rec("waited at least the deadline=%v", time.Since(start) >= d-10*time.Millisecond)
		},
		want: Observation{
			`ReadFromUDPAddrPort: returned before 2s`,
			`ReadFromUDPAddrPort: n=0 from=invalid err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`waited at least the deadline=true`,
		},
	},
	{
		name: "deadline/read-fires-dialed",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			o := e.await("Read", background(func() (int, any, error) {
				n, err := a.Read(make([]byte, 64))
				return n, nil, err
			}))
			e.rec("Read: n=%d err=%s", o.n, e.err(o.err))
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, oobn, flags, from, err := a.ReadMsgUDP(make([]byte, 64), nil)
			e.rec("ReadMsgUDP: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from), e.err(err))
		},
		want: Observation{
			`Read: returned before 2s`,
			`Read: n=0 err=OpError{read udp src=A:cli addr=B:srv err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:cli->B:srv: i/o timeout"`,
			`ReadMsgUDP: n=-1 oobn=0 flags=0 from=any:0 err=OpError{read udp src=A:cli addr=B:srv err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:cli->B:srv: i/o timeout"`,
		},
	},
	{
		name: "deadline/cleared-before-read",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			e.rec("SetReadDeadline(zero): %s", e.err(a.SetReadDeadline(time.Time{})))
			to := e.at(a)
			t := time.AfterFunc(200*time.Millisecond, func() { b.WriteToUDP([]byte("late"), to) })
			defer t.Stop()
			buf := make([]byte, 64)
			o := e.await("ReadFromUDP", background(func() (int, any, error) { return a.ReadFromUDP(buf) }))
			if o.n >= 0 && o.n <= len(buf) && o.err == nil {
				e.rec("ReadFromUDP: n=%d data=%q from=%s err=nil", o.n, buf[:o.n], e.addr(o.from))
			} else {
				e.rec("ReadFromUDP: n=%d err=%s", o.n, e.err(o.err))
			}
		},
		want: Observation{
			`SetReadDeadline(zero): nil`,
			`ReadFromUDP: returned before 2s`,
			`ReadFromUDP: n=4 data="late" from=B:peer err=nil`,
		},
	},
	{
		name: "deadline/moved-earlier-while-blocked",
		run: func(e *env) {
			a := e.listenA("A:srv")
			a.SetReadDeadline(time.Now().Add(time.Hour))
			ch := background(func() (int, any, error) { return a.ReadFrom(make([]byte, 64)) })
			time.Sleep(50 * time.Millisecond)
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			o := e.await("blocked ReadFrom", ch)
			e.rec("ReadFrom: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
		},
		want: Observation{
			`blocked ReadFrom: returned before 2s`,
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
		},
	},
	{
		name: "deadline/moved-to-past-while-blocked",
		run: func(e *env) {
			a := e.listenA("A:srv")
			ch := background(func() (int, any, error) { return a.ReadFrom(make([]byte, 64)) })
			time.Sleep(50 * time.Millisecond)
			a.SetReadDeadline(past())
			o := e.await("blocked ReadFrom", ch)
			e.rec("ReadFrom: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
		},
		want: Observation{
			`blocked ReadFrom: returned before 2s`,
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
		},
	},
	{
		name: "deadline/moved-later-while-blocked",
		run: func(e *env) {
			// The first deadline would fire at 300ms; it is pushed out at
			// ~50ms, and data sent at ~450ms must still be read.
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			a.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			ch := background(func() (int, any, error) { return a.ReadFromUDP(make([]byte, 64)) })
			time.Sleep(50 * time.Millisecond)
			a.SetReadDeadline(soon())
			time.Sleep(400 * time.Millisecond)
			e.send(b, e.at(a), "late")
			o := e.await("blocked ReadFromUDP", ch)
			e.rec("ReadFromUDP: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
		},
		want: Observation{
			`blocked ReadFromUDP: returned before 2s`,
			`ReadFromUDP: n=4 from=B:peer err=nil`,
		},
	},
	{
		name: "deadline/not-sticky-after-timeout",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			_, _, err := a.ReadFromUDP(make([]byte, 64))
			e.rec("first read: timeout=%v", isTimeout(err))
			e.send(b, e.at(a), "again")
			e.recv("after a new deadline", a, 64, safety)
		},
		want: Observation{
			`first read: timeout=true`,
			`after a new deadline: n=5 data="again" from=B:peer err=nil`,
		},
	},
	{
		name: "deadline/wakes-every-blocked-reader",
		run: func(e *env) {
			a := e.listenA("A:srv")
			var chs []<-chan outcome
			for range 3 {
				chs = append(chs, background(func() (int, any, error) { return a.ReadFrom(make([]byte, 64)) }))
			}
			time.Sleep(50 * time.Millisecond)
			a.SetReadDeadline(past())
			for _, ch := range chs {
				o := e.await("reader", ch)
				e.rec("reader: timeout=%v", isTimeout(o.err))
			}
		},
		want: Observation{
			`reader: returned before 2s`,
			`reader: timeout=true`,
			`reader: returned before 2s`,
			`reader: timeout=true`,
			`reader: returned before 2s`,
			`reader: timeout=true`,
		},
	},
	{
		name: "deadline/SetDeadline-covers-both",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.rec("SetDeadline(past): %s", e.err(a.SetDeadline(past())))
			n, from, err := a.ReadFrom(make([]byte, 64))
			e.rec("ReadFrom: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
			n, err = a.WriteToUDP([]byte("x"), e.at(b))
			e.rec("WriteToUDP: n=%d err=%s", n, e.err(err))
			a.SetDeadline(time.Time{})
			n, err = a.WriteToUDP([]byte("after"), e.at(b))
			e.rec("WriteToUDP after SetDeadline(zero): n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B nothing more", b, 64, quiet)
		},
		want: Observation{
			`SetDeadline(past): nil`,
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`WriteToUDP: n=0 err=OpError{write udp src=A:srv addr=B:peer err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="write udp A:srv->B:peer: i/o timeout"`,
			`WriteToUDP after SetDeadline(zero): n=5 err=nil`,
			`B: n=5 data="after" from=A:srv err=nil`,
			`B nothing more: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:peer addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:peer: i/o timeout"`,
		},
	},
	{
		name: "deadline/write-past-dialed",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			e.rec("SetWriteDeadline(past): %s", e.err(a.SetWriteDeadline(past())))
			n, err := a.Write([]byte("dropped"))
			e.rec("Write: n=%d err=%s", n, e.err(err))
			n, oobn, err := a.WriteMsgUDP([]byte("dropped"), nil, nil)
			e.rec("WriteMsgUDP: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			a.SetWriteDeadline(time.Time{})
			n, err = a.Write([]byte("sent"))
			e.rec("Write after clearing: n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B nothing more", b, 64, quiet)
		},
		want: Observation{
			`SetWriteDeadline(past): nil`,
			`Write: n=0 err=OpError{write udp src=A:cli addr=B:srv err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="write udp A:cli->B:srv: i/o timeout"`,
			`WriteMsgUDP: n=0 oobn=0 err=OpError{write udp src=A:cli addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="write udp A:cli: i/o timeout"`,
			`Write after clearing: n=4 err=nil`,
			`B: n=4 data="sent" from=A:cli err=nil`,
			`B nothing more: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:srv: i/o timeout"`,
		},
	},
	{
		name: "deadline/read-and-write-independent",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			a.SetReadDeadline(past())
			n, err := a.WriteToUDP([]byte("w"), e.at(b))
			e.rec("WriteToUDP with read deadline past: n=%d err=%s", n, e.err(err))
			e.recv("B", b, 64, safety)
			a.SetReadDeadline(time.Time{})
			a.SetWriteDeadline(past())
			e.send(b, e.at(a), "r")
			e.recv("A ReadFromUDP with write deadline past", a, 64, safety)
		},
		want: Observation{
			`WriteToUDP with read deadline past: n=1 err=nil`,
			`B: n=1 data="w" from=A:srv err=nil`,
			`A ReadFromUDP with write deadline past: n=1 data="r" from=B:peer err=nil`,
		},
	},

	// ---- close ----
	{
		name: "close/during-blocked-read",
		run: func(e *env) {
			a := e.listenA("A:srv")
			ch := background(func() (int, any, error) { return a.ReadFrom(make([]byte, 64)) })
			time.Sleep(50 * time.Millisecond)
			e.rec("Close: %s", e.err(a.Close()))
			o := e.await("blocked ReadFrom", ch)
			e.rec("ReadFrom: n=%d from=%s err=%s", o.n, e.addr(o.from), e.err(o.err))
		},
		want: Observation{
			`Close: nil`,
			`blocked ReadFrom: returned before 2s`,
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:srv: use of closed network connection"`,
		},
	},
	{
		name: "close/during-blocked-read-dialed",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			a.SetReadDeadline(soon()) // a deadline set does not change the outcome
			ch := background(func() (int, any, error) {
				n, err := a.Read(make([]byte, 64))
				return n, nil, err
			})
			time.Sleep(50 * time.Millisecond)
			e.rec("Close: %s", e.err(a.Close()))
			o := e.await("blocked Read", ch)
			e.rec("Read: n=%d err=%s", o.n, e.err(o.err))
		},
		want: Observation{
			`Close: nil`,
			`blocked Read: returned before 2s`,
			`Read: n=0 err=OpError{read udp src=A:cli addr=B:srv err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:cli->B:srv: use of closed network connection"`,
		},
	},
	{
		name: "close/operations-after-close",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			e.send(b, e.at(a), "queued before close")
			e.settle()
			a.Close()
			buf := make([]byte, 64)
			n, from, err := a.ReadFrom(buf)
			e.rec("ReadFrom: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
			n, err = a.Read(buf)
			e.rec("Read: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDP([]byte("x"), e.at(b))
			e.rec("WriteToUDP: n=%d err=%s", n, e.err(err))
			n, oobn, err := a.WriteMsgUDPAddrPort([]byte("x"), nil, e.at(b).AddrPort())
			e.rec("WriteMsgUDPAddrPort: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			e.rec("SetReadDeadline: %s", e.err(a.SetReadDeadline(soon())))
			e.rec("SetDeadline: %s", e.err(a.SetDeadline(soon())))
			e.rec("SetReadBuffer: %s", e.err(a.SetReadBuffer(1<<16)))
			e.rec("SetWriteBuffer: %s", e.err(a.SetWriteBuffer(1<<16)))
			e.rec("LocalAddr: %s", e.addr(a.LocalAddr()))
			e.rec("RemoteAddr: %s", e.addr(a.RemoteAddr()))
			e.recv("B gets nothing", b, 64, quiet)
		},
		want: Observation{
			`ReadFrom: n=0 from=nil err=OpError{read udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:srv: use of closed network connection"`,
			`Read: n=0 err=OpError{read udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:srv: use of closed network connection"`,
			`WriteToUDP: n=0 err=OpError{write udp src=A:srv addr=B:peer err=ErrClosed} timeout=false is=ErrClosed msg="write udp A:srv->B:peer: use of closed network connection"`,
			`WriteMsgUDPAddrPort: n=0 oobn=0 err=OpError{write udp src=A:srv addr=unexported(udp B:peer) err=ErrClosed} timeout=false is=ErrClosed msg="write udp A:srv->B:peer: use of closed network connection"`,
			`SetReadDeadline: OpError{set udp src=nil addr=A:srv err=ErrClosed} timeout=false is=ErrClosed msg="set udp A:srv: use of closed network connection"`,
			`SetDeadline: OpError{set udp src=nil addr=A:srv err=ErrClosed} timeout=false is=ErrClosed msg="set udp A:srv: use of closed network connection"`,
			`SetReadBuffer: OpError{set udp src=nil addr=A:srv err=ErrClosed} timeout=false is=ErrClosed msg="set udp A:srv: use of closed network connection"`,
			`SetWriteBuffer: OpError{set udp src=nil addr=A:srv err=ErrClosed} timeout=false is=ErrClosed msg="set udp A:srv: use of closed network connection"`,
			`LocalAddr: A:srv`,
			`RemoteAddr: nil`,
			`B gets nothing: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:peer addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:peer: i/o timeout"`,
		},
	},
	{
		name: "close/operations-after-close-dialed",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			a.Close()
			n, err := a.Read(make([]byte, 64))
			e.rec("Read: n=%d err=%s", n, e.err(err))
			n, err = a.Write([]byte("x"))
			e.rec("Write: n=%d err=%s", n, e.err(err))
			e.rec("RemoteAddr: %s", e.addr(a.RemoteAddr()))
		},
		want: Observation{
			`Read: n=0 err=OpError{read udp src=A:cli addr=B:srv err=ErrClosed} timeout=false is=ErrClosed msg="read udp A:cli->B:srv: use of closed network connection"`,
			`Write: n=0 err=OpError{write udp src=A:cli addr=B:srv err=ErrClosed} timeout=false is=ErrClosed msg="write udp A:cli->B:srv: use of closed network connection"`,
			`RemoteAddr: B:srv`,
		},
	},
	{
		name: "close/twice",
		run: func(e *env) {
			a := e.listenA("A:srv")
			e.rec("first Close: %s", e.err(a.Close()))
			e.rec("second Close: %s", e.err(a.Close()))
			b := e.listenB("B:srv")
			d := e.dialA("A:cli", e.at(b))
			d.Close()
			e.rec("dialed second Close: %s", e.err(d.Close()))
		},
		want: Observation{
			`first Close: nil`,
			`second Close: OpError{close udp src=A:srv addr=nil err=ErrClosed} timeout=false is=ErrClosed msg="close udp A:srv: use of closed network connection"`,
			`dialed second Close: OpError{close udp src=A:cli addr=B:srv err=ErrClosed} timeout=false is=ErrClosed msg="close udp A:cli->B:srv: use of closed network connection"`,
		},
	},
	{
		name: "close/frees-port",
		run: func(e *env) {
			a := e.listenA("A:srv")
			port := e.at(a).Port
			a.Close()
			c, err := e.s.ListenA(e.s.network(), e.bindA(port))
			e.rec("rebind same port: err=%s", e.err(err))
			if err == nil {
				defer c.Close()
				e.rec("LocalAddr: %s", e.addr(c.LocalAddr()))
			}
		},
		want: Observation{
			`rebind same port: err=nil`,
			`LocalAddr: A:srv`,
		},
	},

	// ---- connected (dialed) conns ----
	{
		name: "dialed/ignores-other-senders",
		run: func(e *env) {
			b, other := e.listenB("B:srv"), e.listenB("B:other")
			a := e.dialA("A:cli", e.at(b))
			e.send(other, e.at(a), "from other")
			e.send(b, e.at(a), "from raddr")
			e.recv("A", a, 64, safety)
			e.recv("A nothing more", a, 64, quiet)
		},
		want: Observation{
			`A: n=10 data="from raddr" from=B:srv err=nil`,
			`A nothing more: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=A:cli addr=B:srv err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:cli->B:srv: i/o timeout"`,
		},
	},
	{
		name: "dialed/read-methods-report-raddr",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			for range 3 {
				e.send(b, e.at(a), "x")
			}
			buf := make([]byte, 64)
			a.SetReadDeadline(soon())
			n, from, err := a.ReadFrom(buf)
			e.rec("ReadFrom: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
			n, ap, err := a.ReadFromUDPAddrPort(buf)
			e.rec("ReadFromUDPAddrPort: n=%d from=%s err=%s", n, e.addr(ap), e.err(err))
			n, oobn, flags, from2, err := a.ReadMsgUDP(buf, nil)
			e.rec("ReadMsgUDP: n=%d oobn=%d flags=%s from=%s err=%s", n, oobn, flagNames(flags), e.addr(from2), e.err(err))
		},
		want: Observation{
			`ReadFrom: n=1 from=B:srv err=nil`,
			`ReadFromUDPAddrPort: n=1 from=B:srv err=nil`,
			`ReadMsgUDP: n=1 oobn=0 flags=0 from=B:srv err=nil`,
		},
	},
	{
		name: "dialed/WriteTo-ErrWriteToConnected",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			// Even the connected address itself is refused.
			n, err := a.WriteTo([]byte("x"), e.at(b))
			e.rec("WriteTo raddr: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDP([]byte("x"), e.at(b))
			e.rec("WriteToUDP raddr: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDPAddrPort([]byte("x"), e.at(b).AddrPort())
			e.rec("WriteToUDPAddrPort raddr: n=%d err=%s", n, e.err(err))
			e.recv("B gets nothing", b, 64, quiet)
		},
		want: Observation{
			`WriteTo raddr: n=0 err=OpError{write udp src=A:cli addr=B:srv err=ErrWriteToConnected} timeout=false is=ErrWriteToConnected msg="write udp A:cli->B:srv: use of WriteTo with pre-connected connection"`,
			`WriteToUDP raddr: n=0 err=OpError{write udp src=A:cli addr=B:srv err=ErrWriteToConnected} timeout=false is=ErrWriteToConnected msg="write udp A:cli->B:srv: use of WriteTo with pre-connected connection"`,
			`WriteToUDPAddrPort raddr: n=0 err=OpError{write udp src=A:cli addr=unexported(udp B:srv) err=ErrWriteToConnected} timeout=false is=ErrWriteToConnected msg="write udp A:cli->B:srv: use of WriteTo with pre-connected connection"`,
			`B gets nothing: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:srv: i/o timeout"`,
		},
	},
	{
		name: "dialed/WriteMsg-with-and-without-addr",
		run: func(e *env) {
			b := e.listenB("B:srv")
			a := e.dialA("A:cli", e.at(b))
			n, oobn, err := a.WriteMsgUDP([]byte("x"), nil, e.at(b))
			e.rec("WriteMsgUDP with addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			n, oobn, err = a.WriteMsgUDPAddrPort([]byte("x"), nil, e.at(b).AddrPort())
			e.rec("WriteMsgUDPAddrPort with addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			n, oobn, err = a.WriteMsgUDP([]byte("nil addr"), nil, nil)
			e.rec("WriteMsgUDP nil addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			n, oobn, err = a.WriteMsgUDPAddrPort([]byte("zero addr"), nil, netip.AddrPort{})
			e.rec("WriteMsgUDPAddrPort zero addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			e.recv("B", b, 64, safety)
			e.recv("B", b, 64, safety)
		},
		want: Observation{
			`WriteMsgUDP with addr: n=0 oobn=0 err=OpError{write udp src=A:cli addr=B:srv err=ErrWriteToConnected} timeout=false is=ErrWriteToConnected msg="write udp A:cli->B:srv: use of WriteTo with pre-connected connection"`,
			`WriteMsgUDPAddrPort with addr: n=0 oobn=0 err=OpError{write udp src=A:cli addr=unexported(udp B:srv) err=ErrWriteToConnected} timeout=false is=ErrWriteToConnected msg="write udp A:cli->B:srv: use of WriteTo with pre-connected connection"`,
			`WriteMsgUDP nil addr: n=8 oobn=0 err=nil`,
			`WriteMsgUDPAddrPort zero addr: n=9 oobn=0 err=nil`,
			`B: n=8 data="nil addr" from=A:cli err=nil`,
			`B: n=9 data="zero addr" from=A:cli err=nil`,
		},
	},
	{
		name: "unconnected/Write-without-destination",
		run: func(e *env) {
			a := e.listenA("A:srv")
			n, err := a.Write([]byte("x"))
			e.rec("Write: n=%d err=%s", n, e.err(err))
			n, oobn, err := a.WriteMsgUDP([]byte("x"), nil, nil)
			e.rec("WriteMsgUDP nil addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			n, oobn, err = a.WriteMsgUDPAddrPort([]byte("x"), nil, netip.AddrPort{})
			e.rec("WriteMsgUDPAddrPort zero addr: n=%d oobn=%d err=%s", n, oobn, e.err(err))
		},
		want: Observation{
			`Write: n=0 err=OpError{write udp src=A:srv addr=nil err=SyscallError{write EDESTADDRREQ}} timeout=false msg="write udp A:srv: write: destination address required"`,
			`WriteMsgUDP nil addr: n=0 oobn=0 err=OpError{write udp src=A:srv addr=nil err=*errors.errorString("missing address")} timeout=false msg="write udp A:srv: missing address"`,
			`WriteMsgUDPAddrPort zero addr: n=0 oobn=0 err=OpError{write udp src=A:srv addr=unexported(udp invalid AddrPort) err=*errors.errorString("missing address")} timeout=false msg="write udp A:srv->invalid AddrPort: missing address"`,
		},
	},
	{
		name: "unconnected/bad-destinations",
		run: func(e *env) {
			// Wrong address types and missing addresses fail cleanly.
			a := e.listenA("A:srv")
			b := e.listenB("B:peer")
			e.hostIs("B", e.s.AddrB)
			ipAddr := &net.IPAddr{IP: e.at(b).IP}
			n, err := a.WriteTo([]byte("x"), ipAddr)
			e.rec("WriteTo *net.IPAddr: n=%d err=%s", n, e.err(err))
			n, err = a.WriteTo([]byte("x"), nil)
			e.rec("WriteTo nil: n=%d err=%s", n, e.err(err))
			n, err = a.WriteTo([]byte("x"), (*net.UDPAddr)(nil))
			e.rec("WriteTo (*net.UDPAddr)(nil): n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDP([]byte("x"), nil)
			e.rec("WriteToUDP nil: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDPAddrPort([]byte("x"), netip.AddrPort{})
			e.rec("WriteToUDPAddrPort zero: n=%d err=%s", n, e.err(err))
			n, err = a.WriteToUDP([]byte("x"), e.udpB(0))
			e.rec("WriteToUDP port 0: n=%d err=%s", n, e.err(err))
			e.recv("B gets nothing", b, 64, quiet)
		},
		want: Observation{
			`WriteTo *net.IPAddr: n=0 err=OpError{write udp src=A:srv addr=*net.IPAddr(ip B) err=EINVAL} timeout=false msg="write udp A:srv->B: invalid argument"`,
			`WriteTo nil: n=0 err=OpError{write udp src=A:srv addr=nil err=EINVAL} timeout=false msg="write udp A:srv: invalid argument"`,
			`WriteTo (*net.UDPAddr)(nil): n=0 err=OpError{write udp src=A:srv addr=nil err=*errors.errorString("missing address")} timeout=false msg="write udp A:srv: missing address"`,
			`WriteToUDP nil: n=0 err=OpError{write udp src=A:srv addr=nil err=*errors.errorString("missing address")} timeout=false msg="write udp A:srv: missing address"`,
			`WriteToUDPAddrPort zero: n=0 err=OpError{write udp src=A:srv addr=unexported(udp invalid AddrPort) err=*errors.errorString("missing address")} timeout=false msg="write udp A:srv->invalid AddrPort: missing address"`,
			`WriteToUDP port 0: n=0 err=OpError{write udp src=A:srv addr=B:0 err=SyscallError{sendto EINVAL}} timeout=false msg="write udp A:srv->B:0: sendto: invalid argument"`,
			`B gets nothing: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:peer addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:peer: i/o timeout"`,
		},
	},

	// ---- ICMP port unreachable ----
	{
		name: "refused/dialed-read-reports-once",
		run: func(e *env) {
			closed := e.closedB("B:closed")
			a := e.dialA("A:cli", closed)
			n, err := a.Write([]byte("anyone?"))
			e.rec("Write: n=%d err=%s", n, e.err(err))
			e.read("first Read", a, 64, safety)
			e.read("second Read", a, 64, quiet)
		},
		want: Observation{
			`Write: n=7 err=nil`,
			`first Read: n=0 data="" err=OpError{read udp src=A:cli addr=B:closed err=SyscallError{read ECONNREFUSED}} timeout=false msg="read udp A:cli->B:closed: read: connection refused"`,
			`second Read: n=0 data="" err=OpError{read udp src=A:cli addr=B:closed err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:cli->B:closed: i/o timeout"`,
		},
	},
	{
		name: "refused/dialed-next-write",
		run: func(e *env) {
			// Linux reports a pending ICMP error on whichever call comes
			// first, a send included. The wait is generous because the
			// error cannot be awaited without consuming it, and a loaded
			// machine (the race detector, parallel packages) can hold
			// back the peer's neighbour resolution and its ICMP answer.
			closed := e.closedB("B:closed")
			a := e.dialA("A:cli", closed)
			n, err := a.Write([]byte("anyone?"))
			e.rec("first Write: n=%d err=%s", n, e.err(err))
			time.Sleep(500*time.Millisecond + e.s.Settle)
			n, err = a.Write([]byte("anyone?"))
			e.rec("second Write: n=%d err=%s", n, e.err(err))
		},
		want: Observation{
			`first Write: n=7 err=nil`,
			`second Write: n=0 err=OpError{write udp src=A:cli addr=B:closed err=SyscallError{write ECONNREFUSED}} timeout=false msg="write udp A:cli->B:closed: write: connection refused"`,
		},
	},
	{
		name: "refused/unconnected-never",
		run: func(e *env) {
			a := e.listenA("A:srv")
			closed := e.closedB("B:closed")
			n, err := a.WriteToUDP([]byte("anyone?"), closed)
			e.rec("WriteToUDP: n=%d err=%s", n, e.err(err))
			e.recv("ReadFromUDP", a, 64, quiet)
			n, err = a.WriteToUDP([]byte("anyone?"), closed)
			e.rec("WriteToUDP again: n=%d err=%s", n, e.err(err))
		},
		want: Observation{
			`WriteToUDP: n=7 err=nil`,
			`ReadFromUDP: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp A:srv: i/o timeout"`,
			`WriteToUDP again: n=7 err=nil`,
		},
	},

	// ---- addresses, binding, networks ----
	{
		name: "addr/listen-ephemeral",
		run: func(e *env) {
			c, err := e.s.ListenA(e.s.network(), e.bindA(0))
			if err != nil {
				e.t.Fatal(err)
			}
			defer c.Close()
			la, ok := c.LocalAddr().(*net.UDPAddr)
			e.rec("LocalAddr: type=%T network=%q addr=%s", c.LocalAddr(), c.LocalAddr().Network(), e.addr(la))
			if ok {
				e.rec("port in %d-%d=%v", ephemeralLo, ephemeralHi, la.Port >= ephemeralLo && la.Port <= ephemeralHi)
			}
			e.rec("RemoteAddr: %s isNilInterface=%v", e.addr(c.RemoteAddr()), c.RemoteAddr() == nil)
		},
		want: Observation{
			`LocalAddr: type=*net.UDPAddr network="udp" addr=A:eph`,
			`port in 32768-60999=true`,
			`RemoteAddr: nil isNilInterface=true`,
		},
	},
	{
		name: "addr/dial",
		run: func(e *env) {
			// raddr given with a 16-byte IP: RemoteAddr comes back in the
			// 4-byte form the kernel reports.
			b := e.listenB("B:srv")
			r := e.at(b)
			c, err := e.s.DialA(e.s.network(), nil, &net.UDPAddr{IP: r.IP.To16(), Port: r.Port})
			if err != nil {
				e.t.Fatal(err)
			}
			defer c.Close()
			e.rec("LocalAddr: type=%T addr=%s", c.LocalAddr(), e.addr(c.LocalAddr()))
			e.rec("RemoteAddr: type=%T addr=%s network=%q", c.RemoteAddr(), e.addr(c.RemoteAddr()), c.RemoteAddr().Network())
		},
		want: Observation{
			`LocalAddr: type=*net.UDPAddr addr=A:eph`,
			`RemoteAddr: type=*net.UDPAddr addr=B:srv network="udp"`,
		},
	},
	{
		name: "addr/dial-with-laddr",
		run: func(e *env) {
			b := e.listenB("B:srv")
			l := e.listenA("A:taken")
			c, err := e.s.DialA(e.s.network(), e.udpA(0), e.at(b))
			e.rec("DialUDP laddr A:0: err=%s", e.err(err))
			if err == nil {
				e.rec("LocalAddr: %s", e.addr(c.LocalAddr()))
				c.Close()
			}
			c, err = e.s.DialA(e.s.network(), local(l), e.at(b))
			e.rec("DialUDP laddr taken: conn=%v err=%s", c != nil, e.err(err))
		},
		want: Observation{
			`DialUDP laddr A:0: err=nil`,
			`LocalAddr: A:eph`,
			`DialUDP laddr taken: conn=false err=OpError{dial udp src=A:taken addr=B:srv err=SyscallError{bind EADDRINUSE}} timeout=false msg="dial udp A:taken->B:srv: bind: address already in use"`,
		},
	},
	{
		name: "addr/listen-unspecified-udp4",
		tags: []string{"ipv4"},
		run: func(e *env) {
			for _, laddr := range []*net.UDPAddr{{}, nil} {
				c, err := e.s.ListenA("udp4", laddr)
				if err != nil {
					e.t.Fatal(err)
				}
				defer c.Close()
				e.rec("ListenUDP(udp4, %v): LocalAddr=%s", laddr, e.addr(c.LocalAddr()))
				e.register("A:any", c.LocalAddr())
				// Reachable at A's address; replies come from it too.
				to := e.udpA(e.at(c).Port)
				e.register("A:srv", to)
				b := e.listenB(fmt.Sprintf("B:peer-%d", len(e.obs)))
				e.send(b, to, "hi")
				from := e.recv("A", c, 64, safety)
				n, err := c.WriteToUDP([]byte("back"), from)
				e.rec("A WriteToUDP: n=%d err=%s", n, e.err(err))
				e.recv("B", b, 64, safety)
			}
		},
		want: Observation{
			`ListenUDP(udp4, :0): LocalAddr=any:eph`,
			`A: n=2 data="hi" from=B:peer-1 err=nil`,
			`A WriteToUDP: n=4 err=nil`,
			`B: n=4 data="back" from=A:srv err=nil`,
			`ListenUDP(udp4, <nil>): LocalAddr=any:eph`,
			`A: n=2 data="hi" from=B:peer-5 err=nil`,
			`A WriteToUDP: n=4 err=nil`,
			`B: n=4 data="back" from=A:srv err=nil`,
		},
	},
	{
		name: "dual/IPv4-and-IPv6-peers",
		tags: []string{"dual"},
		run: func(e *env) {
			// One wildcard "udp" socket serves peers of both versions:
			// IPv4 ones show IPv4-mapped, replies go back over the version
			// they came in on, from the address they were sent to.
			a := e.listenA("A:srv")
			alt := netip.AddrPortFrom(e.s.AltA, uint16(e.at(a).Port))
			e.nameAddrPort("A:srv-alt", alt)
			b := e.listenB("B:peer")
			c, err := e.s.ListenB(e.s.network(), net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.s.AltB, 0)))
			balt := e.opened("B:alt", e.s.AltB, c, err)
			buf := make([]byte, 64)
			for _, p := range []struct {
				peer UDPConn
				to   *net.UDPAddr
			}{{b, e.at(a)}, {balt, net.UDPAddrFromAddrPort(alt)}} {
				e.send(p.peer, p.to, "hi")
				a.SetReadDeadline(soon())
				n, from, err := a.ReadFromUDPAddrPort(buf)
				e.rec("A ReadFromUDPAddrPort: n=%d from=%s err=%s", n, e.addr(from), e.err(err))
				n, err = a.WriteToUDPAddrPort([]byte("back"), from)
				e.rec("A WriteToUDPAddrPort: n=%d err=%s", n, e.err(err))
				e.recv("peer", p.peer, 64, safety)
			}
			// Either form of an IPv4 destination reaches the IPv4 peer.
			v4 := b
			if !e.s.AddrB.Is4() {
				v4 = balt
			}
			to := e.at(v4)
			for _, dst := range []netip.AddrPort{to.AddrPort(), netip.AddrPortFrom(netip.AddrFrom16(to.AddrPort().Addr().As16()), uint16(to.Port))} {
				n, err := a.WriteToUDPAddrPort([]byte("v4"), dst)
				e.rec("A WriteToUDPAddrPort %s: n=%d err=%s", e.addr(dst), n, e.err(err))
				e.recv("IPv4 peer", v4, 64, safety)
			}
		},
	},
	{
		name: "dual/bind-across-families",
		tags: []string{"dual"},
		run: func(e *env) {
			// A dual-stack wildcard port is taken for both versions; a
			// "udp6" (V6ONLY) wildcard leaves the IPv4 side free.
			a := e.listenA("A:srv")
			port := e.at(a).Port
			try := func(label, network string, port int) UDPConn {
				c, err := e.s.ListenA(network, &net.UDPAddr{Port: port})
				e.rec("%s: conn=%v err=%s", label, c != nil, e.err(err))
				if c != nil {
					e.t.Cleanup(func() { c.Close() })
				}
				return c
			}
			try("udp4 on a dual-stack port", "udp4", port)
			try("udp6 on a dual-stack port", "udp6", port)
			if c := try("udp6 wildcard", "udp6", 0); c != nil {
				p := e.at(c).Port
				try("udp4 beside udp6", "udp4", p)
				try("udp beside both", "udp", p)
			}
		},
	},
	{
		name: "bind/EADDRINUSE",
		run: func(e *env) {
			a := e.listenA("A:srv")
			c, err := e.s.ListenA(e.s.network(), local(a))
			e.rec("ListenUDP same addr: conn=%v err=%s", c != nil, e.err(err))
			// The unspecified address of A's version overlaps every
			// specific one.
			c, err = e.s.ListenA(e.versionNetwork(), &net.UDPAddr{Port: e.at(a).Port})
			e.rec("ListenUDP unspecified same port: conn=%v err=%s", c != nil, e.err(err))
			if err == nil {
				c.Close()
			}
		},
		want: Observation{
			`ListenUDP same addr: conn=false err=OpError{listen udp src=nil addr=A:srv err=SyscallError{bind EADDRINUSE}} timeout=false msg="listen udp A:srv: bind: address already in use"`,
			`ListenUDP unspecified same port: conn=false err=OpError{listen udp4 src=nil addr=:eph/iplen=0 err=SyscallError{bind EADDRINUSE}} timeout=false msg="listen udp4 :eph: bind: address already in use"`,
		},
	},
	{
		name: "network/udp4",
		tags: []string{"ipv4"},
		run: func(e *env) {
			a, err := e.s.ListenA("udp4", e.udpA(0))
			if err != nil {
				e.t.Fatal(err)
			}
			defer a.Close()
			e.register("A:srv", a.LocalAddr())
			b := e.listenB("B:peer")
			e.rec("LocalAddr network=%q", a.LocalAddr().Network())
			e.send(b, e.at(a), "four")
			e.recv("A", a, 64, safety)
			e.recv("A nothing more", a, 64, 30*time.Millisecond)
			d, err := e.s.DialA("udp4", nil, e.at(b))
			if err != nil {
				e.t.Fatal(err)
			}
			defer d.Close()
			e.register("A:cli", d.LocalAddr())
			e.read("dialed", d, 64, 30*time.Millisecond)
		},
		want: Observation{
			`LocalAddr network="udp"`,
			`A: n=4 data="four" from=B:peer err=nil`,
			`A nothing more: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp4 src=A:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp4 A:srv: i/o timeout"`,
			`dialed: n=0 data="" err=OpError{read udp4 src=A:cli addr=B:peer err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp4 A:cli->B:peer: i/o timeout"`,
		},
	},
	{
		name: "network/unknown",
		run: func(e *env) {
			for _, network := range []string{"udp7", "tcp", "ip4", ""} {
				c, err := e.s.ListenA(network, e.udpA(0))
				e.rec("ListenUDP(%q): conn=%v err=%s", network, c != nil, e.err(err))
			}
			b := e.listenB("B:srv")
			c, err := e.s.DialA("udp7", nil, e.at(b))
			e.rec("DialUDP(udp7): conn=%v err=%s", c != nil, e.err(err))
		},
		want: Observation{
			`ListenUDP("udp7"): conn=false err=OpError{listen udp7 src=nil addr=A:0 err=UnknownNetworkError("udp7")} timeout=false msg="listen udp7 A:0: unknown network udp7"`,
			`ListenUDP("tcp"): conn=false err=OpError{listen tcp src=nil addr=A:0 err=UnknownNetworkError("tcp")} timeout=false msg="listen tcp A:0: unknown network tcp"`,
			`ListenUDP("ip4"): conn=false err=OpError{listen ip4 src=nil addr=A:0 err=UnknownNetworkError("ip4")} timeout=false msg="listen ip4 A:0: unknown network ip4"`,
			`ListenUDP(""): conn=false err=OpError{listen  src=nil addr=A:0 err=UnknownNetworkError("")} timeout=false msg="listen A:0: unknown network "`,
			`DialUDP(udp7): conn=false err=OpError{dial udp7 src=nil addr=B:srv err=UnknownNetworkError("udp7")} timeout=false msg="dial udp7 B:srv: unknown network udp7"`,
		},
	},
	{
		name: "network/udp6",
		tags: []string{"udp6"},
		run: func(e *env) {
			// Only the outer OpError is compared: the kernel's inner error
			// depends on whether the host has IPv6 (and tapnet, IPv4 only,
			// reports UnknownNetworkError); see doc.go.
			c, err := e.s.ListenA("udp6", e.udpA(0))
			e.rec("ListenUDP(udp6, A): conn=%v err=%s", c != nil, e.opOnly(err))
			if c != nil {
				c.Close()
			}
			b := e.listenB("B:srv")
			c, err = e.s.DialA("udp6", nil, e.at(b))
			e.rec("DialUDP(udp6, B): conn=%v err=%s", c != nil, e.opOnly(err))
			if c != nil {
				c.Close()
			}
		},
		want: Observation{
			`ListenUDP(udp6, A): conn=false err=OpError{listen udp6 src=nil addr=A:0 err=...}`,
			`DialUDP(udp6, B): conn=false err=OpError{dial udp6 src=nil addr=B:srv err=...}`,
		},
	},
	{
		name: "dial/missing-raddr",
		run: func(e *env) {
			c, err := e.s.DialA(e.s.network(), nil, nil)
			e.rec("DialUDP(nil raddr): conn=%v err=%s", c != nil, e.err(err))
			c, err = e.s.DialA(e.s.network(), e.udpA(0), nil)
			e.rec("DialUDP(A:0, nil raddr): conn=%v err=%s", c != nil, e.err(err))
		},
		want: Observation{
			`DialUDP(nil raddr): conn=false err=OpError{dial udp src=nil addr=nil err=*errors.errorString("missing address")} timeout=false msg="dial udp: missing address"`,
			`DialUDP(A:0, nil raddr): conn=false err=OpError{dial udp src=A:0 addr=nil err=*errors.errorString("missing address")} timeout=false msg="dial udp A:0: missing address"`,
		},
	},

	// ---- sizes ----
	{
		name: "size/65508-EMSGSIZE",
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:srv")
			big := make([]byte, 65508) // 65535 - 20 (IPv4) - 8 (UDP) + 1
			n, err := a.WriteToUDP(big, e.at(b))
			e.rec("WriteToUDP: n=%d err=%s", n, e.err(err))
			n, oobn, err := a.WriteMsgUDP(big, nil, e.at(b))
			e.rec("WriteMsgUDP: n=%d oobn=%d err=%s", n, oobn, e.err(err))
			d := e.dialA("A:cli", e.at(b))
			n, err = d.Write(big)
			e.rec("dialed Write: n=%d err=%s", n, e.err(err))
			e.recv("B gets nothing", b, 1<<16, quiet)
		},
		want: Observation{
			`WriteToUDP: n=0 err=OpError{write udp src=A:srv addr=B:srv err=SyscallError{sendto EMSGSIZE}} timeout=false msg="write udp A:srv->B:srv: sendto: message too long"`,
			`WriteMsgUDP: n=0 oobn=0 err=OpError{write udp src=A:srv addr=B:srv err=SyscallError{sendmsg EMSGSIZE}} timeout=false msg="write udp A:srv->B:srv: sendmsg: message too long"`,
			`dialed Write: n=0 err=OpError{write udp src=A:cli addr=B:srv err=SyscallError{write EMSGSIZE}} timeout=false msg="write udp A:cli->B:srv: write: message too long"`,
			`B gets nothing: n=0 data="" from=(*net.UDPAddr)(nil) err=OpError{read udp src=B:srv addr=nil err=ErrDeadlineExceeded} timeout=true is=ErrDeadlineExceeded msg="read udp B:srv: i/o timeout"`,
		},
	},
	{
		name: "size/65507-max-payload",
		tags: []string{"frag"},
		run: func(e *env) {
			a, b := e.listenA("A:srv"), e.listenB("B:peer")
			big := make([]byte, 65507)
			for i := range big {
				big[i] = byte(i * 7)
			}
			n, err := a.WriteToUDP(big, e.at(b))
			e.rec("A WriteToUDP: n=%d err=%s", n, e.err(err))
			buf := make([]byte, 1<<16)
			b.SetReadDeadline(soon())
			n, from, err := b.ReadFromUDP(buf)
			e.rec("B ReadFromUDP: n=%d intact=%v from=%s err=%s", n, bytes.Equal(buf[:n], big), e.addr(from), e.err(err))
			e.send(b, e.at(a), string(big))
			a.SetReadDeadline(soon())
			n, from, err = a.ReadFromUDP(buf)
			e.rec("A ReadFromUDP: n=%d intact=%v from=%s err=%s", n, bytes.Equal(buf[:n], big), e.addr(from), e.err(err))
		},
		want: Observation{
			`A WriteToUDP: n=65507 err=nil`,
			`B ReadFromUDP: n=65507 intact=true from=A:srv err=nil`,
			`A ReadFromUDP: n=65507 intact=true from=B:peer err=nil`,
		},
	},

	// ---- buffers ----
	{
		name: "buffers/large-sizes-accepted",
		run: func(e *env) {
			// quic-go asks for 7 MiB; the kernel caps silently.
			a := e.listenA("A:srv")
			e.rec("SetReadBuffer(7MiB): %s", e.err(a.SetReadBuffer(7<<20)))
			e.rec("SetWriteBuffer(7MiB): %s", e.err(a.SetWriteBuffer(7<<20)))
			e.rec("SetReadBuffer(1): %s", e.err(a.SetReadBuffer(1)))
		},
		want: Observation{
			`SetReadBuffer(7MiB): nil`,
			`SetWriteBuffer(7MiB): nil`,
			`SetReadBuffer(1): nil`,
		},
	},
	{
		name: "buffers/receive-overflow-drops",
		run:  receiveOverflow,
		want: Observation{
			`default buffer: queued some=true dropped some=true starts at #0=true in order=true`,
			`small buffer: queued some=true dropped some=true starts at #0=true in order=true`,
			`large buffer: queued some=true dropped some=true starts at #0=true in order=true`,
			`large buffer queued more=true`,
		},
	},

	// ---- interfaces ----
	{
		name: "iface/net.Conn-and-net.PacketConn",
		run: func(e *env) {
			b := e.listenB("B:srv")
			d := e.dialA("A:cli", e.at(b))
			var c net.Conn = d
			_, isPC := any(d).(net.PacketConn)
			e.rec("net.Conn=true net.PacketConn=%v", isPC)
			n, err := c.Write([]byte("via net.Conn"))
			e.rec("net.Conn Write: n=%d err=%s", n, e.err(err))
			from := e.recv("B", b, 64, safety)
			e.send(b, from, "reply")
			c.SetReadDeadline(soon())
			buf := make([]byte, 64)
			n, err = c.Read(buf)
			e.rec("net.Conn Read: n=%d data=%q err=%s", n, buf[:n], e.err(err))
			e.rec("net.Conn LocalAddr=%s RemoteAddr=%s", e.addr(c.LocalAddr()), e.addr(c.RemoteAddr()))
			e.rec("net.Conn Close: %s", e.err(c.Close()))
		},
		want: Observation{
			`net.Conn=true net.PacketConn=true`,
			`net.Conn Write: n=12 err=nil`,
			`B: n=12 data="via net.Conn" from=A:cli err=nil`,
			`net.Conn Read: n=5 data="reply" err=nil`,
			`net.Conn LocalAddr=A:cli RemoteAddr=B:srv`,
			`net.Conn Close: nil`,
		},
	},
	{
		name: "iface/timeout-error-text",
		run: func(e *env) {
			a := e.listenA("A:srv")
			a.SetReadDeadline(past())
			_, _, err := a.ReadFrom(make([]byte, 1))
			ne, ok := err.(net.Error)
			e.rec("net.Error=%v Timeout=%v", ok, ok && ne.Timeout())
			e.rec("Error() ends in i/o timeout=%v", err != nil && bytes.HasSuffix([]byte(err.Error()), []byte(": i/o timeout")))
			e.rec("Unwrap()=os.ErrDeadlineExceeded=%v", err != nil && errors.Unwrap(err) == os.ErrDeadlineExceeded)
		},
		want: Observation{
			`net.Error=true Timeout=true`,
			`Error() ends in i/o timeout=true`,
			`Unwrap()=os.ErrDeadlineExceeded=true`,
		},
	},
}

func concurrentReadersWriters(e *env) {
	// Four readers and four writers share A's one conn while B sends to
	// it and sinks what it writes; every datagram must arrive exactly once.
	const perDir = 100
	a := e.listenA("A:srv")
	src, sink := e.listenB("B:src"), e.listenB("B:sink")
	a.SetReadBuffer(1 << 20)
	sink.SetReadBuffer(1 << 20)

	type tally struct {
		mu         sync.Mutex
		seen       map[string]int
		wrongPeer  int
		dups       int
		wantSender *net.UDPAddr
	}
	count := func(t *tally, data []byte, from *net.UDPAddr) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if from == nil || !sameAddrPort(from, t.wantSender) {
			t.wrongPeer++
		}
		t.seen[string(data)]++
		if t.seen[string(data)] > 1 {
			t.dups++
		}
	}
	atA := &tally{seen: map[string]int{}, wantSender: e.at(src)}
	atB := &tally{seen: map[string]int{}, wantSender: e.at(a)}

	var received atomic.Int32
	var wg sync.WaitGroup
	a.SetReadDeadline(soon())
	readers := make([]<-chan outcome, 4)
	for i := range readers {
		readers[i] = background(func() (int, any, error) {
			buf := make([]byte, 64)
			for {
				n, from, err := a.ReadFromUDP(buf)
				if err != nil {
					return 0, nil, err
				}
				count(atA, buf[:n], from)
				received.Add(1)
			}
		})
	}
	var writeErrs atomic.Int32
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perDir / 4 {
				if _, err := a.WriteToUDP(fmt.Appendf(nil, "w%d-%d", w, i), e.at(sink)); err != nil {
					writeErrs.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range perDir {
			src.WriteToUDP(fmt.Appendf(nil, "r%d", i), e.at(a))
		}
	}()
	sinkDone := background(func() (int, any, error) {
		buf := make([]byte, 64)
		sink.SetReadDeadline(soon())
		for range perDir {
			n, from, err := sink.ReadFromUDP(buf)
			if err != nil {
				return 0, nil, err
			}
			count(atB, buf[:n], from)
		}
		return 0, nil, nil
	})
	wg.Wait()
	for deadline := time.Now().Add(safety); received.Load() < perDir && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	// All datagrams are in; a past deadline must release every reader.
	a.SetReadDeadline(past())
	woken := true
	for _, r := range readers {
		select {
		case o := <-r:
			woken = woken && isTimeout(o.err)
		case <-time.After(safety):
			woken = false
		}
	}
	select {
	case <-sinkDone:
	case <-time.After(safety):
	}
	e.rec("A writers: errors=%d", writeErrs.Load())
	atA.mu.Lock()
	e.rec("A readers: distinct=%d duplicates=%d wrong sender=%d", len(atA.seen), atA.dups, atA.wrongPeer)
	atA.mu.Unlock()
	e.rec("A readers: all woken by the past deadline=%v", woken)
	atB.mu.Lock()
	e.rec("B sink: distinct=%d duplicates=%d wrong sender=%d", len(atB.seen), atB.dups, atB.wrongPeer)
	atB.mu.Unlock()
}

func receiveOverflow(e *env) {
	// B floods A, which does not read; the receive queue keeps the oldest
	// datagrams up to its byte limit and drops the rest. Exact counts
	// differ by implementation (the kernel charges skb overhead), so only
	// the shape is compared.
	const sent, size = 1000, 1000
	flood := func(role string, rcvbuf int) (queued int, first0, ordered bool) {
		a, b := e.listenA("A:"+role), e.listenB("B:"+role)
		if rcvbuf > 0 {
			if err := a.SetReadBuffer(rcvbuf); err != nil {
				e.t.Fatal(err)
			}
		}
		// One datagram first, so that address resolution on a real link
		// is done before the flood: it is not what this scenario tests.
		b.WriteToUDP([]byte("warm-up"), e.at(a))
		a.SetReadDeadline(time.Now().Add(safety))
		a.ReadFromUDP(make([]byte, 16))
		payload := make([]byte, size)
		for i := range sent {
			payload[0], payload[1] = byte(i>>8), byte(i)
			b.WriteToUDP(payload, e.at(a))
		}
		time.Sleep(50*time.Millisecond + e.s.Settle)
		buf := make([]byte, size)
		first0, ordered, last := false, true, -1
		for queued < sent {
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _, err := a.ReadFromUDP(buf)
			if err != nil || n != size {
				break
			}
			seq := int(buf[0])<<8 | int(buf[1])
			if queued == 0 {
				first0 = seq == 0
			}
			ordered = ordered && seq > last
			last = seq
			queued++
		}
		return queued, first0, ordered
	}
	def, d0, dOrd := flood("default", 0)
	small, s0, sOrd := flood("small", 16<<10)
	large, l0, lOrd := flood("large", 256<<10)
	e.rec("default buffer: queued some=%v dropped some=%v starts at #0=%v in order=%v", def > 0, def < sent, d0, dOrd)
	e.rec("small buffer: queued some=%v dropped some=%v starts at #0=%v in order=%v", small > 0, small < sent, s0, sOrd)
	e.rec("large buffer: queued some=%v dropped some=%v starts at #0=%v in order=%v", large > 0, large < sent, l0, lOrd)
	e.rec("large buffer queued more=%v", large > small)
	e.t.Logf("queued of %d: default buffer %d, SetReadBuffer(16KiB) %d, SetReadBuffer(256KiB) %d", sent, def, small, large)
}

// versionNetwork is the network of A's IP version alone: "udp6" when the
// subject's A is an IPv6 host, else "udp4".
func (e *env) versionNetwork() string {
	if e.s.AddrA.Is6() && !e.s.AddrA.Is4In6() {
		return "udp6"
	}
	return "udp4"
}
