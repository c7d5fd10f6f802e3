package experiment

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
)

// newLogger is what a run prints: a record per line, written as the line
// it always was ("host | text", or the text alone), or with asJSON as one
// JSON object (time, level, msg, host) for machines.
func newLogger(w io.Writer, asJSON bool) *slog.Logger {
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(&lineHandler{mu: &sync.Mutex{}, w: w})
}

// lineHandler writes a record as one line of text: its message, after its
// host attribute when it has one.
type lineHandler struct {
	mu   *sync.Mutex // shared by the handlers WithAttrs derives
	w    io.Writer
	host string
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	host := h.host
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "host" {
			host = a.Value.String()
		}
		return true
	})
	line := r.Message + "\n"
	if host != "" {
		line = host + " | " + line
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "host" {
			c.host = a.Value.String()
		}
	}
	return &c
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// logLines is an io.Writer for what prints lines (the providers, the
// services and network steps): each whole line is a record of log.
type logLines struct {
	mu  sync.Mutex
	log *slog.Logger
	buf []byte
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.log.Info(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

// syncWriter serialises the writes of the loggers that share a writer (the
// terminal: the run's logger and the progress lines).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
