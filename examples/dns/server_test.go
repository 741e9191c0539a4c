package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapnet/tapnet/examples/internal/exampletest"
)

// newTestConn returns the server's socket and a client socket: tapnet by
// default, the kernel's under TestOnKernel.
func newTestConn(t *testing.T) (server, client net.PacketConn) {
	t.Helper()
	return exampletest.Pair(t)
}

// TestOnKernel runs the main tests again on kernel sockets: nothing in the
// server is tapnet-specific.
func TestOnKernel(t *testing.T) {
	exampletest.OnKernelToo(t, map[string]func(*testing.T){
		"Answers":           TestAnswers,
		"Malformed":         TestMalformed,
		"ConcurrentClients": TestConcurrentClients,
		"ServeStops":        TestServeStops,
	})
}

// testZone is shared by most tests.
func testZone(t testing.TB) *Zone {
	t.Helper()
	z := new(Zone)
	for _, r := range []string{
		"www.example.test=192.0.2.80",
		"multi.example.test.=192.0.2.1",
		"multi.example.test.=192.0.2.2",
		"multi.example.test.=192.0.2.3",
		"MULTI.Example.Test=192.0.2.3", // duplicate in another case: ignored
		// Apex a.b.example.test., nested in example.test., which makes
		// b.example.test. an empty non-terminal of the latter.
		"x.a.b.example.test=192.0.2.9",
		"dual.example.test=192.0.2.6",
		"dual.example.test=2001:db8::6",
		"dual.example.test=2001:db8::7",
	} {
		name, ip, err := ParseRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := z.Add(name, ip); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		if err := z.Add("big.example.test", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	return z
}

// testServer runs srv on a fresh socket pair and returns the client side.
// The server must still be running, and return nil, at the end of the test.
func testServer(t *testing.T, srv *Server) (client net.PacketConn, addr net.Addr) {
	t.Helper()
	return exampletest.Serve(t, 5*time.Second, srv.Serve)
}

type queryOpts struct {
	id      uint16
	opcode  dnsmessage.OpCode
	typ     dnsmessage.Type
	class   dnsmessage.Class
	edns    int // UDP size in OPT; 0: no OPT
	version uint8
	noRD    bool
}

func buildQuery(t testing.TB, name string, o queryOpts) []byte {
	t.Helper()
	if o.typ == 0 {
		o.typ = dnsmessage.TypeA
	}
	if o.class == 0 {
		o.class = dnsmessage.ClassINET
	}
	m := dnsmessage.Message{
		Header: dnsmessage.Header{ID: o.id, OpCode: o.opcode, RecursionDesired: !o.noRD},
		Questions: []dnsmessage.Question{{
			Name:  dnsmessage.MustNewName(name),
			Type:  o.typ,
			Class: o.class,
		}},
	}
	if o.edns != 0 {
		var h dnsmessage.ResourceHeader
		if err := h.SetEDNS0(o.edns, dnsmessage.RCodeSuccess, false); err != nil {
			t.Fatal(err)
		}
		h.TTL |= uint32(o.version) << 16
		m.Additionals = append(m.Additionals, dnsmessage.Resource{Header: h, Body: &dnsmessage.OPTResource{}})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends one datagram and returns the next datagram received.
func exchange(t *testing.T, c net.PacketConn, to net.Addr, msg []byte) []byte {
	t.Helper()
	if _, err := c.WriteTo(msg, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return buf[:n]
}

func parse(t *testing.T, b []byte) *dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpacking response: %v", err)
	}
	if !m.Header.Response {
		t.Fatal("response without QR")
	}
	return &m
}

func query(t *testing.T, c net.PacketConn, to net.Addr, name string, o queryOpts) *dnsmessage.Message {
	t.Helper()
	m := parse(t, exchange(t, c, to, buildQuery(t, name, o)))
	if m.Header.ID != o.id {
		t.Fatalf("response ID %d, want %d", m.Header.ID, o.id)
	}
	return m
}

func answerIPs(t *testing.T, m *dnsmessage.Message) []netip.Addr {
	t.Helper()
	var ips []netip.Addr
	for _, rr := range m.Answers {
		switch a := rr.Body.(type) {
		case *dnsmessage.AResource:
			ips = append(ips, netip.AddrFrom4(a.A))
		case *dnsmessage.AAAAResource:
			ips = append(ips, netip.AddrFrom16(a.AAAA))
		default:
			t.Fatalf("answer %v is neither an A nor an AAAA record", rr)
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips
}

func optOf(m *dnsmessage.Message) *dnsmessage.Resource {
	for i := range m.Additionals {
		if m.Additionals[i].Header.Type == dnsmessage.TypeOPT {
			return &m.Additionals[i]
		}
	}
	return nil
}

func checkSOA(t *testing.T, m *dnsmessage.Message, apex string) {
	t.Helper()
	if len(m.Authorities) != 1 {
		t.Fatalf("authority section %v, want the SOA of %s", m.Authorities, apex)
	}
	soa, ok := m.Authorities[0].Body.(*dnsmessage.SOAResource)
	if !ok || m.Authorities[0].Header.Name.String() != apex {
		t.Fatalf("authority %v, want the SOA of %s", m.Authorities[0], apex)
	}
	if soa.MinTTL != DefaultTTL {
		t.Errorf("SOA minimum %d, want %d", soa.MinTTL, DefaultTTL)
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		ip   string
	}{
		{"example.test.=192.0.2.53", "example.test.", "192.0.2.53"},
		{"Example.TEST=192.0.2.53", "example.test.", "192.0.2.53"},
		{"www.example.test=::ffff:192.0.2.7", "www.example.test.", "192.0.2.7"},
		{"www.example.test=2001:db8::1", "www.example.test.", "2001:db8::1"},
	} {
		name, ip, err := ParseRecord(tc.in)
		if err != nil || name != tc.name || ip != netip.MustParseAddr(tc.ip) {
			t.Errorf("ParseRecord(%q) = %q, %v, %v; want %q, %s", tc.in, name, ip, err, tc.name, tc.ip)
		}
	}
	for _, in := range []string{
		"", "example.test", "=192.0.2.1", ".=192.0.2.1", "example.test=", "example.test=fe80::1%eth0",
		"example.test=300.1.1.1", "a..b=192.0.2.1", fmt.Sprintf("%064d.test=192.0.2.1", 0),
	} {
		if name, ip, err := ParseRecord(in); err == nil {
			t.Errorf("ParseRecord(%q) = %q, %v; want an error", in, name, ip)
		}
	}
}

func TestAnswers(t *testing.T) {
	c, addr := testServer(t, &Server{Zone: testZone(t)})

	t.Run("A", func(t *testing.T) {
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 0x1234})
		h := m.Header
		if !h.Authoritative || !h.RecursionDesired || h.RecursionAvailable || h.Truncated || h.RCode != dnsmessage.RCodeSuccess {
			t.Errorf("header %+v, want AA, RD copied, NOERROR", h)
		}
		if got := answerIPs(t, m); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.80")}) {
			t.Errorf("answers %v", got)
		}
		if rr := m.Answers[0].Header; rr.TTL != DefaultTTL || rr.Class != dnsmessage.ClassINET || rr.Name.String() != "www.example.test." {
			t.Errorf("answer header %+v", rr)
		}
		if len(m.Questions) != 1 || m.Questions[0].Name.String() != "www.example.test." || m.Questions[0].Type != dnsmessage.TypeA {
			t.Errorf("question not echoed: %v", m.Questions)
		}
		if optOf(m) != nil {
			t.Error("OPT in answer to a query without OPT")
		}
	})

	t.Run("RDClear", func(t *testing.T) {
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 7, noRD: true})
		if m.Header.RecursionDesired || len(m.Answers) != 1 {
			t.Errorf("header %+v answers %d", m.Header, len(m.Answers))
		}
	})

	t.Run("CaseInsensitive", func(t *testing.T) {
		// The question comes back as asked (resolvers check the 0x20 case
		// randomization), yet matches the record.
		m := query(t, c, addr, "WwW.ExAmPlE.tEsT.", queryOpts{id: 8})
		if len(m.Answers) != 1 || m.Questions[0].Name.String() != "WwW.ExAmPlE.tEsT." {
			t.Errorf("answers %v question %v", m.Answers, m.Questions)
		}
	})

	t.Run("SeveralIPs", func(t *testing.T) {
		m := query(t, c, addr, "multi.example.test.", queryOpts{id: 2})
		want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}
		if got := answerIPs(t, m); !slices.Equal(got, want) {
			t.Errorf("answers %v, want %v", got, want)
		}
	})

	t.Run("AAAA", func(t *testing.T) {
		m := query(t, c, addr, "dual.example.test.", queryOpts{id: 9, typ: dnsmessage.TypeAAAA})
		want := []netip.Addr{netip.MustParseAddr("2001:db8::6"), netip.MustParseAddr("2001:db8::7")}
		if got := answerIPs(t, m); !m.Header.Authoritative || !slices.Equal(got, want) {
			t.Errorf("AAAA: header %+v answers %v, want %v", m.Header, got, want)
		}
		m = query(t, c, addr, "dual.example.test.", queryOpts{id: 10})
		if got := answerIPs(t, m); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.6")}) {
			t.Errorf("A of a name with both: %v", got)
		}
		m = query(t, c, addr, "dual.example.test.", queryOpts{id: 11, typ: dnsmessage.TypeALL})
		if got := answerIPs(t, m); len(got) != 3 {
			t.Errorf("ANY of a name with both: %v", got)
		}
	})

	t.Run("ANY", func(t *testing.T) {
		m := query(t, c, addr, "multi.example.test.", queryOpts{id: 3, typ: dnsmessage.TypeALL})
		if len(m.Answers) != 3 {
			t.Errorf("answers %v", m.Answers)
		}
	})

	t.Run("NXDOMAIN", func(t *testing.T) {
		m := query(t, c, addr, "nope.example.test.", queryOpts{id: 4})
		if m.Header.RCode != dnsmessage.RCodeNameError || !m.Header.Authoritative || len(m.Answers) != 0 {
			t.Errorf("header %+v answers %v", m.Header, m.Answers)
		}
		checkSOA(t, m, "example.test.")
	})

	t.Run("NODATA", func(t *testing.T) {
		for _, q := range []struct {
			name string
			typ  dnsmessage.Type
		}{
			{"www.example.test.", dnsmessage.TypeAAAA},
			{"www.example.test.", dnsmessage.TypeMX},
			{"b.example.test.", dnsmessage.TypeA}, // empty non-terminal
			{"example.test.", dnsmessage.TypeA},   // the apex
			{"a.b.example.test.", dnsmessage.TypeA},
		} {
			m := query(t, c, addr, q.name, queryOpts{id: 5, typ: q.typ})
			if m.Header.RCode != dnsmessage.RCodeSuccess || !m.Header.Authoritative || len(m.Answers) != 0 {
				t.Errorf("%s %v: header %+v answers %v", q.name, q.typ, m.Header, m.Answers)
			}
			apex := "example.test."
			if q.name == "a.b.example.test." {
				apex = q.name // the closest apex owns the SOA
			}
			checkSOA(t, m, apex)
		}
	})

	t.Run("SOA", func(t *testing.T) {
		m := query(t, c, addr, "example.test.", queryOpts{id: 6, typ: dnsmessage.TypeSOA})
		if len(m.Answers) != 1 || m.Answers[0].Header.Type != dnsmessage.TypeSOA {
			t.Errorf("answers %v", m.Answers)
		}
	})

	t.Run("NOTIMP", func(t *testing.T) {
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 9, opcode: 2}) // STATUS
		if m.Header.RCode != dnsmessage.RCodeNotImplemented || m.Header.OpCode != 2 || m.Header.Authoritative || len(m.Answers) != 0 {
			t.Errorf("header %+v answers %v", m.Header, m.Answers)
		}
	})

	t.Run("REFUSED", func(t *testing.T) {
		for _, name := range []string{"www.other.test.", "test.", "example.com.", "."} {
			m := query(t, c, addr, name, queryOpts{id: 10})
			if m.Header.RCode != dnsmessage.RCodeRefused || m.Header.Authoritative || len(m.Answers) != 0 {
				t.Errorf("%s: header %+v answers %v", name, m.Header, m.Answers)
			}
		}
		// Not our class (a CHAOS "version.bind" probe).
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 11, class: dnsmessage.ClassCHAOS, typ: dnsmessage.TypeTXT})
		if m.Header.RCode != dnsmessage.RCodeRefused {
			t.Errorf("CHAOS: header %+v", m.Header)
		}
	})

	t.Run("EDNS0", func(t *testing.T) {
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 12, edns: 4096})
		opt := optOf(m)
		if opt == nil {
			t.Fatal("no OPT in answer to an EDNS0 query")
		}
		if opt.Header.Class != DefaultUDPSize || opt.Header.Name.String() != "." || opt.Header.ExtendedRCode(m.Header.RCode) != dnsmessage.RCodeSuccess {
			t.Errorf("OPT header %+v, want our size %d", opt.Header, DefaultUDPSize)
		}
		if len(m.Answers) != 1 {
			t.Errorf("answers %v", m.Answers)
		}
		// Errors carry the OPT too.
		m = query(t, c, addr, "nope.example.test.", queryOpts{id: 13, edns: 1232})
		if optOf(m) == nil || m.Header.RCode != dnsmessage.RCodeNameError {
			t.Errorf("NXDOMAIN with EDNS0: %+v", m)
		}
	})

	t.Run("BADVERS", func(t *testing.T) {
		m := query(t, c, addr, "www.example.test.", queryOpts{id: 14, edns: 4096, version: 1})
		opt := optOf(m)
		if opt == nil || opt.Header.ExtendedRCode(m.Header.RCode) != rcodeBadVers || len(m.Answers) != 0 {
			t.Errorf("header %+v opt %+v", m.Header, opt)
		}
	})

	t.Run("Truncation", func(t *testing.T) {
		// 60 A records need about 1 kB: too much for 512 bytes.
		for _, tc := range []struct {
			edns      int
			truncated bool
		}{
			{0, true},
			{100, true}, // sizes below 512 count as 512
			{512, true},
			{4096, false},
		} {
			b := exchange(t, c, addr, buildQuery(t, "big.example.test.", queryOpts{id: 15, edns: tc.edns}))
			m := parse(t, b)
			if m.Header.Truncated != tc.truncated {
				t.Errorf("EDNS %d: TC=%v, want %v", tc.edns, m.Header.Truncated, tc.truncated)
			}
			if tc.truncated {
				if len(b) > 512 || len(m.Answers) != 0 || len(m.Questions) != 1 || (tc.edns != 0) != (optOf(m) != nil) {
					t.Errorf("EDNS %d: truncated response of %d bytes: %+v", tc.edns, len(b), m)
				}
			} else {
				if len(answerIPs(t, m)) != 60 || len(b) <= 512 || len(b) > DefaultUDPSize {
					t.Errorf("EDNS %d: %d answers in %d bytes", tc.edns, len(m.Answers), len(b))
				}
			}
		}
	})
}

