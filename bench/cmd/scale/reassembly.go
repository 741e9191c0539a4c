package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// Fragmented datagrams: 2,000 bytes of UDP in two fragments, 1,480 and
// 520 bytes of IP payload, as a 1500-byte MTU cuts them.
const (
	fragDatagram = 2000
	fragFirst    = 1480
)

// setupReassembly has n sources send the server fragmented datagrams with
// n reassemblies in flight: every source's first fragment, then the second
// fragments 16 at a time, each 16 read back before the next. With fewer
// than 16 sources the 16 datagrams of a burst go one source after another,
// each whole before the next starts. Frames come from a raw writer on the
// pipe rather than a client stack, whose fragments of one datagram would
// always be back to back; they are built once, so that the rate is the
// server's.
func setupReassembly(n int) (trial, error) {
	var c cleanups
	ls, raw := tap.Pipe(tap.PipeOptions{QueueLen: 4096})
	c.add(func() { raw.Close() })
	s := stack.New(stack.Options{})
	c.add(func() { s.Close() })
	nic, err := s.AddNIC(ls, stack.NICOptions{Addresses: []netip.Prefix{netip.PrefixFrom(serverIP, 24)},
		IPv6: stack.IPv6Options{Disabled: true}})
	if err != nil {
		return c.fail(err)
	}
	// Whatever the server sends (nothing, but for a stray report) is read
	// and dropped, so that the pipe never fills on its side.
	go func() {
		fs := []link.Frame{{Buf: make([]byte, 2048)}}
		for {
			if _, err := raw.ReadFrames(fs); err != nil {
				return
			}
		}
	}()
	ep := udpsock.New(s)
	c.add(func() { ep.Close() })
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		return c.fail(err)
	}
	m := max(n, targets)
	first, second := make([]link.Frame, m), make([]link.Frame, m)
	for i := range m {
		first[i], second[i] = fragmentFrames(nic.MAC(), benchAddr(i%n), uint16(i))
	}
	buf := make([]byte, fragDatagram)
	read := func(k int, giveUp <-chan struct{}) error {
		for range k {
			info, err := ep.Read(buf, false, giveUp)
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			if info.N != fragDatagram-udp.HeaderLen {
				return fmt.Errorf("read %d bytes, want %d", info.N, fragDatagram-udp.HeaderLen)
			}
		}
		return nil
	}
	write := func(f link.Frame) error {
		_, err := raw.WriteFrames([]link.Frame{f})
		return err
	}
	return c.done(func(d time.Duration) (int, error) {
		giveUp := make(chan struct{})
		timer := time.AfterFunc(d+10*time.Second, func() { close(giveUp) })
		defer timer.Stop()
		got := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			if n < targets {
				for i := range m {
					if err := write(first[i]); err != nil {
						return got, err
					}
					if err := write(second[i]); err != nil {
						return got, err
					}
				}
				if err := read(m, giveUp); err != nil {
					return got, err
				}
				got += m
				continue
			}
			for i := range m {
				if err := write(first[i]); err != nil {
					return got, err
				}
			}
			for i := 0; i < m; i += targets {
				k := min(targets, m-i)
				for j := range k {
					if err := write(second[i+j]); err != nil {
						return got, err
					}
				}
				if err := read(k, giveUp); err != nil {
					return got, err
				}
				got += k
			}
		}
		if st := &s.Stats().Reassembly; st.Timeouts.Load()+st.MemoryEvictions.Load()+st.SourceLimit.Load() != 0 {
			return got, fmt.Errorf("reassembly lost datagrams: %d timed out, %d evicted for memory, %d for their source",
				st.Timeouts.Load(), st.MemoryEvictions.Load(), st.SourceLimit.Load())
		}
		return got, nil
	})
}

// fragmentFrames returns the two Ethernet frames of a fragmented UDP
// datagram from src to the server's port 7.
func fragmentFrames(serverMAC ethernet.MAC, src netip.Addr, id uint16) (first, second link.Frame) {
	dgram := make([]byte, fragDatagram)
	for i := udp.HeaderLen; i < len(dgram); i++ {
		dgram[i] = byte(i)
	}
	udp.PutHeader(dgram, 5000, 7, src, serverIP)
	client := ethernet.MAC{0x02, 0, 0, 0, 0, 1}
	frame := func(payload []byte, offset int, more bool) link.Frame {
		f := make([]byte, ethernet.HeaderLen+ipv4.HeaderLen+len(payload))
		ethernet.PutHeader(f, serverMAC, client, ethernet.TypeIPv4)
		ipv4.Put(f[ethernet.HeaderLen:], ipv4.Fields{TotalLen: ipv4.HeaderLen + len(payload), ID: id, MF: more,
			Offset: offset, TTL: 64, Protocol: udp.ProtocolNumber, Src: src, Dst: serverIP})
		copy(f[ethernet.HeaderLen+ipv4.HeaderLen:], payload)
		return link.Frame{Buf: f, Len: len(f)}
	}
	return frame(dgram[:fragFirst], 0, true), frame(dgram[fragFirst:], fragFirst, false)
}
