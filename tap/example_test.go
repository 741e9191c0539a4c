package tap_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// A pipe joins two in-memory Ethernet links; Capture records what crosses
// one of them in pcap format. A stack reads and writes them the same way,
// in batches of link.Frame.
func ExamplePipe() {
	a, b := tap.Pipe(tap.PipeOptions{
		Impairments: tap.Impairments{Delay: time.Millisecond},
	})
	var pcap bytes.Buffer
	ca, err := tap.Capture(a, &pcap)
	if err != nil {
		panic(err)
	}

	f := make([]byte, ethernet.HeaderLen+4)
	ethernet.PutHeader(f, b.MAC(), a.MAC(), 0x88b5)
	copy(f[ethernet.HeaderLen:], "ping")
	if _, err := ca.WriteFrames([]link.Frame{{Buf: f, Len: len(f)}}); err != nil {
		panic(err)
	}

	in := []link.Frame{{Buf: make([]byte, 2048)}}
	n, err := b.ReadFrames(in)
	if err != nil {
		panic(err)
	}
	got := in[0].Bytes()
	fmt.Printf("%d frame: %s, EtherType %#04x\n", n, got[ethernet.HeaderLen:], ethernet.Header(got).Type())
	ca.Close()

	file, err := tap.ReadPcap(&pcap)
	if err != nil {
		panic(err)
	}
	fmt.Println("captured frames:", len(file.Records))
	// Output:
	// 1 frame: ping, EtherType 0x88b5
	// captured frames: 1
}
