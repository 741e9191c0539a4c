package stack

import (
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/internal/ratelimit"
)

// ReassemblyOptions configure IPv4 or IPv6 reassembly (Options.Reassembly,
// Options.Reassembly6). Zero fields take the defaults.
type ReassemblyOptions struct {
	// Timeout is how long a datagram may stay incomplete, counted from its
	// first fragment's arrival (as Linux's ipfrag_time and ip6frag_time).
	// Default 30s for IPv4, 60s for IPv6.
	Timeout time.Duration
	// HighThresh is the memory (buffer sizes plus a fixed overhead per
	// datagram) that reassembly never exceeds; when a fragment would cross
	// it, the oldest datagrams are evicted until usage is at most
	// LowThresh. Defaults 4 MiB and 3 MiB (Linux's ipfrag_high_thresh and
	// ipfrag_low_thresh).
	HighThresh int
	LowThresh  int
	// MaxPerSource caps the datagrams under reassembly from one source
	// address; a new datagram from a source at its cap evicts that source's
	// oldest. Default 64; negative means no cap.
	MaxPerSource int
	// MaxDatagrams caps the datagrams under reassembly overall; a new one at
	// the cap evicts the oldest. Zero or negative means no cap beyond memory.
	MaxDatagrams int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnTimeout, when set, is called for each datagram that expires after
	// its first fragment arrived, with what the stack's time exceeded
	// quotes of that fragment, valid only during the call: for IPv4 its
	// header and the first 8 bytes of its payload, for IPv6 the fragment
	// from its IPv6 header on, up to 1232 bytes.
	OnTimeout func(first []byte)
}

// RateLimitOptions limit the ICMP errors a stack sends, as Linux's
// icmp_msgs_per_sec, icmp_msgs_burst and icmp_ratelimit do. Zero fields
// take Linux's defaults.
type RateLimitOptions struct {
	PerSecond    int           // errors per second overall; default 1000
	Burst        int           // overall burst; default 50
	PeerInterval time.Duration // one error per destination per interval (burst 6); default 1s
	MaxPeers     int           // destinations tracked; default 4096
	Now          func() time.Time
}

// ReassemblyStats counts what reassembly did with the fragments it was
// handed (Stats.Reassembly: IPv4's, Stats.IP.FragmentsIn; Stats.Reassembly6:
// IPv6's, Stats.IPv6.FragmentsIn); each drop reason has its own counter.
// For IPv6 every overlap counts as Overlaps (RFC 5722), identical bytes or
// not.
// InFlight and MemoryUsed are gauges rather than counters.
type ReassemblyStats struct {
	Fragments   atomic.Uint64 // fragments handed to reassembly
	Reassembled atomic.Uint64 // datagrams completed
	// Duplicates counts fragments dropped because every byte they carry was
	// already held, identically.
	Duplicates atomic.Uint64
	// Overlaps counts datagrams dropped because a fragment overlapped held
	// data with different bytes (teardrop; RFC 5722's stance).
	Overlaps atomic.Uint64
	// LengthConflicts counts datagrams dropped because fragments disagreed
	// on where the datagram ends.
	LengthConflicts atomic.Uint64
	// Oversize counts fragments (or datagrams) that would exceed 65535
	// bytes (ping of death).
	Oversize atomic.Uint64
	// BadFragment counts fragments dropped for their own shape: empty, a
	// non-last fragment whose length is not a multiple of 8, or a
	// misaligned offset.
	BadFragment atomic.Uint64
	// Tombstoned counts fragments dropped because their datagram had already
	// been dropped for an overlap or length conflict and has not yet expired.
	Tombstoned      atomic.Uint64
	Timeouts        atomic.Uint64 // incomplete datagrams expired
	MemoryEvictions atomic.Uint64 // datagrams (or fragments) dropped to stay under HighThresh
	SourceLimit     atomic.Uint64 // datagrams evicted because their source hit MaxPerSource
	DatagramLimit   atomic.Uint64 // datagrams evicted because of MaxDatagrams
	InFlight        atomic.Uint64 // gauge: datagrams under reassembly now
	MemoryUsed      atomic.Uint64 // gauge: bytes charged to them
}

// reassemblyCounters hands the reassembler st itself: the two structs have
// the same fields (the conversion fails to compile if they drift apart), so
// the internal package counts straight into the public type.
func reassemblyCounters(st *ReassemblyStats) *ipfrag.Stats { return (*ipfrag.Stats)(st) }

// newReassembler returns IPv4's reassembler for s, which sends ICMP time
// exceeded for datagrams that time out before the user's hook sees them.
func (s *Stack) newReassembler(o ReassemblyOptions) *ipfrag.Reassembler {
	return ipfrag.NewReassembler(ipfrag.Config{
		Limits:       ipfrag.IPv4,
		Timeout:      o.Timeout,
		HighThresh:   o.HighThresh,
		LowThresh:    o.LowThresh,
		MaxPerSource: o.MaxPerSource,
		MaxDatagrams: o.MaxDatagrams,
		Now:          o.Now,
		OnTimeout: func(_ ipfrag.Key, first []byte) {
			s.reassemblyTimeout(first)
			if o.OnTimeout != nil {
				o.OnTimeout(first)
			}
		},
	}, reassemblyCounters(&s.stats.Reassembly))
}

// newICMPLimiter returns the limiter for the ICMP errors s sends.
func newICMPLimiter(o RateLimitOptions) *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Config{
		PerSecond:    o.PerSecond,
		Burst:        o.Burst,
		PeerInterval: o.PeerInterval,
		MaxPeers:     o.MaxPeers,
		Now:          o.Now,
	})
}
