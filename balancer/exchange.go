package balancer

import (
	"time"

	"github.com/valyala/fasthttp"
)

// maxResponseBody bounds what a node may answer; a larger answer is a 502.
const maxResponseBody = 64 << 20

// exchange sends req to u over one of u's pooled connections and reads the
// answer into resp, all before deadline (unix ns). It is HostClient.Do without
// Do's per-request clock reads and deadlines: the connection's limit is one
// store the server's watchdog enforces. The pool, dialing and idle cleanup
// stay the HostClient's.
func (u *upstream) exchange(req *fasthttp.Request, resp *fasthttp.Response, deadline int64) error {
	hc := u.hc
	cc, err := hc.AcquireConn(0, false)
	if err != nil {
		return err
	}
	c := cc.Conn()
	wc, watched := c.(*watchedConn)
	if watched {
		wc.armAt(deadline)
	} else if err := c.SetDeadline(time.Unix(0, deadline)); err != nil {
		hc.CloseConn(cc)
		return err
	}
	bw := hc.AcquireWriter(c)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err == nil {
		resp.SkipBody = req.Header.IsHead()
		br := hc.AcquireReader(c)
		err = resp.ReadLimitBody(br, maxResponseBody)
		hc.ReleaseReader(br)
	}
	if watched {
		wc.disarm()
	}
	if err != nil || resp.ConnectionClose() || req.ConnectionClose() {
		hc.CloseConn(cc)
		return err
	}
	hc.ReleaseConn(cc)
	return nil
}
