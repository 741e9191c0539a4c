package stack

import (
	"bytes"
	"testing"

	"github.com/tapnet/tapnet/internal/buffer"
)

// chainOf builds a payload as reassembly hands it over: n parts of size
// bytes, each in its own pooled buffer, part i filled with byte i.
func chainOf(n, size int) Payload {
	var head, tail *buffer.Buffer
	for i := 0; i < n; i++ {
		p := buffer.Get(size)
		p.Append(bytes.Repeat([]byte{byte(i)}, size))
		if head == nil {
			head = p
		} else {
			tail.Next = p
		}
		tail = p
	}
	return Payload{head}
}

// TestPayloadTruesize checks the receive-buffer charge: Linux's skb
// truesize for one buffer, and for a datagram reassembled from tiny
// fragments at least the memory of every fragment buffer it pins.
func TestPayloadTruesize(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 768}, {64, 768}, {1000, 2304}, {1400, 2304}, {8000, 8192 + 4096 + 256}} {
		p := chainOf(1, c.n)
		if got := p.Truesize(); got != c.want {
			t.Errorf("%d bytes in one buffer: truesize %d, want %d", c.n, got, c.want)
		}
		p.Release()
	}
	p := chainOf(1900, 8)
	defer p.Release()
	if got, pinned := p.Truesize(), p.b.ChainTruesize(); got < pinned || got < 1900*2048 {
		t.Errorf("1900 fragments of 8 bytes: truesize %d, but they pin %d bytes", got, pinned)
	}
	if (Payload{}).Len() != 0 || (Payload{}).Truesize() != 768 {
		t.Error("the zero Payload is not empty")
	}
	Payload{}.Release()
}

// TestPayloadCopyTo gathers a chain into one slice, truncating to dst.
func TestPayloadCopyTo(t *testing.T) {
	p := chainOf(3, 5)
	defer p.Release()
	if p.Len() != 15 {
		t.Fatalf("Len %d, want 15", p.Len())
	}
	want := []byte{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2}
	dst := make([]byte, 20)
	if n := p.CopyTo(dst); n != 15 || !bytes.Equal(dst[:n], want) {
		t.Fatalf("CopyTo: %d %v", n, dst[:n])
	}
	short := make([]byte, 7)
	if n := p.CopyTo(short); n != 7 || !bytes.Equal(short, want[:7]) {
		t.Fatalf("CopyTo short: %d %v", n, short)
	}
}