// TestSmallUDPSize checks that our own UDPSize caps responses even when the
// client would take more.
func TestSmallUDPSize(t *testing.T) {
	c, addr := testServer(t, &Server{Zone: testZone(t), UDPSize: 600})
	b := exchange(t, c, addr, buildQuery(t, "big.example.test.", queryOpts{id: 1, edns: 4096}))
	m := parse(t, b)
	if !m.Header.Truncated || len(b) > 600 || optOf(m).Header.Class != 600 {
		t.Errorf("%d bytes, header %+v", len(b), m.Header)
	}
}

func TestMalformed(t *testing.T) {
	c, addr := testServer(t, &Server{Zone: testZone(t)})

	valid := buildQuery(t, "www.example.test.", queryOpts{id: 0xbeef})
	header := func(id, flags, qd uint16) []byte {
		return []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), byte(qd >> 8), byte(qd), 0, 0, 0, 0, 0, 0}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	response := randomBytes(200)
	response[2] |= 0x80 // QR

	// Datagrams that must be dropped. Each is followed by a valid query; the
	// server answers in order, so the first datagram back must be the answer
	// to that query.
	for name, msg := range map[string][]byte{
		"empty":           {},
		"one byte":        {0x12},
		"short header":    valid[:11],
		"random short":    randomBytes(7),
		"random response": response,
		"a response":      append(header(0xbeef, 0x8400, 0), 0),
	} {
		if _, err := c.WriteTo(msg, addr); err != nil {
			t.Fatal(err)
		}
		m := parse(t, exchange(t, c, addr, valid))
		if m.Header.ID != 0xbeef || len(m.Answers) != 1 {
			t.Errorf("%s: got an answer: %+v", name, m)
		}
	}

	// Datagrams whose header parses but whose body does not: FORMERR with
	// the ID kept and nothing echoed.
	twoQuestions := buildQuery(t, "www.example.test.", queryOpts{id: 0x0202})
	twoQuestions = append(twoQuestions, twoQuestions[12:]...)
	twoQuestions[5] = 2
	twoOPT := buildQuery(t, "www.example.test.", queryOpts{id: 0x0505, edns: 1232})
	twoOPT = append(twoOPT, twoOPT[len(twoOPT)-11:]...)
	twoOPT[11] = 2
	missingAdditional := append([]byte(nil), valid...)
	missingAdditional[11] = 1
	for name, tc := range map[string]struct {
		msg []byte
		id  uint16
	}{
		"no question":        {header(0x0101, 0x0100, 0), 0x0101},
		"missing question":   {header(0x0102, 0x0100, 1), 0x0102},
		"cut question":       {valid[:len(valid)-3], 0xbeef},
		"two questions":      {twoQuestions, 0x0202},
		"bad label":          {append(header(0x0303, 0, 1), 0x3f, 'a', 0, 0, 1, 0, 1), 0x0303},
		"pointer loop":       {append(header(0x0404, 0, 1), 0xc0, 12, 0, 1, 0, 1), 0x0404},
		"two OPT":            {twoOPT, 0x0505},
		"missing additional": {missingAdditional, 0xbeef},
	} {
		m := parse(t, exchange(t, c, addr, tc.msg))
		if m.Header.RCode != dnsmessage.RCodeFormatError || m.Header.ID != tc.id || len(m.Questions)+len(m.Answers) != 0 {
			t.Errorf("%s: got %+v, want FORMERR for ID %#x", name, m, tc.id)
		}
	}

	// Random datagrams: an answer, if any, must be a well-formed response
	// to the datagram. Handle tells which ones the server answers.
	pure := &Server{Zone: testZone(t)}
	answered := 0
	for i := range 200 {
		msg := randomBytes(12 + rng.IntN(100))
		if _, ok := pure.Handle(msg); !ok {
			continue
		}
		answered++
		m := parse(t, exchange(t, c, addr, msg))
		if m.Header.ID != uint16(msg[0])<<8|uint16(msg[1]) {
			t.Errorf("random %d: ID %#x for query %x", i, m.Header.ID, msg[:2])
		}
	}
	if answered == 0 {
		t.Error("no random datagram was answered; the test checks nothing")
	}
}

