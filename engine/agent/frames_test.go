package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder keeps each Write apart; a Write waits while gate is held.
type recorder struct {
	gate   sync.Mutex
	mu     sync.Mutex
	writes [][]byte
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.gate.Lock()
	defer r.gate.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), r.err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes)
}

func header(typ byte, flags uint16, length uint32) []byte {
	h := make([]byte, frameHeader)
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// closeAndWait closes w and waits for its sending goroutine to end.
func closeAndWait(t *testing.T, w *frameWriter) {
	t.Helper()
	w.Close()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the sending goroutine did not end")
	}
}

// TestCoalesceFrames: a data frame's header goes out with its body, and a
// stream's opening with the frame after it; other frames (window updates,
// pings, a data frame with flags only) at once. Each Write here finds the
// writer idle, so each is sent alone.
func TestCoalesceFrames(t *testing.T) {
	body := []byte("hello")
	syn := header(frameWindow, flagSYN, 262144)
	big := bytes.Repeat([]byte("f"), maxBatch+1)
	for _, tt := range []struct {
		name   string
		writes [][]byte
		want   [][]byte
	}{
		{"data frame", [][]byte{header(frameData, 0, 5), body}, [][]byte{join(header(frameData, 0, 5), body)}},
		{"data frame without a body (FIN)", [][]byte{header(frameData, 4, 0)}, [][]byte{header(frameData, 4, 0)}},
		{"window update", [][]byte{header(frameWindow, 0, 262144)}, [][]byte{header(frameWindow, 0, 262144)}},
		{"window update ending a stream", [][]byte{header(frameWindow, 4, 0)}, [][]byte{header(frameWindow, 4, 0)}},
		{"stream opened, its request", [][]byte{syn, header(frameData, 0, 5), body}, [][]byte{join(syn, header(frameData, 0, 5), body)}},
		{"stream opened, a ping", [][]byte{syn, header(2, 0, 7)}, [][]byte{join(syn, header(2, 0, 7))}},
		{"two streams opened", [][]byte{syn, syn, header(frameData, 0, 5), body},
			[][]byte{join(syn, syn), join(header(frameData, 0, 5), body)}},
		{"file's data frame", [][]byte{header(frameData, 0, 16<<10), big[:16<<10]}, [][]byte{join(header(frameData, 0, 16<<10), big[:16<<10])}},
		{"data frame larger than a batch", [][]byte{header(frameData, 0, uint32(len(big))), big}, [][]byte{join(header(frameData, 0, uint32(len(big))), big)}},
		{"ping then data", [][]byte{header(2, 0, 7), header(frameData, 0, 5), body},
			[][]byte{header(2, 0, 7), join(header(frameData, 0, 5), body)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			w := CoalesceFrames(r).(*frameWriter)
			for _, p := range tt.writes {
				if n, err := w.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
				// Sent before the next Write, unless held.
				for end := time.Now().Add(time.Second); w.n == 0 && w.queued() && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
			}
			closeAndWait(t, w)
			if len(r.writes) != len(tt.want) {
				t.Fatalf("%d writes, want %d: %q", len(r.writes), len(tt.want), r.writes)
			}
			for i := range tt.want {
				if !bytes.Equal(r.writes[i], tt.want[i]) {
					t.Errorf("write %d: %q, want %q", i, r.writes[i], tt.want[i])
				}
			}
		})
	}
}

// queued tells whether bytes wait for the sending goroutine.
func (f *frameWriter) queued() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending != nil
}

// TestCoalesceFramesWhileSending: what is written while a Write of w is
// under way goes out in one Write after it, in order, up to maxBatch; once
// w has failed, Writes return its error.
func TestCoalesceFramesWhileSending(t *testing.T) {
	r := &recorder{}
	w := CoalesceFrames(r).(*frameWriter)
	r.gate.Lock()
	first := header(2, 0, 1)
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	for w.queued() { // the sender took it and waits at the gate
		time.Sleep(time.Millisecond)
	}
	var later [][]byte
	for i := range 5 {
		p := header(frameWindow, 0, uint32(i))
		later = append(later, p)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	r.gate.Unlock()
	closeAndWait(t, w)
	want := [][]byte{first, join(later...)}
	if len(r.writes) != 2 || !bytes.Equal(r.writes[0], want[0]) || !bytes.Equal(r.writes[1], want[1]) {
		t.Fatalf("writes %q, want %q", r.writes, want)
	}

	// A full batch waits for the sender, then goes after it.
	r = &recorder{}
	w = CoalesceFrames(r).(*frameWriter)
	r.gate.Lock()
	_, _ = w.Write(first)
	for w.queued() {
		time.Sleep(time.Millisecond)
	}
	chunk := make([]byte, maxBatch/2)
	wrote := make(chan struct{})
	go func() {
		for range 3 {
			_, _ = w.Write(chunk)
		}
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("3 half batches queued while the sender was busy")
	case <-time.After(100 * time.Millisecond):
	}
	r.gate.Unlock()
	<-wrote
	closeAndWait(t, w)
	if r.count() != 3 { // first, two halves, the third
		t.Errorf("%d writes, want 3", r.count())
	}

	// w fails: the Writes after say so.
	failed := errors.New("connection reset")
	r = &recorder{err: failed}
	w = CoalesceFrames(r).(*frameWriter)
	_, _ = w.Write(first)
	<-w.done
	if _, err := w.Write(first); !errors.Is(err, failed) {
		t.Errorf("Write after w failed: %v, want %v", err, failed)
	}
}
