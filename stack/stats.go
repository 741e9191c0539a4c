package stack

import (
	"reflect"
	"sync/atomic"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/igmp"
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
		UnknownEtherType atomic.Uint64 // neither IPv4 nor ARP
		UnknownIPVersion atomic.Uint64 // IP links: packets that are not IPv4
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
		ErrorsSent       atomic.Uint64
		ErrorsSuppressed atomic.Uint64 // not sent: about an error, a broadcast, a fragment…
		RateLimited      atomic.Uint64
	}
	// IGMP is every NIC's multicast membership traffic.
	IGMP igmp.Stats
	UDP  struct {
		Received       atomic.Uint64
		Delivered      atomic.Uint64 // queued on a socket
		Malformed      atomic.Uint64 // short, or a bad length field
		ChecksumErrors atomic.Uint64
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
