package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestListenHookObtainsEverySocket: Options.Listen is how inherited
// sockets (internal/handoff) reach the daemon, so every listener, public
// and admin, must be obtained through it and none bound behind its back.
func TestListenHookObtainsEverySocket(t *testing.T) {
	nodes := startNodes(t, 1)
	path := filepath.Join(t.TempDir(), "lb.yaml")
	yaml := `listen: [{address: "127.0.0.1:0"}, {address: "127.0.0.2:0"}]
admin: {listen: "127.0.0.1:0"}
log: {level: warn, access_log: false}
` + nodesYAML(nodes)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	listen := func(network, address string) (net.Listener, error) {
		mu.Lock()
		asked = append(asked, network+" "+address)
		mu.Unlock()
		return net.Listen(network, address)
	}
	d, err := New(context.Background(), Options{Path: path, Loggers: &Loggers{Main: zaptest.NewLogger(t)}, Listen: listen})
	if err != nil {
		t.Fatalf("New: %v\n%s", err, yaml)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	want := []string{"tcp 127.0.0.1:0", "tcp 127.0.0.2:0", "tcp 127.0.0.1:0"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(asked, want) {
		t.Errorf("Listen hook called for %q, want %q (two public listeners and admin)", asked, want)
	}
}
