package tap

import "sync/atomic"

// Stats counts the frames of one link endpoint. Every endpoint in this
// package reports the same struct so that tests and tools can treat links
// alike.
type Stats struct {
	// RxFrames and RxBytes count frames handed out by ReadFrames
	// (duplicates made by impairments included).
	RxFrames, RxBytes uint64
	// RxDrops counts received frames discarded before ReadFrames handed
	// them out: lost by an impairment, too long for the MTU or for the
	// room the reader gave, or still queued when the link closed.
	RxDrops uint64
	// RxErrors counts failed reads.
	RxErrors uint64
	// TxFrames and TxBytes count frames accepted for sending.
	TxFrames, TxBytes uint64
	// TxDrops counts frames TryWriteFrames dropped because a queue was full.
	TxDrops uint64
	// TxErrors counts frames WriteFrames failed to send (closed link,
	// frame size or bounds out of range, device error).
	TxErrors uint64
	// RxSuperFrames and TxSuperFrames count UDP super-frames (segmentation
	// offload) read and split, and written, on a TAP opened with Offload.
	RxSuperFrames, TxSuperFrames uint64
	// RxBadHeaders counts received frames dropped for a malformed or lying
	// virtio-net header (gso_size 0, sizes or checksum offsets beyond the
	// frame, a super-frame that is not IPv4/UDP).
	RxBadHeaders uint64
	// Offloads says which offloads a TAP device runs with; zero on other
	// links.
	Offloads OffloadStatus
}

// OffloadStatus says which offloads a TAP device negotiated with the
// kernel, and why one that was asked for is off.
type OffloadStatus struct {
	// VnetHdr: frames carry virtio-net headers (IFF_VNET_HDR).
	VnetHdr bool
	// Checksum: checksum offload both ways (TUN_F_CSUM).
	Checksum bool
	// USO: UDP segmentation offload both ways (TUN_F_USO4, Linux 6.2+).
	USO bool
	// Fallback explains an offload asked for but not in use (and, off
	// Linux, queues); empty when everything asked for was granted.
	Fallback string
}

// counters are a link's live Stats. The receive and transmit halves are
// updated by different goroutines, so they sit on separate cache lines.
type counters struct {
	rxFrames, rxBytes, rxDrops, rxErrors atomic.Uint64
	_                                    [64]byte
	rxSuperFrames, rxBadHeaders          atomic.Uint64
	_                                    [64]byte
	txFrames, txBytes, txDrops, txErrors atomic.Uint64
	txSuperFrames                        atomic.Uint64
}

func (c *counters) rx(n int) {
	c.rxFrames.Add(1)
	c.rxBytes.Add(uint64(n))
}

func (c *counters) tx(n int) {
	c.txFrames.Add(1)
	c.txBytes.Add(uint64(n))
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(),
		RxDrops: c.rxDrops.Load(), RxErrors: c.rxErrors.Load(),
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(),
		TxDrops: c.txDrops.Load(), TxErrors: c.txErrors.Load(),
		RxSuperFrames: c.rxSuperFrames.Load(), TxSuperFrames: c.txSuperFrames.Load(),
		RxBadHeaders: c.rxBadHeaders.Load(),
	}
}
