package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a place in a scenario file. Line and Col are 1-based.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a scenario, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	if e.Pos == (Pos{}) {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Errorf builds an *Error; other packages use it so that every scenario
// problem reads the same way.
func Errorf(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// Errors collects the problems of a whole scenario so that they are all
// reported at once rather than one per run. What Err returns is an *Errors
// too: errors.As finds it, and Unwrap lists its problems (errors.Is and
// errors.As look into each, as for errors.Join).
type Errors struct{ list []error }

// Add appends err unless it is nil. An *Errors is flattened.
func (e *Errors) Add(err error) {
	if err == nil {
		return
	}
	if m, ok := err.(*Errors); ok {
		e.list = append(e.list, m.list...)
		return
	}
	e.list = append(e.list, err)
}

// At appends a positioned error.
func (e *Errors) At(p Pos, format string, args ...any) { e.Add(Errorf(p, format, args...)) }

// Len is the number of problems collected so far.
func (e *Errors) Len() int { return len(e.list) }

// Err returns nil or an *Errors holding the problems sorted by file,
// position and text (so the report is the same on every run), each printed
// on its own line, the first maxShown of them.
func (e *Errors) Err() error {
	if len(e.list) == 0 {
		return nil
	}
	list := slices.Clone(e.list)
	slices.SortStableFunc(list, func(a, b error) int {
		pa, pb := posOf(a), posOf(b)
		return cmp.Or(cmp.Compare(pa.File, pb.File), cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col),
			cmp.Compare(a.Error(), b.Error()))
	})
	list = slices.CompactFunc(list, func(a, b error) bool { return a.Error() == b.Error() })
	return &Errors{list: list}
}

// Unwrap returns the problems.
func (e *Errors) Unwrap() []error { return e.list }

func posOf(err error) Pos {
	if e, ok := err.(*Error); ok {
		return e.Pos
	}
	return Pos{}
}

// maxShown is how many problems the text of a report lists; the rest are
// counted (a generated file can have thousands, and the first ones are
// what to fix first). The error itself keeps them all.
const maxShown = 100

// Error prints each problem on its own line, the first maxShown of them.
func (e *Errors) Error() string {
	list := e.list
	if len(list) == 1 {
		return list[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(list))
	for _, err := range list[:min(len(list), maxShown)] {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(err.Error(), "\n", "\n    "))
	}
	if len(list) > maxShown {
		fmt.Fprintf(&b, "\n  ... and %d more problems", len(list)-maxShown)
	}
	return b.String()
}
