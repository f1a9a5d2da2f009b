package vip

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"
)

// keepalivedV2Capture is keepalived 2.2.7 with vrrp_version 2, advert_int 1
// and authentication { auth_type PASS; auth_pass secret12 } on 10.99.0.11,
// VRID 51, priority 150, VIP 10.99.0.10/24, captured with tcpdump in a
// network namespace: four adverts, then the priority-0 one sent on SIGTERM.
const keepalivedV2Capture = "testdata/keepalived-2.2.7-vrrp2-pass.pcap"

// pcapVRRP returns the VRRP messages of an Ethernet pcap file, checking the
// IPv4 header keepalived sent (TOS 0xc0, TTL 255, protocol 112, 224.0.0.18).
func pcapVRRP(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var msgs [][]byte
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		if off+16+n > len(b) || n < 14+20 {
			t.Fatalf("%s: truncated record at %d", path, off)
		}
		frame, ip := b[off+16:off+16+n], b[off+16+14:off+16+n]
		off += 16 + n
		if binary.BigEndian.Uint16(frame[12:]) != 0x0800 || ip[0]>>4 != 4 {
			t.Fatalf("%s: frame is not IPv4", path)
		}
		ihl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if ip[1] != tosInternetControl || ip[8] != 255 || ip[9] != protoVRRP || !bytes.Equal(ip[16:20], group4.AsSlice()) || total > len(ip) {
			t.Fatalf("%s: unexpected IPv4 header % x", path, ip[:20])
		}
		msgs = append(msgs, ip[ihl:total])
	}
	return msgs
}

func TestDecodeKeepalivedV2Capture(t *testing.T) {
	msgs := pcapVRRP(t, keepalivedV2Capture)
	if len(msgs) != 5 {
		t.Fatalf("%d adverts in the capture, want 5", len(msgs))
	}
	if got := hex.EncodeToString(msgs[0]); got != "21339601"+"0101cfde"+"0a63000a"+"7365637265743132" {
		t.Fatalf("first advert = %s", got)
	}
	for i, m := range msgs {
		// The group as destination, or any other: version 2 has no pseudo-header.
		for _, dst := range []netip.Addr{group4, peerB} {
			a, err := Decode(m, masterA, dst)
			if err != nil {
				t.Fatalf("advert %d: Decode(to %s) error %v", i, dst, err)
			}
			prio, sum := uint8(150), uint16(0xcfde)
			if i == len(msgs)-1 {
				prio, sum = 0, 0x65df // graceful stop
			}
			want := &Advertisement{Version: Version2, VRID: 51, Priority: prio, MaxAdvertInterval: 100, Checksum: sum,
				AuthType: AuthPass, AuthData: PassData("secret12"), Addresses: []netip.Addr{vip4}}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("advert %d: Decode = %+v, want %+v", i, a, want)
			}
			if a.MaxAdvertInterval.Duration() != time.Second {
				t.Errorf("advert %d: interval %s, want 1s", i, a.MaxAdvertInterval.Duration())
			}
		}
		// Re-encoding gives the captured bytes, checksum included.
		a := &Advertisement{Version: Version2, VRID: 51, Priority: m[2], MaxAdvertInterval: 100,
			AuthType: AuthPass, AuthData: PassData("secret12"), Addresses: []netip.Addr{vip4}}
		if out, err := a.Encode(masterA, group4); err != nil || !bytes.Equal(out, m) {
			t.Errorf("advert %d: Encode = %x, %v; want %x", i, out, err, m)
		}
	}
}

func TestV2Checksum(t *testing.T) {
	m := pcapVRRP(t, keepalivedV2Capture)[0]
	// Independent sum over the 20 bytes alone folds to 0xffff.
	if s := fold(add(0, m)); s != 0xffff {
		t.Errorf("message-only sum = %#x, want 0xffff", s)
	}
	bad := bytes.Clone(m)
	bad[len(bad)-1] ^= 1 // the password is covered by the checksum
	if _, err := Decode(bad, masterA, group4); !errors.Is(err, ErrChecksum) {
		t.Errorf("Decode with a changed password byte: error %v, want ErrChecksum", err)
	}
	// A v3 message of the same bytes otherwise needs the pseudo-header.
	v3 := bytes.Clone(m)
	v3[0] = 0x31
	if VerifyChecksum(masterA, group4, v3) {
		t.Error("version 3 checksum verified without pseudo-header")
	}
}

func TestV2RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		a    Advertisement
		hex  string
	}{
		{"no auth, 3 s, two VIPs", Advertisement{Version: Version2, VRID: 7, Priority: 100, MaxAdvertInterval: 300,
			Addresses: []netip.Addr{vip4, netip.MustParseAddr("10.99.0.20")}},
			"21076402" + "0003" + "0000" + "0a63000a" + "0a630014" + "0000000000000000"},
		{"PASS short password zero-padded", Advertisement{Version: Version2, VRID: 255, Priority: 255, MaxAdvertInterval: 25500,
			AuthType: AuthPass, AuthData: PassData("ab"), Addresses: []netip.Addr{vip4}},
			"21ffff01" + "01ff" + "0000" + "0a63000a" + "6162000000000000"},
		{"AH type carried as is", Advertisement{Version: Version2, VRID: 1, Priority: 1, MaxAdvertInterval: 100,
			AuthType: AuthAH, Addresses: []netip.Addr{vip4}},
			"21010101" + "0201" + "0000" + "0a63000a" + "0000000000000000"},
	}
	for _, tt := range tests {
		b, err := tt.a.Encode(masterA, group4)
		if err != nil {
			t.Fatalf("%s: Encode error %v", tt.name, err)
		}
		want := mustHex(t, tt.hex)
		binary.BigEndian.PutUint16(want[6:], ^uint16(fold(add(0, want))))
		if !bytes.Equal(b, want) {
			t.Errorf("%s: Encode = %x, want %x", tt.name, b, want)
		}
		got, err := Decode(b, masterA, group4)
		if err != nil || !reflect.DeepEqual(*got, tt.a) {
			t.Errorf("%s: Decode = %+v, %v; want %+v", tt.name, got, err, tt.a)
		}
	}
}

func TestPassData(t *testing.T) {
	if got := PassData("123456789"); string(got[:]) != "12345678" {
		t.Errorf("PassData of 9 bytes = %q, want the first 8", got)
	}
	if got := PassData(""); got != [8]byte{} {
		t.Errorf("PassData(\"\") = %q, want zeros", got)
	}
}
