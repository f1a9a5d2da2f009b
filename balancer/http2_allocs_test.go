//go:build !race

package balancer

import "testing"

// h2AdapterAllocs is the adapter's allocations per h2 GET (fill, handle,
// writeH2; BenchmarkHTTP2Adapter): one string per response field value
// (three here), the values' backing array and the Content-Length string.
const h2AdapterAllocs = 5

func TestHTTP2AdapterAllocations(t *testing.T) {
	serve := newH2AdapterBench(t)
	for range 100 {
		serve()
	}
	if a := testing.AllocsPerRun(1000, serve); a > h2AdapterAllocs {
		t.Errorf("%.1f allocs per h2 request through the adapter, want at most %d", a, h2AdapterAllocs)
	}
}
