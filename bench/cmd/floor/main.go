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
//
// With -addr6 it does the same for IPv6/UDP frames to that address (hop
// limit reset to 64; IPv6 has no header checksum) and answers neighbour
// solicitations for it, so that the kernel's IPv6 cost on the same TAP can be
// told apart from a stack's (bench's floor6 subject).
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
	etherTypeIP6 = 0x86dd
	protoUDP     = 17
	protoICMP6   = 58
	replyTTL     = 64
)

func main() {
	tap := flag.String("tap", "tnbtap0", "TAP device name")
	addr := flag.String("addr", "192.0.2.2/24", "local IPv4 address (prefix length ignored)")
	macStr := flag.String("mac", "02:00:00:00:00:02", "local MAC address")
	addr6 := flag.String("addr6", "", "local IPv6 address to also bounce UDP for and answer neighbour solicitations for (empty: IPv4 only)")
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
	var ip6 []byte
	if *addr6 != "" {
		a, err := netip.ParseAddr(*addr6)
		if err != nil || !a.Is6() || a.Is4In6() {
			log.Fatalf("-addr6 %q: want an IPv6 address", *addr6)
		}
		b := a.As16()
		ip6 = b[:]
	}
	mac, err := tapdev.ParseMAC(*macStr)
	if err != nil {
		log.Fatalf("-mac: %v", err)
	}
	fd, err := tapdev.Open(*tap)
	if err != nil {
		log.Fatal(err)
	}

	var bounced, arps, nss, dropped atomic.Uint64
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintf(os.Stderr, "floor: bounced %d udp, answered %d arp and %d ns, dropped %d\n",
			bounced.Load(), arps.Load(), nss.Load(), dropped.Load())
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
		case ip6 != nil && binary.BigEndian.Uint16(f[12:14]) == etherTypeIP6:
			if ok = udp6Bounce(f, mac, ip6, uint16(*port)); ok {
				bounced.Add(1)
			} else if ok = naReply(f, mac, ip6); ok {
				f = f[:ethHdrLen+ip6HdrLen+naLen]
				nss.Add(1)
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

const (
	ip6HdrLen = 40
	nsLen     = 24 // ICMPv6 neighbour solicitation without options
	naLen     = 32 // neighbour advertisement with a target link-layer address option
)

// udp6Bounce turns an IPv6/UDP frame to ip6 (no extension headers) into the
// echo reply, in place.
func udp6Bounce(f []byte, mac []byte, ip6 []byte, port uint16) bool {
	h := f[ethHdrLen:]
	if len(h) < ip6HdrLen+8 || h[0]>>4 != 6 || h[6] != protoUDP || !bytes.Equal(h[24:40], ip6) {
		return false
	}
	u := h[ip6HdrLen:]
	if port != 0 && binary.BigEndian.Uint16(u[2:4]) != port {
		return false
	}
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac)
	var tmp [16]byte
	copy(tmp[:], h[8:24])
	copy(h[8:24], h[24:40])
	copy(h[24:40], tmp[:])
	h[7] = replyTTL
	u[0], u[1], u[2], u[3] = u[2], u[3], u[0], u[1]
	return true
}

// naReply turns a neighbour solicitation for ip6 into the solicited
// advertisement (RFC 4861 7.2.4), in place; f must have room for naLen bytes
// of ICMPv6. Only solicitations from a unicast source are answered: the
// kernel's DAD probes (unspecified source) are left alone.
func naReply(f []byte, mac []byte, ip6 []byte) bool {
	h := f[ethHdrLen:]
	if len(h) < ip6HdrLen+nsLen || cap(f) < ethHdrLen+ip6HdrLen+naLen ||
		h[0]>>4 != 6 || h[6] != protoICMP6 || h[7] != 255 {
		return false
	}
	m := h[ip6HdrLen:]
	if m[0] != 135 || m[1] != 0 || !bytes.Equal(m[8:24], ip6) || allZero(h[8:24]) {
		return false
	}
	f = f[:ethHdrLen+ip6HdrLen+naLen]
	h = f[ethHdrLen:]
	m = h[ip6HdrLen:]
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(h[4:6], naLen)
	copy(h[24:40], h[8:24]) // to the solicitor
	copy(h[8:24], ip6)
	m[0], m[1] = 136, 0
	binary.BigEndian.PutUint32(m[4:8], 0x60000000) // Solicited, Override
	// m[8:24] already holds the target.
	m[24], m[25] = 2, 1 // target link-layer address, 8 bytes
	copy(m[26:32], mac)
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint16(m[2:4], icmp6Checksum(h[8:24], h[24:40], m))
	return true
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// from src to dst (RFC 4443 2.3).
func icmp6Checksum(src, dst, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src)
	add(dst)
	sum += uint32(len(msg)) + protoICMP6
	add(msg)
	for sum>>16 != 0 {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
