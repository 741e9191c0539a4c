// Command dns is a small authoritative DNS server for A and AAAA records,
// served over UDP through the net.PacketConn interface only. The same server
// code runs on a kernel UDP socket (-net kernel) or on tapnet, a userspace
// stack on a TAP device (-net tap), which shows that tapnet's sockets drop
// into code written for the standard library. Given an IPv4 and an IPv6
// -addr, it listens on both:
//
//	dns -tap tap0 -addr 192.0.2.2/24 -addr 2001:db8::2/64 -record www.example.test=2001:db8::80
//	dig -6 @2001:db8::2 www.example.test AAAA
//
// It answers authoritatively for the parent domain of each record's name:
//
//	dns -net kernel -port 5353 -record www.example.test=192.0.2.80 -record www.example.test=192.0.2.81
//	dig @127.0.0.1 -p 5353 www.example.test A
//
// Names in those domains without records get NXDOMAIN (or NODATA for other
// record types), names elsewhere get REFUSED. EDNS0 is supported; responses
// that do not fit the client's UDP size are truncated (TC).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
)

// recordFlags collects repeated -record flags into a zone.
type recordFlags struct{ zone *Zone }

func (f recordFlags) String() string {
	if f.zone == nil {
		return ""
	}
	return strings.Join(f.zone.Names(), ",")
}

func (f recordFlags) Set(s string) error {
	name, ip, err := ParseRecord(s)
	if err != nil {
		return err
	}
	return f.zone.Add(name, ip)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dns:", err)
		os.Exit(1)
	}
}

func run() error {
	zone := new(Zone)
	var (
		netMode = flag.String("net", "tap", "network to serve on: tap (tapnet on a TAP or TUN device) or kernel (a kernel UDP socket)")
		tapName string // -tap and -tun, defined by netsetup
		tunName string
		addr    string // -addr, defined by netsetup
		port    = flag.Uint("port", 53, "UDP port")
		gw      = flag.String("gw", "", "default gateway (-net tap)")
		mac     string // -mac, defined by netsetup
		pcap    = flag.String("pcap", "", "write every frame to this pcap file (-net tap)")
		udpSize = flag.Int("udpsize", DefaultUDPSize, "EDNS0 UDP payload size we advertise")
	)
	netsetup.DefineDevice(flag.CommandLine, &tapName, &tunName)
	netsetup.DefineMAC(flag.CommandLine, &mac)
	netsetup.DefineAddr(flag.CommandLine, &addr, "192.0.2.2/24", "our address and prefix, repeatable (an IPv4 and an IPv6 one); with -net kernel, only the addresses are used and only when the flag is given")
	flag.Var(recordFlags{zone}, "record", "A or AAAA record name=ip, e.g. www.example.test=192.0.2.80 or www.example.test=2001:db8::80 (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if len(zone.Names()) == 0 {
		return fmt.Errorf("no records: give at least one -record name=ip")
	}
	if *port > 65535 {
		return fmt.Errorf("-port %d out of range", *port)
	}
	prefixes, err := netsetup.ParsePrefixes(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	addrGiven := false
	flag.Visit(func(f *flag.Flag) { addrGiven = addrGiven || f.Name == "addr" })

	var (
		pcs     []net.PacketConn
		cleanup = func() error { return nil }
	)
	switch *netMode {
	case "kernel":
		if pcs, err = listenKernel(prefixes, addrGiven, *port); err != nil {
			return err
		}
		cleanup = func() error {
			for _, pc := range pcs {
				pc.Close()
			}
			return nil
		}
	case "tap":
		cfg := tapConfig{Tap: tapName, Tun: tunName, Addrs: prefixes, Pcap: *pcap, Port: uint16(*port)}
		if *gw != "" {
			if cfg.Gateway, err = netip.ParseAddr(*gw); err != nil {
				return fmt.Errorf("-gw: %w", err)
			}
		}
		if mac != "" {
			if cfg.MAC, err = net.ParseMAC(mac); err != nil {
				return fmt.Errorf("-mac: %w", err)
			}
		}
		if pcs, cleanup, err = openTapnet(cfg); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-net %q: want tap or kernel", *netMode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	on := make([]string, len(pcs))
	for i, pc := range pcs {
		on[i] = pc.LocalAddr().String()
	}
	fmt.Printf("serving %d names on udp %s, authoritative for %s\n",
		len(zone.Names()), strings.Join(on, " "), strings.Join(zone.Apexes(), " "))
	srv := &Server{Zone: zone, UDPSize: *udpSize}
	serveErr := serveAll(ctx, srv, pcs)
	if err := cleanup(); serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// listenKernel opens a kernel UDP socket on each address, or one on every
// address when none was given.
func listenKernel(prefixes []netip.Prefix, given bool, port uint) ([]net.PacketConn, error) {
	hosts := []string{""}
	if given {
		hosts = hosts[:0]
		for _, p := range prefixes {
			hosts = append(hosts, p.Addr().String())
		}
	}
	var pcs []net.PacketConn
	for _, h := range hosts {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(h, strconv.Itoa(int(port))))
		if err != nil {
			for _, pc := range pcs {
				pc.Close()
			}
			return nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

// serveAll serves on every socket until ctx ends or one fails, and
// returns the first error.
func serveAll(ctx context.Context, srv *Server, pcs []net.PacketConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, pc := range pcs {
		wg.Go(func() {
			if err := srv.Serve(ctx, pc); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}
