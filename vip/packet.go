package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Wire constants of RFC 5798 5.1-5.2 and RFC 3768 5.3.
const (
	typeAdvert    = 1
	headerLen     = 8
	authDataLen   = 8    // VRRPv2 Authentication Data after the addresses
	maxCentisecs  = 4095 // 12 bits
	maxAddrsCount = 255  // 8-bit count
	maxV2Seconds  = 255  // 8-bit Adver Int in seconds
)

// Version is the VRRP version of an advert.
type Version uint8

// Versions spoken.
const (
	Version2 Version = 2 // RFC 3768: IPv4 only, whole seconds, no pseudo-header
	Version3 Version = 3 // RFC 5798
)

// AuthType is the VRRPv2 Auth Type field (RFC 2338 5.3.6; RFC 3768 keeps the
// field but no longer defines types 1 and 2, which keepalived still speaks).
type AuthType uint8

// Authentication types.
const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1 // simple text password in the 8 Authentication Data bytes
	AuthAH   AuthType = 2 // IPsec AH: never spoken, only recognised
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// PassData is a PASS password as it travels: its first 8 bytes, zero-padded.
func PassData(pass string) [authDataLen]byte {
	var d [authDataLen]byte
	copy(d[:], pass)
	return d
}

// Sentinel errors returned (wrapped) by UnmarshalBinary and MarshalBinary.
// A message shorter than its header or count says returns io.ErrUnexpectedEOF.
var (
	ErrVersion  = errors.New("vip: not VRRP version 2 or 3")
	ErrType     = errors.New("vip: not an ADVERTISEMENT")
	ErrVRID     = errors.New("vip: virtual router id 0")
	ErrCount    = errors.New("vip: address count is 0")
	ErrInterval = errors.New("vip: advert interval out of 1..4095 centiseconds (v3) or 1..255 seconds (v2)")
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

// Advertisement is a VRRP ADVERTISEMENT, version 3 (RFC 5798 5.2) or 2
// (RFC 3768 5.3). The type (1) is implied: anything else does not parse.
//
//	version 3:
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	|                       IPvX Address(es)                        |
//
//	version 2 (IPv4 only):
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	|                       IPv4 Address(es)                        |
//	|                  Authentication Data (8 bytes)                |
type Advertisement struct {
	// Version is 2 or 3; the zero value marshals as 3.
	Version Version
	// VRID is the Virtual Router ID, 1..255.
	VRID uint8
	// Priority is 0 (the master is leaving), 1..254, or 255 (address owner).
	Priority uint8
	// MaxAdvertInterval is the sender's advert interval, 1..4095 cs; in
	// version 2 whole seconds on the wire, 100..25500 cs here.
	MaxAdvertInterval Centiseconds
	// AuthType and AuthData are version 2's authentication, carried as
	// read (checking them is the receiver's policy); zero in version 3.
	AuthType AuthType
	AuthData [authDataLen]byte
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
	if a.Version == Version2 {
		return headerLen + 4*len(a.Addresses) + authDataLen
	}
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
	b[0] = byte(a.version())<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addresses))
	if a.Version == Version2 {
		b[4] = byte(a.AuthType)
		b[5] = uint8(a.MaxAdvertInterval / 100)
	} else {
		binary.BigEndian.PutUint16(b[4:], uint16(a.MaxAdvertInterval)) // reserved bits 0
	}
	binary.BigEndian.PutUint16(b[6:], a.Checksum)
	off := headerLen
	for _, ip := range a.Addresses {
		off += copy(b[off:], ip.AsSlice())
	}
	if a.Version == Version2 {
		copy(b[off:], a.AuthData[:])
	}
	return b, nil
}

func (a *Advertisement) version() Version {
	if a.Version == 0 {
		return Version3
	}
	return a.Version
}

// Encode is MarshalBinary with the checksum computed for a message sent from
// src to dst (the multicast group, or the unicast peer; version 2 sums the
// message alone, but src and dst must still be of its family). a.Checksum
// is set.
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
// header already stripped), validating every field. In version 3 the family
// is told by the length: 8 + Count*4 (IPv4) or 8 + Count*16 (IPv6); version
// 2 is 8 + Count*4 + 8 (IPv4 and the authentication data). Any other length,
// including trailing bytes, is ErrLength. The checksum is not verified here
// because it needs the IP addresses: see VerifyChecksum / Decode.
func (a *Advertisement) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return io.ErrUnexpectedEOF
	}
	v := Version(b[0] >> 4)
	if v != Version2 && v != Version3 {
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
	out := Advertisement{Version: v, VRID: b[1], Priority: b[2], Checksum: binary.BigEndian.Uint16(b[6:])}
	var size int
	if v == Version2 {
		out.AuthType = AuthType(b[4])
		out.MaxAdvertInterval = Centiseconds(b[5]) * 100
		size = 4
		if want := headerLen + 4*n + authDataLen; len(b) != want {
			if len(b) < want {
				return io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: %d bytes for %d addresses, want %d", ErrLength, len(b), n, want)
		}
		copy(out.AuthData[:], b[headerLen+4*n:])
	} else {
		out.MaxAdvertInterval = Centiseconds(binary.BigEndian.Uint16(b[4:]) & 0x0fff) // 4 reserved bits ignored
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
	}
	if out.MaxAdvertInterval == 0 {
		return fmt.Errorf("%w: 0", ErrInterval)
	}
	out.Addresses = make([]netip.Addr, n)
	for i := range out.Addresses {
		ip, _ := netip.AddrFromSlice(b[headerLen+i*size : headerLen+(i+1)*size])
		if !validVirtualAddr(ip) {
			return fmt.Errorf("%w: %s", ErrAddress, ip)
		}
		out.Addresses[i] = ip
	}
	*a = out
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
	if v := a.Version; v != 0 && v != Version2 && v != Version3 {
		return fmt.Errorf("%w: version %d", ErrVersion, v)
	}
	if a.Version == Version2 {
		if a.MaxAdvertInterval == 0 || a.MaxAdvertInterval%100 != 0 || a.MaxAdvertInterval > maxV2Seconds*100 {
			return fmt.Errorf("%w: %d cs is not 1..255 whole seconds", ErrInterval, a.MaxAdvertInterval)
		}
		if a.Is6() {
			return fmt.Errorf("%w: VRRPv2 carries IPv4 addresses only", ErrFamily)
		}
	} else if a.MaxAdvertInterval == 0 || a.MaxAdvertInterval > maxCentisecs {
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
