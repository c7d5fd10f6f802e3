package agent

import (
	"encoding/binary"
	"io"
)

// yamux's send loop writes a frame's 12-byte header and its body in two
// Writes; over SSH each Write is a packet of its own, which sshd relays
// and the other end decrypts. frameWriter holds a small data frame's
// header and writes it with the body, halving the packets of commands
// and their answers; a large body (a file's bytes) costs one packet more
// but no copy. It relies
// on the frame layout of yamux's spec.md (version, type, flags, stream
// ID, length; type 0 is data, its body the length that follows) and on
// yamux writing from one goroutine.
type frameWriter struct {
	w       io.Writer
	buf     [frameHeader + smallFrame]byte // a data frame's header, waiting for its body
	waiting bool
}

const (
	frameHeader = 12
	frameData   = 0 // yamux's typeData
	smallFrame  = 4096
)

// CoalesceFrames wraps the connection yamux writes to.
func CoalesceFrames(w io.Writer) io.Writer { return &frameWriter{w: w} }

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.waiting {
		f.waiting = false
		n := copy(f.buf[frameHeader:], p)
		m, err := f.w.Write(f.buf[:frameHeader+n])
		return max(0, m-frameHeader), err
	}
	if len(p) == frameHeader && p[1] == frameData && small(binary.BigEndian.Uint32(p[8:])) {
		copy(f.buf[:], p)
		f.waiting = true
		return len(p), nil
	}
	return f.w.Write(p)
}

// small tells a data frame's length that goes with its header.
func small(n uint32) bool { return n > 0 && n <= smallFrame }
