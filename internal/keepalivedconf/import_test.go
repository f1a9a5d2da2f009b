package keepalivedconf

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

func TestImport(t *testing.T) {
	y, warnings, err := Import(bytes.NewReader(readTestdata(t, "sample.conf")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = configs.Parse("imported.yaml", y, func(string) (string, bool) { return "", false })
	if err != nil && !strings.Contains(err.Error(), "nopreempt") {
		t.Fatalf("imported YAML does not load: %v\n%s", err, y)
	}
	// state MASTER + nopreempt is refused by validation, as by keepalived;
	// check the values with the state fixed.
	fixed := strings.Replace(string(y), "state: MASTER", "state: BACKUP", 1)
	c, err := configs.Parse("imported.yaml", []byte(fixed), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("imported YAML does not load: %v\n%s", err, y)
	}
	in := c.VRRP.Instances[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", in.Name, "VI_1"},
		{"interface", in.Interface, "eth0"},
		{"vrid", in.VirtualRouterID, 51},
		{"priority (150 + positive weight 10)", in.Priority, 160},
		{"advert", in.AdvertInterval.D().String(), "100ms"},
		{"nopreempt", in.Nopreempt, true},
		{"preempt_delay", in.PreemptDelay.D().String(), "5s"},
		{"unicast_src_ip", in.UnicastSrcIP, "10.0.0.11"},
		{"peers", strings.Join(in.UnicastPeers, ","), "10.0.0.12,10.0.0.13"},
		{"vips", strings.Join(in.VirtualIPs, ","), "192.0.2.10/24 dev eth0 label eth0:vip,192.0.2.11"},
		{"tracks", len(in.TrackInterfaces), 3},
		{"track fault", in.TrackInterfaces[0].Weight, 0},
		{"track -20", in.TrackInterfaces[1].Weight, 20},
		{"track +10", in.TrackInterfaces[2].Weight, 10},
		{"garp delay", in.GARP.Delay.D().String(), "2s"},
		{"garp repeat", in.GARP.Repeat, 3},
		{"garp refresh (global)", in.GARP.Refresh.D().String(), "1m0s"},
		{"notify", in.Notify.Script, "/etc/keepalived/notify.sh"},
		{"notify master", in.Notify.Master, "/usr/local/bin/became-master"},
		{"v6 vips", strings.Join(c.VRRP.Instances[1].VirtualIPs, ","), "2001:db8::10/64"},
		{"v6 defaults priority", c.VRRP.Instances[1].Priority, 100},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	all := strings.Join(warnings, "\n")
	for _, w := range []string{"vrrp_script chk_haproxy", "authentication ignored", "track_script ignored", "use_vmac ignored",
		"brd ignored", "scope ignored", "min_ttl 250 ignored", "virtual_server (LVS) ignored", "priority 160 (was 150)"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "VRRPv2") {
		t.Errorf("vrrp_version 3 given, yet warned about VRRPv2:\n%s", all)
	}
}

func TestImportWarnings(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"v2 AH", "vrrp_instance X {\n authentication {\n auth_type AH\n auth_pass x\n }\n}", "AH is not carried over"},
		{"v2 PASS without password", "vrrp_instance X {\n authentication {\n auth_type PASS\n }\n}", "without auth_pass"},
		{"v2 sub-second", "vrrp_instance X {\n advert_int 0.5\n}", "advert_int 500ms became 1s"},
		{"v3 authentication", "vrrp_instance X {\n version 3\n authentication {\n auth_type PASS\n auth_pass x\n }\n}", "authentication ignored: VRRPv3"},
		{"instance version 3", "vrrp_instance X {\n version 3\n interface eth0\n virtual_router_id 1\n}", "no virtual_ipaddress"},
		{"sync group", "vrrp_sync_group G {\n group {\n X\n }\n}", "run independently"},
		{"include", "include /etc/keepalived/conf.d/*.conf", "not followed"},
		{"bad vrid", "vrrp_instance X {\n virtual_router_id 300\n}", `virtual_router_id "300" is not 1..255`},
		{"bad advert", "vrrp_instance X {\n advert_int fast\n}", `advert_int "fast"`},
		{"unknown", "vrrp_instance X {\n frobnicate yes\n}", "frobnicate in vrrp_instance X ignored"},
		{"relative notify", "vrrp_instance X {\n notify notify.sh\n}", "absolute path"},
		{"nothing", "# empty\n", "no vrrp_instance found"},
		{"bad vip", "vrrp_instance X {\n virtual_ipaddress {\n nope\n }\n}", `"nope" is not an address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, w, err := Import(strings.NewReader(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(w, "\n"), tt.want) {
				t.Errorf("warnings %q lack %q", w, tt.want)
			}
		})
	}
}

func TestImportV2(t *testing.T) {
	y, warnings, err := Import(bytes.NewReader(readTestdata(t, "vrrp2-pass.conf")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), "s3cr3t") || strings.Contains(strings.Join(warnings, "\n"), "s3cr3t") {
		t.Fatalf("the password was printed:\n%s\n%q", y, warnings)
	}
	if !strings.Contains(string(y), "auth_pass: ${VRRP_AUTH_PASS_VI_1}") {
		t.Errorf("YAML lacks the ${ENV} reference:\n%s", y)
	}
	env := map[string]string{"VRRP_AUTH_PASS_VI_1": "s3cr3t-l"}
	c, err := configs.Parse("imported.yaml", y, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("imported YAML does not load: %v\n%s", err, y)
	}
	v2, v6 := c.VRRP.Instances[0], c.VRRP.Instances[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", v2.Version, 2},
		{"advert", v2.AdvertInterval.D().String(), "2s"},
		{"auth_type", v2.AuthType, "PASS"},
		{"auth_pass from the environment", v2.AuthPass, "s3cr3t-l"},
		{"IPv6 instance speaks v3 (keepalived does)", v6.Version, 3},
		{"IPv6 instance has no auth", v6.AuthPass, ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	all := strings.Join(warnings, "\n")
	for _, w := range []string{"set the environment variable VRRP_AUTH_PASS_VI_1", "first 8 characters", "authentication ignored: VRRPv3"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "VRRPv2") || strings.Contains(all, "vrrp_version") {
		t.Errorf("warned about the VRRP version:\n%s", all)
	}
}

func TestAuthPassEnv(t *testing.T) {
	for in, want := range map[string]string{"VI_1": "VRRP_AUTH_PASS_VI_1", "web-v6": "VRRP_AUTH_PASS_WEB_V6", "a.b$c": "VRRP_AUTH_PASS_A_B_C"} {
		if got := authPassEnv(in); got != want {
			t.Errorf("authPassEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

// readTestdata returns the contents of testdata/name.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
