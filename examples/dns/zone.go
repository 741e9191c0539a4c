package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Zone is the data the server is authoritative for: A and AAAA records
// keyed by canonical name (ASCII lower case, fully qualified, trailing
// dot).
//
// The server is authoritative for the parent domain of every record's name
// (www.example.test. makes it authoritative for example.test.), or for the
// name itself when it has a single label, so that it never claims the root.
// Names under an apex that have no records are NXDOMAIN, except the apexes
// themselves and empty non-terminals (the ancestors of record names), which
// exist and get NODATA (RFC 8020).
//
// The zero value is an empty zone. A Zone is safe for concurrent use.
type Zone struct {
	mu      sync.RWMutex
	records map[string][]netip.Addr
	exists  map[string]bool // record names and all their ancestors
	apexes  map[string]bool
}

// ParseRecord parses "name=ip", e.g. "example.test.=192.0.2.53" (an A
// record) or "example.test.=2001:db8::53" (AAAA). The name may omit the
// trailing dot; it is returned in canonical form. An IPv4-mapped IPv6
// address is an A record.
func ParseRecord(s string) (name string, ip netip.Addr, err error) {
	i := strings.LastIndexByte(s, '=')
	if i < 0 {
		return "", netip.Addr{}, fmt.Errorf("record %q: want name=ip", s)
	}
	name, err = CanonicalName(s[:i])
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("record %q: %w", s, err)
	}
	ip, err = netip.ParseAddr(strings.TrimSpace(s[i+1:]))
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("record %q: %w", s, err)
	}
	if ip.Zone() != "" {
		return "", netip.Addr{}, fmt.Errorf("record %q: an address with a zone is no record", s)
	}
	return name, ip.Unmap(), nil
}

// CanonicalName validates a domain name and returns it in ASCII lower case
// with a trailing dot. The root name is rejected: it cannot hold records here.
func CanonicalName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	if name == "." {
		return "", errors.New("empty name")
	}
	// 253 characters plus the trailing dot is the most a wire name can hold.
	if len(name) > 254 {
		return "", errors.New("name longer than 253 characters")
	}
	for label := range strings.SplitSeq(name[:len(name)-1], ".") {
		if len(label) == 0 {
			return "", fmt.Errorf("name %q has an empty label", name)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("name %q has a label longer than 63 bytes", name)
		}
	}
	return lowerASCII(name), nil
}

// lowerASCII lower-cases only A-Z: DNS names compare case-insensitively in
// ASCII only (RFC 4343), and labels may hold arbitrary bytes that must stay
// untouched (strings.ToLower would rewrite invalid UTF-8).
func lowerASCII(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for j := i; j < len(b); j++ {
		if 'A' <= b[j] && b[j] <= 'Z' {
			b[j] += 'a' - 'A'
		}
	}
	return string(b)
}

// parent returns the name with its first label removed ("." for a TLD).
func parent(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return "."
	}
	return name[i+1:]
}

// Add adds an A record (ip IPv4 or IPv4-mapped) or an AAAA record (ip
// IPv6). name need not be canonical.
func (z *Zone) Add(name string, ip netip.Addr) error {
	canon, err := CanonicalName(name)
	if err != nil {
		return err
	}
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		return fmt.Errorf("%v: not a record's address", ip)
	}
	apex := parent(canon)
	if apex == "." {
		apex = canon
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	if z.records == nil {
		z.records = make(map[string][]netip.Addr)
		z.exists = make(map[string]bool)
		z.apexes = make(map[string]bool)
	}
	if old := z.records[canon]; !slices.Contains(old, ip) {
		// Lookups hand out the slice without holding the lock; clipping
		// makes append copy instead of writing into a shared array.
		z.records[canon] = append(slices.Clip(old), ip)
	}
	z.apexes[apex] = true
	// Every ancestor of a record name exists; lookup only consults this for
	// names under an apex, so the ancestors above it do no harm.
	for n := canon; n != "."; n = parent(n) {
		z.exists[n] = true
	}
	return nil
}

// Lookup returns the addresses of a name (any case, trailing dot optional).
func (z *Zone) Lookup(name string) []netip.Addr {
	canon, err := CanonicalName(name)
	if err != nil {
		return nil
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	return slices.Clone(z.records[canon])
}

// Names returns the names that have records, sorted.
func (z *Zone) Names() []string {
	z.mu.RLock()
	defer z.mu.RUnlock()
	names := make([]string, 0, len(z.records))
	for n := range z.records {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Apexes returns the domains the zone is authoritative for, sorted.
func (z *Zone) Apexes() []string {
	z.mu.RLock()
	defer z.mu.RUnlock()
	apexes := make([]string, 0, len(z.apexes))
	for a := range z.apexes {
		apexes = append(apexes, a)
	}
	slices.Sort(apexes)
	return apexes
}

// answer is what the zone knows about one canonical name.
type answer struct {
	apex   string // closest enclosing apex; "" when not authoritative
	exists bool
	addrs  []netip.Addr // shared with the zone: read only
}

func (z *Zone) lookup(canon string) answer {
	if z == nil {
		return answer{}
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	var a answer
	// Walk up from the name itself so that the closest apex wins.
	for n := canon; ; n = parent(n) {
		if z.apexes[n] {
			a.apex = n
			break
		}
		if n == "." {
			return answer{}
		}
	}
	a.exists = z.exists[canon]
	a.addrs = z.records[canon]
	return a
}
