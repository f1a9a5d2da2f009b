package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Wire constants of RFC 5798 5.1-5.2.
const (
	version3      = 3
	typeAdvert    = 1
	headerLen     = 8
	maxCentisecs  = 4095 // 12 bits
	maxAddrsCount = 255  // 8-bit count
)

// Sentinel errors returned (wrapped) by UnmarshalBinary and MarshalBinary.
// A message shorter than its header or count says returns io.ErrUnexpectedEOF.
var (
	ErrVersion  = errors.New("vip: not VRRP version 3")
	ErrType     = errors.New("vip: not an ADVERTISEMENT")
	ErrVRID     = errors.New("vip: virtual router id 0")
	ErrCount    = errors.New("vip: address count is 0")
	ErrInterval = errors.New("vip: max advert interval out of 1..4095 centiseconds")
	ErrLength   = errors.New("vip: length does not match the address count")
	ErrAddress  = errors.New("vip: invalid virtual address")
	ErrFamily   = errors.New("vip: addresses of both families")
	ErrChecksum = errors.New("vip: bad checksum")
)

// Centiseconds is the wire unit of the Max Adver Int field (12 bits).
type Centiseconds uint16

// Duration converts to a time.Duration.
func (c Centiseconds) Duration() time.Duration { return time.Duration(c) * 10 * time.Millisecond }

// ToCentiseconds converts d, rounding to the nearest centisecond and clamping
// to the field's 1..4095.
func ToCentiseconds(d time.Duration) Centiseconds {
	c := (d + 5*time.Millisecond) / (10 * time.Millisecond)
	switch {
	case c < 1:
		return 1
	case c > maxCentisecs:
		return maxCentisecs
	}
	return Centiseconds(c)
}

// Advertisement is a VRRPv3 ADVERTISEMENT (RFC 5798 5.2). The version (3)
// and type (1) are implied: anything else does not parse.
//
//	 0                   1                   2                   3
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	|                       IPvX Address(es)                        |
type Advertisement struct {
	// VRID is the Virtual Router ID, 1..255.
	VRID uint8
	// Priority is 0 (the master is leaving), 1..254, or 255 (address owner).
	Priority uint8
	// MaxAdvertInterval is the sender's advert interval, 1..4095 cs.
	MaxAdvertInterval Centiseconds
	// Checksum as read by UnmarshalBinary. MarshalBinary writes it as is;
	// Encode computes it for a source and destination.
	Checksum uint16
	// Addresses are the virtual addresses, all IPv4 or all IPv6, 1..255 of
	// them. For IPv6 the RFC wants the link-local one first; that is the
	// sender's business and not checked here.
	Addresses []netip.Addr
}

// Is6 reports whether the advert carries IPv6 addresses.
func (a *Advertisement) Is6() bool { return len(a.Addresses) > 0 && a.Addresses[0].Is6() }

// Len is the encoded length in bytes.
func (a *Advertisement) Len() int {
	if a.Is6() {
		return headerLen + 16*len(a.Addresses)
	}
	return headerLen + 4*len(a.Addresses)
}

// MarshalBinary encodes a with a.Checksum in the checksum field.
func (a *Advertisement) MarshalBinary() ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, a.Len())
	b[0] = version3<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addresses))
	binary.BigEndian.PutUint16(b[4:], uint16(a.MaxAdvertInterval)) // reserved bits 0
	binary.BigEndian.PutUint16(b[6:], a.Checksum)
	off := headerLen
	for _, ip := range a.Addresses {
		off += copy(b[off:], ip.AsSlice())
	}
	return b, nil
}

// Encode is MarshalBinary with the checksum computed for a message sent from
// src to dst (the multicast group, or the unicast peer). a.Checksum is set.
func (a *Advertisement) Encode(src, dst netip.Addr) ([]byte, error) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || src.Is6() != a.Is6() {
		return nil, fmt.Errorf("%w: source %s and destination %s must be of the advert's family", ErrFamily, src, dst)
	}
	a.Checksum = 0
	b, err := a.MarshalBinary()
	if err != nil {
		return nil, err
	}
	setChecksum(b, src, dst)
	a.Checksum = binary.BigEndian.Uint16(b[6:])
	return b, nil
}

