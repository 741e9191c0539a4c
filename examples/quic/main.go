// Command quic runs quic-go, an unmodified QUIC implementation, over any
// net.PacketConn: an echo server, a client sending one message, a bulk echo
// test, and a no-root mode where two tapnet stacks talk over an in-memory
// pipe. It shows that tapnet's UDP sockets are enough to carry TLS 1.3,
// streams, flow control, loss recovery and RFC 9221 datagrams.
//
// Server and client on a TAP device (-net tap, the default), or on kernel
// sockets (-net kernel):
//
//	quic -listen :4433
//	quic -connect 192.0.2.2:4433 -message hello
//	quic -connect 192.0.2.2:4433 -message hello -datagram
//	quic -connect 192.0.2.2:4433 -streams 8 -size 4194304
//
// Over IPv6 (the kernel side at 2001:db8::1/64):
//
//	quic -addr 2001:db8::2/64 -listen :4433
//	quic -net kernel -connect [2001:db8::2]:4433 -message hello
//	quic -addr 192.0.2.2/24 -addr 2001:db8::2/64 -connect [2001:db8::1]:4433
//
// Without root, one process with two stacks joined by a pipe:
//
//	quic -pipe
//
// The client skips certificate verification (the server's certificate is
// self-signed at start): fine for an example, not for real use.
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
	"syscall"
	"time"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quic:", err)
		os.Exit(1)
	}
}

type options struct {
	netMode  string
	tapName  string
	tunName  string
	addrs    []netip.Prefix
	addrSet  bool
	listen   string
	connect  string
	dhcp     bool
	dns      string
	message  string
	datagram bool
	gw       string
	mac      string
	offload  bool
	pcap     string
	pipe     bool
	streams  int
	size     int
	timeout  time.Duration
}

func run() error {
	var (
		o    options
		addr string
	)
	flag.StringVar(&o.netMode, "net", "tap", "network: tap (tapnet on a TAP or TUN device) or kernel (kernel UDP sockets)")
	netsetup.DefineDevice(flag.CommandLine, &o.tapName, &o.tunName)
	netsetup.DefineAddr(flag.CommandLine, &addr, "192.0.2.2/24", "our address and prefix, repeatable (an IPv4 and an IPv6 one); with -pipe, the server stack's (the first); with -net kernel, only the first address is used and only when the flag is given")
	flag.StringVar(&o.listen, "listen", ":4433", "server mode (the default): UDP address to listen on; with -net tap only the port is used")
	flag.StringVar(&o.connect, "connect", "", "client mode: the server's host:port (a name is resolved over tapnet with -dhcp or -dns, to the first of its A and AAAA addresses in a family the stack has)")
	flag.BoolVar(&o.dhcp, "dhcp", false, "get the address, gateway and DNS server from DHCP instead of -addr and -gw (-net tap)")
	flag.StringVar(&o.dns, "dns", "", "DNS server ip:port for -connect names without -dhcp (-net tap)")
	flag.StringVar(&o.message, "message", "", "client mode: send this on one stream and print the echo; without it, run a bulk echo test")
	flag.BoolVar(&o.datagram, "datagram", false, "client mode: send -message as a QUIC datagram instead")
	flag.StringVar(&o.gw, "gw", "", "default gateway (-net tap)")
	netsetup.DefineMAC(flag.CommandLine, &o.mac)
	flag.BoolVar(&o.offload, "offload", false, "use the TAP's checksum and UDP segmentation offloads (-net tap)")
	flag.StringVar(&o.pcap, "pcap", "", "write every frame to this pcap file (-net tap, -pipe)")
	flag.BoolVar(&o.pipe, "pipe", false, "no-root mode: server and client on two tapnet stacks joined by an in-memory pipe")
	flag.IntVar(&o.streams, "streams", 4, "bulk echo: concurrent streams")
	flag.IntVar(&o.size, "size", 1<<20, "bulk echo: bytes per stream")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "client and -pipe: give up after this long")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var err error
	if o.addrs, err = netsetup.ParsePrefixes(addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	flag.Visit(func(f *flag.Flag) { o.addrSet = o.addrSet || f.Name == "addr" })
	if o.netMode != "tap" && o.netMode != "kernel" {
		return fmt.Errorf("-net %q: want tap or kernel", o.netMode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case o.pipe:
		return runPipe(ctx, &o)
	case o.connect != "":
		return runClient(ctx, &o)
	default:
		return runServer(ctx, &o)
	}
}

func (o *options) tapConfig(port uint16) (tapConfig, error) {
	cfg := tapConfig{Tap: o.tapName, Tun: o.tunName, Addrs: o.addrs, Pcap: o.pcap, Port: port, DHCP: o.dhcp, Offload: o.offload}
	var err error
	if o.dns != "" {
		if cfg.DNS, err = netip.ParseAddrPort(o.dns); err != nil {
			return cfg, fmt.Errorf("-dns: %w", err)
		}
	}
	if o.gw != "" {
		if cfg.Gateway, err = netip.ParseAddr(o.gw); err != nil {
			return cfg, fmt.Errorf("-gw: %w", err)
		}
	}
	if o.mac != "" {
		if cfg.MAC, err = net.ParseMAC(o.mac); err != nil {
			return cfg, fmt.Errorf("-mac: %w", err)
		}
	}
	return cfg, nil
}

// resolver looks names up on the network the example runs on.
type resolver struct {
	*net.Resolver
	// reachable reports whether that network can reach addr (it has an
	// address of addr's family); nil means any address.
	reachable func(addr netip.Addr) bool
}

// open returns a UDP socket for listen (host:port) on the chosen network
// and a resolver of names on that network.
func (o *options) open(listen string) (net.PacketConn, resolver, func() error, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, resolver{}, nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, resolver{}, nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	if o.netMode == "kernel" {
		if host == "" && o.addrSet {
			host = o.addrs[0].Addr().String()
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, portStr))
		if err != nil {
			return nil, resolver{}, nil, err
		}
		return pc, resolver{Resolver: net.DefaultResolver}, pc.Close, nil
	}
	cfg, err := o.tapConfig(uint16(port))
	if err != nil {
		return nil, resolver{}, nil, err
	}
	return openTapnet(cfg)
}

