package gonet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	mrand "math/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tapnet/tapnet/tap"
)

func testTLS(t testing.TB) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"tapnet.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"tapnet-test"}}
	client = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"tapnet-test"}}
	return server, client
}

// runQUIC runs a quic-go echo server on stack a and a client on stack b,
// echoes streams×size bytes and a datagram, and closes gracefully.
func runQUIC(t *testing.T, opts tap.PipeOptions, streams, size int) {
	a, b := pair(t, opts)
	srvConn, err := ListenUDP(a, "udp", &net.UDPAddr{Port: 4433})
	if err != nil {
		t.Fatal(err)
	}
	clConn, err := ListenUDP(b, "udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, clTLS := testTLS(t)
	conf := &quic.Config{EnableDatagrams: true, MaxIdleTimeout: 10 * time.Second}
	srvTr := &quic.Transport{Conn: srvConn}
	clTr := &quic.Transport{Conn: clConn}
	defer srvTr.Close()
	defer clTr.Close()
	ln, err := srvTr.Listen(srvTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	serverDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			serverDone <- err
			return
		}
		go func() {
			for {
				d, err := conn.ReceiveDatagram(ctx)
				if err != nil {
					return
				}
				conn.SendDatagram(d)
			}
		}()
		for {
			st, err := conn.AcceptStream(ctx)
			if err != nil {
				serverDone <- nil
				return
			}
			go func() {
				io.Copy(st, st)
				st.Close()
			}()
		}
	}()

	conn, err := clTr.Dial(ctx, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4433}, clTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoStream(ctx, t, conn, i, size)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Datagrams are unreliable; retry a few times on a lossy link.
	gotDatagram := false
	for i := 0; i < 20 && !gotDatagram; i++ {
		if err := conn.SendDatagram([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		d, err := conn.ReceiveDatagram(dctx)
		dcancel()
		gotDatagram = err == nil && string(d) == "ping"
	}
	if !gotDatagram {
		t.Fatal("no QUIC datagram echoed")
	}
	conn.CloseWithError(0, "done")
	select {
	case err := <-serverDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not see the connection close")
	}
}

func TestQUICOverPipe(t *testing.T) {
	runQUIC(t, tap.PipeOptions{}, 4, 1<<20)
}

func TestQUICOverLossyPipe(t *testing.T) {
	runQUIC(t, tap.PipeOptions{Impairments: tap.Impairments{Loss: 0.02, Reorder: 0.05, Duplicate: 0.01, Delay: time.Millisecond}}, 4, 256<<10)
}

// echoStream sends size pseudo-random bytes on a new stream and checks the
// echo.
func echoStream(ctx context.Context, t *testing.T, conn *quic.Conn, i, size int) error {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	data := make([]byte, size)
	mrand.New(mrand.NewSource(int64(i))).Read(data)
	go func() {
		st.Write(data)
		st.Close()
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		t.Errorf("stream %d: echo differs (%d bytes)", i, len(got))
	}
	return nil
}
