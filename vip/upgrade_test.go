package vip

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

func TestDecodeHandover(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []HandoverState
		wantErr bool
	}{
		{name: "empty list", in: `[]`, want: []HandoverState{}},
		{name: "one master", in: `[{"name":"VI_1","interface":"eth0","vrid":51,"ipv6":false,"state":"MASTER","holding":true}]`,
			want: []HandoverState{{Name: "VI_1", Interface: "eth0", VRID: 51, State: Master, Holding: true}}},
		{name: "null", in: `null`, want: nil},
		{name: "not JSON", in: `MASTER`, wantErr: true},
		{name: "truncated", in: `[{"name":"VI_1"`, wantErr: true},
		{name: "unknown state", in: `[{"interface":"eth0","vrid":51,"state":"BOSS"}]`, wantErr: true},
		{name: "VRID zero", in: `[{"interface":"eth0","vrid":0,"state":"MASTER"}]`, wantErr: true},
		{name: "VRID too large", in: `[{"interface":"eth0","vrid":256,"state":"MASTER"}]`, wantErr: true},
		{name: "no interface", in: `[{"vrid":51,"state":"MASTER"}]`, wantErr: true},
		{name: "an object", in: `{"vrid":51}`, wantErr: true},
		{name: "too many", in: `[` + strings.Repeat(`{"interface":"e","vrid":1},`, maxHandoverStates) + `{"interface":"e","vrid":1}]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeHandover([]byte(tt.in))
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrHandover) {
				t.Fatalf("DecodeHandover(%.60s) error = %v, want error %v (ErrHandover)", tt.in, err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeHandover(%.60s) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzDecodeHandover(f *testing.F) {
	f.Add([]byte(`[{"name":"VI_1","interface":"eth0","vrid":51,"state":"MASTER","holding":true}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"vrid":-1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := DecodeHandover(b)
		if err != nil {
			return
		}
		enc, err := EncodeHandover(states)
		if err != nil {
			t.Fatalf("EncodeHandover of decoded %+v: %v", states, err)
		}
		again, err := DecodeHandover(enc)
		if err != nil || len(again) != len(states) {
			t.Fatalf("round trip of %+v = %+v, %v", states, again, err)
		}
	})
}

func handoverManager(t *testing.T) *Manager {
	t.Helper()
	c, err := configs.Parse("t.yaml", []byte(`vrrp:
  instances:
    - {name: VI_1, interface: eth0, virtual_router_id: 51, virtual_ips: ["192.0.2.10/24"]}
    - {name: VI_6, interface: eth0, virtual_router_id: 51, virtual_ips: ["2001:db8::10/64"]}
    - {name: VI_2, interface: eth1, virtual_router_id: 52, virtual_ips: ["192.0.2.20/24"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(c.VRRP, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAdoptStatesMatchesByIdentity: instances are matched by interface,
// VRID and family (names may differ); an adopted one is silent until
// Commit; Release and Reclaim toggle the old side's silent stop.
func TestAdoptStatesMatchesByIdentity(t *testing.T) {
	m := handoverManager(t)
	handed := []HandoverState{
		{Name: "old name", Interface: "eth0", VRID: 51, IPv6: false, State: Master, Holding: true},
		{Name: "VI_2", Interface: "eth9", VRID: 52, State: Master, Holding: true}, // other interface
		{Name: "VI_X", Interface: "eth0", VRID: 99, State: Backup},
	}
	took := m.AdoptStates(handed)
	if len(took) != 1 || took[0].Name != "old name" {
		t.Fatalf("AdoptStates took %+v, want only the eth0/51/IPv4 instance", took)
	}
	if in := m.byName["VI_1"]; in.adopted == nil || !in.silent.Load() {
		t.Errorf("VI_1 adopted %v, silent %v; want adopted and silent", in.adopted, in.silent.Load())
	}
	for _, name := range []string{"VI_6", "VI_2"} {
		if in := m.byName[name]; in.adopted != nil || in.silent.Load() {
			t.Errorf("%s adopted although its identity differs", name)
		}
	}
	m.Commit()
	if m.byName["VI_1"].silent.Load() {
		t.Error("VI_1 still silent after Commit")
	}
	if got := m.States(took); len(got) != 1 || got[0].Name != "VI_1" || got[0].State != Initialize {
		t.Errorf("States(took) = %+v, want VI_1 in Initialize", got)
	}

	old := handoverManager(t)
	old.Release([]HandoverState{{Interface: "eth1", VRID: 52}})
	if !old.byName["VI_2"].handover.Load() || old.byName["VI_1"].handover.Load() {
		t.Error("Release did not mark exactly VI_2")
	}
	old.Reclaim()
	if old.byName["VI_2"].handover.Load() {
		t.Error("Reclaim left VI_2 released")
	}
}

// TestStartedWaitsForAdoptedMasters: Started waits for the instances that
// adopted a master, and only for those.
func TestStartedWaitsForAdoptedMasters(t *testing.T) {
	m := handoverManager(t)
	if err := m.Started(context.Background()); err != nil {
		t.Fatalf("Started with nothing adopted = %v, want nil at once", err)
	}
	m.AdoptStates([]HandoverState{{Interface: "eth0", VRID: 51, State: Master, Holding: true}, {Interface: "eth1", VRID: 52, State: Backup}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Started(ctx); err == nil {
		t.Fatal("Started returned nil before the adopted master ran")
	}
	close(m.byName["VI_1"].started)
	if err := m.Started(context.Background()); err != nil {
		t.Errorf("Started once the adopted master runs = %v, want nil (the adopted backup is not waited for)", err)
	}
}
