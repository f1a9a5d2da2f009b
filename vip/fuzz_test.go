package vip

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzAdvertisement checks that any input either fails to parse or survives
// a marshal/parse round trip unchanged, and that Decode never panics.
func FuzzAdvertisement(f *testing.F) {
	f.Add(mustHex(f, keepalivedAdvert))                                                         // keepalived 2.2.7 capture (FACTS 1.2)
	f.Add(mustHex(f, "31339602006442fd0a63000a0a63000b"))                                       // two IPv4 addresses
	f.Add(mustHex(f, "3107c801000a0000fe800000000000000000000000000007"))                       // IPv6
	f.Add(mustHex(f, "31339602006442fd0a63000a"))                                               // count larger than data
	f.Add(mustHex(f, "3133960170640000"+"0a63000a"))                                            // reserved interval bits set
	f.Add(mustHex(f, "213396010101cfde0a63000a7365637265743132"))                               // keepalived 2.2.7 v2 PASS capture (testdata)
	f.Add(mustHex(f, "21076402000300000a63000a0a6300140000000000000000"))                       // v2, no auth, two addresses
	f.Add(mustHex(f, "21339601010142fd"+"20010db8000000000000000000000010"+"7365637265743132")) // v2 with an IPv6-sized address
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decode(b, masterA, group4)
		_, _ = Decode(b, netip.MustParseAddr("fe80::1"), group6)
		var a Advertisement
		if err := a.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed advert: %v", err)
		}
		var again Advertisement
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("UnmarshalBinary(MarshalBinary(%x)) error %v", b, err)
		}
		out2, _ := again.MarshalBinary()
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed %x into %x", out, out2)
		}
		// Only the reserved bits (version 3) may differ from the input.
		in := bytes.Clone(b)
		if a.Version == Version3 {
			in[4] &= 0x0f
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("MarshalBinary = %x, want %x", out, in)
		}
	})
}
