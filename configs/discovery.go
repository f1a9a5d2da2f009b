package configs

// Discovery adds nodes found in Consul to the static ones.
type Discovery struct {
	// Consul, when set, watches a service's passing instances.
	Consul *Consul `yaml:"consul"`
}

// Consul is a Consul agent and the service to watch (consul/FACTS.md).
type Consul struct {
	Address    string   `yaml:"address"`    // agent host:port. Default 127.0.0.1:8500.
	Service    string   `yaml:"service"`    // service name. Required.
	Tags       []string `yaml:"tags"`       // instances must carry every tag.
	Token      string   `yaml:"token"`      // ACL token; use ${CONSUL_TOKEN}.
	Datacenter string   `yaml:"datacenter"` // default: the agent's.
}

func (d *Discovery) defaults() {
	if d.Consul != nil && d.Consul.Address == "" {
		d.Consul.Address = "127.0.0.1:8500"
	}
}

func (d *Discovery) validate(v *validator, path string) {
	if d.Consul != nil && d.Consul.Service == "" {
		v.Errorf(path+".consul.service", "is required: the Consul service name of the mosparo nodes")
	}
}
