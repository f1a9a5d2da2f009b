package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ACMEGauge is one domain of listen[].tls.acme (issue 14).
type ACMEGauge struct {
	Domain string
	// NotAfter is the served certificate's expiry; zero without one.
	NotAfter time.Time
	// Obtained and Failures count this LB's orders and failed attempts.
	Obtained, Failures uint64
	// OCSPStapled: handshakes get an OCSP staple with the certificate.
	OCSPStapled bool
}

var (
	descACMEExpiry   = prometheus.NewDesc("mosparo_lb_acme_certificate_expiry_seconds", "Unix time the served ACME certificate of the domain expires (absent while it has none).", []string{"domain"}, nil)
	descACMEObtained = prometheus.NewDesc("mosparo_lb_acme_certificates_obtained_total", "Certificates this LB obtained from the CA for the domain, renewals included.", []string{"domain"}, nil)
	descACMEFailures = prometheus.NewDesc("mosparo_lb_acme_renewal_failures_total", "Failed attempts of this LB to obtain or renew the domain's certificate.", []string{"domain"}, nil)
	descACMEStapled  = prometheus.NewDesc("mosparo_lb_acme_ocsp_stapled", "1 while handshakes for the domain get a valid OCSP staple, else 0.", []string{"domain"}, nil)
)

func describeACME(ch chan<- *prometheus.Desc) {
	ch <- descACMEExpiry
	ch <- descACMEObtained
	ch <- descACMEFailures
	ch <- descACMEStapled
}

func collectACME(ch chan<- prometheus.Metric, gs []ACMEGauge) {
	for _, g := range gs {
		if !g.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descACMEExpiry, prometheus.GaugeValue, float64(g.NotAfter.Unix()), g.Domain)
		}
		ch <- prometheus.MustNewConstMetric(descACMEObtained, prometheus.CounterValue, float64(g.Obtained), g.Domain)
		ch <- prometheus.MustNewConstMetric(descACMEFailures, prometheus.CounterValue, float64(g.Failures), g.Domain)
		stapled := 0.0
		if g.OCSPStapled {
			stapled = 1
		}
		ch <- prometheus.MustNewConstMetric(descACMEStapled, prometheus.GaugeValue, stapled, g.Domain)
	}
}
