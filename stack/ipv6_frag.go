package stack

import (
	"encoding/binary"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/ipv6"
)

// IPv6 reassembly (RFC 8200 §4.5) runs on internal/ipfrag, as IPv4's does,
// with IPv6's rules: fragments wait per (source, destination,
// identification) for 60 s (Linux's ip6frag_time); any overlap drops the
// whole datagram and only exact duplicates are dropped alone (RFC 5722 and
// its erratum 3089, as Linux); the payload reassembled may not exceed
// 65535 bytes. Its memory thresholds are its own, 4 MiB and 3 MiB by
// default, apart from IPv4's as Linux keeps ip6frag_high_thresh apart from
// ipfrag_high_thresh, so a flood of one family's fragments cannot stop the
// other's reassembly. A datagram whose first fragment arrived but which
// timed out is answered with Time Exceeded code 1, quoting that fragment
// up to the 1280 bytes an ICMPv6 error may fill.

// reasmTimeout6 is Linux's ip6frag_time.
const reasmTimeout6 = 60 * time.Second

// newReassembler6 returns IPv6's reassembler for s.
func (s *Stack) newReassembler6(o ReassemblyOptions) *ipfrag.Reassembler {
	if o.Timeout <= 0 {
		o.Timeout = reasmTimeout6
	}
	return ipfrag.NewReassembler(ipfrag.Config{
		Limits:        ipfrag.IPv6,
		StrictOverlap: true,
		QuoteLen:      ipv6.MaxErrorLen - ipv6.HeaderLen - ipv6.ICMPHeaderLen,
		Timeout:       o.Timeout,
		HighThresh:    o.HighThresh,
		LowThresh:     o.LowThresh,
		MaxPerSource:  o.MaxPerSource,
		MaxDatagrams:  o.MaxDatagrams,
		Now:           o.Now,
		OnTimeout: func(_ ipfrag.Key, first []byte) {
			s.reassemblyTimeout6(first)
			if o.OnTimeout != nil {
				o.OnTimeout(first)
			}
		},
	}, reassemblyCounters(&s.stats.Reassembly6))
}

// reassemble6 hands the fragment in b, walked to its fragment header as
// ext says, to reassembly. It returns the whole packet when b completed
// one, its header chain rebuilt without the fragment header, or nil. It
// takes ownership of b.
func (s *Stack) reassemble6(b *buffer.Buffer, ext ipv6.ExtHeaders) *buffer.Buffer {
	h := ipv6.Header(b.Bytes())
	f := ext.Fragment
	head, hl, ok := s.v6.reasm.AddFragment(ipfrag.Fragment{
		Key:    ipfrag.Key{Src: h.Src(), Dst: h.Dst(), ID: f.ID},
		Offset: f.Offset, More: f.More,
		HeaderLen: f.HeaderOffset + fragmentHeaderLen,
		Buf:       b,
	})
	if !ok {
		return nil
	}
	rebuildHeaders6(head, hl)
	return head
}

// rebuildHeaders6 turns a reassembled chain, whose head has the first
// fragment's hl header bytes (unfragmentable part and fragment header) in
// front of it, into one IPv6 packet: the fragment header is cut out, the
// header that named it names what followed it, and the payload length
// covers the whole chain.
func rebuildHeaders6(head *buffer.Buffer, hl int) {
	head.Prepend(hl)
	p := head.Bytes()
	unfrag := hl - fragmentHeaderLen
	next := p[unfrag]
	ptr := fragmentPointer(p, unfrag)
	copy(p[fragmentHeaderLen:hl], p[:unfrag])
	head.TrimFront(fragmentHeaderLen)
	p = head.Bytes()
	p[ptr] = next
	binary.BigEndian.PutUint16(p[4:6], uint16(head.ChainLen()-ipv6.HeaderLen))
}

// reassemblyTimeout6 sends ICMPv6 Time Exceeded (fragment reassembly time
// exceeded) about a datagram whose first fragment, quoted in first,
// arrived but which never completed. Datagrams to a group get none
// (RFC 4443 §2.4(e)).
func (s *Stack) reassemblyTimeout6(first []byte) {
	if len(first) < ipv6.HeaderLen {
		return
	}
	dst := ipv6.Header(first).Dst()
	n := s.localNIC(dst)
	if n == nil {
		return
	}
	b := buffer.Get(len(first))
	b.Append(first)
	s.sendICMPv6Error(n, b, ipv6.ICMPTimeExceeded, ipv6.CodeReassemblyTimeout, 0, unicast)
	b.Release()
}

// fragmentPointer returns the offset of the next-header byte that names
// the fragment header at fragOff: the IPv6 header's, or that of the last
// extension header before it (which the walk already checked).
func fragmentPointer(pkt []byte, fragOff int) int {
	ptr, off := 6, ipv6.HeaderLen
	for off < fragOff {
		ptr = off
		off += (int(pkt[off+1]) + 1) * 8
	}
	return ptr
}
