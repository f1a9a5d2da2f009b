// Package consulclient builds the official Consul client
// (github.com/hashicorp/consul/api) the way mosparo-lb's Consul users
// (discovery, the cron lock) need it: every answer body bounded, requests
// optionally bound to a context the caller ends, and errors of non-200
// answers made printable, since their bodies come from the network.
//
// It holds no state; each user owns its client.
package consulclient
