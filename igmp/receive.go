package igmp

import (
	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv4"
)

// Receive takes an IGMP message heard on the interface (the IPv4 payload):
// queries schedule answers, other hosts' v1/v2 reports suppress ours. A
// message that does not parse is counted and its error returned
// (ipv4.ErrIGMPChecksum, ipv4.ErrIGMPTooShort…). msg is not retained.
func (h *Host) Receive(msg []byte) error {
	m, err := ipv4.ParseIGMP(msg)
	switch err {
	case nil:
	case ipv4.ErrIGMPChecksum:
		h.stats.BadChecksum.Add(1)
		return err
	default:
		h.stats.Malformed.Add(1)
		return err
	}
	h.stats.Received.Add(1)
	switch m.Type() {
	case ipv4.IGMPMembershipQuery:
		h.stats.Queries.Add(1)
		h.heardQuery(m)
	case ipv4.IGMPv1MembershipReport, ipv4.IGMPv2MembershipReport:
		h.stats.OthersReports.Add(1)
		h.core.HeardReport(m.Group())
	}
	return nil
}

// heardQuery hands a query to the core, which schedules the answer (RFC
// 3376 5.2 and 7.2, RFC 2236 3).
func (h *Host) heardQuery(m ipv4.IGMP) {
	addr := m.Group()
	if !addr.IsUnspecified() && !ipv4.IsMulticast(addr) {
		return
	}
	q := mcast.Query{Version: mcast.Version(m.QueryVersion()), Group: addr, MaxResp: m.MaxRespTime()}
	if q.Version == mcast.V3 {
		q.QRV, q.QueryInterval = m.QRV(), m.QueryInterval()
		q.Sources = m[ipv4.IGMPv3QueryMinLen : ipv4.IGMPv3QueryMinLen+4*m.NumSources()]
	}
	h.core.HeardQuery(&q)
}
