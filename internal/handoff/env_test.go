package handoff

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseEnv(t *testing.T) {
	const pid, ppid = 4242, 4000
	long := strings.Repeat("a", 256)
	tests := []struct {
		name    string
		vars    map[string]string
		want    Env
		wantErr error
	}{
		{name: "nothing", vars: nil, want: Env{}},
		{name: "systemd two named", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"},
			want: Env{Source: Systemd, Count: 2, Names: []string{"web", "admin"}}},
		{name: "systemd without names", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1"},
			want: Env{Source: Systemd, Count: 1, Names: []string{""}}},
		{name: "systemd duplicate names are the unit's default", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "mosparo-lb.socket:mosparo-lb.socket"},
			want: Env{Source: Systemd, Count: 2, Names: []string{"mosparo-lb.socket", "mosparo-lb.socket"}}},
		{name: "systemd zero", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "0"},
			want: Env{Source: Systemd, Names: []string{}}},
		{name: "wrong LISTEN_PID", vars: map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}, wantErr: ErrOtherProcess},
		{name: "LISTEN_PID garbage", vars: map[string]string{"LISTEN_PID": "42x", "LISTEN_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "LISTEN_PID zero", vars: map[string]string{"LISTEN_PID": "0", "LISTEN_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "LISTEN_PID negative", vars: map[string]string{"LISTEN_PID": "-4242", "LISTEN_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "LISTEN_PID with space", vars: map[string]string{"LISTEN_PID": " 4242", "LISTEN_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS garbage", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "two"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS negative", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "-1"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS hex", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "0x2"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS huge", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "100000"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS overflow", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "99999999999999999999"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS empty", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": ""}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS missing", vars: map[string]string{"LISTEN_PID": "4242"}, wantErr: ErrEnvironment},
		{name: "LISTEN_FDS without LISTEN_PID", vars: map[string]string{"LISTEN_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "fewer names than fds", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web"}, wantErr: ErrEnvironment},
		{name: "more names than fds", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"}, wantErr: ErrEnvironment},
		{name: "control character in name", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "we\nb"}, wantErr: ErrEnvironment},
		{name: "non-ASCII name", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "wéb"}, wantErr: ErrEnvironment},
		{name: "name too long", vars: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": long}, wantErr: ErrEnvironment},
		{name: "upgrade", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "2",
			"MOSPARO_LB_UPGRADE_FDNAMES": "web:", "MOSPARO_LB_UPGRADE_READY_FD": "5"},
			want: Env{Source: Upgrade, Count: 2, Names: []string{"web", ""}, ReadyFD: 5}},
		{name: "upgrade wins over stale systemd variables", vars: map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "9",
			"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "0", "MOSPARO_LB_UPGRADE_READY_FD": "3"},
			want: Env{Source: Upgrade, Names: []string{}, ReadyFD: 3}},
		{name: "upgrade from another parent", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "1", "MOSPARO_LB_UPGRADE_FDS": "1",
			"MOSPARO_LB_UPGRADE_READY_FD": "4"}, wantErr: ErrOtherProcess},
		{name: "upgrade without ready fd", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "1"}, wantErr: ErrEnvironment},
		{name: "upgrade ready fd on a socket", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "2",
			"MOSPARO_LB_UPGRADE_READY_FD": "4"}, wantErr: ErrEnvironment},
		{name: "upgrade ready fd stdin", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "0",
			"MOSPARO_LB_UPGRADE_READY_FD": "0"}, wantErr: ErrEnvironment},
		{name: "upgrade ready fd garbage", vars: map[string]string{"MOSPARO_LB_UPGRADE_PARENT": "4000", "MOSPARO_LB_UPGRADE_FDS": "1",
			"MOSPARO_LB_UPGRADE_READY_FD": "4;rm"}, wantErr: ErrEnvironment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnv(Process{LookupEnv: lookup(tt.vars), PID: pid, PPID: ppid})
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ParseEnv(%v) error = %v, want %v", tt.vars, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEnv(%v) = %+v, want %+v", tt.vars, got, tt.want)
			}
		})
	}
}
