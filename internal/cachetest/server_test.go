package cachetest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// roundTrip sends one text-protocol line and returns the first reply line.
func roundTrip(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(reply)
}

func TestStartStopRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Server
		cmd   string
		want  string
	}{
		{"redis", StartRedis, "PING", "+PONG"},
		{"memcached", StartMemcached, "version", "VERSION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			if got := roundTrip(t, s.Addr, tc.cmd); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("%s = %q, want %q", tc.cmd, got, tc.want)
			}
			s.Pause()
			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = c.Write([]byte(tc.cmd + "\r\n"))
			if _, err := c.Read(make([]byte, 16)); err == nil {
				t.Error("a paused server answered")
			}
			c.Close()
			s.Resume()
			if got := roundTrip(t, s.Addr, tc.cmd); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("after resume %s = %q, want %q", tc.cmd, got, tc.want)
			}
			s.Stop()
			if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
				c.Close()
				t.Fatal("still accepting after Stop")
			}
			s.Start()
			if got := roundTrip(t, s.Addr, tc.cmd); !strings.HasPrefix(got, tc.want) {
				t.Errorf("after restart %s = %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
}
