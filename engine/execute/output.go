package execute

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// lockedWriter serialises whole lines from many hosts onto one writer, or
// logs each to log.
type lockedWriter struct {
	mu  sync.Mutex
	w   io.Writer
	log *slog.Logger
}

func (l *lockedWriter) line(host, text string) {
	if l.log != nil {
		l.log.Info(text, "host", host)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s | %s\n", host, text)
}

func (e *Executor) logf(host, format string, args ...any) {
	e.out.line(host, fmt.Sprintf(format, args...))
}

// hostLines is an io.Writer that prefixes each whole line with the host,
// never interleaving half lines of two hosts.
type hostLines struct {
	out  *lockedWriter
	host string
	buf  []byte
}

func (h *hostLines) Write(p []byte) (int, error) {
	h.buf = append(h.buf, p...)
	for {
		i := bytes.IndexByte(h.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		h.out.line(h.host, string(h.buf[:i]))
		h.buf = h.buf[i+1:]
	}
}

// flush writes a last line without a newline.
func (h *hostLines) flush() {
	if len(h.buf) > 0 {
		h.out.line(h.host, string(h.buf))
		h.buf = nil
	}
}
