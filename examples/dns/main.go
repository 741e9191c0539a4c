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
// With -dhcp instead of -addr, the stack gets its address from a DHCP
// server on the link and serves on the leased address:
//
//	dns -tap tap0 -dhcp -record www.example.test=192.0.2.80
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
	"errors"
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

// config is the parsed command line.
type config struct {
	netMode   string
	link      *netsetup.Flags // -tap, -tun, -addr, -dhcp, -gw, -mac, -pcap, ...
	prefixes  []netip.Prefix  // -addr, parsed (none with -dhcp)
	addrGiven bool
	port      uint16
	udpSize   int
	zone      *Zone
}

// parseFlags parses args with the link flags every example shares
// (netsetup.Register), so -dhcp works here as in echo.
func parseFlags(fs *flag.FlagSet, args []string) (*config, error) {
	c := &config{zone: new(Zone)}
	fs.StringVar(&c.netMode, "net", "tap", "network to serve on: tap (tapnet on a TAP or TUN device) or kernel (a kernel UDP socket)")
	c.link = netsetup.Register(fs, "192.0.2.2/24")
	fs.Lookup("addr").Usage = "our address and prefix, repeatable (an IPv4 and an IPv6 one); with -net kernel, only the addresses are used and only when the flag is given"
	port := fs.Uint("port", 53, "UDP port")
	fs.IntVar(&c.udpSize, "udpsize", DefaultUDPSize, "EDNS0 UDP payload size we advertise")
	fs.Var(recordFlags{c.zone}, "record", "A or AAAA record name=ip, e.g. www.example.test=192.0.2.80 or www.example.test=2001:db8::80 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(c.zone.Names()) == 0 {
		return nil, fmt.Errorf("no records: give at least one -record name=ip")
	}
	if *port > 65535 {
		return nil, fmt.Errorf("-port %d out of range", *port)
	}
	c.port = uint16(*port)
	switch c.netMode {
	case "tap":
	case "kernel":
		if c.link.DHCP {
			return nil, errors.New("-dhcp needs -net tap")
		}
	default:
		return nil, fmt.Errorf("-net %q: want tap or kernel", c.netMode)
	}
	if c.link.DHCP {
		return c, nil // the lease gives the address
	}
	var err error
	if c.prefixes, err = netsetup.ParsePrefixes(c.link.Addr); err != nil {
		return nil, fmt.Errorf("-addr: %w", err)
	}
	fs.Visit(func(f *flag.Flag) { c.addrGiven = c.addrGiven || f.Name == "addr" })
	return c, nil
}

func run() error {
	c, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		return err
	}
	var (
		pcs     []net.PacketConn
		cleanup = func() error { return nil }
	)
	if c.netMode == "kernel" {
		if pcs, err = listenKernel(c.prefixes, c.addrGiven, c.port); err != nil {
			return err
		}
		cleanup = func() error {
			for _, pc := range pcs {
				pc.Close()
			}
			return nil
		}
	} else if pcs, cleanup, err = openTapnet(c.link, c.port); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	on := make([]string, len(pcs))
	for i, pc := range pcs {
		on[i] = pc.LocalAddr().String()
	}
	fmt.Printf("serving %d names on udp %s, authoritative for %s\n",
		len(c.zone.Names()), strings.Join(on, " "), strings.Join(c.zone.Apexes(), " "))
	srv := &Server{Zone: c.zone, UDPSize: c.udpSize}
	serveErr := serveAll(ctx, srv, pcs)
	if err := cleanup(); serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// listenKernel opens a kernel UDP socket on each address, or one on every
// address when none was given.
func listenKernel(prefixes []netip.Prefix, given bool, port uint16) ([]net.PacketConn, error) {
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
