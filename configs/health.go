package configs

// Health configures active checks against mosparo's health API, passive
// outlier detection and slow start (FACTS 1).
type Health struct {
	Interval  Duration `yaml:"interval"`   // between checks of a steady node. Default 2s.
	Timeout   Duration `yaml:"timeout"`    // one check. Default 1s.
	Rise      int      `yaml:"rise"`       // consecutive good checks to come up. Default 2.
	Fall      int      `yaml:"fall"`       // consecutive bad checks to go down. Default 2.
	SlowStart Duration `yaml:"slow_start"` // weight ramp after coming up. Default 30s; 0 disables.
}

func (h *Health) defaults() {
	setDuration(&h.Interval, "2s")
	setDuration(&h.Timeout, "1s")
	setInt(&h.Rise, 2)
	setInt(&h.Fall, 2)
}

func (h *Health) validate(v *validator, path string) {
	if h.Timeout.D() >= h.Interval.D() {
		v.Errorf(path+".timeout", "must be shorter than health.interval (%s)", h.Interval.D())
	}
	if h.Rise < 1 || h.Rise > 100 {
		v.Errorf(path+".rise", "must be 1..100, got %d", h.Rise)
	}
	if h.Fall < 1 || h.Fall > 100 {
		v.Errorf(path+".fall", "must be 1..100, got %d", h.Fall)
	}
}
