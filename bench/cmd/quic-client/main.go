// Command quic-client is the kernel-side quic-go client of the QUIC bulk
// transfer benchmark: it opens one stream, sends -bytes on it and measures
// the goodput. With -mode echo (the default; tapnet's examples/quic echoes)
// it reads the same bytes back concurrently and checks them; with -mode sink
// it waits for the server's 8-byte count. The result is one JSON line.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/tapnet/tapnet/bench/internal/quicbench"
)

const chunk = 64 << 10

type result struct {
	Label       string  `json:"label,omitempty"`
	Target      string  `json:"target"`
	Mode        string  `json:"mode"`
	Bytes       int64   `json:"bytes"`
	HandshakeMs float64 `json:"handshake_ms"`
	Seconds     float64 `json:"seconds"`
	MBps        float64 `json:"mb_per_s"`
	MiBps       float64 `json:"mib_per_s"`
	Error       string  `json:"error,omitempty"`
}

func main() {
	addr := flag.String("addr", "192.0.2.2:4433", "server IP:port")
	size := flag.String("bytes", "64MiB", "bytes to send (suffixes KiB, MiB, GiB)")
	mode := flag.String("mode", "echo", "echo: read the bytes back; sink: wait for the server's byte count")
	alpn := flag.String("alpn", quicbench.ALPN, "TLS ALPN protocol")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	label := flag.String("label", "", "label copied into the JSON result")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("quic-client: ")

	n, err := parseSize(*size)
	if err != nil {
		log.Fatalf("-bytes: %v", err)
	}
	if *mode != "echo" && *mode != "sink" {
		log.Fatalf("-mode %q: want echo or sink", *mode)
	}
	r := result{Label: *label, Target: *addr, Mode: *mode, Bytes: n}
	err = run(&r, *addr, *alpn, n, *timeout)
	if err != nil {
		r.Error = err.Error()
		log.Print(err)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if err != nil {
		log.Fatal("failed")
	}
}

func run(r *result, addr, alpn string, n int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}} // self-signed test server
	t0 := time.Now()
	conn, err := quic.DialAddr(ctx, addr, tlsConf, quicbench.Config())
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "done")
	r.HandshakeMs = float64(time.Since(t0)) / 1e6

	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	go func() { // unblock reads and writes on timeout
		<-ctx.Done()
		st.CancelRead(1)
		st.CancelWrite(1)
	}()

	pat := make([]byte, chunk)
	for i := range pat {
		pat[i] = byte(rand.Uint32())
	}
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		var sent int64
		for sent < n {
			k := min(int64(chunk), n-sent)
			if _, err := st.Write(pat[:k]); err != nil {
				werr <- fmt.Errorf("write after %d bytes: %w", sent, err)
				return
			}
			sent += k
		}
		werr <- st.Close() // FIN: the server sees EOF
	}()

	switch r.Mode {
	case "echo":
		buf := make([]byte, chunk)
		var got int64
		for got < n {
			want := min(int64(chunk)-got%chunk, n-got)
			k, err := io.ReadFull(st, buf[:want])
			if err != nil {
				return fmt.Errorf("read after %d of %d bytes: %w", got+int64(k), n, err)
			}
			off := got % chunk
			if !bytes.Equal(buf[:k], pat[off:off+int64(k)]) {
				return fmt.Errorf("echoed data differs at offset %d", got)
			}
			got += int64(k)
		}
	case "sink":
		var b [8]byte
		if _, err := io.ReadFull(st, b[:]); err != nil {
			return fmt.Errorf("read count: %w", err)
		}
		if c := int64(binary.BigEndian.Uint64(b[:])); c != n {
			return fmt.Errorf("server counted %d bytes, sent %d", c, n)
		}
	}
	secs := time.Since(start).Seconds()
	if err := <-werr; err != nil {
		return err
	}
	r.Seconds = secs
	r.MBps = float64(n) / secs / 1e6
	r.MiBps = float64(n) / secs / (1 << 20)
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if v <= 0 || v > (1<<40)/mult {
		return 0, errors.New("out of range")
	}
	return v * mult, nil
}
