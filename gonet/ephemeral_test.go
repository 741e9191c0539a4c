package gonet

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/stack"
)

// TestEphemeralRangeExhausted: with every ephemeral port taken, an
// explicit bind to port 0 fails like Linux's bind(2), with EADDRINUSE,
// while the implicit bind of a dial fails like connect(2)'s autobind, with
// EAGAIN; both in net's error shape.
func TestEphemeralRangeExhausted(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	for i := range stack.EphemeralMax - stack.EphemeralMin + 1 {
		c, err := ListenUDP(s, "udp4", nil)
		if err != nil {
			t.Fatalf("socket %d of the range: %v", i, err)
		}
		defer c.Close()
	}
	laddr := &net.UDPAddr{}
	_, err := ListenUDP(s, "udp4", laddr)
	checkSyscallOpError(t, err, "listen", "bind", syscall.EADDRINUSE)
	_, err = DialUDP(s, "udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	checkSyscallOpError(t, err, "dial", "connect", syscall.EAGAIN)
}

// checkSyscallOpError checks that err is a *net.OpError for op wrapping an
// *os.SyscallError of syscall call with errno want (in this system's
// terms, see osErrno), as net returns.
func checkSyscallOpError(t *testing.T, err error, op, call string, want syscall.Errno) {
	t.Helper()
	call, want = osCall(call), osErrno(want)
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != op || !errors.As(err, &se) || se.Syscall != call || !errors.Is(err, want) {
		t.Errorf("got %#v (%v), want a %q OpError wrapping %s: %v", err, err, op, call, want)
	}
}
