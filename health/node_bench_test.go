package health

import (
	"testing"
	"time"
)

func BenchmarkNodeHotPath(b *testing.B) {
	clk := newClock()
	c := newChecker(b, testConfig(), Options{Clock: clk})
	setTargets(b, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	n := c.Node("a:80")
	now := clk.Now().Add(time.Second).UnixNano()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if n.State() == Up {
				_ = n.Weight(now)
			}
			n.Observe(Success, now)
		}
	})
}
