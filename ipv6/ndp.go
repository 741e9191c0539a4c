package ipv6

import (
	"encoding/binary"
	"errors"
	"iter"
	"net/netip"
	"time"
)

// NDP message lengths without options (RFC 4861 4).
const (
	RouterSolicitLen   = 8
	RouterAdvertLen    = 16
	NeighborSolicitLen = 24
	NeighborAdvertLen  = 24
	RedirectLen        = 40
	// NDPHopLimit is the hop limit every NDP message is sent and must be
	// received with: 255 proves it was not forwarded (RFC 4861 3.1).
	NDPHopLimit = 255
)

// NDP option types (RFC 4861 4.6, RFC 8106).
const (
	OptSourceLinkAddr  = 1
	OptTargetLinkAddr  = 2
	OptPrefixInfo      = 3
	OptRedirectedHdr   = 4
	OptMTU             = 5
	OptRDNSS           = 25
	optPrefixInfoLen   = 32
	optMTULen          = 8
	optRDNSSMinLen     = 24
	optRedirectedHdrOf = 8 // the invoking packet starts 8 bytes in
)

// Neighbor Advertisement flags (RFC 4861 4.4).
const (
	NAFlagRouter    = 0x80
	NAFlagSolicited = 0x40
	NAFlagOverride  = 0x20
)

// Router Advertisement flags (RFC 4861 4.2).
const (
	RAFlagManaged = 0x80
	RAFlagOther   = 0x40
)

// Prefix Information flags (RFC 4861 4.6.2).
const (
	PrefixFlagOnLink     = 0x80
	PrefixFlagAutonomous = 0x40
)

// InfiniteLifetime is the lifetime value that never expires.
const InfiniteLifetime = 0xffffffff

// Errors returned by ParseNDP, one per check of RFC 4861's validation
// (6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1).
var (
	ErrNDPType          = errors.New("ndp: not a neighbor discovery message")
	ErrNDPHopLimit      = errors.New("ndp: hop limit is not 255")
	ErrNDPCode          = errors.New("ndp: code is not 0")
	ErrNDPTooShort      = errors.New("ndp: message shorter than its type's fixed part")
	ErrNDPOptionLen     = errors.New("ndp: option of length 0 or past the message")
	ErrNDPSourceLinkOpt = errors.New("ndp: link-layer address option from the unspecified address")
	ErrNDPSource        = errors.New("ndp: router message not from a link-local address")
	ErrNDPTarget        = errors.New("ndp: multicast target")
	ErrNDPDestination   = errors.New("ndp: DAD probe not to a solicited-node group")
	ErrNDPSolicited     = errors.New("ndp: solicited advertisement to a multicast group")
	ErrNDPRedirect      = errors.New("ndp: redirect target neither link-local nor the destination")
)

// NDP is a view of a validated Neighbor Discovery message: an ICMPv6
// message of type 133 to 137.
type NDP ICMP

// ParseNDP validates m, an ICMPv6 message that ParseICMP accepted, as a
// Neighbor Discovery message received with hopLimit from src to dst: the
// hop limit is 255, the code 0, the fixed part present, every option of
// non-zero length within the message, and each type's own rules hold.
// Unknown options are allowed (and skipped by readers). What needs state
// is the caller's: that a redirect comes from the current first hop, that
// a target is one of ours.
func ParseNDP(m ICMP, hopLimit uint8, src, dst netip.Addr) (NDP, error) {
	if len(m) < 4 {
		return nil, ErrNDPTooShort
	}
	min := ndpFixedLen(m.Type())
	switch {
	case min == 0:
		return nil, ErrNDPType
	case hopLimit != NDPHopLimit:
		return nil, ErrNDPHopLimit
	case m.Code() != 0:
		return nil, ErrNDPCode
	case len(m) < min:
		return nil, ErrNDPTooShort
	}
	n := NDP(m)
	if !validOptions(n.Options()) {
		return nil, ErrNDPOptionLen
	}
	return n, n.checkAddresses(src, dst)
}

// ndpFixedLen returns the length of a type's fixed part, or 0 for types
// that are not NDP.
func ndpFixedLen(typ uint8) int {
	switch typ {
	case ICMPRouterSolicit:
		return RouterSolicitLen
	case ICMPRouterAdvert:
		return RouterAdvertLen
	case ICMPNeighborSolicit:
		return NeighborSolicitLen
	case ICMPNeighborAdvert:
		return NeighborAdvertLen
	case ICMPRedirect:
		return RedirectLen
	}
	return 0
}

