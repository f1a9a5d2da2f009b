package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxFileBytes bounds what Load reads: a config is a few KiB; anything larger
// is a mistake (a binary, a log) that should not be parsed.
const maxFileBytes = 4 << 20

// Load reads, expands, decodes, defaults and validates the file at path.
// Environment variables are looked up with os.LookupEnv.
func Load(path string) (*Config, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, os.LookupEnv)
}

// ReadFile reads a configuration file for Parse through the size limit, so
// /dev/zero, a FIFO or a huge file fails at once instead of filling memory
// (issue 11, item 13).
func ReadFile(path string) ([]byte, error) {
	const limit = maxFileBytes
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	if len(b) > limit {
		return nil, &Error{Problems: []Problem{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes, the most a configuration may be; is it the right file?", limit)}}}
	}
	return b, nil
}

// Parse is Load on bytes already read; name is used in error messages and
// lookupEnv resolves ${NAME} references.
func Parse(name string, b []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if len(b) > maxFileBytes {
		return nil, &Error{Problems: []Problem{{File: name, Msg: fmt.Sprintf("file is %d bytes; a configuration is at most %d", len(b), maxFileBytes)}}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return nil, &Error{Problems: []Problem{{File: name, Msg: "file is empty; see configs/mosparo-lb.yaml for the reference"}}}
		}
		return nil, &Error{Problems: []Problem{syntaxProblem(name, err)}}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &Error{Problems: []Problem{{File: name, Line: more.Line, Column: more.Column, Msg: "a second YAML document; the configuration is one document"}}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	w := walker{file: name, env: lookupEnv, paths: map[string]*yaml.Node{}}
	w.walk(doc, reflect.TypeOf(Config{}), "")
	if len(w.problems) > 0 {
		return nil, &Error{Problems: w.problems}
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return nil, &Error{Problems: decodeProblems(name, err)}
	}
	c.defaults()
	var v validator
	c.validate(&v)
	if len(v.problems) == 0 {
		return &c, nil
	}
	for i := range v.problems {
		p := &v.problems[i]
		p.File = name
		if n := w.lookup(p.Path); n != nil {
			p.Line, p.Column = n.Line, n.Column
		}
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
	return nil, &Error{Problems: v.problems}
}

var errEOF = errors.New("EOF")

// walker checks every mapping key against the struct it decodes into (so an
// unknown key names the valid ones), expands ${ENV} in scalars, and records
// each value's node under its dotted path for positioned validation errors.
type walker struct {
	file     string
	env      func(string) (string, bool)
	paths    map[string]*yaml.Node
	problems []Problem
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	w.problems = append(w.problems, Problem{File: w.file, Path: path, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) lookup(path string) *yaml.Node {
	for path != "" {
		if n, ok := w.paths[path]; ok {
			return n
		}
		// A defaulted value has no node; point at its closest parent.
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return nil
		}
		path = path[:i]
	}
	return nil
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		w.errorf(n, path, "YAML aliases are not supported; write the value out")
		return
	}
	if path != "" {
		w.paths[path] = n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && w.expand(n, path) {
		retag(n, t)
	}
	if n.Tag == "!!null" {
		return
	}
	switch {
	case t == reflect.TypeOf(Duration(0)):
		if n.Kind == yaml.ScalarNode {
			if d, err := time.ParseDuration(n.Value); err != nil {
				w.errorf(n, path, "%q is not a duration; write it like 250ms, 2s or 1m30s", n.Value)
			} else if d < 0 {
				w.errorf(n, path, "%q is negative", n.Value)
			}
		}
	case t.Kind() == reflect.Int:
		// yaml.v3 would silently truncate 0.5 to 0; a weight or a port is a whole number.
		if _, err := strconv.ParseInt(n.Value, 10, 64); n.Kind != yaml.ScalarNode || err != nil {
			w.errorf(n, path, "want a whole number, got %s", kindName(n))
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			w.errorf(n, path, "want true or false, got %s", kindName(n))
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.errorf(n, path, "want a string, got %s", kindName(n))
		}
	case t.Kind() == reflect.Struct:
		w.walkStruct(n, t, path)
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value)
		}
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "want a mapping (key: value lines), got %s", kindName(n))
		return
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = t.Field(i).Type
		names = append(names, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		ft, ok := fields[k.Value]
		if !ok {
			w.errorf(k, sub, "unknown key %q; valid keys here: %s", k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			w.errorf(k, sub, "key %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		w.walk(val, ft, sub)
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${NAME} and ${NAME:-default} inside one scalar and reports
// whether it changed. It works on parsed scalars, not on the file text, so a
// variable's value can never inject YAML structure and positions stay exact.
// "$${" escapes a literal "${". A value is inserted as is: a "${" inside it
// is text, never a reference (issue 11, item 13).
func (w *walker) expand(n *yaml.Node, path string) bool {
	if !strings.Contains(n.Value, "${") {
		return false
	}
	var b strings.Builder
	s := n.Value
	for s != "" {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		m := envRef.FindStringSubmatchIndex(s[i:])
		if m == nil || m[0] != 0 {
			w.errorf(n, path, "malformed ${...} reference in %q; write ${NAME} or ${NAME:-default}", n.Value)
			return false
		}
		ref := s[i : i+m[1]]
		name := ref[m[2]:m[3]]
		switch v, ok := w.env(name); {
		case ok && v != "":
			b.WriteString(v)
		case m[4] >= 0:
			b.WriteString(ref[m[6]:m[7]])
		default:
			w.errorf(n, path, "environment variable %s is not set (write ${%s:-default} for a default)", name, name)
		}
		s = s[i+m[1]:]
	}
	n.Value = b.String()
	return true
}

// retag lets the expanded text decide the type of a value that is not a
// string (a port or a flag from the environment), even when the reference
// was quoted, and keeps it a string otherwise (a token "null" stays text).
func retag(n *yaml.Node, t reflect.Type) {
	if t.Kind() == reflect.String {
		n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
		return
	}
	n.Tag, n.Style = "", 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "a mapping"
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+)(?: column (\d+))?: (.*)$`)

func syntaxProblem(file string, err error) Problem {
	p := Problem{File: file, Msg: err.Error()}
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Column, _ = strconv.Atoi(m[2])
		p.Msg = "YAML syntax: " + m[3]
	}
	return p
}

func decodeProblems(file string, err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{syntaxProblem(file, err)}
	}
	ps := make([]Problem, 0, len(te.Errors))
	for _, e := range te.Errors {
		ps = append(ps, syntaxProblem(file, errors.New(e)))
	}
	return ps
}

func setDuration(d *Duration, def string) {
	if *d == 0 {
		v, err := time.ParseDuration(def)
		if err != nil {
			panic("configs: bad built-in default " + def)
		}
		*d = Duration(v)
	}
}

// setDurationAtMost defaults d to def, or to bound when that is shorter: a
// default must not break the rule tying it to a key the operator set.
func setDurationAtMost(d *Duration, def string, bound Duration) {
	if *d != 0 {
		return
	}
	setDuration(d, def)
	if bound > 0 && *d > bound {
		*d = bound
	}
}

// setDurationAtLeast defaults d to def, or to bound when that is longer.
func setDurationAtLeast(d *Duration, def string, bound Duration) {
	if *d != 0 {
		return
	}
	setDuration(d, def)
	*d = max(*d, bound)
}

func setInt(i *int, def int) {
	if *i == 0 {
		*i = def
	}
}
