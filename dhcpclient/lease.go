package dhcpclient

import (
	"errors"
	"math/bits"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is what a DHCP server granted: the address and the configuration
// that came with it.
type Lease struct {
	// Addr is the leased address with the prefix length of the subnet
	// mask.
	Addr netip.Prefix
	// Server is the server identifier (option 54): where renewals go.
	Server netip.Addr
	// Routers are the default routers (option 3), in the server's order.
	// They are not used when Routes is set, as RFC 3442 requires.
	Routers []netip.Addr
	// Routes are the classless static routes (option 121). A route with
	// an unspecified gateway is on-link.
	Routes []Route
	// DNS are the name servers (option 6).
	DNS []netip.Addr
	// Domain is the domain name (option 15).
	Domain string
	// Search is the domain search list (option 119). It, or else Domain,
	// is what Client.LookupNetIP appends to relative names
	// (Client.SearchDomains); Client.Resolver does not.
	Search []string
	// MTU is the interface MTU (option 26), 0 when not given or below
	// RFC 2132's minimum of 68. The client sets the NIC's MTU to it, no
	// higher than the link's (on a NIC with IPv6, no lower than 1280:
	// see stack.NIC.SetMTU).
	MTU int
	// Acquired is when the request that this lease answers was sent: the
	// lease's times count from then (RFC 2131 §4.4.1).
	Acquired time.Time
	// Duration, T1 and T2 are the lease time (option 51) and the renewal
	// and rebinding times (options 58 and 59, or 1/2 and 7/8 of Duration).
	Duration, T1, T2 time.Duration
}

// Route is a classless static route of a lease.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

// Expiry is when the lease ends unless renewed.
func (l *Lease) Expiry() time.Time { return l.Acquired.Add(l.Duration) }

// Why a reply is ignored; each counts in Stats.
var (
	errBadAddress = errors.New("offered address unusable")
	errBadMask    = errors.New("subnet mask missing, not contiguous, /0 or /32")
	errBadServer  = errors.New("server identifier missing or unusable")
	errBadLease   = errors.New("lease time missing or zero")
	errBadRouter  = errors.New("router or route gateway off the subnet")
)

// parseLease validates an OFFER or ACK and turns it into a lease acquired
// at sent. It rejects what a hostile or broken server could use to
// misconfigure the stack.
func parseLease(m *dhcpv4.DHCPv4, sent time.Time) (Lease, error) {
	var l Lease
	a, ok := unicastAddr(m.YourIPAddr)
	if !ok {
		return l, errBadAddress
	}
	bitsLen, ok := maskBits(m.Options.Get(dhcpv4.OptionSubnetMask))
	if !ok {
		return l, errBadMask
	}
	l.Addr = netip.PrefixFrom(a, bitsLen)
	if a == l.Addr.Masked().Addr() || a == lastAddr(l.Addr) && bitsLen < 31 {
		return l, errBadAddress // the network or broadcast address
	}
	if l.Server, ok = unicastAddr(m.ServerIdentifier()); !ok || l.Server == a {
		return l, errBadServer
	}
	if l.Duration, ok = duration(m.Options.Get(dhcpv4.OptionIPAddressLeaseTime)); !ok || l.Duration == 0 {
		return l, errBadLease
	}
	l.T1, l.T2 = l.Duration/2, l.Duration/8*7
	if d, ok := duration(m.Options.Get(dhcpv4.OptionRenewTimeValue)); ok {
		l.T1 = d
	}
	if d, ok := duration(m.Options.Get(dhcpv4.OptionRebindingTimeValue)); ok {
		l.T2 = d
	}
	if l.T2 > l.Duration || l.T2 <= 0 {
		l.T2 = l.Duration / 8 * 7
	}
	if l.T1 > l.T2 || l.T1 <= 0 {
		l.T1 = min(l.Duration/2, l.T2)
	}
	if err := l.parseRoutes(m); err != nil {
		return l, err
	}
	for _, ip := range m.DNS() {
		if d, ok := unicastAddr(ip); ok {
			l.DNS = append(l.DNS, d)
		}
	}
	l.Domain = m.DomainName()
	if s := m.DomainSearch(); s != nil {
		l.Search = s.Labels
	}
	if mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, m.Options); err == nil && mtu >= 68 {
		l.MTU = int(mtu)
	}
	l.Acquired = sent
	return l, nil
}

// parseRoutes reads options 121 and 3. Every gateway must be on the leased
// subnet: a router elsewhere could not be reached.
func (l *Lease) parseRoutes(m *dhcpv4.DHCPv4) error {
	if raw := m.Options.Get(dhcpv4.OptionClasslessStaticRoute); raw != nil {
		var rs dhcpv4.Routes
		if err := rs.FromBytes(raw); err != nil {
			return errBadRouter
		}
		for _, r := range rs {
			dst, ok := netip.AddrFromSlice(r.Dest.IP.To4())
			ones, _ := r.Dest.Mask.Size()
			gw, gok := netip.AddrFromSlice(r.Router.To4())
			if !ok || !gok || (!gw.IsUnspecified() && !l.Addr.Contains(gw)) {
				return errBadRouter
			}
			l.Routes = append(l.Routes, Route{Dst: netip.PrefixFrom(dst, ones).Masked(), Gateway: gw})
		}
		return nil
	}
	for _, ip := range m.Router() {
		gw, ok := unicastAddr(ip)
		if !ok || !l.Addr.Contains(gw) || gw == l.Addr.Addr() {
			return errBadRouter
		}
		l.Routers = append(l.Routers, gw)
	}
	return nil
}

// unicastAddr converts ip, accepting only an IPv4 address a host may have.
func unicastAddr(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || ip.To4() == nil {
		return netip.Addr{}, false
	}
	b := a.As4()
	if b[0] == 0 || b[0] == 127 || b[0] >= 224 {
		return netip.Addr{}, false
	}
	return a, true
}

// maskBits returns the prefix length of a contiguous 4-byte subnet mask,
// refusing /0 (everything on-link) and /32 (no subnet at all).
func maskBits(m []byte) (int, bool) {
	if len(m) != 4 {
		return 0, false
	}
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := bits.LeadingZeros32(^v)
	if v<<n != 0 || n == 0 || n == 32 {
		return 0, false
	}
	return n, true
}

func duration(b []byte) (time.Duration, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return time.Duration(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) * time.Second, true
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | ^uint32(0)>>p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
