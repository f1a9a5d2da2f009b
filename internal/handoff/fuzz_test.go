package handoff

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseEnv: whatever the variables hold, ParseEnv returns a valid Env
// or one of its two errors, and never a descriptor range it did not check.
func FuzzParseEnv(f *testing.F) {
	f.Add("4242", "2", "web:admin", "", "", "", "")
	f.Add("", "", "", "4000", "1", "web", "4")
	f.Add("4242", "99999999999999999999", "", "", "", "", "")
	f.Add("4242", "1", "a:b:c", "", "", "", "")
	f.Add("", "", "", "4000", "3", "::", "-1")
	f.Fuzz(func(t *testing.T, pid, fds, names, parent, ufds, unames, ready string) {
		vars := map[string]string{}
		for k, v := range map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": fds, "LISTEN_FDNAMES": names,
			"MOSPARO_LB_UPGRADE_PARENT": parent, "MOSPARO_LB_UPGRADE_FDS": ufds, "MOSPARO_LB_UPGRADE_FDNAMES": unames,
			"MOSPARO_LB_UPGRADE_READY_FD": ready} {
			if v != "" {
				vars[k] = v
			}
		}
		e, err := ParseEnv(Process{LookupEnv: lookup(vars), PID: 4242, PPID: 4000})
		if err != nil {
			if !errors.Is(err, ErrEnvironment) && !errors.Is(err, ErrOtherProcess) {
				t.Fatalf("error %v is neither ErrEnvironment nor ErrOtherProcess", err)
			}
			if e.Source != None || e.Count != 0 {
				t.Fatalf("error %v with a non-empty Env %+v", err, e)
			}
			return
		}
		if e.Count < 0 || e.Count > maxFDs || len(e.Names) != e.Count && e.Source != None {
			t.Fatalf("Env %+v: count out of range or names do not match", e)
		}
		for _, n := range e.Names {
			if !validName(n) {
				t.Fatalf("invalid name %q accepted", n)
			}
		}
		if e.Source == Upgrade && e.ReadyFD != firstFD+e.Count || e.Source != Upgrade && e.ReadyFD != 0 {
			t.Fatalf("Env %+v: ready fd outside the protocol", e)
		}
	})
}

// FuzzReadFrame: any bytes give a frame within the bound or an error,
// never a panic or an allocation beyond maxFrame; a frame read re-encodes
// to the bytes it came from.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("S\x00\x00\x00\x03abc"))
	f.Add([]byte("S\xff\xff\xff\xff"))
	f.Add([]byte("A\x00\x00\x00\x00"))
	f.Add([]byte("S\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readFrame(bytes.NewReader(in), frameState)
		if err != nil {
			return
		}
		if len(got) > maxFrame {
			t.Fatalf("frame of %d bytes", len(got))
		}
		var b bytes.Buffer
		if err := writeFrame(&b, frameState, got); err != nil || !bytes.HasPrefix(in, b.Bytes()) {
			t.Fatalf("re-encoded %q (%v), not a prefix of %q", b.Bytes(), err, in)
		}
	})
}
