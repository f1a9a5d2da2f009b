package configs

import (
	"fmt"
	"strings"
)

// Problem is one validation error: the dotted YAML path of the value
// ("vrrp.instances[0].priority"), where it stands in the file, and what is
// wrong with it, including what would be valid.
type Problem struct {
	File   string
	Path   string
	Line   int // 1-based; 0 when the key is absent from the file (a default)
	Column int
	Msg    string
}

func (p Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", loc, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
}

// Error is everything wrong with one file, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// validator collects problems by YAML path; the loader later resolves each
// path to a line and column. Section validators call Errorf with the path of
// the value they reject.
type validator struct {
	problems []Problem
}

// Errorf records a problem with the value at path.
func (v *validator) Errorf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}
