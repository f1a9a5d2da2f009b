package admin

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	at := func(counts map[int]uint64) trafficTotals {
		var tt trafficTotals
		for i, c := range counts {
			tt.buckets[i] = c
		}
		return tt
	}
	for _, tt := range []struct {
		name   string
		in     trafficTotals
		want   time.Duration
		wantOK bool
	}{
		{"no requests", trafficTotals{}, 0, false},
		// 1ms < d <= 2.5ms: linear within the bucket, like histogram_quantile.
		{"one bucket", at(map[int]uint64{1: 100}), time.Millisecond + 1485*time.Microsecond, true},
		{"slow tail", at(map[int]uint64{0: 98, 9: 2}), 500*time.Millisecond + 250*time.Millisecond, true},
		{"above the top bound", at(map[int]uint64{numBuckets - 1: 5}), 30 * time.Second, true},
		{"fast only", at(map[int]uint64{0: 1000}), 990 * time.Microsecond, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.in.quantile(0.99)
			if ok != tt.wantOK || (got-tt.want).Abs() > time.Microsecond {
				t.Errorf("quantile(0.99) = %v, %v, want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClassTrafficBuckets(t *testing.T) {
	var c classTraffic
	for _, d := range []time.Duration{0, time.Millisecond, time.Millisecond + 1, time.Hour} {
		c.observe(200, d)
	}
	c.observe(502, time.Millisecond)
	got := c.load()
	if got.requests != 5 || got.errors != 1 || got.buckets[0] != 3 || got.buckets[1] != 1 || got.buckets[numBuckets-1] != 1 {
		t.Errorf("counters = %+v", got)
	}
	if len(latencyBuckets) != numBuckets-1 {
		t.Errorf("numBuckets %d does not match %d latency buckets", numBuckets, len(latencyBuckets))
	}
}
