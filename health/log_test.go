package health

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestKeyLogs: state changes and ejections are logged once, with the fixed
// field keys (STYLE 5); a repeated refused ejection is not.
func TestKeyLogs(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	clk := newClock()
	c := newChecker(t, testConfig(), Options{Logger: zap.New(core), Clock: clk, Rand: func(int64) int64 { return 0 }})
	setTargets(t, c, []Target{{Name: "a", Address: "a:80"}, {Name: "b", Address: "b:80"}})
	verdict(t, c, clk, "a:80", Up)
	verdict(t, c, clk, "b:80", Down)
	n := c.Node("a:80")
	for range 9 { // three trips, all refused: a is the last up node
		n.Observe(ServerError, clk.Now().UnixNano())
	}
	tests := []struct {
		msg   string
		count int
	}{
		{"node added", 2},
		{"node state changed", 1},
		{"passive ejection refused", 1},
		{"node ejected", 0},
	}
	for _, tt := range tests {
		got := logs.FilterMessage(tt.msg)
		if got.Len() != tt.count {
			t.Errorf("%q logged %d times, want %d", tt.msg, got.Len(), tt.count)
		}
	}
	ch := logs.FilterMessage("node state changed").All()
	if len(ch) == 1 {
		f := ch[0].ContextMap()
		if f["node"] != "b" || f["from"] != "up" || f["to"] != "down" || f["reason"] != "test down" {
			t.Errorf("state change fields = %v", f)
		}
	}
	if l := logs.All(); len(l) > 0 && l[0].LoggerName != "health" {
		t.Errorf("logger name %q, want health", l[0].LoggerName)
	}
}
