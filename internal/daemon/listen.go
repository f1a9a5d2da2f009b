package daemon

import (
	"net"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// listenFor is the balancer's Listen hook for cfg's listen: entries: with
// Options.ListenNamed set, each address goes with its entry's name: (the
// socket unit's FileDescriptorName=); else Options.Listen, which may be nil.
func (d *Daemon) listenFor(cfg *configs.Config) func(network, address string) (net.Listener, error) {
	named := d.opts.ListenNamed
	if named == nil {
		return d.opts.Listen
	}
	names := make(map[string]string, len(cfg.Listen))
	for _, l := range cfg.Listen {
		names[l.Address] = l.Name // addresses are unique (configs validates)
	}
	return func(network, address string) (net.Listener, error) {
		return named(network, address, names[address])
	}
}
