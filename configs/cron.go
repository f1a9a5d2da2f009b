package configs

import (
	"strings"
	"time"
)

// Cron runs mosparo's web cron (/cron-jobs/execute) on exactly one healthy
// node, from exactly one LB of the fleet (FACTS 6). mosparo keeps the web
// cron's schedule and lock in each node's temp directory, so the call must
// not be fanned out; the LB is the one place that knows which nodes are up
// and which LB is active.
//
// Which LB runs it (CronMode): the VRRP master of vrrp_instance; else, with
// discovery.consul configured, the holder of a Consul session lock on
// consul_lock; else this LB alone when standalone is true. Enabling the cron
// without any of the three is a configuration error, because two LBs with
// the same file would both call it.
type Cron struct {
	// Enabled turns the web cron on. Default false.
	Enabled bool `yaml:"enabled"`
	// Key is mosparo's webCronJobSecretKey (Administration > Cron jobs).
	// Write it as ${MOSPARO_WEB_CRON_KEY} so it stays out of the file.
	// Never logged nor shown in /status. Exclusive with key_file; one of
	// them is required when enabled.
	Key string `yaml:"key"`
	// KeyFile is a file holding the key (a mounted secret), read when the
	// cron starts; surrounding white space is ignored. Exclusive with key.
	KeyFile string `yaml:"key_file"`
	// Interval is the pause between the end of one call and the start of
	// the next. Measured from the end like mosparo's own webCronJobInterval
	// (FACTS 6.1 step 6), so equal settings never make the node answer 425.
	// Default 10m (mosparo's default); at least 1s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one call: connect, the node's run and its answer.
	// mosparo gives the cleanup 80% and the rule packages 60% of PHP's
	// max_execution_time (default 30s), so the default sits above it.
	// Default 60s; 1s..1h. A timed-out call is not retried on another node
	// (it may still be running there); the next interval tries again.
	Timeout Duration `yaml:"timeout"`
	// PreferredNode names the node to call while it is up. Default none:
	// admin nodes first, then the first up node by name, so every LB picks
	// the same node and mosparo's per-node lock catches a double call.
	PreferredNode string `yaml:"preferred_node"`
	// Host is the Host header of the call. Default: the node's host:
	// setting, else its address.
	Host string `yaml:"host"`
	// VRRPInstance names the VRRP instance whose master runs the cron.
	// Default: the only instance when vrrp.instances has exactly one;
	// required with several (active-active), and then the same on every
	// LB, so that exactly one LB (that instance's master) calls it.
	VRRPInstance string `yaml:"vrrp_instance"`
	// ConsulLock is the Consul KV key of the session lock used when no VRRP
	// instance is configured but discovery.consul is. Default
	// "mosparo-lb/cron/leader".
	ConsulLock string `yaml:"consul_lock"`
	// Standalone says this LB is the only one: it runs the cron without
	// VRRP or Consul. Exclusive with vrrp_instance. Default false.
	Standalone bool `yaml:"standalone"`
}

// CronLeadership is which LB runs the web cron, as CronMode says.
type CronLeadership string

// Cron leadership modes returned by CronMode; "" is none.
const (
	CronModeVRRP       CronLeadership = "vrrp"
	CronModeConsul     CronLeadership = "consul"
	CronModeStandalone CronLeadership = "standalone"
)

// Bounds of the cron durations.
const (
	minCronInterval = time.Second
	minCronTimeout  = time.Second
	maxCronTimeout  = time.Hour
)

func (c *Cron) defaults() {
	setDuration(&c.Interval, "10m")
	setDuration(&c.Timeout, "60s")
	if c.ConsulLock == "" {
		c.ConsulLock = "mosparo-lb/cron/leader"
	}
}

// validate checks what the section can check alone; validateCronRefs checks
// its references to nodes, vrrp and discovery.
func (c *Cron) validate(v *validator, path string) {
	switch {
	case c.Key != "" && c.KeyFile != "":
		v.Errorf(path+".key_file", "is exclusive with cron.key; keep one of them")
	case c.Enabled && c.Key == "" && c.KeyFile == "":
		v.Errorf(path+".key", "is required when cron.enabled is true: mosparo's web cron secret key (Administration > Cron jobs), e.g. ${MOSPARO_WEB_CRON_KEY}, or set cron.key_file")
	}
	if c.Interval.D() < minCronInterval {
		v.Errorf(path+".interval", "must be at least %s, got %s", minCronInterval, c.Interval.D())
	}
	if t := c.Timeout.D(); t < minCronTimeout || t > maxCronTimeout {
		v.Errorf(path+".timeout", "must be %s..%s, got %s", minCronTimeout, maxCronTimeout, t)
	}
	if c.Host != "" && strings.ContainsAny(c.Host, "/ \t?#@") {
		v.Errorf(path+".host", "%q is not a host[:port] such as mosparo.example.com", c.Host)
	}
	if c.Standalone && c.VRRPInstance != "" {
		v.Errorf(path+".standalone", "is exclusive with cron.vrrp_instance: a standalone LB has no VRRP peer")
	}
	if strings.HasPrefix(c.ConsulLock, "/") || strings.HasSuffix(c.ConsulLock, "/") {
		v.Errorf(path+".consul_lock", "%q must be a KV key without leading or trailing /, like mosparo-lb/cron/leader", c.ConsulLock)
	}
}

// CronMode says which LB runs the web cron: CronModeVRRP with the instance
// name, CronModeStandalone, CronModeConsul (lock key in Cron.ConsulLock),
// or "" when nothing decides it. It is meaningful on a validated Config.
func (c *Config) CronMode() (mode CronLeadership, vrrpInstance string) {
	switch {
	case c.Cron.VRRPInstance != "":
		return CronModeVRRP, c.Cron.VRRPInstance
	case c.Cron.Standalone:
		return CronModeStandalone, ""
	case len(c.VRRP.Instances) == 1:
		return CronModeVRRP, c.VRRP.Instances[0].Name
	case len(c.VRRP.Instances) > 1:
		return "", ""
	case c.Discovery.Consul != nil:
		return CronModeConsul, ""
	}
	return "", ""
}

// validateCronRefs checks what the cron section names elsewhere in the
// file: the VRRP instance, the preferred node, and that some mode decides
// which LB runs the cron. Called by Config.validate after the sections.
func (c *Config) validateCronRefs(v *validator) {
	if in := c.Cron.VRRPInstance; in != "" {
		var names []string
		found := false
		for _, i := range c.VRRP.Instances {
			names = append(names, i.Name)
			found = found || i.Name == in
		}
		if !found {
			v.Errorf("cron.vrrp_instance", "no vrrp instance is named %q; configured: [%s]", in, strings.Join(names, ", "))
		}
	}
	if p := c.Cron.PreferredNode; p != "" && c.Discovery.Consul == nil {
		found := false
		for _, n := range c.Nodes {
			found = found || n.Name == p
		}
		if !found {
			v.Errorf("cron.preferred_node", "no node is named %q", p)
		}
	}
	if !c.Cron.Enabled {
		return
	}
	if mode, _ := c.CronMode(); mode == "" {
		if len(c.VRRP.Instances) > 1 {
			v.Errorf("cron.vrrp_instance", "is required with %d vrrp instances: name the one whose master runs the web cron, the same on every LB (docs/operations.md, active-active)", len(c.VRRP.Instances))
			return
		}
		v.Errorf("cron.enabled", "needs one LB to run the web cron: configure vrrp (its master runs it), discovery.consul (a session lock on cron.consul_lock), or set cron.standalone: true when this is the only LB")
	}
}
