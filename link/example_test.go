package link_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
)

// udpLink is a link written outside tapnet: it carries each Ethernet frame
// in one UDP datagram of a kernel socket, so stacks in two processes (or on
// two machines) share a virtual LAN.
type udpLink struct {
	conn *net.UDPConn
	peer netip.AddrPort // the socket of the other end of the LAN
	mac  ethernet.MAC
}

func (l *udpLink) Info() link.Info {
	return link.Info{MTU: 1400, Layer: link.LayerEthernet, MAC: l.mac}
}

// ReadFrames reads one datagram straight into the stack's buffer. Its room
// exceeds the MTU, so an oversized datagram shows up as too long and the
// stack drops it.
func (l *udpLink) ReadFrames(frames []link.Frame) (int, error) {
	f := &frames[0]
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(f.Buf[f.Off:])
		if err != nil {
			return 0, err // closed: the stack stops reading
		}
		if from == l.peer { // anyone else is not on our LAN
			f.Len = n
			return 1, nil
		}
	}
}

func (l *udpLink) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if _, err := l.conn.WriteToUDPAddrPort(frames[i].Bytes(), l.peer); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

func (l *udpLink) Close() error { return l.conn.Close() }

// Two stacks joined by a link of our own, Ethernet in UDP over 127.0.0.1,
// run a UDP echo across it.
func Example() {
	wireA, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	wireB, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	linkA := &udpLink{conn: wireA, peer: wireB.LocalAddr().(*net.UDPAddr).AddrPort(), mac: ethernet.RandomMAC()}
	linkB := &udpLink{conn: wireB, peer: wireA.LocalAddr().(*net.UDPAddr).AddrPort(), mac: ethernet.RandomMAC()}

	a, b := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer a.Close() // closes linkA too
	defer b.Close()
	if _, err := a.AddNIC(linkA, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}); err != nil {
		panic(err)
	}
	if _, err := b.AddNIC(linkB, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		panic(err)
	}

	srv, err := gonet.ListenUDP(b, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		panic(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()

	conn, err := gonet.Dial(a, "udp", "192.0.2.2:7")
	if err != nil {
		panic(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("hello through a user-written link"))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	fmt.Println(string(buf[:n]), err)
	// Output: hello through a user-written link <nil>
}
