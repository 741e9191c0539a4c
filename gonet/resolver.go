package gonet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/tapnet/tapnet/stack"
)

// ErrNoTCP is what a tapnet resolver's Dial returns for TCP, which tapnet
// does not have. net.Resolver asks for TCP only after a truncated UDP
// answer (one too big for 512 bytes, or whatever EDNS size the server
// allows); that lookup then fails with a *net.DNSError whose Err is this
// error's text. (net names in it the host's resolv.conf server, the
// address its Dial was asked for, not the tapnet server that answered.)
var ErrNoTCP = errors.New("tapnet: DNS over TCP is not available (truncated answer)")

// errNoDNSServers is the Dial error when the server list is empty.
var errNoDNSServers = errors.New("tapnet: no DNS servers")

// Resolver returns a *net.Resolver that sends its queries over s to the
// given DNS servers, so that LookupHost, LookupNetIP, LookupSRV and the
// rest work over tapnet unchanged. It is net's pure Go resolver
// (PreferGo): names are still looked up in the host's /etc/hosts first,
// and the host's resolv.conf still gives the search list, ndots, timeout
// and attempts; only the servers are replaced, tried in turn. There is no
// TCP: an answer truncated over UDP fails (see ErrNoTCP).
func Resolver(s *stack.Stack, servers ...netip.AddrPort) *net.Resolver {
	servers = append([]netip.AddrPort(nil), servers...)
	return ResolverFunc(s, func() []netip.AddrPort { return servers })
}

// ResolverFunc is Resolver with the servers read at every query, for a list
// that changes (a DHCP lease's).
func ResolverFunc(s *stack.Stack, servers func() []netip.AddrPort) *net.Resolver {
	var next atomic.Uint32
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		if network != "udp" && network != "udp4" {
			return nil, &net.OpError{Op: "dial", Net: network, Err: ErrNoTCP}
		}
		list := servers()
		if len(list) == 0 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errNoDNSServers}
		}
		srv := list[int(next.Add(1)-1)%len(list)]
		return DialUDP(s, "udp", nil, net.UDPAddrFromAddrPort(srv))
	}
	return &net.Resolver{PreferGo: true, Dial: dial}
}