func runServer(ctx context.Context, o *options) error {
	pc, _, cleanup, err := o.open(o.listen)
	if err != nil {
		return err
	}
	fmt.Printf("QUIC echo server (ALPN %q) on udp %s\n", ALPN, pc.LocalAddr())
	serveErr := Serve(ctx, pc)
	if err := cleanup(); serveErr == nil {
		serveErr = err
	}
	return serveErr
}

func runClient(ctx context.Context, o *options) error {
	pc, resolver, cleanup, err := o.open(":0")
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	server, err := resolveConnect(ctx, resolver, o.connect)
	if err != nil {
		return fmt.Errorf("-connect: %w", err)
	}
	to := net.UDPAddrFromAddrPort(server)

	switch {
	case o.datagram:
		if o.message == "" {
			return errors.New("-datagram needs -message")
		}
		reply, err := EchoDatagram(ctx, pc, to, []byte(o.message), 200*time.Millisecond)
		if err != nil {
			return err
		}
		fmt.Printf("datagram echo: %q\n", reply)
	case o.message != "":
		reply, err := SendMessage(ctx, pc, to, o.message)
		if err != nil {
			return err
		}
		fmt.Printf("echo: %q\n", reply)
	default:
		res, err := Echo(ctx, pc, to, o.streams, o.size)
		if err != nil {
			return err
		}
		fmt.Println(res)
	}
	return nil
}

func runPipe(ctx context.Context, o *options) error {
	_, portStr, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	cfg, err := o.tapConfig(uint16(port))
	if err != nil {
		return err
	}
	server, client, serverAddr, cleanup, err := openPipePair(cfg)
	if err != nil {
		return err
	}
	defer cleanup()

	serveCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- Serve(serveCtx, server) }()

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, echoErr := Echo(ctx, client, serverAddr, o.streams, o.size)
	stopServer()
	if err := <-served; err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if echoErr != nil {
		return echoErr
	}
	fmt.Printf("%s -> %s over an in-memory pipe: %s\n", client.LocalAddr(), serverAddr, res)
	return nil
}

// resolveConnect turns host:port into an address, looking a host name up
// with r (over tapnet, for -net tap) in both families and taking the first
// address r's network can reach, in the resolver's order.
func resolveConnect(ctx context.Context, r resolver, hostport string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", portStr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := pickReachable(ips, r.reachable)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", host, err)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// pickReachable returns the first of ips that reachable accepts (any, when
// reachable is nil).
func pickReachable(ips []netip.Addr, reachable func(netip.Addr) bool) (netip.Addr, error) {
	for _, ip := range ips {
		ip = ip.Unmap()
		if reachable == nil || reachable(ip) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no address reachable from this stack's address families among %v", ips)
}