// checkAddresses applies the per-type rules on addresses.
func (n NDP) checkAddresses(src, dst netip.Addr) error {
	_, hasSLLA := n.Options().Find(OptSourceLinkAddr)
	switch n.Type() {
	case ICMPRouterSolicit:
		if src.IsUnspecified() && hasSLLA {
			return ErrNDPSourceLinkOpt
		}
	case ICMPRouterAdvert:
		if !isLinkLocal(src) {
			return ErrNDPSource
		}
	case ICMPNeighborSolicit:
		if isMulticast(n.Target()) {
			return ErrNDPTarget
		}
		if src.IsUnspecified() {
			if hasSLLA {
				return ErrNDPSourceLinkOpt
			}
			if !isSolicitedNode(dst) {
				return ErrNDPDestination
			}
		}
	case ICMPNeighborAdvert:
		if isMulticast(n.Target()) {
			return ErrNDPTarget
		}
		if isMulticast(dst) && n.Flags()&NAFlagSolicited != 0 {
			return ErrNDPSolicited
		}
	case ICMPRedirect:
		if !isLinkLocal(src) {
			return ErrNDPSource
		}
		if isMulticast(n.Destination()) {
			return ErrNDPTarget
		}
		if !isLinkLocal(n.Target()) && n.Target() != n.Destination() {
			return ErrNDPRedirect
		}
	}
	return nil
}

// Type returns the message type.
func (n NDP) Type() uint8 { return n[0] }

// Flags returns the flags byte of an advertisement (NAFlag*, RAFlag*).
func (n NDP) Flags() uint8 {
	if n.Type() == ICMPRouterAdvert {
		return n[5]
	}
	return n[4]
}

// Target returns the target address of a neighbor solicitation,
// advertisement or redirect.
func (n NDP) Target() netip.Addr { return netip.AddrFrom16([16]byte(n[8:24])) }

// Destination returns a redirect's destination address.
func (n NDP) Destination() netip.Addr { return netip.AddrFrom16([16]byte(n[24:40])) }

// CurHopLimit returns a router advertisement's hop limit (0: unspecified).
func (n NDP) CurHopLimit() uint8 { return n[4] }

// RouterLifetime returns how long a router advertisement's sender is a
// default router (0: it is not one).
func (n NDP) RouterLifetime() time.Duration {
	return time.Duration(binary.BigEndian.Uint16(n[6:8])) * time.Second
}

// ReachableTime returns a router advertisement's reachable time (0:
// unspecified).
func (n NDP) ReachableTime() time.Duration {
	return time.Duration(binary.BigEndian.Uint32(n[8:12])) * time.Millisecond
}

// RetransTimer returns a router advertisement's retransmission timer (0:
// unspecified).
func (n NDP) RetransTimer() time.Duration {
	return time.Duration(binary.BigEndian.Uint32(n[12:16])) * time.Millisecond
}

// Options returns the options that follow the fixed part.
func (n NDP) Options() NDPOptions { return NDPOptions(n[ndpFixedLen(n.Type()):]) }

// NDPOptions is a view of a run of NDP options.
type NDPOptions []byte

// validOptions reports whether every option has a non-zero length within
// the run (RFC 4861 6.1: otherwise the whole message is dropped).
func validOptions(o NDPOptions) bool {
	for len(o) > 0 {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return false
		}
		o = o[int(o[1])*8:]
	}
	return true
}

// All iterates over the options. A malformed option ends the run, so an
// unvalidated run is read safely up to its first bad option.
func (o NDPOptions) All() iter.Seq[NDPOption] {
	return func(yield func(NDPOption) bool) {
		for len(o) >= 2 && o[1] != 0 && int(o[1])*8 <= len(o) {
			n := int(o[1]) * 8
			if !yield(NDPOption(o[:n])) {
				return
			}
			o = o[n:]
		}
	}
}

// Find returns the first option of type typ. Linux uses the first of
// duplicated link-layer address and MTU options and ignores the others.
func (o NDPOptions) Find(typ uint8) (NDPOption, bool) {
	for opt := range o.All() {
		if opt.Type() == typ {
			return opt, true
		}
	}
	return nil, false
}

