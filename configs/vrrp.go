package configs

// VRRP holds the VRRPv3 instances this LB takes part in (vrrp/FACTS.md).
type VRRP struct {
	Instances []VRRPInstance `yaml:"instances"`
}

// VRRPInstance is one virtual router.
type VRRPInstance struct {
	Name            string   `yaml:"name"`
	Interface       string   `yaml:"interface"`
	VirtualRouterID int      `yaml:"virtual_router_id"` // 1..255
	Priority        int      `yaml:"priority"`          // 1..255. Default 100.
	AdvertInterval  Duration `yaml:"advert_interval"`   // 10ms..40.95s. Default 1s.
	VirtualIPs      []string `yaml:"virtual_ips"`       // CIDR form, e.g. 192.0.2.10/24
	UnicastPeers    []string `yaml:"unicast_peers"`
}

func (r *VRRP) defaults() {
	for i := range r.Instances {
		setInt(&r.Instances[i].Priority, 100)
		setDuration(&r.Instances[i].AdvertInterval, "1s")
	}
}

func (r *VRRP) validate(v *validator, path string) {}
