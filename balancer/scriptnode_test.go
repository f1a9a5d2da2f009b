package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// scriptNode is a raw-TCP node that records every request it reads,
// byte-exact, and answers each with the next scripted answer (the last one
// repeats): answers that no HTTP server library would send on purpose.
type scriptNode struct {
	name    string
	ln      net.Listener
	answers [][]scriptStep
	co      *coordinator

	mu       sync.Mutex
	received []byte
	requests int
	conns    map[net.Conn]struct{}
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// defaultAnswer is what a node without an answer section sends: a plain
// healthy answer naming the node.
func defaultAnswer(name string) []scriptStep {
	return []scriptStep{{data: []byte("HTTP/1.1 200 OK\r\nX-Node: " + name + "\r\nContent-Length: 2\r\n\r\nok")}}
}

func startScriptNode(name string, answers [][]scriptStep, co *coordinator) (*scriptNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if len(answers) == 0 {
		answers = [][]scriptStep{defaultAnswer(name)}
	}
	n := &scriptNode{name: name, ln: ln, answers: answers, co: co, conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	n.wg.Add(1)
	go n.accept()
	return n, nil
}

func (n *scriptNode) addr() string { return n.ln.Addr().String() }

func (n *scriptNode) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			// Accepted as close ran: close would not see it.
			n.mu.Unlock()
			c.Close()
			return
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serve(c)
	}
}

// close stops the node: listener, connections, parked scripts.
func (n *scriptNode) close() {
	n.ln.Close()
	close(n.stop)
	n.mu.Lock()
	n.closed = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// got returns what the node has read so far.
func (n *scriptNode) got() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]byte(nil), n.received...)
}

func (n *scriptNode) serve(c net.Conn) {
	defer n.wg.Done()
	defer func() {
		c.Close()
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		raw, err := readRequest(br)
		n.mu.Lock()
		n.received = append(n.received, raw...)
		i := n.requests
		if err == nil {
			n.requests++
		}
		n.mu.Unlock()
		if err != nil {
			return
		}
		script := n.answers[min(i, len(n.answers)-1)]
		if !n.play(c, script) {
			return
		}
	}
}

// play runs one answer script; false when the connection is done.
func (n *scriptNode) play(c net.Conn, script []scriptStep) bool {
	// Parks are registered before anything is written: the client cannot
	// be done before the harness knows this node will wait for it.
	var parks []*parked
	for _, s := range script {
		if s.op == "sync" || s.op == "hold" {
			parks = append(parks, n.co.register(s.op))
		}
	}
	var open *parked // the sync whose late bytes are being written
	finish := func() {
		if open != nil {
			close(open.done)
			open = nil
		}
	}
	defer finish()
	for _, s := range script {
		switch s.op {
		case "":
			if _, err := c.Write(s.data); err != nil {
				return false
			}
		case "close":
			return false
		case "reset":
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return false
		case "stall":
			<-n.stop
			return false
		case "sync", "hold":
			finish()
			p := parks[0]
			parks = parks[1:]
			select {
			case <-p.release:
			case <-n.stop:
				return false
			}
			if s.op == "sync" {
				open = p
			}
		}
	}
	return true
}

// coordinator orders clients and parked node scripts (steps @sync, @hold).
type coordinator struct {
	mu    sync.Mutex
	syncs []*parked
	holds []*parked
	held  chan struct{} // one token per registered hold
}

type parked struct {
	release chan struct{}
	done    chan struct{} // sync: its late bytes are written
}

func newCoordinator() *coordinator { return &coordinator{held: make(chan struct{}, 64)} }

func (co *coordinator) register(op string) *parked {
	p := &parked{release: make(chan struct{}), done: make(chan struct{})}
	co.mu.Lock()
	defer co.mu.Unlock()
	if op == "hold" {
		co.holds = append(co.holds, p)
		select {
		case co.held <- struct{}{}:
		default:
		}
	} else {
		co.syncs = append(co.syncs, p)
	}
	return p
}

// releaseSyncs lets every parked @sync go on and waits (bounded) until
// their late bytes are out.
func (co *coordinator) releaseSyncs() {
	co.mu.Lock()
	ps := co.syncs
	co.syncs = nil
	co.mu.Unlock()
	for _, p := range ps {
		close(p.release)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}

func (co *coordinator) releaseHolds() {
	co.mu.Lock()
	ps := co.holds
	co.holds = nil
	co.mu.Unlock()
	for _, p := range ps {
		close(p.release)
	}
}

// readRequest reads one HTTP/1.1 request as the balancer framed it
// (Content-Length or chunked), returning its exact bytes; on error it
// returns what it read.
func readRequest(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	length, chunked := 0, false
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		raw = append(raw, line...)
		if err != nil {
			return raw, err
		}
		l := bytes.TrimRight(line, "\r\n")
		if len(l) == 0 {
			if first {
				return raw, errors.New("empty request line")
			}
			break
		}
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.Atoi(string(v))
			if err != nil || length < 0 {
				return raw, errors.New("bad content-length")
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		}
	}
	if !chunked {
		body := make([]byte, length)
		k, err := io.ReadFull(br, body)
		return append(raw, body[:k]...), err
	}
	for {
		line, err := br.ReadSlice('\n')
		raw = append(raw, line...)
		if err != nil {
			return raw, err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 32)
		if err != nil || size < 0 {
			return raw, errors.New("bad chunk size")
		}
		if size == 0 {
			for { // trailers up to the empty line
				line, err := br.ReadSlice('\n')
				raw = append(raw, line...)
				if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
					return raw, err
				}
			}
		}
		data := make([]byte, size+2)
		k, err := io.ReadFull(br, data)
		raw = append(raw, data[:k]...)
		if err != nil {
			return raw, err
		}
	}
}
