package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	// DefaultUDPSize is the EDNS0 payload size we advertise by default: the
	// value of DNS Flag Day 2020, which avoids IP fragmentation on any
	// IPv6-capable path.
	DefaultUDPSize = 1232
	// DefaultTTL is the TTL of records (and of negative answers) when
	// Server.TTL is zero.
	DefaultTTL = 300

	// minUDPSize is what every DNS client accepts over UDP (RFC 1035).
	minUDPSize = 512
	// rcodeBadVers is the extended RCODE for an unsupported EDNS version
	// (RFC 6891); dnsmessage has no constant for it.
	rcodeBadVers dnsmessage.RCode = 16
)

// Server answers DNS queries over UDP from a Zone. It holds no per-query
// state, so one Server can serve several PacketConns at once.
type Server struct {
	// Zone holds the records. A nil Zone refuses every query.
	Zone *Zone
	// UDPSize is the EDNS0 payload size we advertise and the largest
	// response we send; 0 means DefaultUDPSize. Values below 512 count as 512.
	UDPSize int
	// TTL of answers in seconds; 0 means DefaultTTL.
	TTL uint32
}

func (s *Server) udpSize() int {
	switch {
	case s.UDPSize == 0:
		return DefaultUDPSize
	case s.UDPSize < minUDPSize:
		return minUDPSize
	case s.UDPSize > 65535:
		return 65535
	}
	return s.UDPSize
}

func (s *Server) ttl() uint32 {
	if s.TTL == 0 {
		return DefaultTTL
	}
	return s.TTL
}

// Serve answers queries arriving on pc until ctx is done or pc is closed,
// in both of which cases it returns nil; any other read error is returned.
// It uses only the net.PacketConn interface, so it runs the same on a kernel
// socket and on a userspace stack. Serve does not close pc.
//
// Each datagram is answered inline: Handle is fast and allocation-light,
// so a pool of workers would buy little and a goroutine per datagram would
// let a flood of queries spawn unbounded goroutines.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	// ReadFrom takes no context: an expired read deadline unblocks it.
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		pc.SetReadDeadline(time.Unix(1, 0))
		close(unblocked)
	})
	defer func() {
		if !stop() {
			// Leave pc usable for the caller.
			<-unblocked
			pc.SetReadDeadline(time.Time{})
		}
	}()

	buf := make([]byte, 65535)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		resp, ok := s.Handle(buf[:n])
		if !ok {
			continue
		}
		// A failed send concerns one client only (and a closed pc shows
		// up on the next read), so it does not stop the server.
		_, _ = pc.WriteTo(resp, addr)
	}
}

// Handle turns one query datagram into a response datagram. It is a pure
// function of the query and the zone; ok is false when the datagram must be
// dropped silently: when not even the header parses, or when it is a
// response (answering responses invites reflection loops).
func (s *Server) Handle(query []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	qh, err := p.Start(query)
	if err != nil || qh.Response {
		return nil, false
	}
	r := reply{
		hdr: dnsmessage.Header{
			ID:               qh.ID,
			Response:         true,
			OpCode:           qh.OpCode,
			RecursionDesired: qh.RecursionDesired,
		},
		limit: minUDPSize,
	}
	if qh.OpCode != 0 { // only QUERY
		r.hdr.RCode = dnsmessage.RCodeNotImplemented
		return s.finish(&r)
	}

	// Parse the whole message so that garbage anywhere is a FORMERR.
	// Start succeeded, so the header's 12 bytes are there.
	if binary.BigEndian.Uint16(query[4:6]) != 1 {
		return s.formErr(&r)
	}
	q, err := p.Question()
	if err != nil {
		return s.formErr(&r)
	}
	if p.SkipAllQuestions() != nil || p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return s.formErr(&r)
	}
	var opt *dnsmessage.ResourceHeader
	for {
		h, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return s.formErr(&r)
		}
		if h.Type == dnsmessage.TypeOPT {
			// RFC 6891 6.1.1: at most one OPT, owned by the root.
			if opt != nil || h.Name.Length != 1 {
				return s.formErr(&r)
			}
			opt = &h
		}
		if p.SkipAdditional() != nil {
			return s.formErr(&r)
		}
	}

	r.question = &q
	if opt != nil {
		r.edns = true
		// The client's size, but never below 512 (RFC 6891 6.2.5) nor
		// above what we are willing to send.
		r.limit = min(max(minUDPSize, int(opt.Class)), s.udpSize())
		if version := opt.TTL >> 16 & 0xff; version != 0 {
			r.extRCode = rcodeBadVers
			return s.finish(&r)
		}
	}

	if q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY {
		r.hdr.RCode = dnsmessage.RCodeRefused
		return s.finish(&r)
	}
	a := s.Zone.lookup(lowerASCII(q.Name.String()))
	if a.apex == "" {
		r.hdr.RCode = dnsmessage.RCodeRefused
		return s.finish(&r)
	}
	r.hdr.Authoritative = true
	r.apex = a.apex
	switch {
	case !a.exists:
		r.hdr.RCode = dnsmessage.RCodeNameError
		r.soaAuthority = true
	case q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeAAAA || q.Type == dnsmessage.TypeALL:
		r.answers, r.qtype = a.addrs, q.Type
		r.soaAuthority = r.answerCount() == 0
	case q.Type == dnsmessage.TypeSOA && lowerASCII(q.Name.String()) == a.apex:
		r.soaAnswer = true
	default: // NODATA: the name exists, the type does not
		r.soaAuthority = true
	}
	return s.finish(&r)
}

