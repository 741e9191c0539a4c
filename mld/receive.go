package mld

import (
	"errors"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv6"
)

// ErrSource is returned by Receive for a query whose source is not
// link-local, or an MLDv1 report whose source is neither link-local nor
// unspecified (RFC 3810 5.1.14 and 5.2.13): no router on the link sent it.
var ErrSource = errors.New("mld: message not from a link-local source")

// maxV1Delay caps the Maximum Response Code of an MLDv2 query an MLDv1
// host reads as plain milliseconds, as Linux's MLDV1_MRD_MAX_COMPAT does:
// codes above it use the exponential form MLDv1 does not know.
const maxV1Delay = 1<<15 - 1

// Receive takes an MLD message heard on the interface from src: m is the
// ICMPv6 message, whose checksum the caller verified (ipv6.ParseICMP).
// Queries schedule answers, other hosts' MLDv1 reports suppress ours;
// MLDv2 reports and Dones, which only routers act on, are counted and
// ignored. A message that does not parse, or comes from a source a router
// cannot have, is counted and its error returned (ipv6.ErrMLDTooShort,
// ErrSource…). The hop limit and the Router Alert option are not checked,
// as Linux does not: the link-local source already proves the message
// came from the link. m is not retained.
func (h *Host) Receive(m []byte, src netip.Addr) error {
	msg, err := ipv6.ParseMLD(m)
	if err != nil {
		h.stats.Malformed.Add(1)
		return err
	}
	switch msg.Type() {
	case ipv6.ICMPMLDQuery:
		if !isLinkLocal(src) {
			h.stats.BadSource.Add(1)
			return ErrSource
		}
		h.stats.Received.Add(1)
		h.stats.Queries.Add(1)
		h.heardQuery(msg)
	case ipv6.ICMPMLDv1Report:
		if !isLinkLocal(src) && !src.IsUnspecified() {
			h.stats.BadSource.Add(1)
			return ErrSource
		}
		h.stats.Received.Add(1)
		h.stats.OthersReports.Add(1)
		h.core.HeardReport(msg.Group())
	default:
		h.stats.Received.Add(1)
	}
	return nil
}

// isLinkLocal reports whether addr is an IPv6 link-local unicast address
// (netip also says so of IPv4-mapped 169.254/16).
func isLinkLocal(addr netip.Addr) bool {
	return addr.Is6() && !addr.Is4In6() && addr.IsLinkLocalUnicast()
}

// heardQuery hands a query to the core, which schedules the answer (RFC
// 3810 6.2 and 8.2, RFC 2710 4).
func (h *Host) heardQuery(m ipv6.MLD) {
	if q, ok := coreQuery(m); ok {
		h.core.HeardQuery(&q)
	}
}

// coreQuery reads a query in the core's terms, where MLDv1 is V2 and MLDv2
// V3; false for a group that is neither multicast nor unspecified.
func coreQuery(m ipv6.MLD) (mcast.Query, bool) {
	addr := m.Group()
	if _, multicast := ipv6.MulticastScope(addr); !multicast && !addr.IsUnspecified() {
		return mcast.Query{}, false
	}
	q := mcast.Query{Version: mcast.Version(m.QueryVersion() + 1), Group: addr, MaxResp: m.MaxRespDelay()}
	if q.Version == mcast.V3 {
		q.CompatMaxResp = time.Duration(min(m.MaxRespCode(), maxV1Delay)) * time.Millisecond
		q.QRV, q.QueryInterval = m.QRV(), m.QueryInterval()
		q.Sources = m[ipv6.MLDv2QueryMinLen : ipv6.MLDv2QueryMinLen+16*m.NumSources()]
	}
	return q, true
}
