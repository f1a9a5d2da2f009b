//go:build linux

package vip

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/netnstest"
)

// v2Advert is the advert interval of the VRRPv2 tests: v2 has whole
// seconds only, so each failover takes seconds here.
const v2Advert = time.Second

// TestNetnsKeepalivedV2Interop replaces one keepalived host of a VRRPv2
// group (keepalived's default version) without touching the other: keepalived
// 2.2 in v2 mode, with and without PASS authentication, in both roles.
func TestNetnsKeepalivedV2Interop(t *testing.T) {
	netnstest.Require(t)
	netnstest.RequireKeepalived(t)
	for _, pass := range []string{"", "secret12"} {
		for _, kaMaster := range []bool{true, false} {
			name := fmt.Sprintf("auth_pass=%q/keepalived_master=%v", pass, kaMaster)
			t.Run(name, func(t *testing.T) {
				keepalivedInterop(t, interopCase{kaMaster: kaMaster, version: 2, authPass: pass, advert: v2Advert})
			})
		}
	}
}

// TestNetnsKeepalivedV2Mismatch puts a higher-priority keepalived of the
// same VRID next to our master, once with the wrong PASS password and once
// speaking VRRPv3: its adverts are dropped and counted, never taken for a
// peer, so our instance stays MASTER without a single transition.
func TestNetnsKeepalivedV2Mismatch(t *testing.T) {
	netnstest.Require(t)
	netnstest.RequireKeepalived(t)
	tests := []struct {
		name     string
		ka       netnstest.KeepalivedInstance
		counter  func(InstanceStatus) uint64
		log      string
		logCount int // 0: at least once
	}{
		{"wrong password", netnstest.KeepalivedInstance{Version: 2, AuthPass: "wrong123"},
			func(s InstanceStatus) uint64 { return s.AuthFailures }, "authentication mismatch", 0},
		{"no password", netnstest.KeepalivedInstance{Version: 2},
			func(s InstanceStatus) uint64 { return s.AuthFailures }, "auth type none, want PASS", 0},
		{"VRRPv3 peer", netnstest.KeepalivedInstance{Version: 3},
			func(s InstanceStatus) uint64 { return s.OtherVersionAdverts }, "speaks the other VRRP version", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab4(t)
			a, b := l.Hosts["a"], l.Hosts["b"]
			lbB := startLB(t, b, instanceYAMLAdvert(150, v2Advert, []string{"10.99.0.10/24"}, "version: 2", `auth_pass: "right123"`))
			lbB.waitState("MASTER", 2*MasterDownInterval(150, v2Advert, 3)+2*time.Second)
			before := lbB.instanceStatus().Transitions

			ka := tt.ka
			ka.Name, ka.Interface, ka.VRID, ka.Priority, ka.AdvertInterval, ka.VIPs = "VI_1", "eth0", 51, 200, v2Advert, []string{"10.99.0.10/24"}
			if ka.Version == 3 {
				ka.AdvertInterval = 100 * time.Millisecond
			}
			kproc := netnstest.StartKeepalived(t, a.NS, ka.Config())
			// keepalived does not hear us either: it becomes master too
			// (the misconfiguration an operator must fix), and keeps
			// advertising priority 200 to us.
			netnstest.Eventually(t, 2*MasterDownInterval(200, v2Advert, 3)+2*time.Second, "keepalived becomes master", holds(a, vip4test))
			netnstest.Never(t, 5*v2Advert, "our master yielded to adverts it must drop", func() bool { return lbB.state() != "MASTER" })
			st := lbB.instanceStatus()
			if st.Transitions != before {
				t.Errorf("transitions %d -> %d: the instance flapped", before, st.Transitions)
			}
			// keepalived's adverts may come less often than every second
			// while it keeps dropping ours, and far less on a busy
			// machine: wait for a few to be counted rather than read once.
			netnstest.Eventually(t, 20*v2Advert, tt.name+": at least 2 dropped adverts counted", func() bool {
				return tt.counter(lbB.instanceStatus()) >= 2
			})
			wantLog(t, lbB.proc, tt.log)
			if tt.logCount > 0 {
				if n := strings.Count(lbB.proc.Out.String(), tt.log); n != tt.logCount {
					t.Errorf("%q logged %d times, want %d", tt.log, n, tt.logCount)
				}
			}
			if out := lbB.proc.Out.String(); strings.Contains(out, "right123") || strings.Contains(out, "wrong123") {
				t.Error("a password appears in the log")
			}
			kproc.Terminate()
			lbB.stop()
		})
	}
}