// reply describes a response before it is packed.
type reply struct {
	hdr      dnsmessage.Header
	question *dnsmessage.Question // nil: question section left empty
	answers  []netip.Addr         // the name's addresses, of both families
	qtype    dnsmessage.Type      // which of answers go out: A, AAAA or both (ANY)
	apex     string               // the zone apex, owner of the synthesized SOA
	// soaAnswer/soaAuthority put the apex SOA in that section; in the
	// authority section it makes negative answers cacheable (RFC 2308).
	soaAnswer, soaAuthority bool
	edns                    bool
	extRCode                dnsmessage.RCode
	limit                   int
}

// wants reports whether ip answers the question: an A record an A query,
// an AAAA record an AAAA query, both an ANY query.
func (r *reply) wants(ip netip.Addr) bool {
	switch r.qtype {
	case dnsmessage.TypeA:
		return ip.Is4()
	case dnsmessage.TypeAAAA:
		return ip.Is6()
	}
	return r.qtype == dnsmessage.TypeALL
}

// answerCount counts the records the answer section gets.
func (r *reply) answerCount() int {
	n := 0
	for _, ip := range r.answers {
		if r.wants(ip) {
			n++
		}
	}
	return n
}

// formErr answers a query whose header parsed but whose body did not. The
// body is untrusted, so nothing from it is echoed.
func (s *Server) formErr(r *reply) ([]byte, bool) {
	r.hdr.RCode = dnsmessage.RCodeFormatError
	return s.finish(r)
}

// finish packs r. If the response exceeds the client's limit it is sent
// with TC set and without records, prompting the client to retry over TCP.
func (s *Server) finish(r *reply) ([]byte, bool) {
	b, err := s.pack(r, false)
	if err == nil && len(b) > r.limit {
		r.hdr.Truncated = true
		b, err = s.pack(r, true)
	}
	if err != nil || len(b) > r.limit {
		// Cannot happen for names that parsed; still, never fail silently
		// towards the client.
		b, err = s.pack(&reply{hdr: dnsmessage.Header{
			ID:       r.hdr.ID,
			Response: true,
			OpCode:   r.hdr.OpCode,
			RCode:    dnsmessage.RCodeServerFailure,
		}}, true)
		if err != nil {
			return nil, false
		}
	}
	return b, true
}

func (s *Server) pack(r *reply, truncated bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), r.hdr)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if r.question != nil {
		if err := b.Question(*r.question); err != nil {
			return nil, err
		}
	}
	if !truncated {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		for _, ip := range r.answers {
			if !r.wants(ip) {
				continue
			}
			h := dnsmessage.ResourceHeader{Name: r.question.Name, Class: dnsmessage.ClassINET, TTL: s.ttl()}
			var err error
			if ip.Is4() {
				err = b.AResource(h, dnsmessage.AResource{A: ip.As4()})
			} else {
				err = b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: ip.As16()})
			}
			if err != nil {
				return nil, err
			}
		}
		if r.soaAnswer {
			if err := s.soa(&b, r.question.Name); err != nil {
				return nil, err
			}
		}
		if err := b.StartAuthorities(); err != nil {
			return nil, err
		}
		if r.soaAuthority {
			apex, err := dnsmessage.NewName(r.apex)
			if err != nil {
				return nil, err
			}
			if err := s.soa(&b, apex); err != nil {
				return nil, err
			}
		}
	}
	if r.edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
		var h dnsmessage.ResourceHeader
		// We do no DNSSEC, so the DO bit stays clear.
		if err := h.SetEDNS0(s.udpSize(), r.extRCode, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(h, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// soa adds a synthesized SOA record for the apex. owner is the apex as it
// appears in the question (keeping the client's case) or the canonical apex.
func (s *Server) soa(b *dnsmessage.Builder, owner dnsmessage.Name) error {
	ns := withPrefix("ns.", owner)
	mbox := withPrefix("hostmaster.", owner)
	ttl := s.ttl()
	return b.SOAResource(
		dnsmessage.ResourceHeader{Name: owner, Class: dnsmessage.ClassINET, TTL: ttl},
		dnsmessage.SOAResource{
			NS:      ns,
			MBox:    mbox,
			Serial:  1,
			Refresh: 3600,
			Retry:   600,
			Expire:  86400,
			MinTTL:  ttl, // the negative-caching TTL (RFC 2308)
		},
	)
}

// withPrefix returns prefix+name, or name itself if that would be too long.
func withPrefix(prefix string, name dnsmessage.Name) dnsmessage.Name {
	if int(name.Length)+len(prefix) > 254 {
		return name
	}
	n, err := dnsmessage.NewName(prefix + name.String())
	if err != nil {
		return name
	}
	return n
}
