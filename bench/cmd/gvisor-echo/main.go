// Command gvisor-echo is a UDP echo server on gVisor's netstack over a TAP
// device: fdbased link endpoint, IPv4/ARP/UDP, and a gonet UDP conn served by
// a plain ReadFrom/WriteTo loop — what a Go programmer would pick instead of
// tapnet.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/tapnet/tapnet/bench/internal/gvstack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

func main() {
	tap := flag.String("tap", "tnbtap0", "TAP device name")
	addr := flag.String("addr", "192.0.2.2/24", "local IPv4 address/prefix length")
	port := flag.Int("port", 7, "UDP port to serve")
	mac := flag.String("mac", "02:00:00:00:00:02", "local MAC address")
	gw := flag.String("gw", "", "default gateway (optional)")
	bufSize := flag.Int("bufsize", 0, "socket buffer size in bytes (0: gVisor default, 212 KiB)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gvisor-echo: ")

	pfx, err := netip.ParsePrefix(*addr)
	if err != nil {
		log.Fatalf("-addr: %v", err)
	}
	var gwAddr netip.Addr
	if *gw != "" {
		if gwAddr, err = netip.ParseAddr(*gw); err != nil {
			log.Fatalf("-gw: %v", err)
		}
	}
	s, err := gvstack.New(gvstack.Config{Tap: *tap, Prefix: pfx, MAC: *mac, Gateway: gwAddr, BufSize: *bufSize})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := gonet.DialUDP(s.Stack, &tcpip.FullAddress{NIC: gvstack.NICID, Addr: s.Addr, Port: uint16(*port)}, nil, ipv4.ProtocolNumber)
	if err != nil {
		log.Fatal(err)
	}

	var echoed atomic.Uint64
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		st := s.Stats()
		fmt.Fprintf(os.Stderr, "gvisor-echo: echoed %d datagrams; udp rcvd %d, rcvbuf drops %d, send errors %d; nic tx no-buffer drops %d\n",
			echoed.Load(), st.UDP.PacketsReceived.Value(), st.UDP.ReceiveBufferErrors.Value(),
			st.UDP.PacketSendErrors.Value(), st.NICs.TxPacketsDroppedNoBufferSpace.Value())
		os.Exit(0)
	}()

	fmt.Fprintf(os.Stderr, "gvisor-echo: serving udp %v:%d on %s\n", pfx.Addr(), *port, *tap)
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			log.Fatalf("read: %v", err)
		}
		if _, err := conn.WriteTo(buf[:n], from); err != nil {
			log.Printf("write: %v", err)
			continue
		}
		echoed.Add(1)
	}
}