// UnmarshalBinary decodes one advertisement, the VRRP message only (the IP
// header already stripped), validating every field. The family is told by
// the length: 8 + Count*4 (IPv4) or 8 + Count*16 (IPv6); anything else,
// including trailing bytes, is ErrLength. The checksum is not verified here
// because it needs the IP addresses: see VerifyChecksum / Decode.
func (a *Advertisement) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return io.ErrUnexpectedEOF
	}
	if v := b[0] >> 4; v != version3 {
		return fmt.Errorf("%w: version %d", ErrVersion, v)
	}
	if t := b[0] & 0x0f; t != typeAdvert {
		return fmt.Errorf("%w: type %d", ErrType, t)
	}
	if b[1] == 0 {
		return ErrVRID
	}
	n := int(b[3])
	if n == 0 {
		return ErrCount
	}
	ival := Centiseconds(binary.BigEndian.Uint16(b[4:]) & 0x0fff) // 4 reserved bits ignored
	if ival == 0 {
		return fmt.Errorf("%w: 0", ErrInterval)
	}
	var size int
	switch len(b) - headerLen {
	case 4 * n:
		size = 4
	case 16 * n:
		size = 16
	default:
		if len(b)-headerLen < 4*n {
			return io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: %d bytes for %d addresses", ErrLength, len(b), n)
	}
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		ip, _ := netip.AddrFromSlice(b[headerLen+i*size : headerLen+(i+1)*size])
		if !validVirtualAddr(ip) {
			return fmt.Errorf("%w: %s", ErrAddress, ip)
		}
		addrs[i] = ip
	}
	*a = Advertisement{
		VRID:              b[1],
		Priority:          b[2],
		MaxAdvertInterval: ival,
		Checksum:          binary.BigEndian.Uint16(b[6:]),
		Addresses:         addrs,
	}
	return nil
}

// Decode is UnmarshalBinary plus the checksum check for a message received
// from src to dst.
func Decode(b []byte, src, dst netip.Addr) (*Advertisement, error) {
	var a Advertisement
	if err := a.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	if src.Is6() != a.Is6() {
		return nil, fmt.Errorf("%w: IPv%d addresses from %s", ErrFamily, map[bool]int{false: 4, true: 6}[a.Is6()], src)
	}
	if !VerifyChecksum(src, dst, b) {
		return nil, fmt.Errorf("%w: %#04x from %s to %s", ErrChecksum, a.Checksum, src, dst)
	}
	return &a, nil
}

func (a *Advertisement) validate() error {
	if a.VRID == 0 {
		return ErrVRID
	}
	if len(a.Addresses) == 0 {
		return ErrCount
	}
	if len(a.Addresses) > maxAddrsCount {
		return fmt.Errorf("%w: %d addresses, at most %d", ErrLength, len(a.Addresses), maxAddrsCount)
	}
	if a.MaxAdvertInterval == 0 || a.MaxAdvertInterval > maxCentisecs {
		return fmt.Errorf("%w: %d", ErrInterval, a.MaxAdvertInterval)
	}
	is6 := a.Addresses[0].Is6()
	for _, ip := range a.Addresses {
		if ip.Is6() != is6 {
			return ErrFamily
		}
		if !validVirtualAddr(ip) {
			return fmt.Errorf("%w: %s", ErrAddress, ip)
		}
	}
	return nil
}

// validVirtualAddr rejects what can never be a virtual address: invalid,
// zoned or IPv4-mapped forms, unspecified, multicast, loopback, broadcast.
func validVirtualAddr(ip netip.Addr) bool {
	return ip.IsValid() && ip.Zone() == "" && !ip.Is4In6() && !ip.IsUnspecified() &&
		!ip.IsMulticast() && !ip.IsLoopback() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// The VRRP multicast groups (RFC 5798 5.1.1.2, 5.1.2.2).
var (
	group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	group6 = netip.MustParseAddr("ff02::12")
)
