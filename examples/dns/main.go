// Command dns is a small authoritative DNS server for A records, served over
// UDP through the net.PacketConn interface only. The same server code runs on
// a kernel UDP socket (-net kernel) or on tapnet, a userspace IPv4 stack on a
// TAP device (-net tap), which shows that tapnet's sockets drop into code
// written for the standard library.
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
		addr    = flag.String("addr", "192.0.2.2/24", "our IPv4 address and prefix; with -net kernel, only the address is used and only when the flag is given")
		port    = flag.Uint("port", 53, "UDP port")
		gw      = flag.String("gw", "", "default gateway (-net tap)")
		mac     string // -mac, defined by netsetup
		pcap    = flag.String("pcap", "", "write every frame to this pcap file (-net tap)")
		udpSize = flag.Int("udpsize", DefaultUDPSize, "EDNS0 UDP payload size we advertise")
	)
	netsetup.DefineDevice(flag.CommandLine, &tapName, &tunName)
	netsetup.DefineMAC(flag.CommandLine, &mac)
	flag.Var(recordFlags{zone}, "record", "A record name=ipv4, e.g. www.example.test=192.0.2.80 (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if len(zone.Names()) == 0 {
		return fmt.Errorf("no records: give at least one -record name=ipv4")
	}
	if *port > 65535 {
		return fmt.Errorf("-port %d out of range", *port)
	}
	prefix, err := netip.ParsePrefix(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	addrGiven := false
	flag.Visit(func(f *flag.Flag) { addrGiven = addrGiven || f.Name == "addr" })

	var (
		pc      net.PacketConn
		cleanup = func() error { return nil }
	)
	switch *netMode {
	case "kernel":
		host := ""
		if addrGiven {
			host = prefix.Addr().String()
		}
		pc, err = net.ListenPacket("udp4", net.JoinHostPort(host, strconv.Itoa(int(*port))))
		if err != nil {
			return err
		}
		cleanup = pc.Close
	case "tap":
		cfg := tapConfig{Tap: tapName, Tun: tunName, Addr: prefix, Pcap: *pcap, Port: uint16(*port)}
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
		if pc, cleanup, err = openTapnet(cfg); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-net %q: want tap or kernel", *netMode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("serving %d names on udp %s, authoritative for %s\n",
		len(zone.Names()), pc.LocalAddr(), strings.Join(zone.Apexes(), " "))
	srv := &Server{Zone: zone, UDPSize: *udpSize}
	serveErr := srv.Serve(ctx, pc)
	if err := cleanup(); serveErr == nil {
		serveErr = err
	}
	return serveErr
}
