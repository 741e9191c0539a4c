package stack

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// addrMap and prefixMap agree with a plain map through random sets and
// deletes, across several doublings.
func TestAddrMapMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m addrMap[int]
	ref := map[netip.Addr]int{}
	key := func() netip.Addr {
		if r.IntN(8) == 0 {
			var b [16]byte
			b[0], b[15] = 0x20, byte(r.IntN(64))
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{198, 18, byte(r.IntN(16)), byte(r.IntN(256))})
	}
	for i := range 20000 {
		a := key()
		if r.IntN(3) == 0 {
			_, had := ref[a]
			if m.delete(a) != had {
				t.Fatalf("step %d: delete(%v) disagrees (had %v)", i, a, had)
			}
			delete(ref, a)
		} else {
			m.set(a, i)
			ref[a] = i
		}
		if m.len != len(ref) {
			t.Fatalf("step %d: len %d, want %d", i, m.len, len(ref))
		}
		probe := key()
		v, ok := m.get(probe)
		if rv, rok := ref[probe]; ok != rok || v != rv {
			t.Fatalf("step %d: get(%v) = %v %v, want %v %v", i, probe, v, ok, rv, rok)
		}
	}
	seen := 0
	m.each(func(a netip.Addr, v int) {
		seen++
		if ref[a] != v {
			t.Fatalf("each: %v = %d, want %d", a, v, ref[a])
		}
	})
	if seen != len(ref) {
		t.Fatalf("each saw %d entries, want %d", seen, len(ref))
	}
}

func TestPrefixMapMatches(t *testing.T) {
	var m prefixMap[string]
	for _, p := range []string{"0.0.0.0/0", "192.0.2.0/24", "192.0.2.128/25", "192.0.2.200/32", "198.51.100.0/24"} {
		m.set(netip.MustParsePrefix(p), p)
	}
	collect := func(a string) (out []string) {
		m.matches(netip.MustParseAddr(a), func(_ int, v string) bool {
			out = append(out, v)
			return true
		})
		return out
	}
	if got := collect("192.0.2.200"); len(got) != 4 || got[0] != "192.0.2.200/32" || got[3] != "0.0.0.0/0" {
		t.Fatalf("matches(192.0.2.200) = %v", got)
	}
	m.delete(netip.MustParsePrefix("192.0.2.200/32"))
	m.delete(netip.MustParsePrefix("0.0.0.0/0"))
	if got := collect("192.0.2.200"); len(got) != 2 || got[0] != "192.0.2.128/25" {
		t.Fatalf("after deletes, matches(192.0.2.200) = %v", got)
	}
	if got := m.lens4.Load(); got != 1<<24|1<<25 {
		t.Fatalf("lengths in use = %#x, want /24 and /25 only", got)
	}
	if got := collect("203.0.113.1"); len(got) != 0 {
		t.Fatalf("matches(203.0.113.1) = %v", got)
	}
	if got := collect("2001:db8::1"); len(got) != 0 {
		t.Fatalf("an IPv6 address matched %v", got)
	}
}

// masked6 is the route lookup's netip.Addr.Prefix: it must agree with it
// at every length.
func TestMasked6MatchesPrefix(t *testing.T) {
	for _, s := range []string{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1:2:3:4", "::", "ff02::1:ff00:2"} {
		a := netip.MustParseAddr(s)
		b := a.As16()
		hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		for bits := 0; bits <= 128; bits++ {
			want, _ := a.Prefix(bits)
			if got := masked6(hi, lo, bits); got != want.Addr() {
				t.Errorf("masked6(%v, %d) = %v, want %v", a, bits, got, want.Addr())
			}
		}
	}
}

// addrHash must not allocate: it runs for every packet's address lookups.
func TestAddrHashNoAllocs(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { _ = addrHash(a) }); n != 0 {
		t.Errorf("addrHash allocates %v times", n)
	}
}
