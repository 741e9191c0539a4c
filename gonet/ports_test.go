package gonet

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/stack"
)

// portConn is what the port tests use of a conn, kernel or tapnet.
type portConn interface {
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error)
	SetWriteDeadline(t time.Time) error
	LocalAddr() net.Addr
	Close() error
}

// portAPI is net's package-level API, or gonet's on one stack.
type portAPI struct {
	listenUDP       func(network string, laddr *net.UDPAddr) (portConn, error)
	dialUDP         func(network string, laddr, raddr *net.UDPAddr) (portConn, error)
	listenPacket    func(network, address string) (net.PacketConn, error)
	dial            func(network, address string) (net.Conn, error)
	listenMulticast func(network string, gaddr *net.UDPAddr) (portConn, error)
}

func kernelPortAPI() portAPI {
	return portAPI{
		listenUDP:    func(n string, l *net.UDPAddr) (portConn, error) { return orNil(net.ListenUDP(n, l)) },
		dialUDP:      func(n string, l, r *net.UDPAddr) (portConn, error) { return orNil(net.DialUDP(n, l, r)) },
		listenPacket: net.ListenPacket,
		dial:         net.Dial,
		listenMulticast: func(n string, g *net.UDPAddr) (portConn, error) {
			return orNil(net.ListenMulticastUDP(n, nil, g))
		},
	}
}

func tapnetPortAPI(s *stack.Stack) portAPI {
	return portAPI{
		listenUDP:    func(n string, l *net.UDPAddr) (portConn, error) { return orNil(ListenUDP(s, n, l)) },
		dialUDP:      func(n string, l, r *net.UDPAddr) (portConn, error) { return orNil(DialUDP(s, n, l, r)) },
		listenPacket: func(n, a string) (net.PacketConn, error) { return ListenPacket(s, n, a) },
		dial:         func(n, a string) (net.Conn, error) { return Dial(s, n, a) },
		listenMulticast: func(n string, g *net.UDPAddr) (portConn, error) {
			return orNil(ListenMulticastUDP(s, n, nil, g))
		},
	}
}

