package agent

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Over SSH each Write to a session is a packet of its own, which the
// sender encrypts and writes, sshd relays and the other end reads apart.
// yamux's send loop writes a frame's 12-byte header and its body in two
// Writes, and a command's stream is three frames from e2c (the stream's
// opening, its request, the end of its stdin) and two or three back.
// CoalesceFrames joins them into fewer packets in two ways:
//
//   - it holds a data frame's header until its body comes, and the frame
//     opening a stream (a window update with SYN) until the next frame,
//     so that they go out in one Write. It relies on the frame layout of
//     yamux's spec.md (version, type, flags, stream ID, length; type 0 is
//     data, its body the length that follows), on yamux writing from one
//     goroutine, a body in one Write, and on e2c writing a request on each
//     stream as soon as it opens it (agentSession.open);
//   - the frames yamux writes while the previous ones are still being
//     sent (encrypted, written to the socket or pipe) go out together,
//     from a goroutine of the writer's own. Nothing waits for company: a
//     frame written to an idle writer goes out at once.
type frameWriter struct {
	held [2 * frameHeader]byte // a SYN, a data header, or both, in that order
	n    int                   // bytes held
	body bool                  // held ends with a data header whose body comes next

	mu      sync.Mutex
	cond    sync.Cond // pending has bytes, is drained, or the writer ends
	pending []byte    // what the sending goroutine sends next, nil when none
	err     error     // the first error of w, or errClosed
	w       io.Writer
	done    chan struct{} // closed when the sending goroutine ends
}

const (
	frameHeader = 12
	frameData   = 0 // yamux's typeData
	frameWindow = 1 // yamux's typeWindowUpdate
	flagSYN     = 1 // yamux's flagSYN

	// maxBatch is the most bytes the sending goroutine takes at once,
	// about two SSH packets; a larger frame goes out alone.
	maxBatch = 64 << 10
	// smallBatch holds a command's frames: requests, answers, window
	// updates.
	smallBatch = 4 << 10
)

// The buffers of what waits to be sent come from pools shared by every
// connection, an idle one holding none: small ones for commands, large
// ones for files.
var (
	smallBatches = sync.Pool{New: func() any { b := make([]byte, 0, smallBatch); return &b }}
	largeBatches = sync.Pool{New: func() any { b := make([]byte, 0, maxBatch); return &b }}
)

var errClosed = errors.New("agent: connection closed")

// CoalesceFrames wraps the connection yamux writes to. Its Writes return
// before w has the bytes, as a socket's do, and once w has failed they
// return w's error. Close ends the sending goroutine once it has sent what
// it holds; it does not close w.
func CoalesceFrames(w io.Writer) io.WriteCloser {
	f := &frameWriter{w: w, done: make(chan struct{})}
	f.cond.L = &f.mu
	go f.send()
	return f
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(p) == frameHeader && f.n+frameHeader <= len(f.held) && !f.body {
		length := binary.BigEndian.Uint32(p[8:])
		data := p[1] == frameData && length > 0
		syn := p[1] == frameWindow && binary.BigEndian.Uint16(p[2:])&flagSYN != 0 && f.n == 0
		if data || syn {
			f.n += copy(f.held[f.n:], p)
			f.body = data
			return len(p), nil
		}
	}
	held := f.held[:f.n]
	f.n, f.body = 0, false
	if err := f.queue(held, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// queue adds held and p, in that order, to what the sending goroutine
// sends, waiting while it holds maxBatch already.
func (f *frameWriter) queue(held, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.err == nil && len(f.pending) > 0 && len(f.pending)+len(held)+len(p) > maxBatch {
		f.cond.Wait()
	}
	if f.err != nil {
		return f.err
	}
	if f.pending == nil {
		pool := &smallBatches
		if len(held)+len(p) > smallBatch {
			pool = &largeBatches
		}
		f.pending = *pool.Get().(*[]byte)
	}
	f.pending = append(append(f.pending, held...), p...)
	f.cond.Broadcast()
	return nil
}

// send writes what is pending to w until Close or w's first error.
func (f *frameWriter) send() {
	defer close(f.done)
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		for f.pending == nil && f.err == nil {
			f.cond.Wait()
		}
		if f.pending == nil {
			return
		}
		batch := f.pending
		f.pending = nil
		f.cond.Broadcast() // room for the Writes waiting
		f.mu.Unlock()
		_, err := f.w.Write(batch)
		switch batch = batch[:0]; cap(batch) { // not one that grew
		case smallBatch:
			smallBatches.Put(&batch)
		case maxBatch:
			largeBatches.Put(&batch)
		}
		f.mu.Lock()
		if err != nil {
			if f.err == nil { // not closed: the Writes from now on fail
				f.err = err
				f.cond.Broadcast()
			}
			return
		}
	}
}

// Close ends the sending goroutine once it has sent what it holds; later
// Writes fail.
func (f *frameWriter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = errClosed
		f.cond.Broadcast()
	}
	return nil
}
