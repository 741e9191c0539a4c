// Command kernel-quic is the kernel reference for the QUIC bulk transfer: the
// same quic-go server as gvisor-quic, on a kernel UDP socket. run.sh runs it
// in its own network namespace, reached over a veth pair.
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/tapnet/tapnet/bench/internal/quicbench"
)

func main() {
	listen := flag.String("listen", "198.51.100.2:4433", "UDP address to listen on")
	alpn := flag.String("alpn", quicbench.ALPN, "TLS ALPN protocol")
	mode := flag.String("mode", "echo", "echo: echo each stream; sink: drain it and reply with the byte count")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kernel-quic: ")

	tlsConf, err := quicbench.ServerTLS(*alpn)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := quic.ListenAddr(*listen, tlsConf, quicbench.Config())
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ln.Close()
		os.Exit(0)
	}()
	log.Printf("quic %s server on %v", *mode, ln.Addr())
	if err := quicbench.Serve(ln, *mode, quicbench.Logf); !errors.Is(err, net.ErrClosed) {
		log.Fatal(err)
	}
	select {} // closed by the signal handler, which exits
}
