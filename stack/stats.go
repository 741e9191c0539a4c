package stack

import (
	"reflect"
	"sync/atomic"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/neigh"
)

// Stats are the stack's counters, grouped by layer. Every field is a live
// atomic counter (the few gauges say so); read one with Load, or take a
// Snapshot of them all. Every reason a frame or packet is dropped has a
// counter of its own.
//
// Each protocol owns the counters of what it decides: the groups ARP (its
// embedded arp.Stats) and IGMP are the types of the code that counts them,
// Reassembly has exactly the fields of the stack's internal reassembler's
// counters, and the stack hands that code these very counters. A
// stack's NICs share one ARP and one IGMP group, as Linux counts its
// neighbour table as a whole, so those are sums over NICs.
type Stats struct {
	Link struct {
		RxFrames         atomic.Uint64 // frames delivered by links
		Runts            atomic.Uint64 // frames shorter than an Ethernet header
		TooLong          atomic.Uint64 // frames longer than the MTU and link header allow
		BadFrames        atomic.Uint64 // frames a link reported outside their buffer
		UnknownEtherType atomic.Uint64 // neither IPv4, IPv6 nor ARP
		UnknownIPVersion atomic.Uint64 // IP links: packets neither IPv4 nor IPv6
		OtherHost        atomic.Uint64 // unicast to another MAC
		TxFrames         atomic.Uint64 // frames handed to links
		TxErrors         atomic.Uint64 // link writes that failed
		TxDropped        atomic.Uint64 // internal replies dropped on a full link queue
	}
	// ARP counts ARP packets received and answered here, and through the
	// embedded arp.Stats what every NIC's neighbour cache did (requests,
	// resolutions, queued packets dropped, evictions...).
	ARP struct {
		arp.Stats
		Received      atomic.Uint64
		Malformed     atomic.Uint64
		NotForUs      atomic.Uint64 // requests for addresses we do not own
		RepliesSent   atomic.Uint64
		Conflicts     atomic.Uint64 // someone else claims one of our addresses
		MartianSource atomic.Uint64
	}
	IP struct {
		Received           atomic.Uint64
		Delivered          atomic.Uint64 // to ICMP, IGMP or a transport
		TooShort           atomic.Uint64
		BadVersion         atomic.Uint64
		BadHeaderLen       atomic.Uint64
		BadTotalLen        atomic.Uint64
		BadChecksum        atomic.Uint64
		BadFragment        atomic.Uint64 // fragment reaching past 65535
		MartianSource      atomic.Uint64
		MartianDestination atomic.Uint64 // 127.0.0.0/8 arriving from a link
		ZeroTTL            atomic.Uint64
		NotForUs           atomic.Uint64 // not an address, broadcast or group of ours
		UnknownProtocol    atomic.Uint64
		WithOptions        atomic.Uint64 // accepted; options are skipped
		BadOptions         atomic.Uint64 // an option runs past the header
		SourceRoute        atomic.Uint64 // loose or strict source route: refused
		FragmentsIn        atomic.Uint64 // fragments handed to reassembly
		Reassembled        atomic.Uint64
		Sent               atomic.Uint64 // datagrams sent (before fragmentation)
		FragmentsOut       atomic.Uint64
		NoRoute            atomic.Uint64
		Loopback           atomic.Uint64 // datagrams delivered to ourselves without the link
	}
	// Reassembly details what became of the fragments IP.FragmentsIn
	// counts.
	Reassembly ReassemblyStats
	ICMP       struct {
		Received         atomic.Uint64
		Malformed        atomic.Uint64
		BadChecksum      atomic.Uint64
		EchoRequests     atomic.Uint64
		EchoReplies      atomic.Uint64 // sent
		EchoIgnored      atomic.Uint64 // broadcast or multicast pings
		ErrorsReceived   atomic.Uint64
		ErrorsDelivered  atomic.Uint64 // to a socket
		FragNeeded       atomic.Uint64 // path MTUs learned
		ErrorsSent       atomic.Uint64
		ErrorsSuppressed atomic.Uint64 // not sent: about an error, a broadcast, a fragment…
		RateLimited      atomic.Uint64
	}
	// IGMP is every NIC's multicast membership traffic.
	IGMP igmp.Stats
	// IPv6 counts IPv6 packets; every drop reason has its own counter.
	IPv6 struct {
		Received        atomic.Uint64
		Delivered       atomic.Uint64 // to ICMPv6 or a transport
		TooShort        atomic.Uint64
		BadVersion      atomic.Uint64
		BadPayloadLen   atomic.Uint64
		Jumbogram       atomic.Uint64 // refused (RFC 2675 is not supported)
		MartianSource   atomic.Uint64 // multicast, loopback or our own source
		MartianDest     atomic.Uint64 // loopback or unspecified destination from a link
		ScopeViolation  atomic.Uint64 // link-local destination of another NIC
		NotForUs        atomic.Uint64 // not an address or group of ours
		BadExtHeaders   atomic.Uint64 // extension headers malformed, too many or too long
		UnknownOption   atomic.Uint64 // an option whose type says discard
		RoutingHeader   atomic.Uint64 // segments left: hosts do not forward
		NoNextHeader    atomic.Uint64
		UnknownProtocol atomic.Uint64
		FragmentsIn     atomic.Uint64 // fragments handed to reassembly
		AtomicFragments atomic.Uint64 // fragment headers describing whole packets
		Reassembled     atomic.Uint64
		Sent            atomic.Uint64 // packets sent (before fragmentation)
		FragmentsOut    atomic.Uint64
		NoRoute         atomic.Uint64
		Loopback        atomic.Uint64 // packets delivered to ourselves without the link
		LinkMTUTooSmall atomic.Uint64 // NICs left without IPv6: link MTU below 1280, as Linux's addrconf
	}
	// Reassembly6 details what became of the fragments IPv6.FragmentsIn
	// counts.
	Reassembly6 ReassemblyStats
	// ICMPv6 counts ICMPv6 messages other than NDP and MLD, whose own
	// groups say what became of them.
	ICMPv6 struct {
		Received         atomic.Uint64
		Malformed        atomic.Uint64
		BadChecksum      atomic.Uint64
		EchoRequests     atomic.Uint64
		EchoReplies      atomic.Uint64 // sent
		ErrorsReceived   atomic.Uint64
		ErrorsDelivered  atomic.Uint64 // to a socket
		PacketTooBig     atomic.Uint64 // path MTUs learned
		ErrorsSent       atomic.Uint64
		ErrorsSuppressed atomic.Uint64 // not sent: about an error, a multicast, an unspecified source…
		RateLimited      atomic.Uint64
		UnknownType      atomic.Uint64 // informational messages we do not handle
		MLDBadIPHeader   atomic.Uint64 // MLD without a Router Alert option or with a hop limit other than 1 (RFC 3810 §5)
	}
	// NDP counts neighbour discovery, and through the embedded neigh.Stats
	// what every NIC's IPv6 neighbour table did.
	NDP struct {
		neigh.Stats
		Malformed            atomic.Uint64 // failed RFC 4861's validation
		SolicitsReceived     atomic.Uint64
		AdvertsReceived      atomic.Uint64
		SolicitsSent         atomic.Uint64 // resolution and DAD
		AdvertsSent          atomic.Uint64
		NotForUs             atomic.Uint64 // solicitations for addresses we do not own
		SolicitsUnanswered   atomic.Uint64 // multicast, without a source link-layer address, from an unknown neighbour (as Linux)
		DADProbes            atomic.Uint64
		DADRetries           atomic.Uint64 // stable-private addresses formed again after a duplicate (RFC 7217)
		DADConflicts         atomic.Uint64 // a tentative address another node has
		AddressConflicts     atomic.Uint64 // an advertisement for an assigned address of ours
		RouterSolicits       atomic.Uint64 // sent
		RouterAdverts        atomic.Uint64 // received and accepted
		RouterAdvertsIgnored atomic.Uint64 // received with AcceptRA off
		SLAACAddresses       atomic.Uint64 // addresses formed from prefixes
		Redirects            atomic.Uint64 // ignored, as a host without routes to change may
		NoLinkLayer          atomic.Uint64 // NDP messages on lo, and advertisements on an IP link: no neighbours to learn
	}
	// MLD is every NIC's IPv6 multicast membership traffic.
	MLD mld.Stats
	UDP struct {
		Received       atomic.Uint64
		Delivered      atomic.Uint64 // queued on a socket
		Malformed      atomic.Uint64 // short, or a bad length field
		ChecksumErrors atomic.Uint64
		ZeroChecksum   atomic.Uint64 // over IPv6, where a checksum is mandatory
		NoPort         atomic.Uint64
		BufferErrors   atomic.Uint64 // receive buffer full
		Sent           atomic.Uint64
		SendErrors     atomic.Uint64
	}
}

// Snapshot returns every counter by its dotted path of field names
// ("UDP.NoPort", "Reassembly.Timeouts"); the fields of an embedded struct
// take their group's name ("ARP.Failed").
func (s *Stats) Snapshot() map[string]uint64 {
	out := make(map[string]uint64)
	addCounters(out, "", reflect.ValueOf(s).Elem())
	return out
}

var counterType = reflect.TypeFor[atomic.Uint64]()

// addCounters walks v's exported fields, structs nested to any depth, and
// adds every atomic.Uint64 under its path, so that a new group or counter
// needs nothing more than its field.
func addCounters(out map[string]uint64, prefix string, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		switch {
		case f.Type == counterType:
			out[prefix+f.Name] = v.Field(i).Addr().Interface().(*atomic.Uint64).Load()
		case f.Type.Kind() == reflect.Struct && f.Anonymous:
			addCounters(out, prefix, v.Field(i))
		case f.Type.Kind() == reflect.Struct:
			addCounters(out, prefix+f.Name+".", v.Field(i))
		}
	}
}
