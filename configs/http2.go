package configs

import "time"

// HTTP2 is how a TLS listener speaks HTTP/2 to clients (offered by ALPN
// next to http/1.1). Limits HTTP/2 shares with HTTP/1.1 are not repeated
// here: limits.max_header_bytes bounds the header list (SETTINGS_MAX_HEADER_LIST_SIZE),
// limits.max_body_bytes and body_bytes the request bodies, timeouts.client_read
// reading one request, timeouts.idle a connection with no open stream.
type HTTP2 struct {
	// Enabled offers h2 by ALPN. Default true on a TLS listener; a listener
	// without TLS speaks HTTP/1.1 only (no h2c), and setting it true there
	// is an error.
	Enabled *bool `yaml:"enabled"`
	// MaxConcurrentStreams is how many requests one connection may have
	// open at once (SETTINGS_MAX_CONCURRENT_STREAMS), 1..1000. Default 100
	// (HAProxy's and nginx's 100 and 128; a page with the widget uses a dozen).
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// StreamWindowBytes is the flow-control window of one request body,
	// 65535..16777216. Default 262144 (256 KiB).
	StreamWindowBytes int `yaml:"stream_window_bytes"`
	// ConnWindowBytes is the flow-control window of all request bodies of
	// a connection together, at least stream_window_bytes, at most
	// 67108864. Default 1048576 (1 MiB).
	ConnWindowBytes int `yaml:"conn_window_bytes"`
	// MaxResets is how many streams a client may reset (RST_STREAM) within
	// reset_window; one more closes the connection (rapid reset,
	// CVE-2023-44487), 1..100000. Default 200 (a browser cancels a few when
	// a page is left; the attack sends thousands a second).
	MaxResets int `yaml:"max_resets"`
	// ResetWindow is the period max_resets counts over, 1s..10m. Default 10s.
	ResetWindow Duration `yaml:"reset_window"`
}

// On reports whether h2 is offered (Enabled, defaulted).
func (h *HTTP2) On() bool { return h != nil && h.Enabled != nil && *h.Enabled }

// defaults fills the listener's http2 block: on for TLS listeners unless
// turned off.
func (l *Listener) http2Defaults() {
	if l.TLS == nil && l.HTTP2 == nil {
		return
	}
	if l.HTTP2 == nil {
		l.HTTP2 = &HTTP2{}
	}
	h := l.HTTP2
	if h.Enabled == nil {
		on := l.TLS != nil
		h.Enabled = &on
	}
	setInt(&h.MaxConcurrentStreams, 100)
	setInt(&h.StreamWindowBytes, 256<<10)
	setInt(&h.ConnWindowBytes, max(1<<20, h.StreamWindowBytes))
	setInt(&h.MaxResets, 200)
	setDuration(&h.ResetWindow, "10s")
}

func (l *Listener) validateHTTP2(v *validator, p string) {
	h := l.HTTP2
	if h == nil {
		return
	}
	p += ".http2"
	if l.TLS == nil && h.On() {
		v.Errorf(p+".enabled", "needs tls on the listener: HTTP/2 is offered by ALPN during the TLS handshake (h2c is not supported)")
	}
	if n := h.MaxConcurrentStreams; n < 1 || n > 1000 {
		v.Errorf(p+".max_concurrent_streams", "must be 1..1000, got %d", n)
	}
	if n := h.StreamWindowBytes; n < 65535 || n > 16<<20 {
		v.Errorf(p+".stream_window_bytes", "must be 65535..16777216, got %d", n)
	}
	if n := h.ConnWindowBytes; n < h.StreamWindowBytes || n > 64<<20 {
		v.Errorf(p+".conn_window_bytes", "must be at least stream_window_bytes (%d) and at most 67108864, got %d", h.StreamWindowBytes, n)
	}
	if n := h.MaxResets; n < 1 || n > 100_000 {
		v.Errorf(p+".max_resets", "must be 1..100000, got %d", n)
	}
	if d := h.ResetWindow.D(); d < time.Second || d > 10*time.Minute {
		v.Errorf(p+".reset_window", "must be 1s..10m, got %s", d)
	}
}
