package keepalivedconf

import (
	"bufio"
	"fmt"
	"strings"
)

// token is a word, "{", "}" or a newline ("\n").
type token struct {
	s    string
	line int
}

// tokenize splits like keepalived: whitespace-separated words, "#" or "!"
// starting a comment, double quotes grouping words, braces as own tokens.
func tokenize(s string) ([]token, error) {
	var toks []token
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), maxImportBytes)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		for i := 0; i < len(text); {
			c := text[i]
			switch {
			case c == ' ' || c == '\t' || c == '\r':
				i++
			case c == '#' || c == '!':
				i = len(text)
			case c == '{' || c == '}':
				toks = append(toks, token{string(c), line})
				i++
			case c == '"':
				j := strings.IndexByte(text[i+1:], '"')
				if j < 0 {
					return nil, fmt.Errorf("%w: line %d: unterminated quote", ErrSyntax, line)
				}
				toks = append(toks, token{text[i+1 : i+1+j], line})
				i += j + 2
			default:
				j := i
				for j < len(text) && !strings.ContainsRune(" \t\r{}\"#!", rune(text[j])) {
					j++
				}
				toks = append(toks, token{text[i:j], line})
				i = j
			}
		}
		toks = append(toks, token{"\n", line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return toks, nil
}

// node is one statement: a keyword, its arguments and an optional block.
type node struct {
	key      string
	args     []string
	children []*node
	block    bool
	line     int
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) items(depth int) ([]*node, error) {
	if depth > maxImportDepth {
		return nil, fmt.Errorf("%w: blocks nested deeper than %d", ErrSyntax, maxImportDepth)
	}
	var out []*node
	var cur *node
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		switch t.s {
		case "\n":
			cur = nil
		case "}":
			if depth == 0 {
				return nil, fmt.Errorf("%w: line %d: unexpected }", ErrSyntax, t.line)
			}
			return out, nil
		case "{":
			if cur == nil { // a block on its own: attach to an empty statement
				cur = &node{line: t.line}
				out = append(out, cur)
			}
			kids, err := p.items(depth + 1)
			if err != nil {
				return nil, err
			}
			cur.children = append(cur.children, kids...)
			cur.block = true
			cur = nil
		default:
			if cur == nil {
				cur = &node{key: t.s, line: t.line}
				out = append(out, cur)
			} else {
				cur.args = append(cur.args, t.s)
			}
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("%w: missing }", ErrSyntax)
	}
	return out, nil
}
