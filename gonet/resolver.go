package gonet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
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
// and attempts; only the servers are replaced, tried in turn. (Go's
// net.Resolver cannot be given another search list: LookupNetIPSearch
// applies one, such as a DHCP lease's.) There is no TCP: an answer
// truncated over UDP fails (see ErrNoTCP).
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

// maxSearch bounds the search domains tried for one name, as glibc long
// did (MAXDNSRCH), so that a long list from a server cannot multiply every
// lookup.
const maxSearch = 6

// LookupNetIPSearch is r.LookupNetIP with the search list search applied as
// a stub resolver with ndots 1 applies resolv.conf's: a name ending in a
// dot (or an IP address) is looked up as it is; a name with a dot first as
// it is, then with each search domain appended; a name without one with
// each domain first, then as it is. The first name with addresses wins.
// As in net, a failed name (not found, or the server refusing it) moves on
// to the next, unless r.StrictErrors is set and the failure is a timeout
// or temporary, or ctx is done; when all fail, the error is the one for
// the name as given, as net reports it. Every name goes to r rooted,
// so the host's resolv.conf search list is not applied on top. Only the
// first six domains are tried.
func LookupNetIPSearch(ctx context.Context, r *net.Resolver, network, host string, search []string) ([]netip.Addr, error) {
	var kept error
	for _, name := range searchNames(host, search) {
		ips, err := r.LookupNetIP(ctx, network, name)
		if err == nil {
			return ips, nil
		}
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || ctx.Err() != nil || r.StrictErrors && (dnsErr.IsTimeout || dnsErr.IsTemporary) {
			return nil, err
		}
		if kept == nil || name == host+"." {
			e := *dnsErr
			e.Name = host // as net names the name asked for
			kept = &e
		}
	}
	return nil, kept
}

// searchNames lists the rooted names to try for host, in order.
func searchNames(host string, search []string) []string {
	if _, err := netip.ParseAddr(host); err == nil || host == "" || strings.HasSuffix(host, ".") {
		return []string{host}
	}
	names := make([]string, 0, min(len(search), maxSearch)+1)
	for _, d := range search[:min(len(search), maxSearch)] {
		if d = strings.Trim(d, "."); d != "" {
			names = append(names, host+"."+d+".")
		}
	}
	if strings.Contains(host, ".") {
		return append([]string{host + "."}, names...)
	}
	return append(names, host+".")
}
