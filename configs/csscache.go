package configs

// CSSCache serves mosparo's prepared CSS from the shared cache the nodes
// write it to (FACTS 5). Off when Backend is empty.
type CSSCache struct {
	Backend string `yaml:"backend"` // redis or memcached; empty disables.
	URL     string `yaml:"url"`     // redis://host:6379/0 or memcached://host:11211
}

func (c *CSSCache) defaults() {}

func (c *CSSCache) validate(v *validator, path string) {
	switch c.Backend {
	case "", "redis", "memcached":
	default:
		v.Errorf(path+".backend", "must be redis or memcached (or empty to disable), got %q", c.Backend)
	}
	if c.Backend != "" && c.URL == "" {
		v.Errorf(path+".url", "is required when css_cache.backend is set")
	}
}
