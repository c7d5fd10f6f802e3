package agent

import (
	"encoding/binary"
	"io"
)

// yamux's send loop writes a frame's 12-byte header and its body in two
// Writes; over SSH each Write is a packet of its own, which sshd relays
// and the other end decrypts. frameWriter holds a data frame's header
// and writes it with the body, halving the packets per frame. It relies
// on the frame layout of yamux's spec.md (version, type, flags, stream
// ID, length; type 0 is data, its body the length that follows) and on
// yamux writing from one goroutine.
type frameWriter struct {
	w       io.Writer
	hdr     [frameHeader]byte // a data frame's header, waiting for its body
	waiting bool
}

const (
	frameHeader = 12
	frameData   = 0 // yamux's typeData
)

// CoalesceFrames wraps the connection yamux writes to.
func CoalesceFrames(w io.Writer) io.Writer { return &frameWriter{w: w} }

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.waiting {
		f.waiting = false
		b := make([]byte, frameHeader+len(p))
		copy(b, f.hdr[:])
		copy(b[frameHeader:], p)
		n, err := f.w.Write(b)
		return max(0, n-frameHeader), err
	}
	if len(p) == frameHeader && p[1] == frameData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(f.hdr[:], p)
		f.waiting = true
		return len(p), nil
	}
	return f.w.Write(p)
}
