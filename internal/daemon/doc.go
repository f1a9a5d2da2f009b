// Package daemon owns the lifecycle of one mosparo-lb process: it builds
// every component from a loaded configuration (discovery, health, the edge
// CSS cache, the balancer, VRRP, cron, the admin API), runs them under one
// context, rebuilds the data plane on reload and discovery updates, and
// stops them in order. cmd/mosparo-lb only parses flags and signals.
package daemon
