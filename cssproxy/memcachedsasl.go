package cssproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcached's binary protocol, as much of it as the edge needs to read a
// cache that requires SASL: Symfony's MemcachedAdapter turns php-memcached's
// OPT_BINARY_PROTOCOL on whenever MEMCACHED_URL has user:password (FACTS
// 11.8), and memcached -S speaks nothing else. gomemcache has only the text
// protocol and the Go binary-protocol clients are unmaintained, so this is
// our own: SASL PLAIN, a batch of GetKQ ended by a Noop, and Noop alone for
// the reachability probe. Layout: memcached's protocol_binary.h.
const (
	binReqMagic  = 0x80
	binRespMagic = 0x81
	binHeaderLen = 24

	opNoop     = 0x0a
	opGetKQ    = 0x0d // get, key in the answer, quiet: misses send nothing
	opVersion  = 0x0b
	opSASLAuth = 0x21

	statusOK           = 0x0000
	statusAuthError    = 0x0020
	statusAuthContinue = 0x0021

	// binKeyOverhead bounds what an answer carries besides the value: the
	// flags extras and a key of at most 250 bytes.
	binKeyOverhead = 4 + 250
)

var (
	// errBinAnswer is an answer that does not follow the protocol or
	// does not answer what was asked; the connection is dropped.
	errBinAnswer = errors.New("memcached: malformed binary answer")
	// errSASLRefused is memcached refusing the DSN's user or password.
	errSASLRefused = errors.New("memcached: SASL authentication refused (user or password of css_cache.url)")
)

// binHeader is a response header.
type binHeader struct {
	opcode byte
	keyLen int
	extLen int
	status uint16
	body   int // total body length: extras, key, value
	opaque uint32
}

