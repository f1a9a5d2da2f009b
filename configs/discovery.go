package configs

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Discovery adds nodes found in Consul to the static ones.
type Discovery struct {
	// Consul, when set, watches a service's passing instances. Nil: the
	// static nodes are the whole set.
	Consul *Consul `yaml:"consul"`
}

// Consul is a Consul agent and the service to watch (consul/FACTS.md). The
// watch is a blocking query on /v1/health/service/<service>?passing, so an
// instance counts only while every one of its checks (serfHealth included)
// is passing.
type Consul struct {
	// Address is the agent's host:port. Default 127.0.0.1:8500.
	Address string `yaml:"address"`
	// Scheme is http or https. Default http.
	Scheme string `yaml:"scheme"`
	// Service is the Consul service name of the mosparo nodes. Required.
	Service string `yaml:"service"`
	// Tags: an instance must carry every one of them. Default: none.
	Tags []string `yaml:"tags"`
	// AdminTag marks instances that are admin nodes (preferred for admin and
	// setup traffic, like nodes[].admin). Default "mosparo-admin".
	AdminTag string `yaml:"admin_tag"`
	// Token is the ACL token, sent as X-Consul-Token; write ${CONSUL_TOKEN}.
	// It needs service:read on the service and node:read (and, with
	// register, service:write on the LB's name). Never logged. Default:
	// none (the agent's default token).
	Token string `yaml:"token"`
	// Datacenter to query. Default: the agent's own.
	Datacenter string `yaml:"datacenter"`
	// Wait is how long one blocking query may be held by the agent when
	// nothing changes (Consul adds up to wait/16 of jitter and caps it at
	// 10m). It also bounds how long a silently dead agent goes unnoticed.
	// 1s..10m. Default 60s.
	Wait Duration `yaml:"wait"`
	// BackoffMin is the first retry delay after a failed query and also the
	// least time between two queries (a rate limit on a tight loop). Default 500ms.
	BackoffMin Duration `yaml:"backoff_min"`
	// BackoffMax caps the retry delay, which doubles with each failure in a
	// row. At least backoff_min. Default 30s.
	BackoffMax Duration `yaml:"backoff_max"`
	// Register, when set, registers this LB itself as a service in the
	// same agent, with an HTTP check on its admin listener.
	Register *ConsulRegister `yaml:"register"`
}

// ConsulRegister describes the LB's own service registration. It is
// registered when discovery starts, re-registered if the agent loses it, and
// deregistered on a clean stop.
type ConsulRegister struct {
	// ID is the service instance ID, unique on the agent. Default: name
	// followed by "-" and the host name.
	ID string `yaml:"id"`
	// Name is the service name. Default "mosparo-lb".
	Name string `yaml:"name"`
	// Address is the address advertised for the LB (usually the VIP or
	// the host's address). Default: empty, which Consul reads as the
	// agent node's address.
	Address string `yaml:"address"`
	// Port is the advertised port (the public listener), 1..65535. Required.
	Port int `yaml:"port"`
	// Tags are added to the registration. Default: none.
	Tags []string `yaml:"tags"`
	// CheckURL is what the agent probes with an HTTP GET. Default:
	// http://<admin.listen>/healthz, with a wildcard host replaced by 127.0.0.1.
	CheckURL string `yaml:"check_url"`
	// CheckInterval is the time between the agent's probes. Default 10s.
	CheckInterval Duration `yaml:"check_interval"`
	// CheckTimeout bounds one probe; shorter than check_interval. Default
	// 2s, or half of check_interval when that is shorter.
	CheckTimeout Duration `yaml:"check_timeout"`
	// DeregisterAfter lets the agent drop the registration after the check
	// has been critical this long (a crashed LB). 0 keeps it. Default 0.
	DeregisterAfter Duration `yaml:"deregister_after"`
}

func (d *Discovery) defaults() {
	c := d.Consul
	if c == nil {
		return
	}
	if c.Address == "" {
		c.Address = "127.0.0.1:8500"
	}
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	if c.AdminTag == "" {
		c.AdminTag = "mosparo-admin"
	}
	setDuration(&c.Wait, "60s")
	setDuration(&c.BackoffMin, "500ms")
	setDurationAtLeast(&c.BackoffMax, "30s", c.BackoffMin)
	if r := c.Register; r != nil {
		if r.Name == "" {
			r.Name = "mosparo-lb"
		}
		setDuration(&r.CheckInterval, "10s")
		setDurationAtMost(&r.CheckTimeout, "2s", r.CheckInterval/2)
	}
}

func (d *Discovery) validate(v *validator, path string) {
	c := d.Consul
	if c == nil {
		return
	}
	p := path + ".consul"
	if err := hostPort(c.Address); err != nil {
		v.Errorf(p+".address", "%v", err)
	}
	if c.Scheme != "http" && c.Scheme != "https" {
		v.Errorf(p+".scheme", "must be http or https, got %q", c.Scheme)
	}
	if c.Service == "" {
		v.Errorf(p+".service", "is required: the Consul service name of the mosparo nodes")
	} else if strings.ContainsAny(c.Service, "/?#% \t") {
		v.Errorf(p+".service", "%q is not a Consul service name (no /, ?, #, %%, spaces)", c.Service)
	}
	for i, t := range c.Tags {
		if t == "" {
			v.Errorf(fmt.Sprintf("%s.tags[%d]", p, i), "is empty; remove it or name a tag")
		}
	}
	if c.Wait.D() < time.Second || c.Wait.D() > 10*time.Minute {
		v.Errorf(p+".wait", "must be 1s..10m (Consul caps a blocking query at 10m), got %s", c.Wait.D())
	}
	positive(v, p+".backoff_min", c.BackoffMin)
	if c.BackoffMax < c.BackoffMin {
		v.Errorf(p+".backoff_max", "must be at least backoff_min (%s), got %s", c.BackoffMin.D(), c.BackoffMax.D())
	}
	if c.Register != nil {
		c.Register.validate(v, p+".register")
	}
}

func (r *ConsulRegister) validate(v *validator, path string) {
	if strings.ContainsAny(r.ID, "/?#% \t") {
		v.Errorf(path+".id", "%q may not contain /, ?, #, %% or spaces", r.ID)
	}
	if strings.ContainsAny(r.Name, "/?#% \t") {
		v.Errorf(path+".name", "%q may not contain /, ?, #, %% or spaces", r.Name)
	}
	if r.Address != "" && net.ParseIP(r.Address) == nil && strings.ContainsAny(r.Address, ":/ ") {
		v.Errorf(path+".address", "%q must be an IP address or host name without a port (the port goes in port)", r.Address)
	}
	if r.Port < 1 || r.Port > 65535 {
		v.Errorf(path+".port", "is required: the advertised port 1..65535, got %d", r.Port)
	}
	if r.CheckURL != "" {
		u, err := url.Parse(r.CheckURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf(path+".check_url", "%q must be an absolute http:// or https:// URL", r.CheckURL)
		}
	}
	positive(v, path+".check_interval", r.CheckInterval)
	positive(v, path+".check_timeout", r.CheckTimeout)
	if r.CheckTimeout >= r.CheckInterval {
		v.Errorf(path+".check_timeout", "must be shorter than check_interval (%s)", r.CheckInterval.D())
	}
	if r.DeregisterAfter != 0 && r.DeregisterAfter.D() < time.Minute {
		v.Errorf(path+".deregister_after", "must be 0 (keep) or at least 1m (Consul's minimum), got %s", r.DeregisterAfter.D())
	}
}
