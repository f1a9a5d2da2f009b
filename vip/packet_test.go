package vip

import (
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// keepalivedAdvert is the VRRP part of the frame captured from keepalived
// 2.2.7 in FACTS 1.2: 10.99.0.11 -> 224.0.0.18, VRID 51, priority 150,
// 100 cs, VIP 10.99.0.10, checksum 0x42fd.
const keepalivedAdvert = "31339601006442fd0a63000a"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	masterA = netip.MustParseAddr("10.99.0.11")
	peerB   = netip.MustParseAddr("10.99.0.12")
	vip4    = netip.MustParseAddr("10.99.0.10")
)

func TestDecodeKeepalivedCapture(t *testing.T) {
	b := mustHex(t, keepalivedAdvert)
	a, err := Decode(b, masterA, group4)
	if err != nil {
		t.Fatalf("Decode(keepalived capture) error %v", err)
	}
	want := &Advertisement{Version: Version3, VRID: 51, Priority: 150, MaxAdvertInterval: 100, Checksum: 0x42fd, Addresses: []netip.Addr{vip4}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("Decode = %+v, want %+v", a, want)
	}
	if d := a.MaxAdvertInterval.Duration(); d != time.Second {
		t.Errorf("interval = %s, want 1s", d)
	}
	// Re-encoding gives the captured bytes, checksum included.
	out, err := want.Encode(masterA, group4)
	if err != nil || hex.EncodeToString(out) != keepalivedAdvert {
		t.Errorf("Encode = %x, %v; want %s", out, err, keepalivedAdvert)
	}
}

func TestChecksumVectors(t *testing.T) {
	b := mustHex(t, keepalivedAdvert)
	b[6], b[7] = 0, 0
	tests := []struct {
		name     string
		src, dst netip.Addr
		want     uint16
	}{
		// FACTS 1.2: with the IPv4 pseudo-header.
		{"multicast", masterA, group4, 0x42fd},
		// FACTS 5: the same advert sent by unicast to the peer 10.99.0.12.
		{"unicast", masterA, peerB, 0x18a1},
	}
	for _, tt := range tests {
		if got := Checksum(tt.src, tt.dst, b); got != tt.want {
			t.Errorf("%s: Checksum(%s -> %s) = %#04x, want %#04x", tt.name, tt.src, tt.dst, got, tt.want)
		}
	}
	// Without any pseudo-header (VRRPv2 style) it would be 0x2dfa (FACTS 1.2).
	if got := ^uint16(fold(add(0, b))); got != 0x2dfa {
		t.Errorf("message-only checksum = %#04x, want 0x2dfa", got)
	}
	if VerifyChecksum(masterA, peerB, mustHex(t, keepalivedAdvert)) {
		t.Error("multicast checksum verified against a unicast destination")
	}
}

func fold(s uint32) uint32 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

func TestIPv6RoundTrip(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	a := &Advertisement{Version: Version3, VRID: 7, Priority: 200, MaxAdvertInterval: 10,
		Addresses: []netip.Addr{netip.MustParseAddr("fe80::7"), netip.MustParseAddr("2001:db8::7")}}
	b, err := a.Encode(src, group6)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8+32 {
		t.Fatalf("len = %d, want 40", len(b))
	}
	// Independent pseudo-header sum (RFC 8200 8.1): src, dst, 32-bit length, 3 zero bytes, next header.
	ph := append(append(append(src.AsSlice(), group6.AsSlice()...), 0, 0, 0, byte(len(b))), 0, 0, 0, 112)
	if s := fold(add(add(0, ph), b)); s != 0xffff {
		t.Errorf("pseudo-header sum = %#x, want 0xffff", s)
	}
	got, err := Decode(b, src, group6)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("Decode = %+v, want %+v", got, a)
	}
	if _, err := Decode(b, netip.MustParseAddr("fe80::2"), group6); !errors.Is(err, ErrChecksum) {
		t.Errorf("Decode from another source: error %v, want ErrChecksum", err)
	}
}

