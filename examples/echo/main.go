// Command echo is a UDP echo server on a tapnet stack attached to a TAP
// device. It is also the tapnet subject of bench/, so it stays lean: one
// goroutine, one reused buffer, ReadFromUDPAddrPort and WriteToUDPAddrPort,
// which allocate nothing per datagram. With -batch N it serves with
// ReadBatch and WriteBatch instead, as a high-rate server would; with
// -offload the TAP uses checksum and UDP segmentation offloads, so a batch
// of replies to one client leaves in one write.
//
// As in README.md's Examples, the TAP lives in a network namespace of its
// own, demo, so that the host's interfaces and routes stay untouched; the
// kernel there is 192.0.2.1 and the echo server 192.0.2.2:
//
//	go build -o bin/ ./examples/echo
//	sudo ip netns add demo
//	sudo ip -n demo tuntap add dev tap0 mode tap
//	sudo ip -n demo addr add 192.0.2.1/24 dev tap0
//	sudo ip -n demo link set tap0 up
//	sudo ip netns exec demo bin/echo -tap tap0 -addr 192.0.2.2/24 -port 7
//
// and from another terminal (nc is OpenBSD netcat):
//
//	sudo ip netns exec demo ping -c 3 192.0.2.2
//	echo hello | sudo ip netns exec demo nc -u -w1 192.0.2.2 7
//	sudo ip netns del demo    # when done: removes the TAP too
//
// Over IPv6 too: give the kernel side 2001:db8::1/64 (ip -6 addr add
// 2001:db8::1/64 dev tap0) and the example a second -addr:
//
//	sudo ip netns exec demo bin/echo -tap tap0 -addr 192.0.2.2/24 -addr 2001:db8::2/64
//	sudo ip netns exec demo ping -6 -c 3 2001:db8::2
//	echo hello | sudo ip netns exec demo nc -6 -u -w1 2001:db8::2 7
package main

import (
	"flag"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
)

func main() {
	fs := flag.CommandLine
	nf := netsetup.Register(fs, "192.0.2.2/24")
	port := fs.Int("port", 7, "UDP port to echo on")
	stats := fs.Bool("stats", false, "print the stack's counters on exit")
	rcvbuf := fs.Int("rcvbuf", 0, "receive buffer size (SetReadBuffer); 0 keeps the default")
	batch := fs.Int("batch", 0, "serve up to N datagrams per ReadBatch/WriteBatch (a high-rate server); 0 serves one at a time")
	flag.Parse()

	n, err := nf.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	conn, err := gonet.ListenUDP(n.Stack, "udp", &net.UDPAddr{Port: *port})
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	if *rcvbuf > 0 {
		conn.SetReadBuffer(*rcvbuf)
	}
	var on []string
	for _, p := range n.Addrs {
		on = append(on, netip.AddrPortFrom(p.Addr(), uint16(*port)).String())
	}
	fmt.Printf("echo: serving UDP on %s over %s\n", strings.Join(on, " "), nf.Device())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		conn.Close()
	}()
	if *batch > 0 {
		serveBatch(conn, min(*batch, 1024))
	} else {
		serve(conn)
	}
	if *stats {
		snap := n.Stack.Stats().Snapshot()
		for _, k := range slices.Sorted(maps.Keys(snap)) {
			if v := snap[k]; v != 0 {
				fmt.Printf("%-28s %d\n", k, v)
			}
		}
	}
	n.Close()
}

// serve echoes every datagram back to its sender until the conn closes.
func serve(conn *gonet.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		conn.WriteToUDPAddrPort(buf[:n], from)
	}
}

// serveBatch echoes like serve, reading every datagram already queued (up
// to n) at once and writing the replies as one batch, which leaves as UDP
// super-frames when the link has segmentation offload (-offload).
func serveBatch(conn *gonet.UDPConn, n int) {
	pc := gonet.NewPacketConn(conn)
	in, out := make([]ipv4.Message, n), make([]ipv4.Message, n)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65536)}
		out[i].Buffers = make([][]byte, 1)
	}
	for {
		k, err := pc.ReadBatch(in, 0)
		if err != nil {
			return
		}
		for i := range k {
			out[i].Buffers[0] = in[i].Buffers[0][:in[i].N]
			out[i].Addr = in[i].Addr
		}
		for sent := 0; sent < k; {
			m, err := pc.WriteBatch(out[sent:k], 0)
			if err != nil || m <= 0 {
				break // like serve, a failed reply is dropped
			}
			sent += m
		}
	}
}
