package cssproxy_test

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/cssproxy"
)

// Example shows the wiring the balancer does: Run for the proxy's
// lifetime, Serve first for /resources requests, a node when it declines.
func Example() {
	cfg, err := configs.Parse("lb.yaml", []byte("css_cache: {backend: redis, url: \"redis://10.0.0.5:6379/0\"}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		panic(err)
	}
	p, err := cssproxy.New(cfg.CSSCache, cssproxy.Options{Logger: zap.NewNop()})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	forwardToNode := func(*fasthttp.RequestCtx) {}
	handler := func(rc *fasthttp.RequestCtx) {
		// scheme and host are what the client used (after trusted
		// X-Forwarded-* handling); the prefix is X-Forwarded-Prefix.
		if p.Serve(rc, []byte("https"), rc.Host(), nil) {
			return
		}
		forwardToNode(rc)
	}
	_ = handler

	cancel()
	<-done
}
