package ipv4_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/tapnet/tapnet/ipv4"
)

// An ICMP echo request in an IPv4 packet, built and then parsed as a
// receiver would: header first, then the ICMP message it carries.
func ExampleParse() {
	src := netip.MustParseAddr("192.0.2.1")
	dst := netip.MustParseAddr("198.51.100.7")
	data := []byte("ping")

	pkt := make([]byte, ipv4.HeaderLen+ipv4.ICMPHeaderLen+len(data))
	msg := pkt[ipv4.HeaderLen:]
	copy(msg[ipv4.ICMPHeaderLen:], data)
	const id, seq = 0x1234, 1
	ipv4.PutICMPHeader(msg, ipv4.ICMPEcho, 0, id<<16|seq)
	ipv4.Put(pkt, ipv4.Fields{
		TotalLen: len(pkt),
		ID:       7,
		DF:       true,
		TTL:      ipv4.DefaultTTL,
		Protocol: ipv4.ProtocolICMP,
		Src:      src,
		Dst:      dst,
	})

	h, err := ipv4.Parse(pkt)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Src(), "->", h.Dst(), "ttl", h.TTL(), "proto", h.Protocol())
	fmt.Println("len", h.TotalLen(), "DF", h.DontFragment(), "fragment", h.IsFragment())

	m, err := ipv4.ParseICMP(pkt[h.HeaderLen():h.TotalLen()])
	if err != nil {
		panic(err)
	}
	rest := m.RestOfHeader()
	fmt.Printf("icmp type %d id %#x seq %d body %q\n", m.Type(), rest>>16, rest&0xffff, m.Body())

	// A header changed in flight (here its ID) fails the checksum.
	binary.BigEndian.PutUint16(pkt[4:], 8)
	_, err = ipv4.Parse(pkt)
	fmt.Println(err)
	// Output:
	// 192.0.2.1 -> 198.51.100.7 ttl 64 proto 1
	// len 32 DF true fragment false
	// icmp type 8 id 0x1234 seq 1 body "ping"
	// ipv4: bad header checksum
}

// An IGMPv3 report as a host sends it when it joins a group for one
// source only, read back record by record.
func ExamplePutIGMPv3Report() {
	recs := []ipv4.GroupRecordFields{{
		Type:    ipv4.ChangeToIncludeMode,
		Group:   netip.MustParseAddr("239.1.2.3"),
		Sources: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
	}}
	b := make([]byte, ipv4.IGMPv3ReportLen(recs))
	ipv4.PutIGMPv3Report(b, recs)

	m, err := ipv4.ParseIGMP(b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("type %#x, %d record(s)\n", m.Type(), m.NumRecords())
	for r := range m.Records() {
		fmt.Println("record type", r.Type(), "group", r.Group(), "source", r.Source(0))
	}
	// Output:
	// type 0x22, 1 record(s)
	// record type 3 group 239.1.2.3 source 192.0.2.10
}
