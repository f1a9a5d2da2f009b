// Package configs owns mosparo-lb's YAML configuration: the schema as
// documented Go structs, their defaults, ${ENV} expansion, strict decoding
// (unknown keys are errors) and validation whose every error names the file,
// line and column of the offending value and what would be valid.
//
// The structs are plain data; runtime types are built from them by the
// packages that own each concept. configs imports no other package of ours.
// The reference file mosparo-lb.yaml and the demo's demo.yaml are embedded.
package configs
