package configs

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from configs/mosparo-lb.yaml")

// configurationDoc is docs/configuration.md: the reference file itself,
// which is the one place every key is documented.
func configurationDoc() []byte {
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated from configs/mosparo-lb.yaml by `go test ./configs -run TestConfigurationDoc -update`; do not edit. -->\n\n")
	b.WriteString("Every key mosparo-lb accepts, with its default, exactly as in `configs/mosparo-lb.yaml`\n")
	b.WriteString("(a test keeps that file valid and complete, and this page identical to it).\n")
	b.WriteString("Validate a file with `mosparo-lb check -config FILE`: every error names file, line and column.\n\n")
	b.WriteString("```yaml\n")
	b.Write(Reference())
	b.WriteString("```\n")
	return b.Bytes()
}

func TestConfigurationDoc(t *testing.T) {
	const path = "../docs/configuration.md"
	want := configurationDoc()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date; run: go test ./configs -run TestConfigurationDoc -update", path)
	}
}
