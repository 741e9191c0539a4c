// Command gvisor-quic is a quic-go server on gVisor's netstack over a TAP
// device: quic.Transport{Conn: gonet UDP conn}. Each stream is echoed (like
// tapnet's examples/quic) or sunk (-mode sink).
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/tapnet/tapnet/bench/internal/gvstack"
	"github.com/tapnet/tapnet/bench/internal/quicbench"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

func main() {
	tap := flag.String("tap", "tnbtap0", "TAP device name")
	addr := flag.String("addr", "192.0.2.2/24", "local IPv4 address/prefix length")
	mac := flag.String("mac", "02:00:00:00:00:02", "local MAC address")
	gw := flag.String("gw", "", "default gateway (optional)")
	listen := flag.String("listen", ":4433", "UDP [host]:port to listen on (host defaults to -addr)")
	alpn := flag.String("alpn", quicbench.ALPN, "TLS ALPN protocol")
	mode := flag.String("mode", "echo", "echo: echo each stream; sink: drain it and reply with the byte count")
	bufSize := flag.Int("bufsize", 4<<20, "gVisor socket buffer size in bytes (0: gVisor default, 212 KiB)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gvisor-quic: ")

	pfx, err := netip.ParsePrefix(*addr)
	if err != nil {
		log.Fatalf("-addr: %v", err)
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("-listen: %v", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		log.Fatalf("-listen port: %v", err)
	}
	if host != "" {
		if a, err := netip.ParseAddr(host); err != nil || a != pfx.Addr() {
			log.Fatalf("-listen host %q: must be empty or %v", host, pfx.Addr())
		}
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
	conn, err := gonet.DialUDP(s.Stack, &tcpip.FullAddress{NIC: gvstack.NICID, Addr: s.Addr, Port: uint16(port)}, nil, ipv4.ProtocolNumber)
	if err != nil {
		log.Fatal(err)
	}
	tlsConf, err := quicbench.ServerTLS(*alpn)
	if err != nil {
		log.Fatal(err)
	}
	tr := &quic.Transport{Conn: conn}
	ln, err := tr.Listen(tlsConf, quicbench.Config())
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ln.Close()
		tr.Close()
		os.Exit(0)
	}()
	log.Printf("quic %s server on %v:%d (%s)", *mode, pfx.Addr(), port, *tap)
	if err := quicbench.Serve(ln, *mode, quicbench.Logf); !errors.Is(err, net.ErrClosed) {
		log.Fatal(err)
	}
	select {} // closed by the signal handler, which exits
}
