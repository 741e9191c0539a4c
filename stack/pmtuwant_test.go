package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/stack"
)

// sentDF reports the DF bit of every IPv4 packet in frames.
func sentDF(t *testing.T, frames [][]byte) []bool {
	t.Helper()
	df := make([]bool, len(frames))
	for i, f := range frames {
		df[i] = ipv4.Header(relParseSent(t, f).ip).DontFragment()
	}
	return df
}

// TestPMTUDiscoveryModes: a socket's default is Linux's IP_PMTUDISC_WANT
// (DF on datagrams that fit, local fragmentation without DF above the
// MTU), DO sets DF and refuses oversize sends, DONT never sets DF.
func TestPMTUDiscoveryModes(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(relOurIP, 5000)
	to := netip.AddrPortFrom(relPeerIP, 9)

	if df := sentDF(t, e.sendBig(ep, make([]byte, 100))); len(df) != 1 || !df[0] {
		t.Fatalf("default, small datagram: DF %v, want one frame with DF", df)
	}
	if df := sentDF(t, e.sendBig(ep, make([]byte, 1473))); len(df) != 2 || df[0] || df[1] {
		t.Fatalf("default, 1473 bytes: DF %v, want two fragments without DF", df)
	}
	if n, err := ep.WriteBatch([][]byte{make([]byte, 10), make([]byte, 20)}, to, nil); err != nil || n != 2 {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if df := sentDF(t, e.link.take()); len(df) != 2 || !df[0] || !df[1] {
		t.Fatalf("default, batch: DF %v, want two frames with DF", df)
	}

	ep.UpdateOptions(func(o *udpsock.Options) { o.PMTUDiscovery = udpsock.PMTUDiscoveryDo })
	if _, err := ep.Write(make([]byte, 1473), to, nil); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("DO, 1473 bytes: %v, want EMSGSIZE", err)
	}
	if df := sentDF(t, e.sendBig(ep, make([]byte, 100))); len(df) != 1 || !df[0] {
		t.Fatalf("DO, small datagram: DF %v, want one frame with DF", df)
	}

	ep.UpdateOptions(func(o *udpsock.Options) { o.PMTUDiscovery = udpsock.PMTUDiscoveryDont })
	if df := sentDF(t, e.sendBig(ep, make([]byte, 100))); len(df) != 1 || df[0] {
		t.Fatalf("DONT, small datagram: DF %v, want one frame without DF", df)
	}
	if df := sentDF(t, e.sendBig(ep, make([]byte, 1473))); len(df) != 2 || df[0] || df[1] {
		t.Fatalf("DONT, 1473 bytes: DF %v, want two fragments without DF", df)
	}
}
