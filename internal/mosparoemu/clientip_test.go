package mosparoemu

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestResolveClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string
		want    string
		trust   bool
	}{
		{"no proxy", []string{"127.0.0.1"}, "192.0.2.1", []string{"10.0.0.1"}, "192.0.2.1", false},
		{"trusted peer, one hop", []string{"127.0.0.1"}, "127.0.0.1", []string{"192.0.2.7"}, "192.0.2.7", true},
		{"right-most untrusted", []string{"127.0.0.1"}, "127.0.0.1", []string{"192.0.2.1, 192.0.2.2"}, "192.0.2.2", true},
		{"trusted entries skipped", []string{"127.0.0.1", "10.0.0.0/8"}, "127.0.0.1", []string{"192.0.2.1, 10.1.1.1"}, "192.0.2.1", true},
		{"all trusted gives left-most", []string{"127.0.0.0/8"}, "127.0.0.1", []string{"127.0.0.9, 127.0.0.5"}, "127.0.0.9", true},
		{"ipv4 port stripped", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"192.0.2.9:4444"}, "192.0.2.9", true},
		{"ipv6 brackets stripped", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"[2001:db8::1]:443"}, "2001:db8::1", true},
		{"ipv6 text kept as sent", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"2001:DB8::1"}, "2001:DB8::1", true},
		{"invalid dropped", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"unknown, 192.0.2.4, nonsense"}, "192.0.2.4", true},
		{"zone rejected", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"fe80::1%eth0"}, "127.0.0.3", true},
		{"multiple header lines", []string{"REMOTE_ADDR"}, "127.0.0.3", []string{"192.0.2.1", "192.0.2.2"}, "192.0.2.2", true},
		{"private subnets keyword", []string{"PRIVATE_SUBNETS"}, "10.0.0.1", []string{"192.0.2.3, 172.16.0.1"}, "192.0.2.3", true},
		{"untrusted nobody", []string{}, "127.0.0.1", []string{"192.0.2.3"}, "127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.Request
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tt.peer), Port: 5555}, nil)
			tp := parseTrustedProxies(tt.trusted)
			var buf [64]byte
			got := tp.resolveClientIP(&ctx, buf[:])
			if string(got.clientText) != tt.want || got.peerTrusted != tt.trust {
				t.Errorf("getClientIp(peer %s, XFF %q) = %s trusted=%v, want %s trusted=%v",
					tt.peer, tt.xff, got.clientText, got.peerTrusted, tt.want, tt.trust)
			}
		})
	}
}
