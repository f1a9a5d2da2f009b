package daemon

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The reproduction of issue 11 item 1 against real nodes and real passive
// detection: "GET /x HTTP/1.0" without Host, many times, used to be retried
// on every node and counted against each until they were ejected. Now it is
// answered 400 (this listener has no default host) and ejects nothing.
func TestHostlessRequestsEjectNoNode(t *testing.T) {
	nodes := startNodes(t, 3)
	c := startCluster(t, nodes, "balancing: {retries: 2}\n")
	for _, n := range []string{"n1", "n2", "n3"} {
		waitState(t, c, n, "up")
	}
	addr := strings.TrimPrefix(c.lb, "http://")
	for i := 0; i < 50; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("GET /x HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var resp fasthttp.Response
		err = resp.Read(bufio.NewReader(conn))
		conn.Close()
		if err != nil || resp.StatusCode() != 400 {
			t.Fatalf("request %d: %d, %v; want 400", i, resp.StatusCode(), err)
		}
	}
	for _, nv := range c.d.nodeSnapshots(c.d.srv.NodeStats()) {
		if nv.State.String() != "up" || nv.Ejections != 0 || nv.Failures != 0 || nv.Requests != 0 {
			t.Errorf("%s after 50 Host-less requests: state %s, %d ejections, %d failures, %d requests; want up, none",
				nv.Name, nv.State, nv.Ejections, nv.Failures, nv.Requests)
		}
	}
}
