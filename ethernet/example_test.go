package ethernet_test

import (
	"fmt"

	"github.com/tapnet/tapnet/ethernet"
)

// Building an Ethernet II header in front of a payload and reading it back,
// as a custom link does with every frame.
func ExampleHeader() {
	src := ethernet.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	frame := make([]byte, ethernet.HeaderLen+4)
	ethernet.PutHeader(frame, ethernet.Broadcast, src, ethernet.TypeARP)
	copy(frame[ethernet.HeaderLen:], "data")

	h := ethernet.Header(frame)
	fmt.Println("dst:", h.Dst(), "broadcast:", h.Dst().IsMulticast())
	fmt.Println("src:", h.Src())
	fmt.Printf("type: %#04x (ARP: %v)\n", h.Type(), h.Type() == ethernet.TypeARP)
	fmt.Printf("payload: %s\n", frame[ethernet.HeaderLen:])
	// Output:
	// dst: ff:ff:ff:ff:ff:ff broadcast: true
	// src: 02:00:00:00:00:01
	// type: 0x0806 (ARP: true)
	// payload: data
}

// An IPv4 multicast group maps to an Ethernet group address; a link filter
// accepts frames sent to it.
func ExampleMulticastIPv4() {
	m := ethernet.MulticastIPv4([4]byte{239, 1, 2, 3})
	fmt.Println(m, m.IsMulticast())
	// Only the low 23 bits of the group survive the mapping.
	fmt.Println(ethernet.MulticastIPv4([4]byte{239, 129, 2, 3}) == m)
	// Output:
	// 01:00:5e:01:02:03 true
	// true
}

// MACFrom converts a net.HardwareAddr, such as one parsed from text, into
// the fixed-size value the rest of the module uses.
func ExampleMACFrom() {
	m, ok := ethernet.MACFrom([]byte{0x02, 0, 0x5e, 0x10, 0, 1})
	fmt.Println(m, ok)
	_, ok = ethernet.MACFrom([]byte{1, 2, 3})
	fmt.Println(ok)
	// Output:
	// 02:00:5e:10:00:01 true
	// false
}
