// Package certstore owns where ACME certificates, their private keys, the
// ACME account and the locks around issuance live, so that the two LBs of
// an HA pair share them: after a VRRP failover the backup already holds the
// certificate the master obtained, and only one of them orders it (issue 14).
//
// Consul is a certmagic.Storage on Consul KV: values under Options.Prefix,
// locks held by Consul sessions that the holder keeps alive, so that a lock
// of a crashed LB expires. Keys are mapped to Consul key names reversibly
// (keys.go) and every Consul answer is checked before it is believed.
//
// It does not speak ACME, pick certificates or serve TLS: certmagic does,
// driven by whoever configures it.
package certstore
