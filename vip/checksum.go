package vip

import (
	"encoding/binary"
	"net/netip"
)

// protoVRRP is the IP protocol number (IPv4) / next header (IPv6) of VRRP.
const protoVRRP = 112

// Checksum returns the checksum of msg as sent from src to dst: the 16-bit
// one's complement of the one's complement sum of an IP pseudo-header and
// msg (RFC 5798 5.2.8), or of msg alone when it is version 2 (RFC 3768
// 5.3.8: the version nibble of msg decides). The checksum field inside msg must be zero, or
// the result is 0 exactly when a received message verifies.
//
// IPv4 uses src, dst, zero, protocol 112 and the VRRP length, as keepalived
// after 1.3.6 and Wireshark do (FACTS 1.2); IPv6 uses the RFC 8200 8.1
// pseudo-header. dst is the real destination: the multicast group, or the
// peer in unicast mode (FACTS 5, captured 0x18a1 vs 0x42fd).
func Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	switch {
	case len(msg) > 0 && Version(msg[0]>>4) == Version2:
	case src.Is4():
		s, d := src.As4(), dst.As4()
		sum = add(sum, s[:])
		sum = add(sum, d[:])
		sum += protoVRRP + uint32(len(msg))
	default:
		s, d := src.As16(), dst.As16()
		sum = add(sum, s[:])
		sum = add(sum, d[:])
		sum += uint32(len(msg)>>16) + uint32(len(msg)&0xffff) + protoVRRP
	}
	sum = add(sum, msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// VerifyChecksum reports whether the checksum inside msg (bytes 6-7) is right
// for a message received from src to dst.
func VerifyChecksum(src, dst netip.Addr, msg []byte) bool {
	if len(msg) < headerLen || src.Is4() != dst.Is4() {
		return false
	}
	return Checksum(src, dst, msg) == 0
}

// setChecksum fills bytes 6-7 of msg for a message sent from src to dst.
func setChecksum(msg []byte, src, dst netip.Addr) {
	msg[6], msg[7] = 0, 0
	binary.BigEndian.PutUint16(msg[6:], Checksum(src, dst, msg))
}

// add folds b into the running one's complement sum, big-endian 16-bit words,
// an odd last byte padded with zero.
func add(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum&0x80000000 != 0 {
			sum = sum&0xffff + sum>>16
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}
