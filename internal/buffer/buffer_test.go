package buffer

import (
	"bytes"
	"testing"
)

func TestPrependAppendTrim(t *testing.T) {
	b := Get(100)
	defer b.Release()
	if b.Len() != 0 || b.Cap() < 100 {
		t.Fatalf("fresh buffer: len %d cap %d", b.Len(), b.Cap())
	}
	if !b.Append([]byte("payload")) {
		t.Fatal("append failed")
	}
	copy(b.Prepend(4), "udp:")
	copy(b.Prepend(3), "ip:")
	if got := string(b.Bytes()); got != "ip:udp:payload" {
		t.Fatalf("got %q", got)
	}
	b.TrimFront(3)
	b.Truncate(7)
	if got := string(b.Bytes()); got != "udp:pay" {
		t.Fatalf("after trim %q", got)
	}
	if b.Prepend(Headroom+1) != nil {
		t.Fatal("prepend beyond headroom must fail")
	}
	b.Reset()
	if b.Len() != 0 || b.Prepend(Headroom) == nil {
		t.Fatal("reset must restore headroom")
	}
}

func TestSizeClassesAndLarge(t *testing.T) {
	for _, n := range []int{0, 1, 2048, 2049, 16384, 65536, MaxSize()} {
		b := Get(n)
		if b.Cap() < n {
			t.Fatalf("Get(%d): cap %d", n, b.Cap())
		}
		b.SetLen(n)
		b.Release()
	}
	huge := Get(MaxSize() + 1)
	if huge.class != -1 || huge.Cap() < MaxSize()+1 {
		t.Fatal("oversize buffer must be a plain allocation")
	}
	huge.Release()
}

func TestDoubleReleasePanics(t *testing.T) {
	b := Get(MaxSize() + 1) // outside the pools, so that no one else gets it
	b.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("releasing a released buffer must panic")
		}
	}()
	b.Release()
}

func TestChain(t *testing.T) {
	parts := []string{"first-", "second-", "third"}
	var head, tail *Buffer
	for _, p := range parts {
		b := Get(len(p))
		b.Append([]byte(p))
		if head == nil {
			head = b
		} else {
			tail.Next = b
		}
		tail = b
	}
	if head.ChainLen() != len("first-second-third") {
		t.Fatalf("chain len %d", head.ChainLen())
	}
	dst := make([]byte, 10)
	if n := head.CopyChain(dst); n != 10 || string(dst) != "first-seco" {
		t.Fatalf("copy into short buffer: %d %q", n, dst)
	}
	dst = make([]byte, 64)
	n := head.CopyChain(dst)
	if !bytes.Equal(dst[:n], []byte("first-second-third")) {
		t.Fatalf("copy: %q", dst[:n])
	}
	head.ReleaseChain()
	if head.Next != nil {
		t.Fatal("ReleaseChain must unlink parts")
	}
}

func TestClone(t *testing.T) {
	b := Get(5)
	b.Append([]byte("hello"))
	c := b.Clone()
	b.Bytes()[0] = 'j'
	if string(c.Bytes()) != "hello" {
		t.Fatal("clone shares bytes")
	}
	b.Release()
	c.Release()
}

func TestBackingAndBounds(t *testing.T) {
	b := Get(64)
	defer b.Release()
	raw := b.Backing()
	if b.Start() != Headroom || len(raw) != b.Truesize() {
		t.Fatalf("start %d, backing %d bytes (truesize %d)", b.Start(), len(raw), b.Truesize())
	}
	copy(raw[Headroom:], "frame")
	b.SetBounds(Headroom, Headroom+5)
	if string(b.Bytes()) != "frame" || b.Len() != 5 {
		t.Fatalf("after SetBounds: %q", b.Bytes())
	}
	if h := b.Prepend(4); h == nil || b.Start() != Headroom-4 {
		t.Fatal("headroom lost after SetBounds")
	}
	for _, c := range [][2]int{{-1, 0}, {10, 9}, {0, len(raw) + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetBounds(%d, %d) did not panic", c[0], c[1])
				}
			}()
			b.SetBounds(c[0], c[1])
		}()
	}
}

func BenchmarkGetRelease(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		x := Get(1500)
		x.SetLen(1500)
		x.Release()
	}
}
