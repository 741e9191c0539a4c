package udp_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/tapnet/tapnet/udp"
)

// Building a UDP datagram with its checksum and validating it on the
// receiving side, as the stack does for every datagram.
func ExamplePutHeader() {
	src := netip.MustParseAddr("192.0.2.1")
	dst := netip.MustParseAddr("198.51.100.7")
	payload := []byte("hello")

	b := make([]byte, udp.HeaderLen+len(payload))
	copy(b[udp.HeaderLen:], payload)
	udp.PutHeader(b, 40000, 53, src, dst)

	h, err := udp.ParseHeader(b, len(b), 0, src, dst)
	if err != nil {
		panic(err)
	}
	fmt.Println("ports:", h.SrcPort(), "->", h.DstPort())
	fmt.Println("length:", h.Length(), "checksummed:", h.Checksum() != 0)
	fmt.Printf("payload: %s\n", b[udp.HeaderLen:h.Length()])
	// Output:
	// ports: 40000 -> 53
	// length: 13 checksummed: true
	// payload: hello
}

// A datagram damaged in flight fails the checksum; the error names the
// drop reason so a receiver can count it.
func ExampleParseHeader_corrupt() {
	src := netip.MustParseAddr("2001:db8::1")
	dst := netip.MustParseAddr("2001:db8::2")
	b := make([]byte, udp.HeaderLen+4)
	copy(b[udp.HeaderLen:], "ping")
	udp.PutHeader(b, 5000, 6000, src, dst)

	b[udp.HeaderLen] ^= 0x20 // "ping" becomes "Ping"
	_, err := udp.ParseHeader(b, len(b), 0, src, dst)
	fmt.Println(err, errors.Is(err, udp.ErrChecksum))

	_, err = udp.ParseHeader(b[:4], 4, 0, src, dst)
	fmt.Println(err)
	// Output:
	// udp: bad checksum true
	// udp: datagram shorter than its header
}
