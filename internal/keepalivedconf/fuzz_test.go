package keepalivedconf

import (
	"errors"
	"strings"
	"testing"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// FuzzImport: any input is either refused with an error or gives
// YAML that the config loader can read (validation errors are fine).
func FuzzImport(f *testing.F) {
	f.Add(string(readTestdata(f, "sample.conf")))
	f.Add(string(readTestdata(f, "vrrp2-pass.conf")))
	f.Add("vrrp_instance X { virtual_ipaddress { 10.0.0.1/24 dev eth0 label eth0:1 } }")
	f.Add("vrrp_instance {{}}")
	f.Add("vrrp_instance X {\n advert_int 1e309\n preempt_delay -0\n}")
	f.Add("\"")
	f.Fuzz(func(t *testing.T, conf string) {
		y, _, err := Import(strings.NewReader(conf))
		if err != nil {
			return
		}
		_, err = configs.Parse("fuzz.yaml", y, func(string) (string, bool) { return "", false })
		var ce *configs.Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("imported YAML is not a config file: %v\n%s", err, y)
		}
		for _, p := range ceProblems(ce) {
			if strings.HasPrefix(p.Msg, "YAML syntax") || strings.Contains(p.Msg, "unknown key") {
				t.Fatalf("imported YAML broken: %v\n%s", p, y)
			}
		}
	})
}

func ceProblems(e *configs.Error) []configs.Problem {
	if e == nil {
		return nil
	}
	return e.Problems
}
