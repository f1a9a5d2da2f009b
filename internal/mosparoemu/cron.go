package mosparoemu

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Web-cron bodies, FACTS 6.1 (plain text, Content-Type text/html).
var (
	cron200 = []byte("200 OK")
	cron400 = []byte("400 Bad Request")
	cron401 = []byte("401 Unauthorized")
	cron403 = []byte("403 Forbidden")
	cron425 = []byte("425 Too Early")
	cron429 = []byte("429 Too Many Requests")
	cron500 = []byte("500 Internal Server Error")
)

// cronLockWindow is how long a start mark blocks other runs (FACTS 6.1 check 5).
const cronLockWindow = 5 * time.Minute

// cronState is the node-local FilesystemAdapter lock of the web cron (FACTS 6.1, 9.7): items
// mosparoNextCronJob and mosparoCronJobStartedAt, never shared between nodes.
type cronState struct {
	mu        sync.Mutex
	next      time.Time // zero: mosparoNextCronJob not set
	startedAt time.Time // zero: no start mark
	runs      atomic.Int64
}

func (c *cronState) reset() {
	c.mu.Lock()
	c.next, c.startedAt = time.Time{}, time.Time{}
	c.mu.Unlock()
	c.runs.Store(0)
}

// serveCron answers /cron-jobs/execute (any method) with the checks of FACTS 6.1 in order:
// key missing 400, webCronJobActive off 403, wrong key 401, then the per-node schedule (425
// before the next run is due, 429 while a run started within 5 minutes; both only once a
// schedule exists), else run and 200. The IP allow list is empty (allow all).
func (n *Node) serveCron(ctx *fasthttp.RequestCtx, inc *incarnation) {
	if forced := n.cronAnswer.Load(); forced != 0 {
		serveText(ctx, int(forced), cronBody(int(forced)))
		return
	}
	args := ctx.QueryArgs()
	if !args.Has("key") {
		serveText(ctx, fasthttp.StatusBadRequest, cron400)
		return
	}
	if n.cronDisabled {
		serveText(ctx, fasthttp.StatusForbidden, cron403)
		return
	}
	if !bytes.Equal(args.Peek("key"), n.cronKey) {
		serveText(ctx, fasthttp.StatusUnauthorized, cron401)
		return
	}
	c := &n.cron
	c.mu.Lock()
	now := n.now()
	if !c.next.IsZero() {
		if now.Before(c.next) {
			c.mu.Unlock()
			serveText(ctx, 425, cron425)
			return
		}
		if !c.startedAt.IsZero() && now.Sub(c.startedAt) < cronLockWindow {
			c.mu.Unlock()
			serveText(ctx, fasthttp.StatusTooManyRequests, cron429)
			return
		}
	}
	c.startedAt = now
	c.mu.Unlock()

	completed := n.cronDuration <= 0 || sleep(n.cronDuration, inc.stop)

	c.mu.Lock()
	if completed {
		c.next = n.now().Add(n.cronInterval)
	}
	c.startedAt = time.Time{}
	c.mu.Unlock()
	if !completed {
		ctx.SetConnectionClose()
		return
	}
	c.runs.Add(1)
	serveText(ctx, fasthttp.StatusOK, cron200)
}

func cronBody(code int) []byte {
	switch code {
	case 200:
		return cron200
	case 400:
		return cron400
	case 401:
		return cron401
	case 403:
		return cron403
	case 425:
		return cron425
	case 429:
		return cron429
	case 500:
		return cron500
	}
	return []byte(fasthttp.StatusMessage(code))
}
