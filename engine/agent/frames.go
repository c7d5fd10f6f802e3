package agent

import (
	"encoding/binary"
	"io"
	"sync"
)

// yamux's send loop writes a frame's 12-byte header and its body in two
// Writes; over SSH each Write is a packet of its own, which the sender
// encrypts and writes, sshd relays and the other end reads apart.
// frameWriter holds a data frame's header and writes it with the body,
// halving the packets of commands, their answers and files: a small
// body goes through the writer's own buffer, a file's (sftp's 16 KiB
// packets) through a buffer of a pool shared by every connection, held
// only for the Write. A body larger than largeFrame (rare: yamux sends as
// much as the stream's window allows) goes after its header, uncopied. It
// relies on the frame layout of yamux's spec.md (version, type, flags,
// stream ID, length; type 0 is data, its body the length that follows)
// and on yamux writing from one goroutine, a body in one Write.
type frameWriter struct {
	w       io.Writer
	buf     [frameHeader + smallFrame]byte // a data frame's header, waiting for its body
	waiting bool
}

const (
	frameHeader = 12
	frameData   = 0 // yamux's typeData
	smallFrame  = 4096
	largeFrame  = 32 << 10 // an SSH packet's payload
)

// largeFrames are the buffers of bodies larger than smallFrame.
var largeFrames = sync.Pool{New: func() any { b := make([]byte, frameHeader+largeFrame); return &b }}

// CoalesceFrames wraps the connection yamux writes to.
func CoalesceFrames(w io.Writer) io.Writer { return &frameWriter{w: w} }

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.waiting {
		f.waiting = false
		return f.withHeader(p)
	}
	if len(p) == frameHeader && p[1] == frameData && held(binary.BigEndian.Uint32(p[8:])) {
		copy(f.buf[:], p)
		f.waiting = true
		return len(p), nil
	}
	return f.w.Write(p)
}

// withHeader writes the waiting header and body p in one Write.
func (f *frameWriter) withHeader(p []byte) (int, error) {
	buf := f.buf[:]
	if len(p) > smallFrame {
		pooled := largeFrames.Get().(*[]byte)
		defer largeFrames.Put(pooled)
		buf = *pooled
		copy(buf, f.buf[:frameHeader])
	}
	if len(p) > len(buf)-frameHeader { // not the length the header said
		if _, err := f.w.Write(buf[:frameHeader]); err != nil {
			return 0, err
		}
		return f.w.Write(p)
	}
	n := copy(buf[frameHeader:], p)
	m, err := f.w.Write(buf[:frameHeader+n])
	return max(0, m-frameHeader), err
}

// held tells a data frame's length that goes with its header.
func held(n uint32) bool { return n > 0 && n <= largeFrame }
