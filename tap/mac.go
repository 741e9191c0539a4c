package tap

import "crypto/rand"

// RandomMAC returns a random locally administered unicast address, the kind
// a virtual NIC makes up for itself.
func RandomMAC() MAC {
	var m MAC
	_, _ = rand.Read(m[:]) // crypto/rand.Read never fails on Linux
	m[0] = m[0]&^0x01 | 0x02
	return m
}

// orRandom returns m, or a random address when m is zero.
func orRandom(m MAC) MAC {
	if m == (MAC{}) {
		return RandomMAC()
	}
	return m
}
