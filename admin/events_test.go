package admin

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/health"
	"github.com/mosparo-lb/mosparo-lb/vip"
)

func TestEventsRing(t *testing.T) {
	clk := newTestClock()
	e := NewEvents(3, clk)
	for _, s := range []string{"a", "b", "c", "d"} {
		e.Add(Event{Kind: EventNodeState, Subject: s})
		clk.Advance(time.Second)
	}
	got := e.List()
	if len(got) != 3 || got[0].Subject != "d" || got[2].Subject != "b" || !got[0].At.Equal(clk.Now().Add(-time.Second)) {
		t.Errorf("List() = %+v, want d, c, b stamped by the clock", got)
	}
	var none *Events
	none.Add(Event{Kind: EventReload})
	none.NodeChanged(health.Change{Node: "x", From: health.Up, To: health.Down})
	if l := none.List(); l == nil || len(l) != 0 {
		t.Errorf("nil Events List() = %#v, want empty", l)
	}
}

func TestEventsFromHooks(t *testing.T) {
	clk := newTestClock()
	e := NewEvents(10, clk)
	at := clk.Now().Add(-time.Minute)
	e.NodeChanged(health.Change{Node: "n1", From: health.Up, To: health.Down, Reason: "connect refused", At: at})
	e.NodeChanged(health.Change{Node: "n2", From: health.Up, To: health.Down, Reason: "connected", Ejected: true, At: at})
	e.NodeChanged(health.Change{Node: "n3", From: health.Up, To: health.Draining, Reason: "connected", Operator: health.Draining, At: at})
	e.VRRPChanged(vip.Transition{Instance: "VI_1", From: vip.Backup, To: vip.Master, Priority: 150, At: at})
	e.Reloaded(nil)
	e.Reloaded(errors.New("nodes[0].address: bad"))
	want := []Event{
		{Kind: EventReloadFailed, Detail: "nodes[0].address: bad"},
		{Kind: EventReload, Detail: "configuration applied"},
		{Kind: EventVRRP, Subject: "VI_1", From: "BACKUP", To: "MASTER", Detail: "priority 150"},
		{Kind: EventOperator, Subject: "n3", From: "up", To: "draining", Detail: "operator: draining"},
		{Kind: EventEjection, Subject: "n2", From: "up", To: "down", Detail: "passive ejection: requests failed in a row"},
		{Kind: EventNodeState, Subject: "n1", From: "up", To: "down", Detail: "connect refused"},
	}
	got := e.List()
	if len(got) != len(want) {
		t.Fatalf("List() = %+v", got)
	}
	for i := range want {
		g := got[i]
		g.At = time.Time{}
		if g != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, g, want[i])
		}
	}
	b, err := json.Marshal(got[2])
	if err != nil || string(b) != `{"time":"2026-01-02T03:03:05Z","kind":"vrrp","subject":"VI_1","from":"BACKUP","to":"MASTER","detail":"priority 150"}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
}