// NDPOption is a view of one option: type, length, data.
type NDPOption []byte

// Type returns the option type.
func (o NDPOption) Type() uint8 { return o[0] }

// Data returns what follows the type and length bytes.
func (o NDPOption) Data() []byte { return o[2:] }

// LinkAddr returns the Ethernet address of a source or target link-layer
// address option. ok is false unless the option is 8 bytes long, the
// length of a 6-byte address (RFC 2464 8).
func (o NDPOption) LinkAddr() (mac [6]byte, ok bool) {
	if len(o) != 8 {
		return mac, false
	}
	return [6]byte(o[2:8]), true
}

// MTU returns the value of an MTU option; ok is false if it has the wrong
// length.
func (o NDPOption) MTU() (mtu uint32, ok bool) {
	if len(o) != optMTULen {
		return 0, false
	}
	return binary.BigEndian.Uint32(o[4:8]), true
}

// PrefixInfo describes a Prefix Information option (RFC 4861 4.6.2). The
// lifetimes are in seconds; InfiniteLifetime never expires.
type PrefixInfo struct {
	Prefix            netip.Prefix // host bits as sent
	OnLink            bool         // L flag
	Autonomous        bool         // A flag: usable for SLAAC (RFC 4862)
	ValidLifetime     uint32
	PreferredLifetime uint32
}

// PrefixInfo returns the content of a Prefix Information option; ok is
// false if it has the wrong length or a prefix length above 128, which
// receivers ignore.
func (o NDPOption) PrefixInfo() (p PrefixInfo, ok bool) {
	if len(o) != optPrefixInfoLen || o[2] > 128 {
		return p, false
	}
	return PrefixInfo{
		Prefix:            netip.PrefixFrom(netip.AddrFrom16([16]byte(o[16:32])), int(o[2])),
		OnLink:            o[3]&PrefixFlagOnLink != 0,
		Autonomous:        o[3]&PrefixFlagAutonomous != 0,
		ValidLifetime:     binary.BigEndian.Uint32(o[4:8]),
		PreferredLifetime: binary.BigEndian.Uint32(o[8:12]),
	}, true
}

// RDNSSLifetime returns an RDNSS option's lifetime in seconds (RFC 8106
// 5.1) and how many server addresses it carries; ok is false if its length
// is below 24 bytes or not 8 plus a multiple of 16.
func (o NDPOption) RDNSSLifetime() (lifetime uint32, count int, ok bool) {
	if len(o) < optRDNSSMinLen || (len(o)-8)%16 != 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(o[4:8]), (len(o) - 8) / 16, true
}

// RDNSSServer returns the i-th server of an RDNSS option.
func (o NDPOption) RDNSSServer(i int) netip.Addr {
	off := 8 + 16*i
	return netip.AddrFrom16([16]byte(o[off : off+16]))
}

// RedirectedPacket returns the invoking packet a Redirected Header option
// carries.
func (o NDPOption) RedirectedPacket() []byte {
	if len(o) < optRedirectedHdrOf {
		return nil
	}
	return o[optRedirectedHdrOf:]
}

// PutRouterSolicit writes a router solicitation's fixed part into b and
// returns its length; options follow, then PutChecksum.
func PutRouterSolicit(b []byte) int {
	PutICMPHeader(b, ICMPRouterSolicit, 0, 0)
	return RouterSolicitLen
}

// RouterAdvertFields describe a router advertisement's fixed part.
type RouterAdvertFields struct {
	CurHopLimit    uint8
	Flags          uint8         // RAFlagManaged, RAFlagOther
	RouterLifetime time.Duration // whole seconds, at most 65535 s
	ReachableTime  time.Duration // whole milliseconds
	RetransTimer   time.Duration // whole milliseconds
}

// PutRouterAdvert writes a router advertisement's fixed part into b and
// returns its length; options follow, then PutChecksum. Routers send these;
// tapnet builds them to test its host side.
func PutRouterAdvert(b []byte, f RouterAdvertFields) int {
	_ = b[RouterAdvertLen-1]
	PutICMPHeader(b, ICMPRouterAdvert, 0, 0)
	b[4], b[5] = f.CurHopLimit, f.Flags
	binary.BigEndian.PutUint16(b[6:8], uint16(min(f.RouterLifetime/time.Second, 65535)))
	binary.BigEndian.PutUint32(b[8:12], uint32(f.ReachableTime/time.Millisecond))
	binary.BigEndian.PutUint32(b[12:16], uint32(f.RetransTimer/time.Millisecond))
	return RouterAdvertLen
}