func TestUnmarshalHostile(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", io.ErrUnexpectedEOF},
		{"short header", "313396010064", io.ErrUnexpectedEOF},
		{"version 1", "11339601016442fd0a63000a", ErrVersion},
		{"version 4", "41339601006442fd0a63000a", ErrVersion},
		{"type 2", "32339601006442fd0a63000a", ErrType},
		{"vrid 0", "31009601006442fd0a63000a", ErrVRID},
		{"count 0", "31339600006442fd", ErrCount},
		{"interval 0", "31339601000042fd0a63000a", ErrInterval},
		{"interval 0 reserved bits set", "3133960150000000" + "0a63000a", ErrInterval},
		{"truncated address", "31339601006442fd0a6300", io.ErrUnexpectedEOF},
		{"count says 2, one given", "31339602006442fd0a63000a", io.ErrUnexpectedEOF},
		{"trailing byte", "31339601006442fd0a63000a00", ErrLength},
		{"odd length", "31339602006442fd0a63000a0a63000b0000", ErrLength},
		{"multicast vip", "31339601006442fde0000012", ErrAddress},
		{"unspecified vip", "31339601006442fd00000000", ErrAddress},
		{"broadcast vip", "31339601006442fdffffffff", ErrAddress},
		{"loopback v6", "31339601006442fd" + "00000000000000000000000000000001", ErrAddress},
		{"v4-mapped v6", "31339601006442fd" + "00000000000000000000ffff0a63000a", ErrAddress},
		// Version 2: 8 + 4*count + 8 bytes of authentication data, exactly.
		{"v2 without auth data", "21339601010142fd0a63000a", io.ErrUnexpectedEOF},
		{"v2 auth data short", "21339601010142fd0a63000a73656372657431", io.ErrUnexpectedEOF},
		{"v2 trailing byte", "21339601010142fd0a63000a736563726574313200", ErrLength},
		{"v2 IPv6 sized", "21339601010142fd" + "20010db8000000000000000000000010" + "7365637265743132", ErrLength},
		{"v2 interval 0", "21339601010042fd0a63000a7365637265743132", ErrInterval},
		{"v2 count 0", "21339600010142fd7365637265743132", ErrCount},
		{"v2 vrid 0", "21009601010142fd0a63000a7365637265743132", ErrVRID},
		{"v2 type 2", "22339601010142fd0a63000a7365637265743132", ErrType},
		{"v2 multicast vip", "21339601010142fde00000127365637265743132", ErrAddress},
		{"v2 count says 2", "21339602010142fd0a63000a7365637265743132", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		var a Advertisement
		err := a.UnmarshalBinary(mustHex(t, tt.hex))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: UnmarshalBinary error %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestReservedBitsIgnored(t *testing.T) {
	var a Advertisement
	if err := a.UnmarshalBinary(mustHex(t, "3133960170640000"+"0a63000a")); err != nil || a.MaxAdvertInterval != 100 {
		t.Errorf("UnmarshalBinary with reserved bits = %d, %v; want 100, nil", a.MaxAdvertInterval, err)
	}
}

func TestMarshalInvalid(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name string
		a    Advertisement
		want error
	}{
		{"vrid 0", Advertisement{Priority: 1, MaxAdvertInterval: 100, Addresses: []netip.Addr{vip4}}, ErrVRID},
		{"no addresses", Advertisement{VRID: 1, MaxAdvertInterval: 100}, ErrCount},
		{"interval 0", Advertisement{VRID: 1, Addresses: []netip.Addr{vip4}}, ErrInterval},
		{"interval 4096", Advertisement{VRID: 1, MaxAdvertInterval: 4096, Addresses: []netip.Addr{vip4}}, ErrInterval},
		{"mixed", Advertisement{VRID: 1, MaxAdvertInterval: 1, Addresses: []netip.Addr{vip4, v6}}, ErrFamily},
		{"zero addr", Advertisement{VRID: 1, MaxAdvertInterval: 1, Addresses: []netip.Addr{{}}}, ErrAddress},
		{"too many", Advertisement{VRID: 1, MaxAdvertInterval: 1, Addresses: make([]netip.Addr, 256)}, ErrLength},
		{"version 4", Advertisement{Version: 4, VRID: 1, MaxAdvertInterval: 1, Addresses: []netip.Addr{vip4}}, ErrVersion},
		{"v2 sub-second", Advertisement{Version: Version2, VRID: 1, MaxAdvertInterval: 150, Addresses: []netip.Addr{vip4}}, ErrInterval},
		{"v2 256 s", Advertisement{Version: Version2, VRID: 1, MaxAdvertInterval: 25600, Addresses: []netip.Addr{vip4}}, ErrInterval},
		{"v2 IPv6", Advertisement{Version: Version2, VRID: 1, MaxAdvertInterval: 100, Addresses: []netip.Addr{v6}}, ErrFamily},
	}
	for _, tt := range tests {
		if _, err := tt.a.MarshalBinary(); !errors.Is(err, tt.want) {
			t.Errorf("%s: MarshalBinary error %v, want %v", tt.name, err, tt.want)
		}
	}
	ok := Advertisement{VRID: 1, MaxAdvertInterval: 1, Addresses: []netip.Addr{vip4}}
	if _, err := ok.Encode(netip.MustParseAddr("fe80::1"), group6); !errors.Is(err, ErrFamily) {
		t.Errorf("Encode IPv4 advert from IPv6 source: error %v, want ErrFamily", err)
	}
}

func TestToCentiseconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want Centiseconds
	}{
		{time.Second, 100}, {100 * time.Millisecond, 10}, {10 * time.Millisecond, 1},
		{0, 1}, {time.Hour, 4095}, {40950 * time.Millisecond, 4095}, {14 * time.Millisecond, 1}, {15 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		if got := ToCentiseconds(tt.d); got != tt.want {
			t.Errorf("ToCentiseconds(%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
