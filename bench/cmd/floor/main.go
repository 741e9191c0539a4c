// Command floor is the floor for any TAP-based stack: it bounces frames on a
// TAP device and nothing else. It answers ARP requests for its IP and, for
// IPv4/UDP frames addressed to its IP, swaps the Ethernet addresses, the IP
// addresses and the UDP ports in place and writes the frame back: one read(2)
// and one write(2) per packet, no buffering, no allocation, no goroutines on
// the path.
//
// Swapping the IP addresses leaves the IP header checksum unchanged and
// swapping addresses and ports leaves the UDP checksum unchanged (the
// one's-complement sum is commutative); only the TTL is reset to 64, with an
// incremental IP checksum update (RFC 1624).
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/tapnet/tapnet/bench/internal/tapdev"
	"golang.org/x/sys/unix"
)

const (
	ethHdrLen    = 14
	etherTypeIP  = 0x0800
	etherTypeARP = 0x0806
	protoUDP     = 17
	replyTTL     = 64
)

func main() {
	tap := flag.String("tap", "tnbtap0", "TAP device name")
	addr := flag.String("addr", "192.0.2.2/24", "local IPv4 address (prefix length ignored)")
	macStr := flag.String("mac", "02:00:00:00:00:02", "local MAC address")
	port := flag.Int("port", 0, "only bounce UDP to this port (0: any port)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("floor: ")

	pfx, err := netip.ParsePrefix(*addr)
	if err != nil {
		if a, err2 := netip.ParseAddr(*addr); err2 == nil {
			pfx = netip.PrefixFrom(a, 32)
		} else {
			log.Fatalf("-addr: %v", err)
		}
	}
	if !pfx.Addr().Is4() {
		log.Fatalf("-addr %v: IPv4 only", pfx)
	}
	ip := pfx.Addr().As4()
	mac, err := tapdev.ParseMAC(*macStr)
	if err != nil {
		log.Fatalf("-mac: %v", err)
	}
	fd, err := tapdev.Open(*tap)
	if err != nil {
		log.Fatal(err)
	}

	var bounced, arps, dropped atomic.Uint64
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintf(os.Stderr, "floor: bounced %d udp, answered %d arp, dropped %d\n",
			bounced.Load(), arps.Load(), dropped.Load())
		os.Exit(0)
	}()

	runtime.LockOSThread()
	fmt.Fprintf(os.Stderr, "floor: bouncing udp for %v on %s\n", pfx.Addr(), *tap)
	buf := make([]byte, 65536)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			log.Fatalf("read: %v", err)
		}
		f := buf[:n]
		var ok bool
		switch {
		case n < ethHdrLen:
		case binary.BigEndian.Uint16(f[12:14]) == etherTypeARP:
			if ok = arpReply(f, mac, ip[:]); ok {
				arps.Add(1)
			}
		case binary.BigEndian.Uint16(f[12:14]) == etherTypeIP:
			if ok = udpBounce(f, mac, ip[:], uint16(*port)); ok {
				bounced.Add(1)
			}
		}
		if !ok {
			dropped.Add(1)
			continue
		}
		if _, err := unix.Write(fd, f); err != nil {
			if err == unix.EINTR {
				continue
			}
			log.Fatalf("write: %v", err)
		}
	}
}

// arpReply turns an ARP request for ip into the reply, in place.
func arpReply(f []byte, mac []byte, ip []byte) bool {
	const arpLen = 28
	if len(f) < ethHdrLen+arpLen {
		return false
	}
	a := f[ethHdrLen:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherTypeIP ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:8]) != 1 {
		return false
	}
	if !bytes.Equal(a[24:28], ip) {
		return false
	}
	// Ethernet: to the requester, from us.
	copy(f[0:6], a[8:14])
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(a[6:8], 2) // reply
	// target <- sender; sender <- us.
	copy(a[18:24], a[8:14])
	copy(a[24:28], a[14:18])
	copy(a[8:14], mac)
	copy(a[14:18], ip)
	return true
}

// udpBounce turns an IPv4/UDP frame to ip into the echo reply, in place.
func udpBounce(f []byte, mac []byte, ip []byte, port uint16) bool {
	h := f[ethHdrLen:]
	if len(h) < 20 || h[0]>>4 != 4 {
		return false
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || len(h) < ihl+8 || h[9] != protoUDP || !bytes.Equal(h[16:20], ip) {
		return false
	}
	if binary.BigEndian.Uint16(h[6:8])&0x3fff != 0 { // fragment
		return false
	}
	u := h[ihl:]
	if port != 0 && binary.BigEndian.Uint16(u[2:4]) != port {
		return false
	}
	// Ethernet.
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac)
	// IP addresses (checksum-neutral).
	var tmp [4]byte
	copy(tmp[:], h[12:16])
	copy(h[12:16], h[16:20])
	copy(h[16:20], tmp[:])
	// TTL, with an incremental checksum update: HC' = ~(~HC + ~m + m').
	oldWord := binary.BigEndian.Uint16(h[8:10])
	h[8] = replyTTL
	newWord := binary.BigEndian.Uint16(h[8:10])
	sum := uint32(^binary.BigEndian.Uint16(h[10:12])) + uint32(^oldWord) + uint32(newWord)
	sum = (sum & 0xffff) + (sum >> 16)
	sum = (sum & 0xffff) + (sum >> 16)
	binary.BigEndian.PutUint16(h[10:12], ^uint16(sum))
	// UDP ports (checksum-neutral).
	u[0], u[1], u[2], u[3] = u[2], u[3], u[0], u[1]
	return true
}