// orNil keeps a failed constructor's typed nil out of the interface.
func orNil[C portConn](c C, err error) (portConn, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// describeErr renders what user code can observe of err, with the conn's
// own port (which differs between kernel and tapnet) as PORT.
func describeErr(err error, port int) string {
	if err == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q ", err.Error())
	if oe, ok := err.(*net.OpError); ok {
		fmt.Fprintf(&b, "OpError{Op:%s Net:%s Source:%v(nil %v) Addr:%v(nil %v)} ", oe.Op, oe.Net, oe.Source, oe.Source == nil, oe.Addr, oe.Addr == nil)
		err = oe.Err
	}
	switch e := err.(type) {
	case *net.AddrError:
		fmt.Fprintf(&b, "AddrError{Err:%q Addr:%q}", e.Err, e.Addr)
	case *net.DNSError:
		fmt.Fprintf(&b, "DNSError{Err:%q Name:%q NotFound:%v}", e.Err, e.Name, e.IsNotFound)
	default:
		fmt.Fprintf(&b, "%v EINVAL:%v closed:%v timeout:%v", err, errors.Is(err, syscall.EINVAL), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err))
	}
	return strings.ReplaceAll(b.String(), ":"+strconv.Itoa(port), ":PORT")
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// TestPortsOutOfRange compares with net on the kernel every way a port
// outside 0–65535 reaches the API: *net.UDPAddr ports fail with EINVAL from
// bind, connect, sendto or sendmsg, string ports with net's "invalid port"
// AddrError, and the error's Op, Net, Source and Addr are net's.
func TestPortsOutOfRange(t *testing.T) {
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("net has no sockets of the system's here to compare with")
	}
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	lo := net.IPv4(127, 0, 0, 1)
	at := func(port int) *net.UDPAddr { return &net.UDPAddr{IP: lo, Port: port} }
	group := func(port int) *net.UDPAddr { return &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3), Port: port} }
	closeIf := func(c interface{ Close() error }, err error) error {
		if err == nil {
			c.Close()
		}
		return err
	}
	// Each case returns the error and the port of the conn it used.
	type result struct {
		err  error
		port int
	}
	write := func(api portAPI, f func(c portConn) error, prep func(c portConn)) result {
		c, err := api.listenUDP("udp4", at(0))
		if err != nil {
			return result{err: err}
		}
		defer c.Close()
		if prep != nil {
			prep(c)
		}
		return result{f(c), c.LocalAddr().(*net.UDPAddr).Port}
	}
	expire := func(c portConn) { c.SetWriteDeadline(time.Now().Add(-time.Second)) }
	closeConn := func(c portConn) { c.Close() }
	type tcase struct {
		name string
		run  func(api portAPI) result
	}
	var cases []tcase
	for _, p := range []int{65536, -1, 1 << 20} {
		cases = append(cases,
			tcase{fmt.Sprintf("ListenUDP udp :%d", p), func(api portAPI) result {
				c, err := api.listenUDP("udp", &net.UDPAddr{Port: p})
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("ListenUDP udp4 127.0.0.1:%d", p), func(api portAPI) result {
				c, err := api.listenUDP("udp4", at(p))
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("DialUDP raddr :%d", p), func(api portAPI) result {
				c, err := api.dialUDP("udp4", nil, at(p))
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("DialUDP laddr :%d", p), func(api portAPI) result {
				c, err := api.dialUDP("udp4", &net.UDPAddr{Port: p}, at(9))
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("DialUDP both :%d", p), func(api portAPI) result {
				c, err := api.dialUDP("udp", &net.UDPAddr{Port: p}, at(p))
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("ListenMulticastUDP :%d", p), func(api portAPI) result {
				c, err := api.listenMulticast("udp4", group(p))
				return result{err: closeIf(c, err)}
			}},
			tcase{fmt.Sprintf("WriteToUDP :%d", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, err := c.WriteToUDP([]byte("x"), at(p)); return err }, nil)
			}},
			tcase{fmt.Sprintf("WriteTo :%d", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, err := c.WriteTo([]byte("x"), at(p)); return err }, nil)
			}},
			tcase{fmt.Sprintf("WriteMsgUDP :%d", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, _, err := c.WriteMsgUDP([]byte("x"), nil, at(p)); return err }, nil)
			}},
			tcase{fmt.Sprintf("WriteToUDP :%d after the deadline", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, err := c.WriteToUDP([]byte("x"), at(p)); return err }, expire)
			}},
			tcase{fmt.Sprintf("WriteMsgUDP :%d after the deadline", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, _, err := c.WriteMsgUDP([]byte("x"), nil, at(p)); return err }, expire)
			}},
			tcase{fmt.Sprintf("WriteTo :%d after Close", p), func(api portAPI) result {
				return write(api, func(c portConn) error { _, err := c.WriteTo([]byte("x"), at(p)); return err }, closeConn)
			}},
		)
	}
	for _, a := range []string{"127.0.0.1:65536", "127.0.0.1:-1", ":65536", "127.0.0.1:99999999999", "127.0.0.1:0x10", "127.0.0.1:5 ", "127.0.0.1:tapnet-no-such-service"} {
		cases = append(cases,
			tcase{"ListenPacket " + a, func(api portAPI) result {
				c, err := api.listenPacket("udp", a)
				return result{err: closeIf(c, err)}
			}},
			tcase{"Dial " + a, func(api portAPI) result {
				c, err := api.dial("udp4", a)
				return result{err: closeIf(c, err)}
			}},
		)
	}
	kernel, tapnet := kernelPortAPI(), tapnetPortAPI(s)
	for _, tc := range cases {
		k, g := tc.run(kernel), tc.run(tapnet)
		want, got := describeErr(k.err, k.port), describeErr(g.err, g.port)
		if k.err == nil {
			t.Errorf("%s: the kernel accepted it; the case is wrong", tc.name)
		}
		if got != want {
			t.Errorf("%s:\n  tapnet %s\n  kernel %s", tc.name, got, want)
		}
	}
}
