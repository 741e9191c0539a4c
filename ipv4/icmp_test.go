package ipv4

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func icmpMessage(typ, code uint8, rest uint32, body []byte) []byte {
	b := make([]byte, ICMPHeaderLen+len(body))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint32(b[4:], rest)
	copy(b[8:], body)
	binary.BigEndian.PutUint16(b[2:], hdrRefChecksum(b))
	return b
}

func TestParseICMP(t *testing.T) {
	echo := icmpMessage(ICMPEcho, 0, 0x12340001, []byte("abcdefg")) // odd length
	m, err := ParseICMP(echo)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != ICMPEcho || m.Code() != 0 || m.RestOfHeader() != 0x12340001 || string(m.Body()) != "abcdefg" || m.IsError() {
		t.Fatalf("fields of %x parsed wrong", echo)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrICMPTooShort},
		{"7 bytes", echo[:7], ErrICMPTooShort},
		{"bad checksum", func() []byte { b := bytes.Clone(echo); b[2] ^= 0x80; return b }(), ErrICMPChecksum},
		{"body changed", func() []byte { b := bytes.Clone(echo); b[9]++; return b }(), ErrICMPChecksum},
		{"truncated body", echo[:len(echo)-1], ErrICMPChecksum},
	} {
		if _, err := ParseICMP(c.b); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A header without a body, checksum 0xffff for an all-zero sum.
	if _, err := ParseICMP([]byte{0, 0, 0xff, 0xff, 0, 0, 0, 0}); err != nil {
		t.Errorf("zero echo reply with checksum 0xffff: %v", err)
	}
}

func TestPutICMPHeader(t *testing.T) {
	for _, n := range []int{8, 9, 36, 576 - 20} {
		b := make([]byte, n)
		for i := 8; i < n; i++ {
			b[i] = byte(i * 7)
		}
		PutICMPHeader(b, ICMPDestUnreachable, CodePortUnreachable, 0x0000_05dc)
		if hdrRefChecksum(b) != 0 {
			t.Fatalf("length %d: checksum does not verify", n)
		}
		m, err := ParseICMP(b)
		if err != nil || m.Type() != 3 || m.Code() != 3 || m.RestOfHeader() != 1500 || !m.IsError() {
			t.Fatalf("length %d: %v %x", n, err, b[:8])
		}
	}
}

func TestICMPIsError(t *testing.T) {
	errs := map[uint8]bool{3: true, 4: true, 5: true, 11: true, 12: true}
	for typ := 0; typ < 256; typ++ {
		m := ICMP(icmpMessage(uint8(typ), 0, 0, nil))
		if m.IsError() != errs[uint8(typ)] {
			t.Errorf("type %d: IsError %v", typ, m.IsError())
		}
	}
}

func FuzzICMP(f *testing.F) {
	f.Add(icmpMessage(ICMPEcho, 0, 0x00010001, []byte("ping")))
	f.Add(icmpMessage(ICMPDestUnreachable, CodePortUnreachable, 0, hdrPacket(nil, []byte("12345678"))))
	f.Add(icmpMessage(ICMPDestUnreachable, CodeFragNeeded, 1400, hdrPacket(nil, nil)))
	f.Add(icmpMessage(ICMPTimeExceeded, CodeReassemblyTimeout, 0, nil))
	f.Add([]byte{8, 0, 0xf7})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICMP(b)
		switch {
		case len(b) < ICMPHeaderLen:
			if err != ErrICMPTooShort {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		case hdrRefChecksum(b) != 0:
			if err != ErrICMPChecksum {
				t.Fatalf("bad checksum accepted: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("valid message rejected: %v", err)
		}
		if len(m) != len(b) || len(m.Body()) != len(b)-8 {
			t.Fatal("views have the wrong length")
		}
		// Rebuilding the header gives the same bytes (0x0000 and 0xffff
		// are the same checksum).
		out := bytes.Clone(b)
		PutICMPHeader(out, m.Type(), m.Code(), m.RestOfHeader())
		if !bytes.Equal(out, b) {
			ca, cb := binary.BigEndian.Uint16(out[2:]), binary.BigEndian.Uint16(b[2:])
			if !(ca == 0 && cb == 0xffff || ca == 0xffff && cb == 0) || !bytes.Equal(out[4:], b[4:]) || !bytes.Equal(out[:2], b[:2]) {
				t.Fatalf("rebuilt %x from %x", out, b)
			}
		}
	})
}
