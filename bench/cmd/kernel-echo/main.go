// Command kernel-echo is the kernel reference: a UDP echo server on a kernel
// socket (net.ListenUDP) with a ReadFrom/WriteTo loop. run.sh runs it in its
// own network namespace, reached from the load generator over a veth pair.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "198.51.100.2", "local IPv4 address to bind (a /len suffix is ignored)")
	port := flag.Int("port", 7, "UDP port")
	rcvbuf := flag.Int("rcvbuf", 4<<20, "SO_RCVBUF in bytes, forced when root (0: kernel default, 208 KiB, which\n64 queued 1400-byte datagrams can overflow: the kernel charges each its truesize)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kernel-echo: ")

	var ip netip.Addr
	if p, err := netip.ParsePrefix(*addr); err == nil {
		ip = p.Addr()
	} else if ip, err = netip.ParseAddr(*addr); err != nil {
		log.Fatalf("-addr: %v", err)
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(*port))))
	if err != nil {
		log.Fatal(err)
	}
	if *rcvbuf > 0 {
		setReadBuffer(conn, *rcvbuf)
	}
	var echoed atomic.Uint64
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintf(os.Stderr, "kernel-echo: echoed %d datagrams\n", echoed.Load())
		os.Exit(0)
	}()
	fmt.Fprintf(os.Stderr, "kernel-echo: serving udp %v\n", conn.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			log.Fatalf("read: %v", err)
		}
		if _, err := conn.WriteToUDPAddrPort(buf[:n], from); err != nil {
			log.Printf("write: %v", err)
			continue
		}
		echoed.Add(1)
	}
}

// setReadBuffer sets SO_RCVBUF, past net.core.rmem_max when allowed.
func setReadBuffer(conn *net.UDPConn, n int) {
	rc, err := conn.SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		log.Fatal(err)
	}
	if serr != nil {
		if err := conn.SetReadBuffer(n); err != nil {
			log.Fatal(err)
		}
	}
}
