package balancer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/txtar"
)

// A hostile case (testdata/hostile/*.txt, issue 11) is a txtar archive:
//
//	<comment: what the case is, which issue item, why HAProxy differs>
//	-- expect --            key: value lines, see caseExpect
//	-- config --            optional YAML merged over hostileBaseYAML
//	-- client --            raw bytes of client 1 (client.2, client.3: more clients, in turn)
//	-- a.answer --          what node a sends for each request (a.answer.2: for its second one)
//	-- a.received --        what node a must have read, byte-exact (absent: nothing)
//	-- b.answer --, -- b.received --   the same for node b
//
// Raw sections are lines, each sent with CRLF, with escapes \r \n \t \\
// \xHH and \{N*text} (text repeated N times); a line ending in a lone
// backslash gets no line ending. In client and answer sections a line
// starting with @ is a step, not bytes (see scriptStep).
type hostileCase struct {
	name    string
	path    string
	arch    *txtar.Archive
	expect  caseExpect
	config  string
	clients [][]scriptStep
	answers map[string][][]scriptStep // node -> per request (last repeats)
	recv    map[string][]byte         // node -> expected bytes; absent = nothing
}

// caseExpect is the expect section. Keys:
//
//	issue: 11.N          the issue item a defect case proves (absent: holds today)
//	nodes: a=up b=up     health states after the run; "nodes: a" alone runs
//	                     only node a in the balancer (b stays a healthy spare)
//	status[ N]: 200      every status client N received, in order (1xx too),
//	                     "none" for a connection closed without an answer
//	header[ N]: K: V     a header of client N's last answer, exact
//	no-header[ N]: K     a header client N's answers must not carry
//	contains[ N]: text   raw bytes client N must receive (escapes as above)
//	lacks[ N]: text      raw bytes client N must not receive
//	haproxy: 400         statuses HAProxy gave client 1 (make hostile)
//	haproxy-why: text    why they differ from status, required when they do
type caseExpect struct {
	lines   []expectLine
	issue   string
	only    []string // nodes run in the balancer
	states  map[string]string
	haproxy string
	hapWhy  string
}

type expectLine struct {
	key    string
	client int // 1-based
	value  string
}

// loadHostileCases reads every case of dir, sorted by name.
func loadHostileCases(dir string) ([]*hostileCase, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*hostileCase
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c, err := parseHostileCase(strings.TrimSuffix(filepath.Base(p), ".txt"), data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		c.path = p
		out = append(out, c)
	}
	return out, nil
}

func parseHostileCase(name string, data []byte) (*hostileCase, error) {
	c := &hostileCase{name: name, arch: txtar.Parse(data), answers: map[string][][]scriptStep{}, recv: map[string][]byte{}}
	clients := map[int][]scriptStep{}
	answers := map[string]map[int][]scriptStep{}
	for _, f := range c.arch.Files {
		base, idx, err := splitIndex(f.Name)
		if err != nil {
			return nil, err
		}
		switch {
		case base == "expect":
			if c.expect, err = parseExpect(string(f.Data)); err != nil {
				return nil, err
			}
		case base == "config":
			c.config = string(f.Data)
		case base == "client":
			if clients[idx], err = parseScript(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
		case strings.HasSuffix(base, ".answer"):
			node := strings.TrimSuffix(base, ".answer")
			if answers[node] == nil {
				answers[node] = map[int][]scriptStep{}
			}
			if answers[node][idx], err = parseScript(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
		case strings.HasSuffix(base, ".received"):
			if c.recv[strings.TrimSuffix(base, ".received")], err = decodeRaw(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
		default:
			return nil, fmt.Errorf("unknown section %q", f.Name)
		}
	}
	for i := 1; i <= len(clients); i++ {
		s, ok := clients[i]
		if !ok {
			return nil, fmt.Errorf("client.%d missing", i)
		}
		c.clients = append(c.clients, s)
	}
	if len(c.clients) == 0 {
		return nil, fmt.Errorf("no client section")
	}
	for node, m := range answers {
		for i := 1; i <= len(m); i++ {
			s, ok := m[i]
			if !ok {
				return nil, fmt.Errorf("%s.answer.%d missing", node, i)
			}
			c.answers[node] = append(c.answers[node], s)
		}
	}
	return c, nil
}

// splitIndex splits "client.2" into "client", 2; "client" is index 1.
func splitIndex(name string) (string, int, error) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name, 1, nil
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return name, 1, nil
	}
	if n < 1 {
		return "", 0, fmt.Errorf("section %q: index below 1", name)
	}
	return name[:i], n, nil
}

func parseExpect(s string) (caseExpect, error) {
	e := caseExpect{states: map[string]string{}}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return e, fmt.Errorf("expect: %q is not key: value", line)
		}
		v = strings.TrimSpace(v)
		l := expectLine{key: k, client: 1, value: v}
		if f := strings.Fields(k); len(f) == 2 {
			n, err := strconv.Atoi(f[1])
			if err != nil || n < 1 {
				return e, fmt.Errorf("expect: bad client in %q", k)
			}
			l.key, l.client = f[0], n
		}
		switch l.key {
		case "issue":
			e.issue = v
		case "nodes":
			for _, f := range strings.Fields(v) {
				node, st, ok := strings.Cut(f, "=")
				if !ok {
					e.only = append(e.only, node)
					continue
				}
				e.states[node] = st
			}
		case "haproxy":
			e.haproxy = v
		case "haproxy-why":
			e.hapWhy = v
		case "status", "header", "no-header", "contains", "lacks":
			e.lines = append(e.lines, l)
		default:
			return e, fmt.Errorf("expect: unknown key %q", l.key)
		}
	}
	return e, nil
}

