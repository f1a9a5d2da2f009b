// Package handoff passes listening sockets from one process to the next so a
// restart or a binary upgrade refuses no connection: it adopts the sockets
// systemd hands over by socket activation (LISTEN_FDS, sd_listen_fds(3)) or
// that a parent passes at a re-exec upgrade, gives them to whoever asks for
// a listener on their address, binds the rest, and starts the new binary
// with every held socket and waits until it reports ready.
//
// It owns the environment protocol (env.go), the matching of sockets to
// addresses (sockets.go) and the parent and child sides of an upgrade
// (upgrade.go). It does not serve, drain or signal: when to upgrade and what
// to do after the child is ready is the caller's (cmd/mosparo-lb).
package handoff