func TestConcurrentClients(t *testing.T) {
	const (
		clients = 8
		queries = 50
	)
	zone := new(Zone)
	for g := range clients {
		if err := zone.Add(fmt.Sprintf("host%d.example.test", g), netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})); err != nil {
			t.Fatal(err)
		}
	}
	c, addr := testServer(t, &Server{Zone: zone})

	// One socket for all clients: a reader routes responses by ID.
	var (
		mu      sync.Mutex
		waiting = make(map[uint16]chan []byte)
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 65535)
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 2 {
				continue
			}
			id := uint16(buf[0])<<8 | uint16(buf[1])
			mu.Lock()
			ch := waiting[id]
			delete(waiting, id)
			mu.Unlock()
			if ch != nil {
				ch <- append([]byte(nil), buf[:n]...)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for g := range clients {
		wg.Go(func() {
			name := fmt.Sprintf("host%d.example.test.", g)
			want := netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})
			for i := range queries {
				id := uint16(g<<8 | i)
				ch := make(chan []byte, 1)
				mu.Lock()
				waiting[id] = ch
				mu.Unlock()
				if _, err := c.WriteTo(buildQuery(t, name, queryOpts{id: id}), addr); err != nil {
					errs <- err
					return
				}
				select {
				case b := <-ch:
					var m dnsmessage.Message
					if err := m.Unpack(b); err != nil {
						errs <- err
						return
					}
					if len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.AResource).A != want.As4() {
						errs <- fmt.Errorf("%s: answers %v", name, m.Answers)
						return
					}
				case <-time.After(5 * time.Second):
					errs <- fmt.Errorf("%s: no answer to query %d", name, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.SetReadDeadline(time.Now())
	<-readerDone
}

func TestServeStops(t *testing.T) {
	srv := &Server{Zone: testZone(t)}

	t.Run("ContextDone", func(t *testing.T) {
		server, client := newTestConn(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, server) }()
		// Serving works before the cancel.
		exchange(t, client, server.LocalAddr(), buildQuery(t, "www.example.test.", queryOpts{id: 1}))
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after cancel")
		}
		// The deadline used to stop Serve is cleared again.
		if _, err := client.WriteTo([]byte("x"), server.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := server.ReadFrom(make([]byte, 10)); err != nil {
			t.Errorf("socket unusable after Serve: %v", err)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		server, _ := newTestConn(t)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(context.Background(), server) }()
		time.Sleep(10 * time.Millisecond) // let Serve block in ReadFrom (either way it must return)
		server.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after Close")
		}
	})

	t.Run("AlreadyCancelled", func(t *testing.T) {
		server, _ := newTestConn(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := srv.Serve(ctx, server); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	})
}

func TestZoneNilServer(t *testing.T) {
	resp, ok := (&Server{}).Handle(buildQuery(t, "www.example.test.", queryOpts{id: 1}))
	if !ok {
		t.Fatal("dropped")
	}
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil || h.RCode != dnsmessage.RCodeRefused {
		t.Errorf("header %+v, %v; want REFUSED", h, err)
	}
}

func TestZoneApexes(t *testing.T) {
	z := testZone(t)
	if got, want := z.Apexes(), []string{"a.b.example.test.", "example.test."}; !slices.Equal(got, want) {
		t.Errorf("Apexes() = %v, want %v", got, want)
	}
	// A single-label name is its own apex, never the root's.
	if err := z.Add("localhost", netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if a := z.lookup("localhost."); a.apex != "localhost." || len(a.addrs) != 1 {
		t.Errorf("lookup(localhost.) = %+v", a)
	}
	if a := z.lookup("other."); a.apex != "" {
		t.Errorf("lookup(other.) = %+v; want not authoritative", a)
	}
	if err := z.Add("www.example.test", netip.MustParseAddr("fe80::1%eth0")); err == nil {
		t.Error("Add accepted an address with a zone")
	}
	if err := z.Add("www.example.test", netip.Addr{}); err == nil {
		t.Error("Add accepted the zero address")
	}
}

// FuzzHandle checks that Handle never panics and only ever produces
// well-formed responses to the query it was given, within the size limits.
func FuzzHandle(f *testing.F) {
	f.Add(buildQuery(f, "www.example.test.", queryOpts{id: 1}))
	f.Add(buildQuery(f, "big.example.test.", queryOpts{id: 2, edns: 4096}))
	f.Add(buildQuery(f, "nope.example.test.", queryOpts{id: 3, edns: 1232, version: 1}))
	f.Add([]byte{0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	srv := &Server{Zone: testZone(f)}
	f.Fuzz(func(t *testing.T, query []byte) {
		resp, ok := srv.Handle(query)
		if len(query) < 12 && ok {
			t.Fatal("answered a datagram without a full header")
		}
		if !ok {
			return
		}
		if query[2]&0x80 != 0 {
			t.Fatal("answered a response")
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("malformed response %x: %v", resp, err)
		}
		if !m.Header.Response || m.Header.ID != uint16(query[0])<<8|uint16(query[1]) {
			t.Fatalf("bad response header %+v", m.Header)
		}
		limit := 512
		if optOf(&m) != nil {
			limit = DefaultUDPSize
		}
		if len(resp) > limit {
			t.Fatalf("%d-byte response, limit %d", len(resp), limit)
		}
	})
}
