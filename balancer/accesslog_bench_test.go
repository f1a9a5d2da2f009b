package balancer

import (
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func BenchmarkProxyGetWithAccessLog(b *testing.B) {
	page := []byte(strings.Repeat("<p>mosparo</p>", 150))
	l := newInmemLB(b, "listen: [{address: \"127.0.0.1:0\"}]\n", page, 3, "GET", "/login", nil)
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	l.srv.rt.Load().deps.AccessLog = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	b.ReportAllocs()
	for b.Loop() {
		if l.once() != 200 {
			b.Fatal("status")
		}
	}
}
