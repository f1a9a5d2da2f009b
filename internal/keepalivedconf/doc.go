// Package keepalivedconf reads a keepalived.conf and writes the `vrrp:`
// section of mosparo-lb's YAML for it (`mosparo-lb import-keepalived`), so
// that a keepalived group can be replaced host by host.
//
// It owns keepalived's configuration syntax (parse.go: words, quotes,
// comments, nested blocks, bounded in size and depth) and the mapping of
// vrrp_instance and global_defs keywords onto configs.VRRP (import.go).
// Whatever has no exact equivalent is reported as a warning, never dropped
// silently; secrets are never copied.
//
// It must not run VRRP or touch the network: that is package vip, which
// this package does not import.
package keepalivedconf
