package handoff

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestListenNamed: a listener that names its socket gets the socket of
// that name, checked against its address; a name nobody passed is an error
// under systemd, matched by address after an upgrade, and bound without
// inherited sockets.
func TestListenNamed(t *testing.T) {
	tests := []struct {
		name    string
		source  Source
		names   []string // of the two inherited sockets a[0], a[1]
		address int      // index of the address asked for (2: a fresh port)
		want    string   // socket name to ask for
		got     int      // index of the socket expected, -1 for a new one
		wantErr string
	}{
		{name: "by name", source: Systemd, names: []string{"web", "api"}, address: 1, want: "api", got: 1},
		{name: "by name, unit default names", source: Systemd, names: []string{"mosparo-lb.socket", "mosparo-lb.socket"}, address: 1, want: "mosparo-lb.socket", got: 1},
		{name: "unnamed by address", source: Systemd, names: []string{"web", "api"}, address: 0, want: "", got: 0},
		{name: "named socket elsewhere", source: Systemd, names: []string{"web", "api"}, address: 0, want: "api", wantErr: "listens elsewhere"},
		{name: "name systemd did not pass", source: Systemd, names: []string{"web", "api"}, address: 0, want: "admin", wantErr: "systemd passed none of that name"},
		{name: "name after an unnamed upgrade", source: Upgrade, names: []string{"", ""}, address: 1, want: "web", got: 1},
		{name: "named socket elsewhere after an upgrade", source: Upgrade, names: []string{"web", ""}, address: 1, want: "web", wantErr: "listens elsewhere"},
		{name: "name without inherited sockets", source: None, address: 2, want: "web", got: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []*os.File
			var addrs []string
			for i := 0; i < 2; i++ {
				f, a := listenerFile(t, "127.0.0.1:0")
				files, addrs = append(files, f), append(addrs, a)
			}
			fresh, freshAddr := listenerFile(t, "127.0.0.1:0")
			fresh.Close() // a port free again
			addrs = append(addrs, freshAddr)
			s := &Sockets{source: tt.source}
			if tt.source != None {
				spare, err := adopt(files, tt.names, 3)
				if err != nil {
					t.Fatal(err)
				}
				s.spare = spare
			} else {
				closeFiles(files)
			}
			want := append([]*inherited(nil), s.spare...)
			defer s.Unclaimed()
			ln, err := s.ListenNamed("tcp", addrs[tt.address], tt.want)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNameMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ListenNamed(%s, %q) = %v, want ErrNameMismatch: %s", addrs[tt.address], tt.want, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			h := ln.(*heldListener)
			if tt.got >= 0 && h.TCPListener != want[tt.got].ln {
				t.Errorf("ListenNamed(%s, %q) took %s, want inherited socket %d", addrs[tt.address], tt.want, h.Addr(), tt.got)
			}
			if tt.got < 0 && h.name != tt.want {
				t.Errorf("bound listener named %q, want %q (passed on at an upgrade)", h.name, tt.want)
			}
		})
	}
}