// readBinAnswer reads one answer; its body is bounded by maxBody before it
// is allocated. The body returned is extras, key and value in that order.
func readBinAnswer(r *bufio.Reader, maxBody int) (binHeader, []byte, error) {
	var b [binHeaderLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return binHeader{}, nil, err
	}
	if b[0] != binRespMagic {
		return binHeader{}, nil, fmt.Errorf("%w: magic %#x", errBinAnswer, b[0])
	}
	if b[5] != 0 { // data type: only raw bytes are defined
		return binHeader{}, nil, fmt.Errorf("%w: data type %#x", errBinAnswer, b[5])
	}
	h := binHeader{
		opcode: b[1],
		keyLen: int(binary.BigEndian.Uint16(b[2:])),
		extLen: int(b[4]),
		status: binary.BigEndian.Uint16(b[6:]),
		opaque: binary.BigEndian.Uint32(b[12:]),
	}
	total := binary.BigEndian.Uint32(b[8:])
	if uint64(total) > uint64(maxBody) {
		return h, nil, fmt.Errorf("%w: memcached: %d byte answer", ErrTooLarge, total)
	}
	h.body = int(total)
	if h.keyLen+h.extLen > h.body {
		return h, nil, fmt.Errorf("%w: key and extras (%d) longer than the body (%d)", errBinAnswer, h.keyLen+h.extLen, h.body)
	}
	body := make([]byte, h.body)
	if _, err := io.ReadFull(r, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

// appendBinRequest appends one request with no extras and no CAS.
func appendBinRequest(dst []byte, op byte, key, value []byte, opaque uint32) []byte {
	var h [binHeaderLen]byte
	h[0] = binReqMagic
	h[1] = op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:], uint32(len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:], opaque)
	dst = append(dst, h[:]...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// appendGetKQ appends a GetKQ per key (opaque: its index) and the Noop
// (opaque: len(keys)) whose answer ends the batch.
func appendGetKQ(dst []byte, keys []string) []byte {
	for i, k := range keys {
		dst = appendBinRequest(dst, opGetKQ, []byte(k), nil, uint32(i))
	}
	return appendBinRequest(dst, opNoop, nil, nil, uint32(len(keys)))
}

// readGetKQ reads the answers to appendGetKQ(keys): a hit per key found,
// in any order, then the Noop. Anything else (an error status, a key or
// opaque that was not asked, more answers than keys) is an error, and the
// connection must not be used again.
func readGetKQ(r *bufio.Reader, keys []string, maxValue int) (map[string]*memcache.Item, error) {
	items := make(map[string]*memcache.Item, len(keys))
	for range len(keys) + 1 {
		h, body, err := readBinAnswer(r, maxValue+binKeyOverhead)
		if err != nil {
			return nil, err
		}
		if h.status != statusOK {
			return nil, fmt.Errorf("%w: status %#04x to opcode %#x: %.64q", errBinAnswer, h.status, h.opcode, body)
		}
		switch h.opcode {
		case opNoop:
			if h.opaque != uint32(len(keys)) {
				return nil, fmt.Errorf("%w: noop opaque %d", errBinAnswer, h.opaque)
			}
			return items, nil
		case opGetKQ:
		default:
			return nil, fmt.Errorf("%w: opcode %#x to a get", errBinAnswer, h.opcode)
		}
		if h.opaque >= uint32(len(keys)) || h.extLen != 4 {
			return nil, fmt.Errorf("%w: get answer with opaque %d, %d bytes of extras", errBinAnswer, h.opaque, h.extLen)
		}
		key := keys[h.opaque]
		if string(body[h.extLen:h.extLen+h.keyLen]) != key {
			return nil, fmt.Errorf("%w: answer for key %.64q to a get of %q", errBinAnswer, body[h.extLen:h.extLen+h.keyLen], key)
		}
		if items[key] != nil {
			return nil, fmt.Errorf("%w: key %q answered twice", errBinAnswer, key)
		}
		items[key] = &memcache.Item{
			Key:   key,
			Flags: binary.BigEndian.Uint32(body),
			Value: body[h.extLen+h.keyLen:],
		}
	}
	return nil, fmt.Errorf("%w: more answers than keys", errBinAnswer)
}

// appendSASLPlain appends a SASL Auth request for PLAIN (RFC 4616: no
// authorization identity, user, password).
func appendSASLPlain(dst []byte, user, password string) []byte {
	msg := make([]byte, 0, 2+len(user)+len(password))
	msg = append(append(append(append(msg, 0), user...), 0), password...)
	return appendBinRequest(dst, opSASLAuth, []byte("PLAIN"), msg, 0)
}

// readAuthAnswer reads the answer to appendSASLPlain.
func readAuthAnswer(r *bufio.Reader) error {
	h, body, err := readBinAnswer(r, 1024)
	if err != nil {
		return err
	}
	if h.opcode != opSASLAuth {
		return fmt.Errorf("%w: opcode %#x to SASL auth", errBinAnswer, h.opcode)
	}
	switch h.status {
	case statusOK:
		return nil
	case statusAuthError:
		return errSASLRefused
	default:
		// statusAuthContinue included: PLAIN has one step.
		return fmt.Errorf("%w: status %#04x to SASL auth: %.64q", errBinAnswer, h.status, body)
	}
}

// binConn is one authenticated connection.
type binConn struct {
	c  net.Conn
	br *bufio.Reader
}

// saslClient reads keys from memcached servers that require SASL, in the
// same ketama placement as the text-protocol client. It keeps up to
// memcachedIdleConns authenticated connections per server; a connection
// that saw any error is closed, never reused.
type saslClient struct {
	sel            *ketama
	user, password string
	timeout        time.Duration // bounds each batch, dial and login included
	maxValue       int

	mu     sync.Mutex
	idle   map[string][]*binConn // by server address
	closed bool
}

func newSASLClient(sel *ketama, user, password string, timeout time.Duration, maxValue int) *saslClient {
	return &saslClient{sel: sel, user: user, password: password, timeout: timeout, maxValue: maxValue, idle: map[string][]*binConn{}}
}

// GetMulti reads keys (prefix_key included) with one batch per server.
func (s *saslClient) GetMulti(keys []string) (map[string]*memcache.Item, error) {
	byServer := map[serverAddr][]string{}
	var order []serverAddr
	for _, k := range keys {
		a, err := s.sel.PickServer(k)
		if err != nil {
			return nil, err
		}
		sa := a.(serverAddr)
		if byServer[sa] == nil {
			order = append(order, sa)
		}
		byServer[sa] = append(byServer[sa], k)
	}
	items := make(map[string]*memcache.Item, len(keys))
	for _, a := range order {
		got, err := s.batch(a, byServer[a])
		if err != nil {
			return nil, fmt.Errorf("memcached %s: %w", a, err)
		}
		for k, it := range got {
			items[k] = it
		}
	}
	return items, nil
}

func (s *saslClient) batch(a serverAddr, keys []string) (map[string]*memcache.Item, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	bc, err := s.get(ctx, a)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = bc.c.SetDeadline(deadline)
	if _, err := bc.c.Write(appendGetKQ(nil, keys)); err != nil {
		bc.c.Close()
		return nil, err
	}
	items, err := readGetKQ(bc.br, keys, s.maxValue)
	if err != nil {
		bc.c.Close()
		return nil, err
	}
	s.put(a, bc)
	return items, nil
}

// get takes an idle connection to a or dials and logs in a new one.
func (s *saslClient) get(ctx context.Context, a serverAddr) (*binConn, error) {
	s.mu.Lock()
	if l := s.idle[a.addr]; len(l) > 0 {
		bc := l[len(l)-1]
		s.idle[a.addr] = l[:len(l)-1]
		s.mu.Unlock()
		return bc, nil
	}
	s.mu.Unlock()
	return s.dial(ctx, a)
}

func (s *saslClient) put(a serverAddr, bc *binConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.idle[a.addr]) >= memcachedIdleConns {
		bc.c.Close()
		return
	}
	s.idle[a.addr] = append(s.idle[a.addr], bc)
}

// dial connects to a and logs in with SASL PLAIN, bounded by ctx.
func (s *saslClient) dial(ctx context.Context, a serverAddr) (*binConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, a.network, a.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	bc := &binConn{c: c, br: bufio.NewReaderSize(c, 4096)}
	if _, err := c.Write(appendSASLPlain(nil, s.user, s.password)); err != nil {
		c.Close()
		return nil, err
	}
	if err := readAuthAnswer(bc.br); err != nil {
		c.Close()
		return nil, err
	}
	return bc, nil
}

// ping logs in to every server on a fresh connection and exchanges a
// Noop, bounded by ctx: a wrong password shows as unreachable, with
// errSASLRefused as the reason.
func (s *saslClient) ping(ctx context.Context) error {
	for _, a := range s.sel.servers {
		bc, err := s.dial(ctx, a)
		if err != nil {
			return fmt.Errorf("memcached %s: %w", a, err)
		}
		_, err = bc.c.Write(appendBinRequest(nil, opNoop, nil, nil, 0))
		if err == nil {
			_, err = readGetKQ(bc.br, nil, 0)
		}
		bc.c.Close()
		if err != nil {
			return fmt.Errorf("memcached %s: %w", a, err)
		}
	}
	return nil
}

// Close closes the idle connections; connections in use close when their
// batch ends.
func (s *saslClient) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for a, l := range s.idle {
		for _, bc := range l {
			bc.c.Close()
		}
		delete(s.idle, a)
	}
	return nil
}
