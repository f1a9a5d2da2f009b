package mosparotest

import (
	"testing"
)

func BenchmarkHandler(b *testing.B) {
	n, inc := newDirectNode(b)
	cases := append([]handlerCase{}, hotPaths...)
	cases = append(cases,
		handlerCase{name: "request-submit-token", method: "POST", uri: "/api/v1/frontend/request-submit-token",
			headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			body:    "publicKey=" + DemoPublicKey + "&pageTitle=Contact&pageUrl=https%3A%2F%2Fexample.com%2F", status: 200},
		handlerCase{name: "echo", method: "GET", uri: "/__echo", headers: []string{"X-Forwarded-For", "192.0.2.1"}, status: 200},
	)
	for _, hc := range cases {
		b.Run(hc.name, func(b *testing.B) {
			ctx := hc.ctx()
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				n.handle(ctx, inc)
			}
		})
	}
}
