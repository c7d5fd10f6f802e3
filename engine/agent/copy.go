package agent

import (
	"io"
	"sync"
)

// SmallCopies is an io.Writer whose ReadFrom copies through a shared 8 KiB
// buffer. os/exec and x/crypto's sessions copy a command's output with
// io.Copy, which otherwise makes a buffer of 32 KiB for every stream of
// every command: at a few hundred commands a second, most of the garbage.
type SmallCopies struct{ io.Writer }

var copyBuffers = sync.Pool{New: func() any { return new([8 << 10]byte) }}

func (w SmallCopies) ReadFrom(r io.Reader) (int64, error) {
	b := copyBuffers.Get().(*[8 << 10]byte)
	defer copyBuffers.Put(b)
	// Neither side may take the copy over: r's WriteTo (an *os.File's)
	// would make its own buffer.
	return io.CopyBuffer(struct{ io.Writer }{w.Writer}, struct{ io.Reader }{r}, b[:])
}
