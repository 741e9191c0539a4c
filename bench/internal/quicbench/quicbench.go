// Package quicbench holds what the QUIC benchmark server and client share:
// the ALPN, a self-signed certificate, the transport config and the stream
// handler.
package quicbench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN matches tapnet's examples/quic server, so one client serves both.
const ALPN = "quic-echo-example"

// Config is the quic-go config used on both sides: flow-control windows
// large enough that a single stream is not window-limited on a fast link.
func Config() *quic.Config {
	return &quic.Config{
		MaxIdleTimeout:                 30 * time.Second,
		InitialStreamReceiveWindow:     4 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 8 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
	}
}

// ServerTLS returns a TLS config with a fresh self-signed ECDSA certificate.
func ServerTLS(alpn string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tapnet-bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"tapnet-bench"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{alpn},
	}, nil
}

// Serve accepts connections on ln until it is closed. Each stream is echoed
// (mode "echo") or drained, after which the 8-byte big-endian byte count is
// sent back (mode "sink").
func Serve(ln *quic.Listener, mode string, logf func(string, ...any)) error {
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return err
		}
		go func() {
			for {
				st, err := conn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				go handle(st, mode, conn.RemoteAddr().String(), logf)
			}
		}()
	}
}

func handle(st *quic.Stream, mode, peer string, logf func(string, ...any)) {
	start := time.Now()
	var n int64
	var err error
	switch mode {
	case "sink":
		n, err = io.Copy(io.Discard, st)
		if err == nil {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(n))
			_, err = st.Write(b[:])
		}
	default:
		n, err = io.Copy(st, st)
	}
	st.Close()
	secs := time.Since(start).Seconds()
	if err != nil {
		logf("stream from %s: %d bytes in %.2fs: %v", peer, n, secs, err)
		return
	}
	logf("stream from %s: %s %d bytes in %.2fs (%.1f MB/s)", peer, mode, n, secs, float64(n)/secs/1e6)
}

// Logf logs to the standard logger.
func Logf(format string, args ...any) { log.Printf(format, args...) }
