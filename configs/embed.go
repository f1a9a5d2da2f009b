package configs

import (
	"bytes"
	_ "embed"
)

//go:embed mosparo-lb.yaml
var reference []byte

//go:embed demo.yaml
var demo []byte

// Reference returns configs/mosparo-lb.yaml: every key, commented, with its default.
func Reference() []byte { return bytes.Clone(reference) }

// Demo returns the configuration of `mosparo-lb demo`.
func Demo() []byte { return bytes.Clone(demo) }
