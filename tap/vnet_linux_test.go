package tap_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// TestSuperFrameSplitAcrossReads: a 46-segment burst from a kernel socket
// with UDP_SEGMENT arrives as one super-frame; read 8 frames at a time, its
// segments come out in order across calls, each a whole checksum-valid
// datagram with its own IP header.
func TestSuperFrameSplitAcrossReads(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testSuperFrameSplit(t, false) })
	t.Run("ipv6", func(t *testing.T) { testSuperFrameSplit(t, true) })
}

func testSuperFrameSplit(t *testing.T, v6 bool) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Offload: true})
	if st := d.Stats().Offloads; !st.USO {
		t.Skipf("no UDP segmentation offload: %+v", st)
	}
	dst, family, ethType, ipHdr := stackIP, unix.AF_INET, uint16(ethernet.TypeIPv4), 20
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: stackIP.As4(), Port: 9}
	if v6 {
		dst, family, ethType, ipHdr = netip.MustParseAddr("2001:db8::2"), unix.AF_INET6, ethernet.TypeIPv6, 40
		sa = &unix.SockaddrInet6{Addr: dst.As16(), Port: 9}
		ns.Exec(t, "sysctl", "-qw", "net.ipv6.conf."+d.Name()+".disable_ipv6=0")
		ns.IP(t, "-6", "addr", "add", "2001:db8::1/64", "dev", d.Name(), "nodad")
	}
	ns.IP(t, "neigh", "replace", dst.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	var fd int
	if err := ns.Do(func() (err error) {
		if fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 1400); err != nil {
			return err
		}
		return unix.Connect(fd, sa)
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const segs = 46
	burst := make([]byte, segs*1400)
	for i := range burst {
		burst[i] = byte(i / 1400)
	}
	if _, err := unix.Write(fd, burst); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { d.Close() })
	defer timer.Stop()
	frames := make([]link.Frame, 8)
	var ids []uint16
	for got := 0; got < segs; {
		for i := range frames {
			frames[i] = link.Frame{Buf: make([]byte, 64+1600), Off: 64}
		}
		n, err := d.ReadFrames(frames)
		if err != nil {
			t.Fatalf("after %d segments: %v", got, err)
		}
		for _, f := range frames[:n] {
			b := f.Bytes()
			ip := b[ethernet.HeaderLen:]
			if ethernet.Header(b).Type() != ethType || len(ip) != ipHdr+8+1400 {
				continue // ARP, neighbour discovery, router solicitations
			}
			u := ip[ipHdr:]
			ipLen := int(binary.BigEndian.Uint16(ip[2:])) // IPv4 total length
			if v6 {
				ipLen = 40 + int(binary.BigEndian.Uint16(ip[4:])) // IPv6 payload length
			}
			if ipLen != len(ip) || binary.BigEndian.Uint16(u[4:]) != 1408 || u[8] != byte(got) || u[len(u)-1] != byte(got) {
				t.Fatalf("segment %d: %d bytes, IP length %d, UDP length %d, payload byte %d",
					got, len(ip), ipLen, binary.BigEndian.Uint16(u[4:]), u[8])
			}
			if f.Flags&link.FlagChecksumValid == 0 {
				t.Errorf("segment %d not marked checksum-valid", got)
			}
			if !v6 {
				ids = append(ids, binary.BigEndian.Uint16(ip[4:]))
			}
			got++
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("IP IDs %v not consecutive", ids)
		}
	}
	if st := d.Stats(); st.RxSuperFrames != 1 || st.RxBadHeaders != 0 {
		t.Errorf("stats %+v, want one super-frame", st)
	}
}

// TestOffloadFallbacks: when the kernel refuses UDP segmentation offload
// (as before Linux 6.2), checksum offload, or virtio-net headers
// altogether, the device opens with what it got, says why in Stats, and
// frames flow both ways; a kernel GSO burst arrives already segmented.
func TestOffloadFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse tap.Refusal
		want   tap.OffloadStatus // Fallback: how it starts
	}{
		{"uso", tap.RefuseUSO, tap.OffloadStatus{VnetHdr: true, Checksum: true, Fallback: "UDP segmentation offload refused"}},
		{"checksum", tap.RefuseChecksum, tap.OffloadStatus{VnetHdr: true, Fallback: "checksum offload refused"}},
		{"vnet-hdr", tap.RefuseVnetHdr, tap.OffloadStatus{Fallback: "IFF_VNET_HDR refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := netns.New(t)
			tap.RefuseForTest(t, tc.refuse)
			d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Offload: true})
			st := d.Stats().Offloads
			if st.VnetHdr != tc.want.VnetHdr || st.Checksum != tc.want.Checksum || st.USO ||
				!strings.HasPrefix(st.Fallback, tc.want.Fallback) {
				t.Errorf("offloads %+v, want %+v", st, tc.want)
			}
			if info := d.Info().Offloads; info.MaxGSOSize != 0 || info.TxChecksum != tc.want.VnetHdr {
				t.Errorf("Info().Offloads = %+v", info)
			}
			exchangeUDP(t, ns, d)
			if s := d.Stats(); s.RxSuperFrames != 0 || s.TxSuperFrames != 0 || s.RxBadHeaders != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// exchangeUDP sends a datagram from the stack's side of d to a kernel
// socket, which answers with a 3-segment UDP_SEGMENT burst that must
// arrive as three whole datagrams.
func exchangeUDP(t *testing.T, ns *netns.NS, d *tap.Device) {
	t.Helper()
	conn := kernelUDP(t, ns)
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	r := newRx(64)
	r.attach(d)
	stackEP := netip.AddrPortFrom(stackIP, 6000)
	if err := write(d, udpFrame(kernelMAC(t, ns, d.Name()), d.MAC(), stackEP, netip.AddrPortFrom(kernelIP, 5000), []byte("ping"))); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, from, err := conn.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "ping" || from != stackEP {
		t.Fatalf("kernel got %q from %v: %v", buf[:n], from, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, 1400) }); err != nil || serr != nil {
		t.Fatalf("UDP_SEGMENT: %v %v", err, serr)
	}
	burst := make([]byte, 3*1400)
	for i := range burst {
		burst[i] = byte(i / 1400)
	}
	if _, err := conn.WriteToUDPAddrPort(burst, stackEP); err != nil {
		t.Fatal(err)
	}
	got := 0
	for range 100 { // skip unrelated frames (neighbour probes), but not forever
		_, to, p, ok := parseUDP(r.next(t))
		if !ok || to != stackEP {
			continue
		}
		if len(p) != 1400 || p[0] != byte(got) || p[1399] != byte(got) {
			t.Fatalf("segment %d: %d bytes starting %d", got, len(p), p[0])
		}
		if got++; got == 3 {
			return
		}
	}
	t.Fatalf("%d of 3 segments among 100 frames", got)
}
