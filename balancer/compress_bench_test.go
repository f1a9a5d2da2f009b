package balancer

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkProxyCompressed is BenchmarkProxyGet with compression on, for a
// 2 KiB page (mosparo's login page is 2115 B) and a 32 KiB script: what
// gzip and brotli at the default level 1 add to a proxied answer.
func BenchmarkProxyCompressed(b *testing.B) {
	for _, size := range []int{2 << 10, 32 << 10} {
		var sb strings.Builder
		for i := 0; sb.Len() < size; i++ {
			// Rows that differ, so the encoders have real work to do.
			fmt.Fprintf(&sb, "<tr data-row=\"%d\"><td style=\"color:#%06x\">%x</td></tr>\n", i, (i*2654435761)&0xffffff, i*i)
		}
		page := []byte(sb.String()[:size])
		for _, ae := range []string{"", "gzip", "br"} {
			b.Run(strings.Join([]string{strconv.Itoa(size>>10) + "KiB", "ae=" + ae}, "/"), func(b *testing.B) {
				l := newInmemLB(b, "listen: [{address: \"127.0.0.1:0\"}]\ncompression: {enabled: true}\n", page, 3, "GET", "/login", nil)
				if ae != "" {
					l.tmpl.Header.Set("Accept-Encoding", ae)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if l.once() != 200 {
						b.Fatal("status")
					}
				}
				b.ReportMetric(float64(len(l.ctx.Response.Body())), "B/answer")
			})
		}
	}
}