// PutNeighborSolicit writes a neighbor solicitation for target into b and
// returns its length; options follow, then PutChecksum.
func PutNeighborSolicit(b []byte, target netip.Addr) int {
	_ = b[NeighborSolicitLen-1]
	PutICMPHeader(b, ICMPNeighborSolicit, 0, 0)
	t := target.As16()
	copy(b[8:24], t[:])
	return NeighborSolicitLen
}

// PutNeighborAdvert writes a neighbor advertisement for target with flags
// (NAFlag*) into b and returns its length; options follow, then
// PutChecksum.
func PutNeighborAdvert(b []byte, flags uint8, target netip.Addr) int {
	_ = b[NeighborAdvertLen-1]
	PutICMPHeader(b, ICMPNeighborAdvert, 0, uint32(flags)<<24)
	t := target.As16()
	copy(b[8:24], t[:])
	return NeighborAdvertLen
}

// PutRedirect writes a redirect to target for destination into b and
// returns its length; options follow, then PutChecksum.
func PutRedirect(b []byte, target, destination netip.Addr) int {
	_ = b[RedirectLen-1]
	PutICMPHeader(b, ICMPRedirect, 0, 0)
	t, d := target.As16(), destination.As16()
	copy(b[8:24], t[:])
	copy(b[24:40], d[:])
	return RedirectLen
}

// PutLinkAddrOption writes a source or target link-layer address option
// (typ OptSourceLinkAddr or OptTargetLinkAddr) for an Ethernet address and
// returns its length, 8.
func PutLinkAddrOption(b []byte, typ uint8, mac [6]byte) int {
	_ = b[7]
	b[0], b[1] = typ, 1
	copy(b[2:8], mac[:])
	return 8
}

// PutMTUOption writes an MTU option and returns its length, 8.
func PutMTUOption(b []byte, mtu uint32) int {
	_ = b[optMTULen-1]
	b[0], b[1], b[2], b[3] = OptMTU, 1, 0, 0
	binary.BigEndian.PutUint32(b[4:8], mtu)
	return optMTULen
}

// PutPrefixInfoOption writes a Prefix Information option and returns its
// length, 32.
func PutPrefixInfoOption(b []byte, p PrefixInfo) int {
	_ = b[optPrefixInfoLen-1]
	b[0], b[1], b[2], b[3] = OptPrefixInfo, 4, uint8(p.Prefix.Bits()), 0
	if p.OnLink {
		b[3] |= PrefixFlagOnLink
	}
	if p.Autonomous {
		b[3] |= PrefixFlagAutonomous
	}
	binary.BigEndian.PutUint32(b[4:8], p.ValidLifetime)
	binary.BigEndian.PutUint32(b[8:12], p.PreferredLifetime)
	clear(b[12:16])
	a := p.Prefix.Addr().As16()
	copy(b[16:32], a[:])
	return optPrefixInfoLen
}

// MaxRDNSSServers is the most servers an RDNSS option's 8-bit length can
// count.
const MaxRDNSSServers = 127

// RDNSSOptionLen returns the length of an RDNSS option carrying n servers
// (at most MaxRDNSSServers).
func RDNSSOptionLen(n int) int { return 8 + 16*min(n, MaxRDNSSServers) }

// PutRDNSSOption writes an RDNSS option (RFC 8106) with lifetime in
// seconds and at least one server, and returns its length. Servers past
// MaxRDNSSServers are left out.
func PutRDNSSOption(b []byte, lifetime uint32, servers []netip.Addr) int {
	servers = servers[:min(len(servers), MaxRDNSSServers)]
	n := RDNSSOptionLen(len(servers))
	_ = b[n-1]
	b[0], b[1], b[2], b[3] = OptRDNSS, uint8(n/8), 0, 0
	binary.BigEndian.PutUint32(b[4:8], lifetime)
	for i, s := range servers {
		a := s.As16()
		copy(b[8+16*i:], a[:])
	}
	return n
}
