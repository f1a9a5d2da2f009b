package cssproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/cachetest"
)

// binAnswer builds one binary-protocol answer (memcached's protocol_binary.h
// layout) for the table tests.
func binAnswer(op byte, status uint16, opaque uint32, extras, key, value []byte) []byte {
	b := make([]byte, binHeaderLen, binHeaderLen+len(extras)+len(key)+len(value))
	b[0] = binRespMagic
	b[1] = op
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint16(b[6:], status)
	binary.BigEndian.PutUint32(b[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint32(b[12:], opaque)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func flagsExtras(f uint32) []byte { return binary.BigEndian.AppendUint32(nil, f) }

// TestReadGetKQAnswers: the answers to a batch of GetKQ ended by a Noop,
// as a real server sends them and as a hostile or broken one might.
// Every refusal is an error the lookup reports (a node answers instead);
// none panics, loops or allocates past the bound.
func TestReadGetKQAnswers(t *testing.T) {
	keys := []string{"k0", "k1", "k2"}
	hit := func(i int, flags uint32, v string) []byte {
		return binAnswer(opGetKQ, 0, uint32(i), flagsExtras(flags), []byte(keys[i]), []byte(v))
	}
	noop := binAnswer(opNoop, 0, uint32(len(keys)), nil, nil, nil)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tt := range []struct {
		name   string
		stream []byte
		want   map[string]string // key -> value; nil with wantErr
		err    bool
	}{
		{"all hits", cat(hit(0, 0, "a"), hit(1, 0x10, "bb"), hit(2, 0, ""), noop), map[string]string{"k0": "a", "k1": "bb", "k2": ""}, false},
		{"misses are silent", cat(hit(1, 0, "x"), noop), map[string]string{"k1": "x"}, false},
		{"nothing", noop, map[string]string{}, false},
		{"empty stream", nil, nil, true},
		{"truncated header", noop[:10], nil, true},
		{"truncated body", cat(hit(0, 0, "abc"))[:binHeaderLen+5], nil, true},
		{"no noop", hit(0, 0, "a"), nil, true},
		{"request magic", cat(func() []byte { b := hit(0, 0, "a"); b[0] = binReqMagic; return b }(), noop), nil, true},
		{"text protocol answer", []byte("ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"), nil, true},
		{"data type", cat(func() []byte { b := hit(0, 0, "a"); b[5] = 1; return b }(), noop), nil, true},
		{"body over the bound", cat(hit(0, 0, strings.Repeat("v", 100+binKeyOverhead)), noop), nil, true},
		{"claims 4 GiB", func() []byte { b := hit(0, 0, "a"); binary.BigEndian.PutUint32(b[8:], 0xffffffff); return b }(), nil, true},
		{"key and extras longer than the body", func() []byte {
			b := hit(0, 0, "a")
			binary.BigEndian.PutUint16(b[2:], 60000)
			return b
		}(), nil, true},
		{"opaque names no request", cat(binAnswer(opGetKQ, 0, 9, flagsExtras(0), []byte("k0"), []byte("a")), noop), nil, true},
		{"key other than asked", cat(binAnswer(opGetKQ, 0, 0, flagsExtras(0), []byte("k1"), []byte("a")), noop), nil, true},
		{"extras not 4 bytes", cat(binAnswer(opGetKQ, 0, 0, []byte{1, 2}, []byte("k0"), []byte("a")), noop), nil, true},
		{"error status", cat(binAnswer(opGetKQ, 0x0082, 0, nil, nil, []byte("Out of memory")), noop), nil, true},
		{"auth error mid-batch", cat(binAnswer(opGetKQ, statusAuthError, 0, nil, nil, []byte("Auth failure.")), noop), nil, true},
		{"other opcode", cat(binAnswer(opVersion, 0, 0, nil, nil, []byte("1.6")), noop), nil, true},
		{"noop with an error", binAnswer(opNoop, 0x0081, 3, nil, nil, nil), nil, true},
		{"more answers than keys", cat(hit(0, 0, "a"), hit(0, 0, "a"), hit(0, 0, "a"), hit(0, 0, "a"), noop), nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readGetKQ(bufio.NewReader(bytes.NewReader(tt.stream)), keys, 100)
			if (err != nil) != tt.err {
				t.Fatalf("readGetKQ = %v, %v; want error %v", got, err, tt.err)
			}
			if tt.err {
				return
			}
			if len(got) != len(tt.want) {
				t.Errorf("readGetKQ = %d items, want %d", len(got), len(tt.want))
			}
			for k, v := range tt.want {
				it := got[k]
				if it == nil || string(it.Value) != v || it.Key != k {
					t.Errorf("item %s = %+v, want value %q", k, it, v)
				}
			}
			if it := got["k1"]; it != nil && tt.name == "all hits" && it.Flags != 0x10 {
				t.Errorf("k1 flags = %#x, want 0x10", it.Flags)
			}
		})
	}
}

// TestAuthAnswer: one answer to SASL Auth, as memcached sends it.
func TestAuthAnswer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stream []byte
		want   error // nil: accepted; errSASLRefused or any error (errBinAnswer)
	}{
		{"accepted", binAnswer(opSASLAuth, 0, 0, nil, nil, []byte("Authenticated")), nil},
		{"refused", binAnswer(opSASLAuth, statusAuthError, 0, nil, nil, []byte("Auth failure.")), errSASLRefused},
		{"continue", binAnswer(opSASLAuth, statusAuthContinue, 0, nil, nil, []byte("challenge")), errBinAnswer},
		{"other opcode", binAnswer(opNoop, 0, 0, nil, nil, nil), errBinAnswer},
		{"unknown command (no SASL)", binAnswer(opSASLAuth, 0x0081, 0, nil, nil, []byte("Unknown command")), errBinAnswer},
		{"closed", nil, io.EOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := readAuthAnswer(bufio.NewReader(bytes.NewReader(tt.stream)))
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("readAuthAnswer = %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("readAuthAnswer = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMemcachedSASLWrittenByPHP: php-memcached, through Symfony's
// MemcachedAdapter with user:password in MEMCACHED_URL (which turns the
// binary protocol and SASL on), writes projects to two memcached servers
// that require SASL; the edge reads every one back byte-exact over the
// binary protocol with the same DSN (FACTS 11.8). A wrong password or user
// is a clear error in the cache's reachability, never a read, and the
// edge then leaves the CSS to the nodes.
func TestMemcachedSASLWrittenByPHP(t *testing.T) {
	const user, pass = "mosparo", "s3cret:@/%"
	a, b := cachetest.StartMemcachedSASL(t, user, pass), cachetest.StartMemcachedSASL(t, user, pass)
	userinfo := url.PathEscape(user) + ":" + url.QueryEscape(pass)
	dsn := fmt.Sprintf("memcached://%s@%s?host[%s]&prefix_key=m_", userinfo, a.Addr, b.Addr)
	p := startProxy(t, testConfig(t, "memcached", `"`+dsn+`"`, "  revalidate_interval: 50ms\n"), Options{})
	for i := range 8 {
		id := fmt.Sprintf("5a1d0c3e-0000-4000-8000-%012x", 0x5a5100+i)
		hash, css := testHash(i+40), testCSS(id, 2000+i*331)
		writeDesign(t, "memcached", dsn, []string{"php", "igbinary"}[i%2], id, hash, css)
		ok, resp := serve(p, request{path: "/resources/" + id + "/" + hash + ".css"})
		if !ok || !bytes.Equal(resp.Body(), css) {
			t.Fatalf("project %d: Serve = %v with %d bytes, want the %d bytes PHP wrote; stats %+v", i, ok, len(resp.Body()), len(css), p.Stats())
		}
	}
	waitFor(t, func() bool { r := p.Stats().Reachable; return r != nil && *r })
	// Both servers hold design keys where ketama puts them: the edge found
	// every one, so a spread means both were read.
	d, err := configs.ParseMemcachedDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	mb := p.backend.(*memcachedBackend)
	mb.mu.Lock()
	ns := string(mb.ns)
	mb.mu.Unlock()
	k, used := newKetama(d.Servers, d.PrefixKey), map[int]bool{}
	for i := range 8 {
		used[k.server(ns+"design_"+fmt.Sprintf("5a1d0c3e-0000-4000-8000-%012x", 0x5a5100+i)+"_content")] = true
	}
	if len(used) != 2 {
		t.Errorf("design keys on servers %v; a spread over both was expected", used)
	}

	// A restart kills the pooled connections: the lookups in between
	// fail (the nodes answer), and the next ones log in again.
	a.Stop()
	b.Stop()
	late := "5a1d0c3e-0000-4000-8000-0000005a51ff"
	lateHash, lateCSS := testHash(99), testCSS(late, 4000)
	if ok, _ := serve(p, request{path: "/resources/" + late + "/" + lateHash + ".css"}); ok {
		t.Error("served a project no cache holds")
	}
	a.Start()
	b.Start()
	writeDesign(t, "memcached", dsn, "php", late, lateHash, lateCSS)
	waitFor(t, func() bool {
		ok, resp := serve(p, request{path: "/resources/" + late + "/" + lateHash + ".css"})
		return ok && bytes.Equal(resp.Body(), lateCSS)
	})

	for _, bad := range []string{user + ":wrong", "nobody:" + url.QueryEscape(pass)} {
		t.Run(bad, func(t *testing.T) {
			dsn := fmt.Sprintf("memcached://%s@%s", bad, a.Addr)
			p := startProxy(t, testConfig(t, "memcached", `"`+dsn+`"`, "  revalidate_interval: 50ms\n"), Options{})
			waitFor(t, func() bool { r := p.Stats().Reachable; return r != nil && !*r })
			if msg := p.Stats().LastError; !strings.Contains(msg, "SASL") {
				t.Errorf("last error = %q, want it to name SASL", msg)
			}
			id := "5a1d0c3e-0000-4000-8000-0000005a5100"
			if ok, _ := serve(p, request{path: "/resources/" + id + "/" + testHash(40) + ".css"}); ok {
				t.Error("served with a refused login")
			}
		})
	}
}
