package configs

// Cron runs mosparo's web cron on exactly one node from exactly one LB (FACTS 6).
type Cron struct {
	Enabled  bool     `yaml:"enabled"`
	Key      string   `yaml:"key"`      // webCronJobSecretKey; use ${MOSPARO_WEB_CRON_KEY}. Never logged.
	Interval Duration `yaml:"interval"` // Default 10m.
}

func (c *Cron) defaults() {
	setDuration(&c.Interval, "10m")
}

func (c *Cron) validate(v *validator, path string) {
	if c.Enabled && c.Key == "" {
		v.Errorf(path+".key", "is required when cron.enabled is true (mosparo's web cron secret key)")
	}
}
