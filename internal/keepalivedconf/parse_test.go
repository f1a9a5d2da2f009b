package keepalivedconf

import (
	"errors"
	"strings"
	"testing"
)

func TestImportSyntaxErrors(t *testing.T) {
	for _, conf := range []string{
		"vrrp_instance X {\n",
		"}\n",
		"vrrp_instance X {\n notify \"/bin/x\n}",
		strings.Repeat("a {", maxImportDepth+2),
		strings.Repeat("#", maxImportBytes+1),
	} {
		if _, _, err := Import(strings.NewReader(conf)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Import(%.40q) error %v, want ErrSyntax", conf, err)
		}
	}
}
