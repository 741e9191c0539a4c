package tap_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/tap"
)

// A pipe joins two in-memory Ethernet links; Capture records what crosses
// one of them in pcap format.
func ExamplePipe() {
	a, b := tap.Pipe(tap.PipeOptions{
		Impairments: tap.Impairments{Delay: time.Millisecond},
	})
	var pcap bytes.Buffer
	ca, err := tap.Capture(a, &pcap)
	if err != nil {
		panic(err)
	}
	got := make(chan []byte, 1)
	b.Attach(func(f *buffer.Buffer) {
		if f != nil {
			got <- append([]byte(nil), f.Bytes()...)
			f.Release()
		}
	})
	ca.Attach(func(f *buffer.Buffer) {
		if f != nil {
			f.Release()
		}
	})

	frame := buffer.Get(64)
	frame.SetLen(tap.EthernetHeaderLen + 4)
	tap.PutEthernetHeader(frame.Bytes(), b.LinkAddress(), a.LinkAddress(), 0x88b5)
	copy(frame.Bytes()[tap.EthernetHeaderLen:], "ping")
	if err := ca.WritePacket(frame); err != nil {
		panic(err)
	}
	f := <-got
	fmt.Printf("%s, EtherType %#04x\n", f[tap.EthernetHeaderLen:], tap.EthernetHeader(f).EtherType())
	ca.Close()

	file, err := tap.ReadPcap(&pcap)
	if err != nil {
		panic(err)
	}
	fmt.Println("captured frames:", len(file.Records))
	// Output:
	// ping, EtherType 0x88b5
	// captured frames: 1
}
