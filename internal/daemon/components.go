package daemon

import (
	"context"
	"fmt"

	"github.com/mosparo-lb/mosparo-lb/balancer"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap"
)

// components are the long-running parts around the data plane.
type components struct {
	log     *zap.Logger
	static  []configs.Node
	changed chan struct{}
}

func newComponents(cfg *configs.Config, log *zap.Logger) (*components, error) {
	return &components{log: log, static: cfg.Nodes, changed: make(chan struct{})}, nil
}

// start launches every component's Run through run.
func (c *components) start(run func(string, func(context.Context) error)) {}

// reconfigure applies a new configuration to the components.
func (c *components) reconfigure(ctx context.Context, cfg *configs.Config) error {
	c.static = cfg.Nodes
	return nil
}

func (c *components) nodeSpecs() []balancer.NodeSpec {
	out := make([]balancer.NodeSpec, 0, len(c.static))
	for _, n := range c.static {
		out = append(out, balancer.NodeSpec{Name: n.Name, Address: n.Address, Weight: n.Weight, Admin: n.Admin})
	}
	return out
}

func (c *components) nodesChanged() <-chan struct{}     { return c.changed }
func (c *components) syncTargets()                       {}
func (c *components) healthSource() balancer.HealthSource { return nil }
func (c *components) edgeCache() balancer.EdgeCache       { return nil }
func (c *components) poolHealthy() bool                   { return true }
func (c *components) addStatus(st map[string]any)         {}

func (c *components) setNodeState(name, state string) error {
	return fmt.Errorf("node %q: health checking is not enabled", name)
}

func (c *components) nodeStatus(stats []balancer.NodeStat) any { return stats }
