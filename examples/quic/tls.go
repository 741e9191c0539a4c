package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// ALPN is the application protocol both sides announce in the TLS
// handshake; QUIC requires one.
const ALPN = "quic-echo-example"

// ServerTLSConfig returns a TLS 1.3 server configuration with a fresh
// self-signed ECDSA P-256 certificate, so the example needs no key files.
func ServerTLSConfig() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "quic echo example"},
		DNSNames:     []string{"localhost"},
		// Tolerate clocks that are a little off between two hosts.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{ALPN},
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ClientTLSConfig returns the client's TLS configuration. It skips
// certificate verification because the server's certificate is self-signed
// and generated at start: acceptable for an example, never for real use,
// where the client must verify the server (or pin its certificate).
func ClientTLSConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // example only: see above
		NextProtos:         []string{ALPN},
		MinVersion:         tls.VersionTLS13,
	}
}