// statusOf returns the expected status list of client n ("" if none given).
func (e *caseExpect) statusOf(n int) string {
	for _, l := range e.lines {
		if l.key == "status" && l.client == n {
			return l.value
		}
	}
	return ""
}

// scriptStep is one step of a client or node script: bytes to send, or one
// of these @ lines:
//
//	@close   close the connection (nodes: after the answer so far)
//	@reset   close with an RST (SO_LINGER 0)
//	@sync    (nodes) wait until the client being served is done; what
//	         follows is sent before the next client starts: late bytes
//	@hold    (nodes) wait until every later client is done: a busy node
//	@stall   (nodes) never go on: a node that hangs until the case ends
//	@keep    (clients) do not half-close after sending; read until the
//	         balancer closes or the read limit ends
//	@await   (clients) wait for the head of an answer before going on
type scriptStep struct {
	op   string // "" for bytes
	data []byte
}

func parseScript(b []byte) ([]scriptStep, error) {
	var steps []scriptStep
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			steps = append(steps, scriptStep{data: cur})
			cur = nil
		}
	}
	for _, line := range splitLines(b) {
		if strings.HasPrefix(line, "@") {
			switch op := strings.TrimSpace(line[1:]); op {
			case "close", "reset", "sync", "hold", "stall", "keep", "await":
				flush()
				steps = append(steps, scriptStep{op: op})
			default:
				return nil, fmt.Errorf("unknown step %q", line)
			}
			continue
		}
		d, err := decodeLine(line)
		if err != nil {
			return nil, err
		}
		cur = append(cur, d...)
	}
	flush()
	return steps, nil
}

func splitLines(b []byte) []string {
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// decodeRaw decodes a raw section (no @ steps).
func decodeRaw(b []byte) ([]byte, error) {
	var out []byte
	for _, line := range splitLines(b) {
		d, err := decodeLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, d...)
	}
	return out, nil
}

// decodeLine decodes one line and its CRLF (none after a lone trailing
// backslash).
func decodeLine(line string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		if ch != '\\' {
			out = append(out, ch)
			continue
		}
		if i == len(line)-1 {
			return out, nil // no line ending
		}
		i++
		switch line[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case '@':
			out = append(out, '@')
		case 'x':
			if i+2 >= len(line) {
				return nil, fmt.Errorf("short \\x in %q", line)
			}
			v, err := strconv.ParseUint(line[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x in %q", line)
			}
			out = append(out, byte(v))
			i += 2
		case '{':
			end := strings.IndexByte(line[i:], '}')
			star := strings.IndexByte(line[i:], '*')
			if end < 0 || star < 0 || star > end {
				return nil, fmt.Errorf("bad \\{N*text} in %q", line)
			}
			n, err := strconv.Atoi(line[i+1 : i+star])
			if err != nil || n < 0 || n > 1<<24 {
				return nil, fmt.Errorf("bad count in %q", line)
			}
			unit, err := decodeLine(line[i+star+1:i+end] + `\`)
			if err != nil {
				return nil, err
			}
			out = append(out, bytes.Repeat(unit, n)...)
			i += end
		default:
			return nil, fmt.Errorf("unknown escape \\%c in %q", line[i], line)
		}
	}
	return append(out, '\r', '\n'), nil
}

// encodeRaw is the inverse of decodeRaw, for -update.
func encodeRaw(b []byte) []byte {
	var out bytes.Buffer
	parts := bytes.Split(b, []byte("\r\n"))
	for i, p := range parts {
		last := i == len(parts)-1
		if last && len(p) == 0 {
			break
		}
		writeEscaped(&out, p)
		if last {
			out.WriteByte('\\')
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func writeEscaped(out *bytes.Buffer, p []byte) {
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if run := runLen(p[i:]); run >= 32 && ch != '\\' && ch != '}' && ch >= 0x20 && ch < 0x7f {
			fmt.Fprintf(out, "\\{%d*%c}", run, ch)
			i += run - 1
			continue
		}
		switch {
		case ch == '\\':
			out.WriteString(`\\`)
		case ch == '\r':
			out.WriteString(`\r`)
		case ch == '\n':
			out.WriteString(`\n`)
		case ch == '\t':
			out.WriteString(`\t`)
		case ch == '@' && i == 0:
			out.WriteString(`\@`)
		case ch < 0x20 || ch >= 0x7f:
			fmt.Fprintf(out, `\x%02x`, ch)
		default:
			out.WriteByte(ch)
		}
	}
}

func runLen(p []byte) int {
	n := 1
	for n < len(p) && p[n] == p[0] {
		n++
	}
	return n
}
