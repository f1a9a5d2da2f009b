package cssproxy

import "testing"

func TestParseProjectID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a", true},
		{"0B6E2A1C-7D3F-4E5A-9C8B-1F2E3D4C5B6A", false}, // mosparo stores lowercase
		{"0b6e2a1c7d3f4e5a9c8b1f2e3d4c5b6a", false},
		{"0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6", false},
		{"0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6g", false},
		{"0b6e2a1c-7d3f-4e5a-9c8b_1f2e3d4c5b6a", false},
		{"", false},
	} {
		if _, ok := parseProjectID([]byte(tc.in)); ok != tc.ok {
			t.Errorf("parseProjectID(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
	}
}

func TestProjectIDFromKey(t *testing.T) {
	id, _ := parseProjectID([]byte("0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a"))
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{id.contentKey(), true},
		{id.hashKey(), true},
		{"design_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_other", false},
		{"xesign_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_hash", false},
		{"mosparoNextCleanup", false},
		{"", false},
	} {
		got, ok := projectIDFromKey(tc.key)
		if ok != tc.ok || (ok && got != id) {
			t.Errorf("projectIDFromKey(%q) = %s, %v, want ok %v", tc.key, got[:], ok, tc.ok)
		}
	}
}

func TestMemcachedKey(t *testing.T) {
	for _, tc := range []struct {
		prefix, ns, key, want string
		ok                    bool
	}{
		// FACTS 5.4 example.
		{"", "h2kJa:", "design_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_content", "h2kJa:design_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_content", true},
		// prefix_key goes in front, unmapped (php-memcached adds it).
		{"mosparo_", "h2kJa:", "design_x_hash", "mosparo_h2kJa:design_x_hash", true},
		// The prefix counts towards memcached's 250-byte limit.
		{string(make([]byte, 200)), "h2kJa:", "design_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_hash", "", false},
		// Symfony's strtr(" \n\r\t\v\f\0", "@()\{}/").
		{"", "a b\n", "\r\t\v\f\x00", "a@b()\\{}/", true},
		{"", "ab\x01", "design_x", "", false},
		{"", string(make([]byte, 240)), "design_0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a_hash", "", false},
	} {
		got, err := memcachedKey(tc.prefix, []byte(tc.ns), tc.key)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("memcachedKey(%q, %q, %q) = %q, %v, want %q", tc.prefix, tc.ns, tc.key, got, err, tc.want)
		}
	}
}
